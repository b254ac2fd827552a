//! The look-ups a client needs around the permission APIs: the org, data
//! sources, users (by login or email, and per org) and the team search.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::sandbox::emulator::{
    Answer, ApiError, capitalize, err, json_response, params, rfc3339_millis,
};

use super::routes::{bad_request, datasource_not_found};
use super::{DEFAULT_PAGE, DataSource, State, Team, avatar_url};

pub(super) fn get_org(st: &State, org: i64) -> Answer {
    let name = st
        .orgs
        .get(&org)
        .ok_or_else(|| err(StatusCode::NOT_FOUND, "Organization not found"))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"id": org, "name": name}),
    ))
}

/// Grafana's default `datasource_limit`: the listing shows at most this many.
pub const DATASOURCE_LIMIT: usize = 5000;

/// `GET /api/datasources`: the data sources of the org in the fields of
/// Grafana's listing, by name, at most [`DATASOURCE_LIMIT`] (no pages).
pub(super) fn list_datasources(st: &State, org: i64) -> Answer {
    let mut own: Vec<&DataSource> = st.datasources.iter().filter(|d| d.org == org).collect();
    own.sort_by_key(|d| d.name.to_lowercase());
    let list: Vec<Value> = own
        .into_iter()
        .take(DATASOURCE_LIMIT)
        .map(|d| {
            json!({
                "id": d.id,
                "uid": d.uid,
                "orgId": d.org,
                "name": d.name,
                "type": d.kind,
                "typeName": capitalize(&d.kind),
                "typeLogoUrl": format!("public/app/plugins/datasource/{}/img/logo.svg", d.kind),
                "access": "proxy",
                "url": d.url,
                "user": "",
                "database": "",
                "basicAuth": false,
                "isDefault": false,
                "jsonData": {},
                "readOnly": false,
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, &Value::Array(list)))
}

pub(super) fn get_datasource(st: &State, org: i64, pred: impl Fn(&DataSource) -> bool) -> Answer {
    let idx = st.find_datasource(org, pred)?;
    let d = st.datasources.get(idx).ok_or_else(datasource_not_found)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "id": d.id,
            "uid": d.uid,
            "orgId": d.org,
            "name": d.name,
            "type": d.kind,
            "access": "proxy",
            "url": d.url,
            "readOnly": false,
        }),
    ))
}

/// A positive page size or page number from a query parameter.
fn positive_param(q: &HashMap<String, String>, name: &str, default: i64) -> Result<i64, ApiError> {
    let Some(raw) = q.get(name) else {
        return Ok(default);
    };
    let invalid = || bad_request(format!("{name} must be a positive integer, got {raw:?}"));
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match raw.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(invalid()),
    }
}

fn query_params(query: &str, allowed: &[&str]) -> Result<HashMap<String, String>, ApiError> {
    params(query, allowed).map_err(bad_request)
}

pub(super) fn user_lookup(st: &State, org: i64, query: &str) -> Answer {
    let q = query_params(query, &["query", "limit"])?;
    let limit = positive_param(&q, "limit", DEFAULT_PAGE)?;
    let needle = q.get("query").map(|s| s.to_lowercase()).unwrap_or_default();
    let users: Vec<Value> = st
        .users
        .iter()
        .filter(|u| u.orgs.contains(&org))
        .filter(|u| {
            u.login.to_lowercase().contains(&needle)
                || u.email.to_lowercase().contains(&needle)
                || u.name.to_lowercase().contains(&needle)
        })
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|u| {
            json!({
                "userId": u.id,
                "uid": u.uid,
                "login": u.login,
                "avatarUrl": avatar_url(&u.email),
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, &Value::Array(users)))
}

pub(super) fn org_users(st: &State, org: i64, query: &str) -> Answer {
    query_params(query, &[])?;
    let users: Vec<Value> = st
        .users
        .iter()
        .filter(|u| u.orgs.contains(&org))
        .map(|u| {
            json!({
                "orgId": org,
                "userId": u.id,
                "uid": u.uid,
                "email": u.email,
                "name": u.name,
                "login": u.login,
                "role": "Viewer",
                "avatarUrl": avatar_url(&u.email),
                "lastSeenAt": rfc3339_millis(u.created_ms),
                "lastSeenAtAge": "< 1 minute",
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, &Value::Array(users)))
}

pub(super) fn team_search(st: &State, org: i64, query: &str) -> Answer {
    let q = query_params(query, &["name", "query", "perpage", "page"])?;
    let per_page = positive_param(&q, "perpage", DEFAULT_PAGE)?;
    let page = positive_param(&q, "page", 1)?;
    let exact = q.get("name").map(|s| s.to_lowercase());
    let needle = q.get("query").map(|s| s.to_lowercase()).unwrap_or_default();
    let matching: Vec<&Team> = st
        .teams
        .iter()
        .filter(|t| t.org == org)
        .filter(|t| {
            let name = t.name.to_lowercase();
            exact.as_ref().is_none_or(|e| *e == name) && name.contains(&needle)
        })
        .collect();
    let size = usize::try_from(per_page).unwrap_or(usize::MAX);
    let skip = usize::try_from(page - 1)
        .unwrap_or(usize::MAX)
        .saturating_mul(size);
    let teams: Vec<Value> = matching
        .iter()
        .skip(skip)
        .take(size)
        .map(|t| {
            json!({
                "id": t.id,
                "uid": t.uid,
                "orgId": t.org,
                "name": t.name,
                "email": "",
                "memberCount": 0,
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "totalCount": matching.len(),
            "teams": teams,
            "page": page,
            "perPage": per_page,
        }),
    ))
}
