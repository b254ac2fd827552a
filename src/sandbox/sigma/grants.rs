//! Connection grants: listing, the batch create with its validation, and
//! delete.

use std::collections::HashSet;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::sandbox::emulator::{
    Answer, ApiError, err, json_response, media_type_is, params, rfc3339_millis, unknown_key,
    uuid_like,
};

use super::paging::{list_response, page_window};
use super::{Grantee, MAX_GRANTS_PER_CALL, State, StoredGrant};

fn grant_json(st: &State, g: &StoredGrant) -> Value {
    let (member, team) = match &g.grantee {
        Grantee::Member(m) => (Value::String(m.clone()), Value::Null),
        Grantee::Team(t) => (Value::Null, Value::String(t.clone())),
    };
    json!({
        "grantId": g.id,
        "organizationId": st.organization_id,
        "memberId": member,
        "teamId": team,
        "permission": g.permission,
        "createdBy": g.created_by,
        "updatedBy": g.updated_by,
        "createdAt": rfc3339_millis(g.created_ms),
        "updatedAt": rfc3339_millis(g.updated_ms),
    })
}

fn unknown_connection(connection_id: &str) -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        format!("connection {connection_id} not found"),
    )
}

pub(super) fn list_grants(st: &mut State, connection_id: &str, query: &str) -> Answer {
    let all: Vec<Value> = st
        .connections
        .get(connection_id)
        .ok_or_else(|| unknown_connection(connection_id))?
        .iter()
        .map(|g| grant_json(st, g))
        .chain(
            st.raw_grants
                .get(connection_id)
                .into_iter()
                .flatten()
                .cloned(),
        )
        .collect();
    let q = params(query, &["limit", "page"]).map_err(|m| err(StatusCode::BAD_REQUEST, &m))?;
    let scope = format!("grants\u{0}{connection_id}");
    let (start, end, next) = page_window(st, &q, &scope, all.len())?;
    let entries = all.get(start..end).unwrap_or(&[]).to_vec();
    Ok(list_response(entries, next))
}

fn permission_rank(permission: &str) -> Option<u8> {
    match permission {
        "usage" => Some(1),
        "annotate" => Some(2),
        _ => None,
    }
}

fn validate_batch(st: &State, body: &Value) -> Result<Vec<(Grantee, String)>, String> {
    let top = body
        .as_object()
        .ok_or("body must be a JSON object with a grants array")?;
    if let Some(k) = unknown_key(top, &["grants"]) {
        return Err(format!("unknown field: {k}"));
    }
    let grants = top
        .get("grants")
        .ok_or("grants is required")?
        .as_array()
        .ok_or("grants must be an array")?;
    if grants.is_empty() {
        return Err("grants must not be empty".into());
    }
    if grants.len() > MAX_GRANTS_PER_CALL {
        return Err(format!(
            "No more than a total of {MAX_GRANTS_PER_CALL} can be added or removed at a time"
        ));
    }
    let mut seen = HashSet::new();
    let mut batch = Vec::with_capacity(grants.len());
    for (i, entry) in grants.iter().enumerate() {
        let entry = entry
            .as_object()
            .ok_or_else(|| format!("grants[{i}] must be an object"))?;
        if let Some(k) = unknown_key(entry, &["grantee", "permission"]) {
            return Err(format!("grants[{i}]: unknown field: {k}"));
        }
        let grantee = entry
            .get("grantee")
            .ok_or_else(|| format!("grants[{i}].grantee is required"))?
            .as_object()
            .ok_or_else(|| format!("grants[{i}].grantee must be an object"))?;
        if let Some(k) = unknown_key(grantee, &["memberId", "teamId"]) {
            return Err(format!("grants[{i}].grantee: unknown field: {k}"));
        }
        let id_of = |field: &str| -> Result<Option<String>, String> {
            match grantee.get(field) {
                None => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(_) => Err(format!(
                    "grants[{i}].grantee.{field} must be a non-empty string"
                )),
            }
        };
        let grantee = match (id_of("memberId")?, id_of("teamId")?) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "grants[{i}].grantee must have exactly one of memberId or teamId, not both"
                ));
            }
            (None, None) => {
                return Err(format!(
                    "grants[{i}].grantee must have exactly one of memberId or teamId"
                ));
            }
            (Some(m), None) => {
                if !st.members.iter().any(|x| x.id == m) {
                    return Err(format!("grants[{i}]: member {m} does not exist"));
                }
                Grantee::Member(m)
            }
            (None, Some(t)) => {
                if !st.teams.iter().any(|x| x.id == t) {
                    return Err(format!("grants[{i}]: team {t} does not exist"));
                }
                Grantee::Team(t)
            }
        };
        let permission = match entry.get("permission") {
            None => return Err(format!("grants[{i}].permission is required")),
            Some(Value::String(p)) if permission_rank(p).is_some() => p.clone(),
            Some(other) => {
                return Err(format!(
                    "grants[{i}].permission must be \"usage\" or \"annotate\", got {other}"
                ));
            }
        };
        if !seen.insert(grantee.clone()) {
            return Err(format!("grants[{i}]: grantee appears more than once"));
        }
        batch.push((grantee, permission));
    }
    Ok(batch)
}

pub(super) fn create_grants(
    st: &mut State,
    connection_id: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Answer {
    if !st.connections.contains_key(connection_id) {
        return Err(unknown_connection(connection_id));
    }
    let bad = |msg: &str| err(StatusCode::BAD_REQUEST, msg);
    if !media_type_is(headers, "application/json") {
        return Err(bad("Content-Type must be application/json"));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(&format!("body is not valid JSON: {e}")))?;
    let batch = validate_batch(st, &value).map_err(|m| bad(&m))?;

    let by = st.api_member_id.clone();
    let org_ts = st.timestamp_ms();
    let grants = st
        .connections
        .get_mut(connection_id)
        .ok_or_else(|| unknown_connection(connection_id))?;
    for (grantee, permission) in batch {
        let new_rank = permission_rank(&permission);
        let existing = grants
            .iter_mut()
            .find(|g| g.grantee == grantee && permission_rank(&g.permission).is_some());
        match existing {
            Some(g) => {
                if new_rank > permission_rank(&g.permission) {
                    g.permission = permission;
                    g.updated_by = by.clone();
                    g.updated_ms = org_ts;
                }
            }
            None => grants.push(StoredGrant {
                id: uuid_like(),
                grantee,
                permission,
                created_by: by.clone(),
                updated_by: by.clone(),
                created_ms: org_ts,
                updated_ms: org_ts,
            }),
        }
    }
    Ok(json_response(StatusCode::OK, &json!({})))
}

pub(super) fn delete_grant(st: &mut State, connection_id: &str, grant_id: &str) -> Answer {
    let grants = st
        .connections
        .get_mut(connection_id)
        .ok_or_else(|| unknown_connection(connection_id))?;
    let idx = grants
        .iter()
        .position(|g| g.id == grant_id)
        .ok_or_else(|| {
            err(
                StatusCode::NOT_FOUND,
                format!("grant {grant_id} not found on connection {connection_id}"),
            )
        })?;
    grants.remove(idx);
    Ok(json_response(StatusCode::OK, &json!({})))
}
