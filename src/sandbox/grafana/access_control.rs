//! The access-control permissions API: `/api/access-control/datasources/:uid`
//! (list) and the user, team and built-in role setters.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use crate::sandbox::emulator::{Answer, json_response};

use super::legacy::{grantee_in_org, insert_grantee, json_object, parse_id};
use super::routes::{AcTarget, bad_request, bad_request_data, datasource_not_found};
use super::{BUILT_IN_ROLES, Entry, Grantee, Level, State, message};

fn role_name(entry: &Entry) -> String {
    match (&entry.grantee, entry.managed) {
        (Grantee::User(id), true) => format!("managed:users:{id}:permissions"),
        (Grantee::Team(id), true) => format!("managed:teams:{id}:permissions"),
        (Grantee::BuiltIn(role), true) => {
            format!("managed:builtins:{}:permissions", role.to_lowercase())
        }
        (Grantee::BuiltIn(role), false) => format!("basic:{}", role.to_lowercase()),
        (_, false) => match entry.level {
            Level::Query => "fixed:datasources:reader".into(),
            Level::Edit => "fixed:datasources:writer".into(),
            Level::Admin => "fixed:datasources.permissions:writer".into(),
        },
    }
}

pub(super) fn ac_list(st: &State, org: i64, uid: &str) -> Answer {
    let idx = st.find_datasource(org, |d| d.uid == uid)?;
    let d = st.datasources.get(idx).ok_or_else(datasource_not_found)?;
    let entries: Vec<Value> = d
        .entries
        .iter()
        .map(|e| {
            let mut obj = Map::new();
            obj.insert("id".into(), json!(e.id));
            obj.insert("roleName".into(), json!(role_name(e)));
            obj.insert("isManaged".into(), json!(e.managed));
            obj.insert("isInherited".into(), json!(e.inherited));
            obj.insert("isServiceAccount".into(), json!(false));
            insert_grantee(&mut obj, st, &e.grantee, false);
            if let Grantee::BuiltIn(role) = &e.grantee {
                obj.insert("builtInRole".into(), json!(role));
            }
            obj.insert("actions".into(), json!(e.level.actions()));
            obj.insert("permission".into(), json!(e.level.name()));
            Value::Object(obj)
        })
        .chain(d.raw_access.iter().cloned())
        .collect();
    Ok(json_response(StatusCode::OK, &Value::Array(entries)))
}

pub(super) fn ac_set(
    st: &mut State,
    org: i64,
    uid: &str,
    target: AcTarget,
    headers: &HeaderMap,
    body: &Bytes,
) -> Answer {
    let grantee = match target {
        AcTarget::User(raw) => Grantee::User(parse_id(&raw, "user id is invalid")?),
        AcTarget::Team(raw) => Grantee::Team(parse_id(&raw, "team id is invalid")?),
        AcTarget::BuiltIn(role) if BUILT_IN_ROLES.contains(&role.as_str()) => {
            Grantee::BuiltIn(role)
        }
        AcTarget::BuiltIn(role) => {
            return Err(bad_request(format!("invalid built-in role: {role}")));
        }
    };
    let idx = st.find_datasource(org, |d| d.uid == uid)?;
    let obj = json_object(headers, body)?;
    if obj.len() != 1 {
        return Err(bad_request_data());
    }
    let level = match obj.get("permission").and_then(Value::as_str) {
        Some("") => None,
        Some(name) => Some(Level::from_name(name).ok_or_else(bad_request_data)?),
        None => return Err(bad_request_data()),
    };
    grantee_in_org(st, &grantee, org, "")?;
    let new_id = st.new_id();
    let ts = st.timestamp_ms();
    let d = st
        .datasources
        .get_mut(idx)
        .ok_or_else(datasource_not_found)?;
    let own = d
        .entries
        .iter()
        .position(|e| e.own() && e.grantee == grantee);
    match (level, own) {
        (Some(level), Some(position)) => {
            if let Some(e) = d.entries.get_mut(position)
                && e.level != level
            {
                e.level = level;
                e.updated_ms = ts;
            }
        }
        (Some(level), None) => d.entries.push(Entry::written(new_id, grantee, level, ts)),
        (None, Some(position)) => {
            d.entries.remove(position);
        }
        (None, None) => {
            if d.entries.iter().any(|e| e.grantee == grantee) {
                return Err(bad_request(
                    "cannot remove inherited or unmanaged permission",
                ));
            }
        }
    }
    Ok(message(StatusCode::OK, "Permission updated"))
}
