//! Authentication: service-account tokens and basic auth, the org a request
//! acts in and whether its principal may write.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use base64::Engine as _;

use crate::sandbox::emulator::{self, ApiError, err};

use super::routes::bad_request;
use super::{ORG_HEADER, Principal, State};

pub(super) fn authenticate(st: &State, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let unauthorized = || err(StatusCode::UNAUTHORIZED, "Unauthorized");
    let (scheme, credentials) = emulator::authorization(headers)
        .ok()
        .flatten()
        .ok_or_else(unauthorized)?;
    let credentials = credentials.as_str();
    // (orgs the principal may act in, the first being the default; read-only)
    let (orgs, read_only) = if scheme.eq_ignore_ascii_case("bearer") {
        let token = st
            .tokens
            .get(credentials)
            .filter(|t| !t.revoked)
            .ok_or_else(unauthorized)?;
        (vec![token.org], token.read_only)
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .map_err(|_| unauthorized())?;
        let decoded = String::from_utf8(decoded).map_err(|_| unauthorized())?;
        let (login, password) = decoded.split_once(':').ok_or_else(unauthorized)?;
        let user = st
            .basic
            .get(login)
            .filter(|u| !u.revoked && u.password == password)
            .ok_or_else(unauthorized)?;
        (user.orgs.clone(), user.read_only)
    } else {
        return Err(unauthorized());
    };
    let default = orgs.first().copied().ok_or_else(unauthorized)?;

    let values: Vec<&HeaderValue> = headers.get_all(ORG_HEADER).iter().collect();
    let org = match values.as_slice() {
        [] => default,
        [value] => {
            let invalid = || bad_request("X-Grafana-Org-Id must be a positive integer");
            let text = value.to_str().map_err(|_| invalid())?;
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            let org = text.parse::<i64>().map_err(|_| invalid())?;
            if org <= 0 {
                return Err(invalid());
            }
            if !orgs.contains(&org) {
                return Err(err(
                    StatusCode::UNAUTHORIZED,
                    format!("Unauthorized: not a member of organization {org}"),
                ));
            }
            org
        }
        _ => return Err(bad_request("X-Grafana-Org-Id given more than once")),
    };
    Ok(Principal { org, read_only })
}
