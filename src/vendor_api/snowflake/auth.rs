//! Snowflake authentication: key-pair JWT, OAuth token, programmatic access token.
//!
//! Every call carries `Authorization: Bearer <token>` and
//! `X-Snowflake-Authorization-Token-Type`. A key-pair JWT is signed RS256 with
//! the PKCS#8 private key of the provider's Secret (encrypted keys are decrypted
//! with the passphrase Secret); `iss = ACCOUNT.USER.SHA256:<fingerprint>` where the
//! fingerprint is the base64 SHA-256 of the DER `SubjectPublicKeyInfo` computed
//! from the private key, `sub = ACCOUNT.USER`, and it lives an hour. It is
//! cached and minted again five minutes before it expires (or after a 401).
//! Keys and tokens never appear in messages, logs or `Debug`.

use std::sync::Mutex;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

/// How long a minted JWT lives (Snowflake accepts at most an hour).
const LIFETIME_SECONDS: i64 = 3600;
/// How long before expiry a JWT is minted again.
const RENEW_BEFORE_SECONDS: i64 = 300;
/// The `rsaEncryption` object identifier.
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// The token type header name.
pub const TOKEN_TYPE_HEADER: &str = "X-Snowflake-Authorization-Token-Type";

/// Why a private key cannot be used (never holds key material).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

/// How the operator authenticates to Snowflake.
pub enum Auth {
    /// Key-pair JWT.
    KeyPair(KeyPair),
    /// OAuth access token.
    OAuth(SecretString),
    /// Programmatic access token.
    ProgrammaticAccessToken(SecretString),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::KeyPair(pair) => f
                .debug_struct("KeyPair")
                .field("issuer", &pair.issuer)
                .finish_non_exhaustive(),
            Auth::OAuth(_) => f.write_str("OAuth(<redacted>)"),
            Auth::ProgrammaticAccessToken(_) => f.write_str("ProgrammaticAccessToken(<redacted>)"),
        }
    }
}

impl Auth {
    /// The value of `X-Snowflake-Authorization-Token-Type`.
    pub fn token_type(&self) -> &'static str {
        match self {
            Auth::KeyPair(_) => "KEYPAIR_JWT",
            Auth::OAuth(_) => "OAUTH",
            Auth::ProgrammaticAccessToken(_) => "PROGRAMMATIC_ACCESS_TOKEN",
        }
    }

    /// The bearer token to send now.
    pub fn token(&self) -> Result<SecretString, KeyError> {
        match self {
            Auth::KeyPair(pair) => pair.token(jiff::Timestamp::now().as_second()),
            Auth::OAuth(token) | Auth::ProgrammaticAccessToken(token) => Ok(token.clone()),
        }
    }

    /// Forgets a cached JWT (after a 401), so the next call mints a new one.
    pub fn forget(&self) {
        if let Auth::KeyPair(pair) = self {
            *pair.lock() = None;
        }
    }

    /// Who authenticates, for the provider's `Ready` message.
    pub fn describe(&self) -> String {
        match self {
            Auth::KeyPair(pair) => format!("a key-pair JWT (issuer {})", pair.issuer),
            Auth::OAuth(_) => "an OAuth token".into(),
            Auth::ProgrammaticAccessToken(_) => "a programmatic access token".into(),
        }
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    iat: i64,
    exp: i64,
}

/// A key pair and the JWT minted with it.
pub struct KeyPair {
    key: EncodingKey,
    issuer: String,
    subject: String,
    cached: Mutex<Option<(SecretString, i64)>>,
}

impl KeyPair {
    /// Reads a PKCS#8 PEM private key (decrypting it when it is encrypted) for
    /// `user` of `account`.
    pub fn new(
        account: &str,
        user: &str,
        pem: &str,
        passphrase: Option<&str>,
    ) -> Result<KeyPair, KeyError> {
        let der = private_key_der(pem, passphrase)?;
        let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice())
            .map_err(|_| KeyError("the private key is not a readable PKCS#8 private key".into()))?;
        if info.algorithm.oid.to_string() != RSA_ENCRYPTION {
            return Err(KeyError(
                "the private key is not an RSA key; Snowflake key-pair authentication needs RSA"
                    .into(),
            ));
        }
        let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).map_err(|error| {
            KeyError(format!(
                "the RSA private key cannot be used ({error}); Snowflake needs an RSA key of at least 2048 bits"
            ))
        })?;
        use ring::signature::KeyPair as _;
        let spki = subject_public_key_info(pair.public_key().as_ref());
        let digest = ring::digest::digest(&ring::digest::SHA256, &spki);
        let fingerprint = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
        let key = EncodingKey::from_rsa_der(info.private_key);
        let subject = format!(
            "{}.{}",
            account_identifier(account),
            user.to_ascii_uppercase()
        );
        Ok(KeyPair {
            key,
            issuer: format!("{subject}.SHA256:{fingerprint}"),
            subject,
            cached: Mutex::new(None),
        })
    }

    /// The JWT issuer (`ACCOUNT.USER.SHA256:<fingerprint>`; public information).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(SecretString, i64)>> {
        self.cached.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached JWT, or a new one when it is within five minutes of expiry.
    pub fn token(&self, now: i64) -> Result<SecretString, KeyError> {
        let mut cached = self.lock();
        if let Some((token, expires)) = cached.as_ref()
            && now < expires - RENEW_BEFORE_SECONDS
        {
            return Ok(token.clone());
        }
        let claims = Claims {
            iss: &self.issuer,
            sub: &self.subject,
            iat: now,
            exp: now + LIFETIME_SECONDS,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|error| {
                KeyError(format!("cannot sign the JWT with the private key: {error}"))
            })?;
        let token = SecretString::from(token);
        *cached = Some((token.clone(), now + LIFETIME_SECONDS));
        Ok(token)
    }
}

/// The account as JWT claims name it: upper-case, without a `.region` or `.global` suffix.
pub fn account_identifier(account: &str) -> String {
    account
        .split('.')
        .next()
        .unwrap_or(account)
        .to_ascii_uppercase()
}

/// The DER PKCS#8 private key of a PEM text, decrypted with `passphrase` if encrypted.
fn private_key_der(pem: &str, passphrase: Option<&str>) -> Result<Vec<u8>, KeyError> {
    let pem = pem.trim();
    if pem.contains("BEGIN RSA PRIVATE KEY") {
        return Err(KeyError(
            "the private key is in PKCS#1 form (BEGIN RSA PRIVATE KEY); convert it to PKCS#8 with `openssl pkcs8 -topk8 -inform PEM -in key.pem -out key.p8 -nocrypt` (or with -v2 aes-256-cbc and a passphrase)".into(),
        ));
    }
    let (label, document) = pkcs8::SecretDocument::from_pem(pem).map_err(|_| {
        KeyError(
            "the private key is not a PEM text (expected -----BEGIN PRIVATE KEY----- or -----BEGIN ENCRYPTED PRIVATE KEY-----)"
                .into(),
        )
    })?;
    match label {
        "PRIVATE KEY" => Ok(document.as_bytes().to_vec()),
        "ENCRYPTED PRIVATE KEY" => {
            let Some(passphrase) = passphrase else {
                return Err(KeyError(
                    "the private key is encrypted, but the keyPair sets no passphrase".into(),
                ));
            };
            let encrypted = pkcs8::EncryptedPrivateKeyInfo::try_from(document.as_bytes())
                .map_err(|_| KeyError("the encrypted private key cannot be read".into()))?;
            let decrypted = encrypted.decrypt(passphrase.as_bytes()).map_err(|_| {
                KeyError(
                    "the encrypted private key cannot be decrypted: wrong passphrase, or an encryption scheme other than PBES2 (PBKDF2 or scrypt with AES-CBC)".into(),
                )
            })?;
            Ok(decrypted.as_bytes().to_vec())
        }
        other => Err(KeyError(format!(
            "the PEM text holds a {other:?}, not a PKCS#8 private key"
        ))),
    }
}

/// DER length octets.
fn der_length(length: usize) -> Vec<u8> {
    if length < 0x80 {
        return vec![length as u8];
    }
    let bytes: Vec<u8> = length
        .to_be_bytes()
        .into_iter()
        .skip_while(|byte| *byte == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

/// Wraps a PKCS#1 `RSAPublicKey` into a DER `SubjectPublicKeyInfo` (what
/// `openssl rsa -pubout -outform DER` prints and Snowflake fingerprints).
fn subject_public_key_info(rsa_public_key: &[u8]) -> Vec<u8> {
    // SEQUENCE { OID rsaEncryption, NULL }
    const ALGORITHM: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bit_string = vec![0x03];
    bit_string.extend(der_length(rsa_public_key.len() + 1));
    bit_string.push(0x00);
    bit_string.extend_from_slice(rsa_public_key);
    let mut out = vec![0x30];
    out.extend(der_length(ALGORITHM.len() + bit_string.len()));
    out.extend_from_slice(&ALGORITHM);
    out.extend(bit_string);
    out
}

/// Exposes a token for a header (kept in one place).
pub fn bearer(token: &SecretString) -> String {
    format!("Bearer {}", token.expose_secret())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../../tests/fixtures/snowflake/test_key.p8");
    const ENCRYPTED: &str = include_str!("../../../tests/fixtures/snowflake/test_key_encrypted.p8");
    const PASSPHRASE: &str =
        include_str!("../../../tests/fixtures/snowflake/test_key_passphrase.txt");
    const PKCS1: &str = include_str!("../../../tests/fixtures/snowflake/test_key_pkcs1.pem");
    const FINGERPRINT: &str =
        include_str!("../../../tests/fixtures/snowflake/test_key.fingerprint");

    #[test]
    fn issuer_carries_the_public_key_fingerprint() {
        let pair = KeyPair::new("myorg-myaccount.us-east-1.aws", "grant_operator", KEY, None)
            .expect("key");
        assert_eq!(
            pair.issuer(),
            format!(
                "MYORG-MYACCOUNT.GRANT_OPERATOR.SHA256:{}",
                FINGERPRINT.trim()
            )
        );
    }

    #[test]
    fn encrypted_keys_need_the_right_passphrase() {
        let plain = KeyPair::new("a", "u", KEY, None).expect("key");
        let decrypted =
            KeyPair::new("a", "u", ENCRYPTED, Some(PASSPHRASE.trim())).expect("decrypted");
        assert_eq!(plain.issuer(), decrypted.issuer());
        let wrong = KeyPair::new("a", "u", ENCRYPTED, Some("wrong"))
            .err()
            .expect("refused");
        assert!(wrong.0.contains("wrong passphrase"), "{wrong}");
        let missing = KeyPair::new("a", "u", ENCRYPTED, None)
            .err()
            .expect("refused");
        assert!(missing.0.contains("no passphrase"), "{missing}");
    }

    #[test]
    fn unusable_keys_are_explained_without_their_content() {
        let pkcs1 = KeyPair::new("a", "u", PKCS1, None).err().expect("refused");
        assert!(pkcs1.0.contains("openssl pkcs8 -topk8"), "{pkcs1}");
        let garbage = KeyPair::new("a", "u", "not a key", None)
            .err()
            .expect("refused");
        assert!(garbage.0.contains("not a PEM text"), "{garbage}");
        let body: String = KEY.lines().nth(1).unwrap_or_default().to_string();
        for error in [pkcs1, garbage] {
            assert!(!error.0.contains(&body));
        }
    }

    #[test]
    fn tokens_are_cached_and_renewed_before_expiry() {
        let pair = KeyPair::new("acct", "user", KEY, None).expect("key");
        let first = pair.token(1_000_000).expect("token");
        let again = pair.token(1_000_000 + 3000).expect("token");
        assert_eq!(first.expose_secret(), again.expose_secret());
        let renewed = pair.token(1_000_000 + 3301).expect("token");
        assert_ne!(first.expose_secret(), renewed.expose_secret());
        let payload = renewed
            .expose_secret()
            .split('.')
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .expect("base64"),
        )
        .expect("json");
        assert_eq!(claims["sub"], "ACCT.USER");
        assert_eq!(claims["iat"], 1_000_000 + 3301);
        assert_eq!(claims["exp"], 1_000_000 + 3301 + 3600);
        assert!(
            claims["iss"]
                .as_str()
                .unwrap_or_default()
                .starts_with("ACCT.USER.SHA256:")
        );
    }

    #[test]
    fn accounts_lose_region_suffixes() {
        assert_eq!(account_identifier("myorg-acct"), "MYORG-ACCT");
        assert_eq!(account_identifier("xy12345.us-east-2.aws"), "XY12345");
        assert_eq!(account_identifier("myorg-acct.global"), "MYORG-ACCT");
    }

    #[test]
    fn der_lengths() {
        assert_eq!(der_length(5), vec![5]);
        assert_eq!(der_length(0x80), vec![0x81, 0x80]);
        assert_eq!(der_length(270), vec![0x82, 0x01, 0x0e]);
    }

    #[test]
    fn debug_shows_no_secret() {
        let auth = Auth::OAuth(SecretString::from("very-secret-token"));
        assert!(!format!("{auth:?}").contains("very-secret"));
    }
}
