//! Grants of a catalog object: the listing, and the PUT that replaces them
//! with its validation.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::sandbox::emulator::{
    self, Answer, empty_response, err, json_response, media_type_is, unknown_key,
};

use super::catalog::object_not_found;
use super::routes::bad_request;
use super::{GrantRecord, GranteeType, READ_ONLY_MESSAGE, State, User};

pub(super) fn list_grants(st: &mut State, id: &str) -> Answer {
    let object = st.object(id).ok_or_else(|| object_not_found(id))?;
    let grants: Vec<Value> = object
        .grants
        .iter()
        .map(|g| {
            let mut entry = Map::new();
            entry.insert("privileges".into(), json!(g.privileges));
            entry.insert("granteeType".into(), json!(g.grantee_type.wire()));
            entry.insert("id".into(), json!(g.id));
            match g.grantee_type {
                GranteeType::User => {
                    let user = st.user(&g.id);
                    let field = |f: fn(&User) -> &str| user.map(f).unwrap_or_default();
                    entry.insert("name".into(), json!(field(|u| u.name.as_str())));
                    entry.insert("firstName".into(), json!(field(|u| u.first_name.as_str())));
                    entry.insert("lastName".into(), json!(field(|u| u.last_name.as_str())));
                    entry.insert("email".into(), json!(field(|u| u.email.as_str())));
                }
                GranteeType::Role => {
                    let name = st.role(&g.id).map(|r| r.name.as_str()).unwrap_or_default();
                    entry.insert("name".into(), json!(name));
                }
            }
            Value::Object(entry)
        })
        .chain(object.raw_grants.iter().cloned())
        .collect();
    let body = json!({
        "id": object.id,
        "availablePrivileges": object.available,
        "grants": grants,
    });
    st.after_grants_read(id);
    Ok(json_response(StatusCode::OK, &body))
}

pub(super) fn put_grants(
    st: &mut State,
    id: &str,
    read_only: bool,
    request: &emulator::Request,
) -> Answer {
    let object = st.object(id).ok_or_else(|| object_not_found(id))?;
    if read_only {
        return Err(err(StatusCode::FORBIDDEN, READ_ONLY_MESSAGE));
    }
    if !media_type_is(&request.headers, "application/json") {
        return Err(bad_request("Content-Type must be application/json"));
    }
    let body: Value = serde_json::from_slice(&request.body)
        .map_err(|e| bad_request(format!("Request body is not valid JSON: {e}")))?;
    let grants = parse_grants(&body).map_err(bad_request)?;
    st.check_grants(object, &grants).map_err(bad_request)?;
    let object = st.object_mut(id).ok_or_else(|| object_not_found(id))?;
    object.grants = grants;
    object.raw_grants.clear();
    object.puts += 1;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// The entries of `{"grants":[{"privileges":[...],"granteeType","id"}]}`,
/// checked for shape only.
fn parse_grants(body: &Value) -> Result<Vec<GrantRecord>, String> {
    let top = body
        .as_object()
        .ok_or("Request body must be a JSON object")?;
    if let Some(k) = unknown_key(top, &["grants"]) {
        return Err(format!("Unrecognized field \"{k}\""));
    }
    let entries = top
        .get("grants")
        .ok_or("Missing field \"grants\"")?
        .as_array()
        .ok_or("Field \"grants\" must be an array")?;
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| parse_entry(i, entry))
        .collect()
}

fn parse_entry(i: usize, entry: &Value) -> Result<GrantRecord, String> {
    let entry = entry
        .as_object()
        .ok_or_else(|| format!("grants[{i}] must be an object"))?;
    if let Some(k) = unknown_key(entry, &["privileges", "granteeType", "id"]) {
        return Err(format!("Unrecognized field \"{k}\" in grants[{i}]"));
    }
    let field = |name: &str| {
        entry
            .get(name)
            .ok_or_else(|| format!("Missing field \"{name}\" in grants[{i}]"))
    };
    let privileges = field("privileges")?
        .as_array()
        .and_then(|ps| {
            ps.iter()
                .map(|p| p.as_str().map(String::from))
                .collect::<Option<Vec<String>>>()
        })
        .ok_or_else(|| format!("grants[{i}].privileges must be an array of strings"))?;
    let grantee_type = field("granteeType")?
        .as_str()
        .ok_or_else(|| format!("grants[{i}].granteeType must be a string"))?;
    let grantee_type = GranteeType::from_wire(grantee_type).ok_or_else(|| {
        format!("Unknown granteeType \"{grantee_type}\" in grants[{i}] (expected USER or ROLE)")
    })?;
    let id = field("id")?
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| format!("grants[{i}].id must be a non-empty string"))?;
    Ok(GrantRecord {
        grantee_type,
        id: id.to_string(),
        privileges,
    })
}
