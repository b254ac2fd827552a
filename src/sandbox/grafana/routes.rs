//! Request handling: the routes of both permission APIs and the look-ups,
//! their methods and whether they need auth, and the dispatch of a request
//! to its handler.

use std::sync::Mutex;

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::sandbox::emulator::{self, Answer, ApiError, err, json_response, lock, path_segment};

use super::access_control::{ac_list, ac_set};
use super::auth::authenticate;
use super::legacy::{legacy_add, legacy_list, legacy_remove, legacy_switch};
use super::lookups::{
    get_datasource, get_org, list_datasources, org_users, team_search, user_lookup,
};
use super::{Grafana, READ_ONLY_MESSAGE, State, VERSION};

/// Where in the access-control API a permission is set.
pub(super) enum AcTarget {
    User(String),
    Team(String),
    BuiltIn(String),
}

enum Route {
    Health,
    Org,
    Datasources,
    DatasourceByUid(String),
    DatasourceByName(String),
    UserLookup,
    OrgUsers,
    TeamSearch,
    LegacyPermissions(String),
    LegacyPermission(String, String),
    LegacyEnable(String),
    LegacyDisable(String),
    AcDescription,
    AcPermissions(String),
    AcSet(String, AcTarget),
}

#[derive(PartialEq, Eq)]
enum Api {
    Common,
    Legacy,
    AccessControl,
}

impl Route {
    fn allowed(&self) -> &'static [Method] {
        match self {
            Route::LegacyPermissions(_) => &[Method::GET, Method::POST],
            Route::LegacyPermission(..) => &[Method::DELETE],
            Route::LegacyEnable(_) | Route::LegacyDisable(_) | Route::AcSet(..) => &[Method::POST],
            _ => &[Method::GET],
        }
    }

    fn api(&self) -> Api {
        match self {
            Route::LegacyPermissions(_)
            | Route::LegacyPermission(..)
            | Route::LegacyEnable(_)
            | Route::LegacyDisable(_) => Api::Legacy,
            Route::AcDescription | Route::AcPermissions(_) | Route::AcSet(..) => Api::AccessControl,
            _ => Api::Common,
        }
    }

    fn needs_auth(&self) -> bool {
        !matches!(self, Route::Health)
    }
}

fn resolve(path: &str) -> Option<Route> {
    let seg = path_segment;
    let route = match emulator::segments(path, "/api/")?.as_slice() {
        ["health"] => Route::Health,
        ["org"] => Route::Org,
        ["org", "users"] => Route::OrgUsers,
        ["org", "users", "lookup"] => Route::UserLookup,
        ["teams", "search"] => Route::TeamSearch,
        // Static segments win over parameters, as in Grafana's router.
        ["datasources"] => Route::Datasources,
        ["datasources", "uid", uid] => Route::DatasourceByUid(seg(uid)?),
        ["datasources", "name", name] => Route::DatasourceByName(seg(name)?),
        // No `GET /api/datasources/:id`: Grafana 13 does not serve it (404).
        ["datasources", id, "permissions"] => Route::LegacyPermissions(seg(id)?),
        ["datasources", id, "permissions", p] => Route::LegacyPermission(seg(id)?, seg(p)?),
        ["datasources", id, "enable-permissions"] => Route::LegacyEnable(seg(id)?),
        ["datasources", id, "disable-permissions"] => Route::LegacyDisable(seg(id)?),
        ["access-control", "datasources", "description"] => Route::AcDescription,
        ["access-control", "datasources", uid] => Route::AcPermissions(seg(uid)?),
        ["access-control", "datasources", uid, kind, who] => {
            let target = match *kind {
                "users" => AcTarget::User(seg(who)?),
                "teams" => AcTarget::Team(seg(who)?),
                "builtInRoles" => AcTarget::BuiltIn(seg(who)?),
                _ => return None,
            };
            Route::AcSet(seg(uid)?, target)
        }
        _ => return None,
    };
    Some(route)
}

pub(super) fn handle(shared: &Mutex<State>, request: &emulator::Request) -> Answer {
    let (method, path, query) = (&request.method, request.path.as_str(), &request.query);
    let (headers, body) = (&request.headers, &request.body);
    let mut st = lock(shared);
    // A switched-off API is indistinguishable from an unknown route.
    let route = resolve(path).filter(|route| match route.api() {
        Api::Common => true,
        Api::Legacy => st.legacy_api,
        Api::AccessControl => st.access_control_api,
    });
    let Some(route) = route else {
        return Err(err(StatusCode::NOT_FOUND, "Not found"));
    };
    if !route.allowed().contains(method) {
        return Ok(emulator::method_not_allowed::<Grafana>(
            route.allowed(),
            "Method not allowed",
        ));
    }
    if !route.needs_auth() {
        return Ok(json_response(
            StatusCode::OK,
            &json!({"database": "ok", "version": VERSION}),
        ));
    }
    let principal = authenticate(&st, headers)?;
    // Every route that is not a GET writes permissions.
    if method != Method::GET && principal.read_only {
        return Err(err(StatusCode::FORBIDDEN, READ_ONLY_MESSAGE));
    }
    let org = principal.org;
    match route {
        Route::Health => Ok(json_response(StatusCode::OK, &json!({}))),
        Route::Org => get_org(&st, org),
        Route::Datasources => list_datasources(&st, org),
        Route::DatasourceByUid(uid) => get_datasource(&st, org, |d| d.uid == uid),
        Route::DatasourceByName(name) => get_datasource(&st, org, |d| d.name == name),
        Route::UserLookup => user_lookup(&st, org, query),
        Route::OrgUsers => org_users(&st, org, query),
        Route::TeamSearch => team_search(&st, org, query),
        Route::LegacyPermissions(raw) if method == Method::GET => legacy_list(&st, org, &raw),
        Route::LegacyPermissions(raw) => legacy_add(&mut st, org, &raw, headers, body),
        Route::LegacyPermission(raw, permission) => legacy_remove(&mut st, org, &raw, &permission),
        Route::LegacyEnable(raw) => legacy_switch(&mut st, org, &raw, headers, body, true),
        Route::LegacyDisable(raw) => legacy_switch(&mut st, org, &raw, headers, body, false),
        Route::AcDescription => Ok(json_response(
            StatusCode::OK,
            &json!({
                "assignments": {
                    "users": true,
                    "serviceAccounts": true,
                    "teams": true,
                    "builtInRoles": true,
                },
                "permissions": ["Query", "Edit", "Admin"],
            }),
        )),
        Route::AcPermissions(uid) => ac_list(&st, org, &uid),
        Route::AcSet(uid, target) => ac_set(&mut st, org, &uid, target, headers, body),
    }
}

pub(super) fn bad_request(message: impl Into<String>) -> ApiError {
    err(StatusCode::BAD_REQUEST, message)
}

pub(super) fn bad_request_data() -> ApiError {
    bad_request("bad request data")
}

pub(super) fn datasource_not_found() -> ApiError {
    err(StatusCode::NOT_FOUND, "Data source not found")
}
