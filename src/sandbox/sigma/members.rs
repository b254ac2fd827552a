//! The look-ups a client needs around grants: members, connections and
//! teams.

use axum::http::StatusCode;
use serde_json::json;

use crate::sandbox::emulator::{Answer, err, params, rfc3339_millis};

use super::State;
use super::paging::{list_response, page_window};

pub(super) fn list_members(st: &mut State, query: &str) -> Answer {
    let q = params(query, &["search", "limit", "page"])
        .map_err(|m| err(StatusCode::BAD_REQUEST, &m))?;
    let needle = q
        .get("search")
        .map(|s| s.to_lowercase())
        .unwrap_or_default();
    let matching: Vec<usize> = st
        .members
        .iter()
        .enumerate()
        .filter(|(_, m)| m.email.to_lowercase().contains(&needle))
        .map(|(i, _)| i)
        .collect();
    let scope = format!("members\u{0}{needle}");
    let (start, end, next) = page_window(st, &q, &scope, matching.len())?;
    let entries = matching
        .get(start..end)
        .unwrap_or(&[])
        .iter()
        .filter_map(|&i| st.members.get(i))
        .map(|m| {
            json!({
                "memberId": m.id,
                "email": m.email,
                "firstName": m.first_name,
                "lastName": m.last_name,
                "memberType": "viewer",
                "createdAt": rfc3339_millis(m.created_ms),
                "updatedAt": rfc3339_millis(m.created_ms),
            })
        })
        .collect();
    Ok(list_response(entries, next))
}

/// `GET /v2/connections`: every connection, paged like the other listings.
pub(super) fn list_connections(st: &mut State, query: &str) -> Answer {
    let q = params(query, &["limit", "page"]).map_err(|m| err(StatusCode::BAD_REQUEST, &m))?;
    let mut ids: Vec<String> = st.connections.keys().cloned().collect();
    ids.sort();
    let (start, end, next) = page_window(st, &q, "connections", ids.len())?;
    let entries = ids
        .get(start..end)
        .unwrap_or(&[])
        .iter()
        .map(|id| json!({"connectionId": id, "name": id, "type": "snowflake", "isArchived": false}))
        .collect();
    Ok(list_response(entries, next))
}

pub(super) fn list_teams(st: &mut State, query: &str) -> Answer {
    let q =
        params(query, &["name", "limit", "page"]).map_err(|m| err(StatusCode::BAD_REQUEST, &m))?;
    let needle = q.get("name").map(|s| s.to_lowercase()).unwrap_or_default();
    let matching: Vec<usize> = st
        .teams
        .iter()
        .enumerate()
        .filter(|(_, t)| t.name.to_lowercase().contains(&needle))
        .map(|(i, _)| i)
        .collect();
    let scope = format!("teams\u{0}{needle}");
    let (start, end, next) = page_window(st, &q, &scope, matching.len())?;
    let entries = matching
        .get(start..end)
        .unwrap_or(&[])
        .iter()
        .filter_map(|&i| st.teams.get(i))
        .map(|t| {
            json!({
                "teamId": t.id,
                "name": t.name,
                "description": "",
                "createdAt": rfc3339_millis(t.created_ms),
                "updatedAt": rfc3339_millis(t.created_ms),
            })
        })
        .collect();
    Ok(list_response(entries, next))
}
