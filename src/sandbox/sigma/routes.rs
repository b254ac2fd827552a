//! Request handling: the routes, their methods, and the dispatch of a
//! request to its handler after the bearer check.

use std::sync::Mutex;

use axum::http::{Method, StatusCode};

use crate::sandbox::emulator::{self, Answer, err, lock, path_segment};

use super::auth::{check_bearer, token};
use super::grants::{create_grants, delete_grant, list_grants};
use super::members::{list_connections, list_members, list_teams};
use super::{Sigma, State};

enum Route {
    Token,
    Grants(String),
    Grant(String, String),
    Members,
    Teams,
    Connections,
}

impl Route {
    fn allowed(&self) -> &'static [Method] {
        match self {
            Route::Token => &[Method::POST],
            Route::Grants(_) => &[Method::GET, Method::POST],
            Route::Grant(..) => &[Method::DELETE],
            Route::Members | Route::Teams | Route::Connections => &[Method::GET],
        }
    }
}

fn resolve(path: &str) -> Option<Route> {
    match emulator::segments(path, "/v2/")?.as_slice() {
        ["auth", "token"] => Some(Route::Token),
        ["members"] => Some(Route::Members),
        ["connections"] => Some(Route::Connections),
        ["teams"] => Some(Route::Teams),
        ["connections", c, "grants"] => Some(Route::Grants(path_segment(c)?)),
        ["connections", c, "grants", g] => Some(Route::Grant(path_segment(c)?, path_segment(g)?)),
        _ => None,
    }
}

pub(super) fn handle(shared: &Mutex<State>, request: &emulator::Request) -> Answer {
    let (method, path, query) = (&request.method, request.path.as_str(), &request.query);
    let (headers, body) = (&request.headers, &request.body);
    let Some(route) = resolve(path) else {
        return Err(err(StatusCode::NOT_FOUND, format!("no such route: {path}")));
    };
    if !route.allowed().contains(method) {
        return Ok(emulator::method_not_allowed::<Sigma>(
            route.allowed(),
            &format!("method {method} not allowed on {path}"),
        ));
    }

    let mut st = lock(shared);
    if !matches!(route, Route::Token) {
        check_bearer(&st, headers)?;
    }
    match (route, method) {
        (Route::Token, _) => token(&mut st, headers, body),
        (Route::Grants(c), &Method::GET) => list_grants(&mut st, &c, query),
        (Route::Grants(c), _) => create_grants(&mut st, &c, headers, body),
        (Route::Grant(c, g), _) => delete_grant(&mut st, &c, &g),
        (Route::Members, _) => list_members(&mut st, query),
        (Route::Teams, _) => list_teams(&mut st, query),
        (Route::Connections, _) => list_connections(&mut st, query),
    }
}
