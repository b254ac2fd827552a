//! Authentication: the OAuth client-credentials and refresh-token grants of
//! `/v2/auth/token` and the bearer check of every other call.

use std::time::Instant;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;

use crate::sandbox::emulator::{
    self, Answer, ApiError, AuthHeaderError, err, json_response, media_type_is, params,
};

use super::State;

/// The scheme and credentials of the one Authorization header, if any.
fn authorization(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    emulator::authorization(headers).map_err(|e| {
        err(
            StatusCode::UNAUTHORIZED,
            match e {
                AuthHeaderError::Repeated => "more than one Authorization header",
                AuthHeaderError::Malformed => "malformed Authorization header",
            },
        )
    })
}

pub(super) fn check_bearer(st: &State, headers: &HeaderMap) -> Result<(), ApiError> {
    let unauthorized = |msg: &str| err(StatusCode::UNAUTHORIZED, msg);
    let (scheme, token) =
        authorization(headers)?.ok_or_else(|| unauthorized("missing Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(unauthorized("a Bearer access token is required"));
    }
    let token = st
        .access_tokens
        .get(&token)
        .ok_or_else(|| unauthorized("invalid access token"))?;
    if token.revoked || Instant::now() >= token.issued_at + token.ttl {
        return Err(unauthorized("access token expired"));
    }
    Ok(())
}

/// Client credentials from the Authorization header, if it is there.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    let bad = |msg: &str| err(StatusCode::UNAUTHORIZED, msg);
    let Some((scheme, encoded)) = authorization(headers)? else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad("client authentication must use HTTP Basic"));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| bad("malformed Basic credentials"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad("malformed Basic credentials"))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| bad("malformed Basic credentials"))?;
    Ok(Some((id.to_string(), secret.to_string())))
}

pub(super) fn token(st: &mut State, headers: &HeaderMap, body: &Bytes) -> Answer {
    let bad = |msg: &str| err(StatusCode::BAD_REQUEST, msg);
    let unauthorized = |msg: &str| err(StatusCode::UNAUTHORIZED, msg);
    if !media_type_is(headers, "application/x-www-form-urlencoded") {
        return Err(bad(
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    let text = std::str::from_utf8(body).map_err(|_| bad("body is not UTF-8"))?;
    let form = params(
        text,
        &[
            "grant_type",
            "client_id",
            "client_secret",
            "refresh_token",
            "scope",
        ],
    )
    .map_err(|m| bad(&m))?;

    let basic = basic_credentials(headers)?;
    let form_id = form.get("client_id");
    let form_secret = form.get("client_secret");
    let client = match (basic, form_id, form_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(bad(
                "client credentials given both as HTTP Basic and as form fields",
            ));
        }
        (Some(creds), None, None) => Some(creds),
        (None, Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
        (None, Some(_), None) => return Err(unauthorized("client_secret is missing")),
        (None, None, Some(_)) => return Err(bad("client_secret given without client_id")),
        (None, None, None) => None,
    };
    if let Some((id, secret)) = &client
        && st.clients.get(id) != Some(secret)
    {
        return Err(unauthorized("invalid client credentials"));
    }

    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| bad("grant_type is required"))?;
    match grant_type.as_str() {
        "client_credentials" => {
            let (id, _) = client.ok_or_else(|| unauthorized("client credentials are required"))?;
            st.issued_client_credentials += 1;
            let answer = st.issue_tokens(&id);
            Ok(json_response(StatusCode::OK, &answer))
        }
        "refresh_token" => {
            let presented = form
                .get("refresh_token")
                .ok_or_else(|| bad("refresh_token is required"))?;
            let owner = st
                .refresh_tokens
                .get(presented)
                .cloned()
                .ok_or_else(|| unauthorized("invalid refresh token"))?;
            if let Some((id, _)) = &client
                && *id != owner
            {
                return Err(unauthorized("refresh token was issued to another client"));
            }
            st.refresh_tokens.remove(presented);
            st.issued_refresh += 1;
            let answer = st.issue_tokens(&owner);
            Ok(json_response(StatusCode::OK, &answer))
        }
        other => Err(bad(&format!("unsupported grant_type: {other}"))),
    }
}
