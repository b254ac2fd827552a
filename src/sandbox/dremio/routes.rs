//! Request handling: the routes of Dremio Software and Cloud paths, their
//! methods and query parameters, authentication, and the dispatch of a
//! request to its handler.

use std::sync::Mutex;

use axum::http::{HeaderMap, Method, StatusCode};

use crate::sandbox::emulator::{
    self, Answer, ApiError, err, json_response, lock, params, percent_decode,
};

use super::catalog::{catalog_root, object_by_path, object_json, object_not_found, project_info};
use super::grants::{list_grants, put_grants};
use super::principals::{kind_name, principal_json};
use super::{Dremio, GranteeType, State};

/// A route; parameters are raw (still percent-encoded) path segments,
/// decoded once the request is authenticated.
enum Route<'a> {
    CatalogRoot,
    ByPath(Vec<&'a str>),
    Object(&'a str),
    Grants(&'a str),
    /// By name: Software's `/api/v3/{user,role}/by-name/{name}`, Cloud's
    /// `/v1/{users,roles}/name/{name}`; `cloud` picks the answer's shape.
    ByName {
        kind: GranteeType,
        raw: &'a str,
        cloud: bool,
    },
    Principal {
        kind: GranteeType,
        raw: &'a str,
        cloud: bool,
    },
    Project,
}

impl Route<'_> {
    fn allowed(&self) -> &'static [Method] {
        match self {
            Route::Grants(_) => &[Method::GET, Method::PUT],
            _ => &[Method::GET],
        }
    }

    fn query_params(&self) -> &'static [&'static str] {
        &[]
    }
}

/// `(raw project id for Cloud, route)`, or `None` for an unknown route.
fn resolve(path: &str) -> Option<(Option<&str>, Route<'_>)> {
    if let Some(rest) = path.strip_prefix("/api/v3/") {
        let segs: Vec<&str> = rest.split('/').collect();
        let route = match segs.as_slice() {
            ["catalog", catalog @ ..] => catalog_route(catalog)?,
            ["user", "by-name", name] => by_name(GranteeType::User, name, false),
            ["role", "by-name", name] => by_name(GranteeType::Role, name, false),
            ["user", id] => by_id(GranteeType::User, id, false),
            ["role", id] => by_id(GranteeType::Role, id, false),
            _ => return None,
        };
        return Some((None, route));
    }
    if let Some(rest) = path.strip_prefix("/v1/") {
        let segs: Vec<&str> = rest.split('/').collect();
        let route = match segs.as_slice() {
            ["users", "name", name] => by_name(GranteeType::User, name, true),
            ["roles", "name", name] => by_name(GranteeType::Role, name, true),
            ["users", id] => by_id(GranteeType::User, id, true),
            ["roles", id] => by_id(GranteeType::Role, id, true),
            _ => return None,
        };
        return Some((None, route));
    }
    let rest = path.strip_prefix("/v0/")?;
    let segs: Vec<&str> = rest.split('/').collect();
    match segs.as_slice() {
        ["projects", project] => Some((Some(project), Route::Project)),
        ["projects", project, "catalog", catalog @ ..] => {
            Some((Some(project), catalog_route(catalog)?))
        }
        _ => None,
    }
}

fn by_name(kind: GranteeType, raw: &str, cloud: bool) -> Route<'_> {
    Route::ByName { kind, raw, cloud }
}

fn by_id(kind: GranteeType, raw: &str, cloud: bool) -> Route<'_> {
    Route::Principal { kind, raw, cloud }
}

/// The route of the segments after `.../catalog`.
fn catalog_route<'a>(segs: &[&'a str]) -> Option<Route<'a>> {
    match segs {
        [] => Some(Route::CatalogRoot),
        ["by-path", parts @ ..] => Some(Route::ByPath(parts.to_vec())),
        [id] => Some(Route::Object(id)),
        [id, "grants"] => Some(Route::Grants(id)),
        _ => None,
    }
}

pub(super) fn bad_request(message: impl Into<String>) -> ApiError {
    err(StatusCode::BAD_REQUEST, message)
}

pub(super) fn not_found(message: impl Into<String>) -> ApiError {
    err(StatusCode::NOT_FOUND, message)
}

/// A path parameter, percent-decoded.
pub(super) fn decode(raw: &str) -> Result<String, ApiError> {
    percent_decode(raw, false).map_err(|_| bad_request("Malformed percent-encoding in path"))
}

pub(super) fn handle(state: &Mutex<State>, request: &emulator::Request) -> Answer {
    let Some((project, route)) = resolve(&request.path) else {
        return Err(not_found("Not found"));
    };
    if !route.allowed().contains(&request.method) {
        return Ok(emulator::method_not_allowed::<Dremio>(
            route.allowed(),
            "Method not allowed",
        ));
    }
    let mut st = lock(state);
    let read_only = authenticate(&st, &request.headers)?;
    if let Some(project) = project {
        let project = decode(project)?;
        if !st.projects.contains(&project) {
            return Err(not_found("Project not found"));
        }
    }
    params(&request.query, route.query_params()).map_err(bad_request)?;
    match route {
        Route::Project => project_info(project),
        Route::CatalogRoot => catalog_root(&st),
        Route::ByPath(parts) => object_by_path(&st, &parts),
        Route::Object(raw) => {
            let id = decode(raw)?;
            let object = st.object(&id).ok_or_else(|| object_not_found(&id))?;
            Ok(json_response(StatusCode::OK, &object_json(object)))
        }
        Route::Grants(raw) if request.method == Method::GET => list_grants(&mut st, &decode(raw)?),
        Route::Grants(raw) => put_grants(&mut st, &decode(raw)?, read_only, request),
        Route::ByName { kind, raw, cloud } => {
            let name = decode(raw)?;
            principal_json(&st, kind, cloud, |_, n| n == name)
                .map(|found| json_response(StatusCode::OK, &found))
                .ok_or_else(|| not_found(format!("{} {name} not found", kind_name(kind))))
        }
        Route::Principal { kind, raw, cloud } => {
            let wanted = decode(raw)?;
            principal_json(&st, kind, cloud, |id, _| id == wanted)
                .map(|found| json_response(StatusCode::OK, &found))
                .ok_or_else(|| not_found(format!("{} {wanted} not found", kind_name(kind))))
        }
    }
}

/// Whether the token is read-only, or 401.
fn authenticate(st: &State, headers: &HeaderMap) -> Result<bool, ApiError> {
    let unauthorized = || err(StatusCode::UNAUTHORIZED, "Unauthorized");
    let (scheme, token) = emulator::authorization(headers)
        .ok()
        .flatten()
        .ok_or_else(unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(unauthorized());
    }
    st.tokens
        .get(&token)
        .filter(|t| !t.revoked)
        .map(|t| t.read_only)
        .ok_or_else(unauthorized)
}
