//! The legacy permissions API: `/api/datasources/:id/permissions` (list,
//! add, remove) and `enable` / `disable`.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use crate::sandbox::emulator::{
    Answer, ApiError, err, json_response, media_type_is, rfc3339_millis, unknown_key,
};

use super::routes::{bad_request, bad_request_data, datasource_not_found};
use super::{Entry, Grantee, Level, State, avatar_url, message};

/// Refuses, as Grafana does (400, its message after `prefix`), a user or team
/// that is not in `org`.
pub(super) fn grantee_in_org(
    st: &State,
    grantee: &Grantee,
    org: i64,
    prefix: &str,
) -> Result<(), ApiError> {
    match grantee {
        Grantee::User(id) if !st.user_in_org(*id, org) => {
            Err(bad_request(format!("{prefix}user not found")))
        }
        Grantee::Team(id) if !st.team_in_org(*id, org) => {
            Err(bad_request(format!("{prefix}team not found")))
        }
        _ => Ok(()),
    }
}

pub(super) fn parse_id(raw: &str, message: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().map_err(|_| bad_request(message))
}

/// Index of the data source of `org` with the numeric id in `raw`.
fn legacy_datasource(st: &State, org: i64, raw: &str) -> Result<usize, ApiError> {
    let id = parse_id(raw, "id is invalid")?;
    st.find_datasource(org, |d| d.id == id)
}

/// What the legacy API sees: managed, non-inherited user and team entries.
fn legacy_visible(entry: &Entry) -> bool {
    entry.own() && matches!(entry.grantee, Grantee::User(_) | Grantee::Team(_))
}

pub(super) fn legacy_list(st: &State, org: i64, raw: &str) -> Answer {
    let idx = legacy_datasource(st, org, raw)?;
    let d = st.datasources.get(idx).ok_or_else(datasource_not_found)?;
    let permissions: Vec<Value> = d
        .entries
        .iter()
        .filter(|e| legacy_visible(e))
        .map(|e| {
            let mut obj = Map::new();
            obj.insert("id".into(), json!(e.id));
            obj.insert("datasourceId".into(), json!(d.id));
            insert_grantee(&mut obj, st, &e.grantee, true);
            obj.insert("permission".into(), json!(e.level.legacy_code()));
            obj.insert("permissionName".into(), json!(e.level.name()));
            obj.insert("created".into(), json!(rfc3339_millis(e.created_ms)));
            obj.insert("updated".into(), json!(rfc3339_millis(e.updated_ms)));
            Value::Object(obj)
        })
        .chain(d.raw_legacy.iter().cloned())
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "datasourceId": d.id,
            "enabled": d.permissions_enabled,
            "permissions": permissions,
        }),
    ))
}

/// The fields naming a user or team grantee in a permission entry, as both
/// APIs list them: id, login or name, avatar (and, with `email`, the user's
/// email, which only the legacy API shows). A built-in role adds none here.
pub(super) fn insert_grantee(
    obj: &mut Map<String, Value>,
    st: &State,
    grantee: &Grantee,
    email: bool,
) {
    match grantee {
        Grantee::User(id) => {
            let user = st.user(*id);
            let login = user.map(|u| u.login.as_str()).unwrap_or_default();
            let address = user.map(|u| u.email.as_str()).unwrap_or_default();
            obj.insert("userId".into(), json!(id));
            obj.insert("userLogin".into(), json!(login));
            if email {
                obj.insert("userEmail".into(), json!(address));
            }
            obj.insert("userAvatarUrl".into(), json!(avatar_url(address)));
        }
        Grantee::Team(id) => {
            let name = st.team(*id).map(|t| t.name.as_str()).unwrap_or_default();
            obj.insert("teamId".into(), json!(id));
            obj.insert("team".into(), json!(name));
            obj.insert("teamAvatarUrl".into(), json!(avatar_url(name)));
        }
        Grantee::BuiltIn(_) => {}
    }
}

/// A JSON object body sent as `application/json`, or `bad request data`.
pub(super) fn json_object(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Map<String, Value>, ApiError> {
    if !media_type_is(headers, "application/json") {
        return Err(bad_request_data());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        _ => Err(bad_request_data()),
    }
}

/// A positive integer JSON value.
fn positive_id(value: &Value) -> Option<i64> {
    value.as_i64().filter(|id| *id > 0)
}

pub(super) fn legacy_add(
    st: &mut State,
    org: i64,
    raw: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Answer {
    let idx = legacy_datasource(st, org, raw)?;
    let obj = json_object(headers, body)?;
    if unknown_key(&obj, &["userId", "teamId", "permission"]).is_some() {
        return Err(bad_request_data());
    }
    let grantee = match (obj.get("userId"), obj.get("teamId")) {
        (Some(user), None) => Grantee::User(positive_id(user).ok_or_else(bad_request_data)?),
        (None, Some(team)) => Grantee::Team(positive_id(team).ok_or_else(bad_request_data)?),
        _ => return Err(bad_request_data()),
    };
    let level = match obj.get("permission").and_then(Value::as_i64) {
        Some(1) => Level::Query,
        Some(2) => Level::Edit,
        _ => return Err(bad_request_data()),
    };
    let enabled = st
        .datasources
        .get(idx)
        .ok_or_else(datasource_not_found)?
        .permissions_enabled;
    if !enabled {
        return Err(bad_request(
            "Permissions are not enabled for this data source",
        ));
    }
    grantee_in_org(st, &grantee, org, "Failed to add permission: ")?;
    let id = st.new_id();
    let ts = st.timestamp_ms();
    let d = st
        .datasources
        .get_mut(idx)
        .ok_or_else(datasource_not_found)?;
    if d.entries.iter().any(|e| e.own() && e.grantee == grantee) {
        return Err(bad_request("Permission for user/team already exists"));
    }
    d.entries.push(Entry::written(id, grantee, level, ts));
    Ok(message(StatusCode::OK, "Datasource permission added"))
}

pub(super) fn legacy_remove(st: &mut State, org: i64, raw: &str, raw_permission: &str) -> Answer {
    let idx = legacy_datasource(st, org, raw)?;
    let permission_id = parse_id(raw_permission, "permissionId is invalid")?;
    let d = st
        .datasources
        .get_mut(idx)
        .ok_or_else(datasource_not_found)?;
    let position = d
        .entries
        .iter()
        .position(|e| e.id == permission_id && legacy_visible(e))
        .ok_or_else(|| err(StatusCode::NOT_FOUND, "Permission not found"))?;
    d.entries.remove(position);
    Ok(message(StatusCode::OK, "Datasource permission removed"))
}

pub(super) fn legacy_switch(
    st: &mut State,
    org: i64,
    raw: &str,
    headers: &HeaderMap,
    body: &Bytes,
    enable: bool,
) -> Answer {
    let idx = legacy_datasource(st, org, raw)?;
    // An empty body, or `{}` sent as JSON.
    if !body.is_empty() && !json_object(headers, body)?.is_empty() {
        return Err(bad_request_data());
    }
    let d = st
        .datasources
        .get_mut(idx)
        .ok_or_else(datasource_not_found)?;
    d.permissions_enabled = enable;
    if enable {
        d.enable_calls += 1;
        Ok(message(StatusCode::OK, "Datasource permissions enabled"))
    } else {
        d.disable_calls += 1;
        Ok(message(StatusCode::OK, "Datasource permissions disabled"))
    }
}
