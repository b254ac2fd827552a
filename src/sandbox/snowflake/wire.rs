//! Reading request bodies and the wire names of grantee, securable and scope
//! types, and the error answers they give.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::sandbox::emulator::{self, err, json_response, unknown_key};

use super::GranteeType;

pub(super) fn bad(message: impl Into<String>) -> emulator::ApiError {
    err(StatusCode::BAD_REQUEST, message)
}

pub(super) fn missing(message: impl Into<String>) -> emulator::ApiError {
    err(StatusCode::NOT_FOUND, message)
}

pub(super) fn ok() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"status": "Request successfully completed"}),
    )
}

pub(super) fn body_object(
    request: &emulator::Request,
) -> Result<Map<String, Value>, emulator::ApiError> {
    if !emulator::media_type_is(&request.headers, "application/json") {
        return Err(bad("Content-Type must be application/json"));
    }
    match serde_json::from_slice::<Value>(&request.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(bad("the request body is not a JSON object")),
    }
}

pub(super) fn privileges_of(body: &Map<String, Value>) -> Result<Vec<String>, emulator::ApiError> {
    let list = body
        .get("privileges")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("privileges is required"))?;
    if list.is_empty() {
        return Err(bad("privileges is empty"));
    }
    list.iter()
        .map(|p| {
            p.as_str()
                .filter(|p| {
                    !p.is_empty()
                        && p.split(' ').all(|w| {
                            !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                        })
                })
                .map(String::from)
                .ok_or_else(|| bad(format!("invalid privilege {p}")))
        })
        .collect()
}

/// The body of a Legacy grant: `privileges` and `grant_option`, nothing else.
pub(super) fn privileges_body(
    request: &emulator::Request,
) -> Result<(Vec<String>, bool), emulator::ApiError> {
    let body = body_object(request)?;
    if let Some(key) = unknown_key(&body, &["privileges", "grant_option"]) {
        return Err(bad(format!("unknown field {key}")));
    }
    Ok((privileges_of(&body)?, grant_option_of(&body)?))
}

/// The object `body` holds at `field`, which is required.
pub(super) fn object_field<'a>(
    body: &'a Map<String, Value>,
    field: &str,
) -> Result<&'a Map<String, Value>, emulator::ApiError> {
    body.get(field)
        .and_then(Value::as_object)
        .ok_or_else(|| bad(format!("{field} is required")))
}

/// The string `object` (the body's `within`) holds at `field`, which is required.
pub(super) fn str_field<'a>(
    object: &'a Map<String, Value>,
    within: &str,
    field: &str,
) -> Result<&'a str, emulator::ApiError> {
    object
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{within}.{field} is required")))
}

pub(super) fn grant_option_of(body: &Map<String, Value>) -> Result<bool, emulator::ApiError> {
    match body.get("grant_option") {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad("grant_option must be a boolean")),
    }
}

/// `granteeType` of the Legacy paths: the definition's enum (`user`, `role`,
/// `application-role`, `database-role`, `share`); the emulator holds no
/// application roles or shares, so those name nobody.
pub(super) fn legacy_grantee_type(text: &str) -> Result<GranteeType, emulator::ApiError> {
    match text {
        "role" => Ok(GranteeType::Role),
        "database-role" => Ok(GranteeType::DatabaseRole),
        "user" => Ok(GranteeType::User),
        "application-role" | "share" => Err(missing(format!(
            "{text} grantees are not held by this account"
        ))),
        _ => Err(bad(format!(
            "granteeType must be one of user, role, application-role, database-role, share, not {text}"
        ))),
    }
}

/// `securableTypePlural` of the Legacy bulk paths, lower-case as the
/// definition writes it ("schemas", "tables").
pub(super) fn legacy_plural(text: &str) -> Result<&'static str, emulator::ApiError> {
    match text {
        "tables" => Ok("TABLE"),
        "views" => Ok("VIEW"),
        "schemas" => Ok("SCHEMA"),
        _ if text.chars().any(|c| c.is_ascii_uppercase()) => Err(bad(format!(
            "securableTypePlural is a lower-case plural type such as tables, not {text}"
        ))),
        _ => Err(bad(format!("unsupported securableTypePlural {text}"))),
    }
}

/// `scopeType` of the Legacy bulk paths: the definition's enum (`database`, `schema`).
pub(super) fn legacy_scope_type(text: &str) -> Result<&'static str, emulator::ApiError> {
    match text {
        "database" => Ok("DATABASE"),
        "schema" => Ok("SCHEMA"),
        _ => Err(bad(format!(
            "scopeType must be one of database, schema, not {text}"
        ))),
    }
}

/// A securable type as listings write it (`SHOW GRANTS` joins words with `_`).
pub(super) fn listed_type(type_: &str) -> String {
    type_.replace(' ', "_")
}

/// `ROLE` or `DATABASE ROLE` (any case, `_` for the space): a granted role.
pub(super) fn role_type(text: &str) -> Option<&'static str> {
    let words: Vec<String> = text
        .split([' ', '_'])
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    match words.join(" ").as_str() {
        "ROLE" => Some("ROLE"),
        "DATABASE ROLE" => Some("DATABASE ROLE"),
        _ => None,
    }
}

/// A body's `securable_type`, as a SQL keyword phrase: case does not matter,
/// and `_` reads as a space (`database_role`, `DATABASE ROLE`).
pub(super) fn securable_type_of(body: &Map<String, Value>) -> Result<String, emulator::ApiError> {
    let text = body
        .get("securable_type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("securable_type is required"))?;
    let words: Vec<String> = text
        .split([' ', '_'])
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    if words.is_empty()
        || !words
            .iter()
            .all(|w| w.chars().all(|c| c.is_ascii_uppercase()))
    {
        return Err(bad(format!("invalid securable_type {text}")));
    }
    Ok(words.join(" "))
}

pub(super) fn singular(plural: &str) -> Option<&'static str> {
    match plural {
        "TABLES" => Some("TABLE"),
        "VIEWS" => Some("VIEW"),
        "SCHEMAS" => Some("SCHEMA"),
        _ => None,
    }
}
