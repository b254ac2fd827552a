//! Authentication: key-pair JWTs checked against the registered public keys,
//! OAuth tokens and programmatic access tokens.

use axum::http::StatusCode;
use base64::Engine;
use serde_json::Value;

use crate::sandbox::emulator::{self, err};

use super::{State, now};

pub(super) fn spki_der(public_pem: &str) -> Vec<u8> {
    let body: String = public_pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .expect("public key PEM")
}

/// The base64 SHA-256 fingerprint of a PEM public key (`DESC USER` shows it).
pub fn fingerprint(public_pem: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, &spki_der(public_pem));
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

impl State {
    pub(super) fn now(&self) -> i64 {
        now() + self.clock_offset
    }

    pub(super) fn authenticate(
        &self,
        request: &emulator::Request,
    ) -> Result<(), emulator::ApiError> {
        let unauthorized = |m: &str| err(StatusCode::UNAUTHORIZED, m);
        let token_type = request
            .headers
            .get("x-snowflake-authorization-token-type")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized("X-Snowflake-Authorization-Token-Type is missing"))?;
        let token = match emulator::authorization(&request.headers) {
            Ok(Some((scheme, token))) if scheme == "Bearer" => token,
            _ => return Err(unauthorized("Bearer token is missing")),
        };
        match token_type {
            "KEYPAIR_JWT" => self.verify_jwt(&token).map_err(|m| unauthorized(&m)),
            "OAUTH" | "PROGRAMMATIC_ACCESS_TOKEN" => match self.tokens.get(&token) {
                Some(kind) if *kind == token_type => Ok(()),
                Some(_) => Err(unauthorized("the token is not of the declared type")),
                None => Err(unauthorized("Invalid OAuth access token")),
            },
            _ => Err(unauthorized("unknown token type")),
        }
    }

    fn verify_jwt(&self, token: &str) -> Result<(), String> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| "JWT token is invalid")?;
        if header.alg != jsonwebtoken::Algorithm::RS256 {
            return Err("JWT must be RS256".into());
        }
        let payload = token.split('.').nth(1).ok_or("JWT token is invalid")?;
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .map_err(|_| "JWT token is invalid")?,
        )
        .map_err(|_| "JWT token is invalid")?;
        let sub = claims["sub"].as_str().ok_or("JWT has no sub")?;
        let iss = claims["iss"].as_str().ok_or("JWT has no iss")?;
        let keys = self
            .key_users
            .get(sub)
            .ok_or("JWT token is invalid: unknown user")?;
        let (issuer_user, fp) = iss
            .split_once(".SHA256:")
            .ok_or("JWT iss lacks the fingerprint")?;
        if issuer_user != sub {
            return Err("JWT iss does not name the subject".into());
        }
        let key = keys
            .iter()
            .find(|der| {
                let digest = ring::digest::digest(&ring::digest::SHA256, der);
                base64::engine::general_purpose::STANDARD.encode(digest.as_ref()) == fp
            })
            .ok_or("JWT public key fingerprint does not match")?;
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            spki_rsa_key(key).ok_or("bad registered key")?,
        );
        let (signed, signature) = token.rsplit_once('.').ok_or("JWT token is invalid")?;
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| "JWT token is invalid")?;
        public
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| "JWT signature is invalid")?;
        let iat = claims["iat"].as_i64().ok_or("JWT has no iat")?;
        let exp = claims["exp"].as_i64().ok_or("JWT has no exp")?;
        let now = self.now();
        if iat > now + 60 {
            return Err("JWT iat is in the future".into());
        }
        if exp <= now {
            return Err("JWT token has expired".into());
        }
        if exp - iat > 3600 {
            return Err("JWT lifetime exceeds one hour".into());
        }
        Ok(())
    }
}

/// The RSA public key (PKCS#1) inside an RSA SubjectPublicKeyInfo DER.
fn spki_rsa_key(der: &[u8]) -> Option<&[u8]> {
    // SEQUENCE { AlgorithmIdentifier, BIT STRING { 0x00, RSAPublicKey } }
    fn header(der: &[u8]) -> Option<(usize, usize)> {
        let first = *der.get(1)?;
        if first < 0x80 {
            Some((2, first as usize))
        } else {
            let count = (first & 0x7f) as usize;
            let mut len = 0usize;
            for i in 0..count {
                len = (len << 8) | *der.get(2 + i)? as usize;
            }
            Some((2 + count, len))
        }
    }
    let (outer, _) = header(der)?;
    let inner = der.get(outer..)?;
    let (alg_header, alg_len) = header(inner)?;
    let bit = inner.get(alg_header + alg_len..)?;
    let (bit_header, _) = header(bit)?;
    bit.get(bit_header + 1..)
}
