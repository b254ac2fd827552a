//! Routing: authentication, the `Accept` check, `202` answers and their
//! results, listing pages and caps, and the dispatch of each path to its
//! handler (the `Legacy` paths are handled here).

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::sandbox::emulator::{
    self, Answer, err, json_response, params, percent_decode, random_alnum,
};

use super::ident::{ident, one};
use super::wire::{
    bad, legacy_grantee_type, legacy_plural, legacy_scope_type, missing, ok, privileges_body,
    role_type,
};
use super::{GranteeType, State};

impl State {
    pub(super) fn route(&mut self, request: &emulator::Request) -> Answer {
        self.authenticate(request)?;
        if !request
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json") || v.contains("*/*"))
        {
            return Err(err(StatusCode::NOT_ACCEPTABLE, "Accept application/json"));
        }
        let raw: Vec<&str> = request
            .path
            .strip_prefix("/api/v2/")
            .ok_or_else(|| missing("Not found"))?
            .split('/')
            .collect();
        let segs: Vec<String> = raw
            .iter()
            .map(|s| percent_decode(s, false))
            .collect::<Result<_, _>>()
            .map_err(bad)?;
        if segs.iter().any(String::is_empty) {
            return Err(missing("Not found"));
        }
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        if let ["results", handle] = segs.as_slice() {
            return self.result(handle);
        }
        let is_write = request.method != Method::GET;
        let mut response = self.dispatch(request, &segs)?;
        if !is_write && response.status() == StatusCode::OK {
            // showLimit caps the rows of the SHOW command behind every listing;
            // pages cut what is left, never past it.
            let limit = Self::show_limit(request)?;
            response = match response_json(response) {
                Value::Array(mut rows) => {
                    rows.truncate(limit);
                    self.page(rows, self.page_size.unwrap_or(usize::MAX))
                }
                other => json_response(StatusCode::OK, &other),
            };
        }
        if is_write && response.status().is_success() {
            self.writes += 1;
        }
        if self.async_left > 0 && response.status() == StatusCode::OK {
            self.async_left -= 1;
            let handle = random_alnum(16);
            let status = response.status();
            let body = response_json(response);
            self.results
                .insert(handle.clone(), (self.async_polls, status, body));
            return Ok(accepted(&handle));
        }
        Ok(response)
    }

    /// The first `size` rows, with a `Link` to the rest when there is more.
    fn page(&mut self, mut rows: Vec<Value>, size: usize) -> Response {
        if rows.len() <= size {
            return json_response(StatusCode::OK, &Value::Array(rows));
        }
        let rest = rows.split_off(size);
        let handle = random_alnum(16);
        self.pages.insert(handle.clone(), rest);
        let mut response = json_response(StatusCode::OK, &Value::Array(rows));
        if let Ok(value) =
            HeaderValue::from_str(&format!("</api/v2/results/{handle}>; rel=\"next\""))
        {
            response.headers_mut().insert(header::LINK, value);
        }
        response
    }

    fn result(&mut self, handle: &str) -> Answer {
        if let Some(rest) = self.pages.remove(handle) {
            self.page_reads += 1;
            let size = self.page_size.unwrap_or(usize::MAX);
            return Ok(self.page(rest, size));
        }
        self.result_polls += 1;
        let (left, status, body) = self
            .results
            .get_mut(handle)
            .ok_or_else(|| missing("unknown result handle"))?;
        if *left > 0 {
            *left -= 1;
            return Ok(accepted(handle));
        }
        let response = json_response(*status, body);
        self.results.remove(handle);
        Ok(response)
    }

    pub(super) fn show_limit(request: &emulator::Request) -> Result<usize, emulator::ApiError> {
        let query = params(&request.query, &["showLimit"]).map_err(bad)?;
        match query.get("showLimit") {
            None => Ok(10_000),
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => Ok(n),
                _ => Err(bad("showLimit must be between 1 and 10000")),
            },
        }
    }

    fn dispatch(&mut self, request: &emulator::Request, segs: &[&str]) -> Answer {
        let get = request.method == Method::GET;
        let post = request.method == Method::POST;
        let delete = request.method == Method::DELETE;
        match segs {
            ["roles"] if get => {
                let limit = Self::show_limit(request)?;
                let roles: Vec<Value> = self
                    .roles
                    .iter()
                    .take(limit)
                    .map(|r| json!({"name": r}))
                    .collect();
                Ok(json_response(StatusCode::OK, &Value::Array(roles)))
            }
            ["roles", name, rest @ ..] => {
                let grantee = (GranteeType::Role, one(name).ok_or_else(|| bad("bad name"))?);
                self.role_grants(request, grantee, rest)
            }
            ["users", name, rest @ ..] => {
                let grantee = (GranteeType::User, one(name).ok_or_else(|| bad("bad name"))?);
                if rest.first().is_some_and(|r| r.starts_with("future-grants")) {
                    return Err(missing("Not found"));
                }
                self.role_grants(request, grantee, rest)
            }
            ["databases", db, "database-roles", name, rest @ ..] => {
                let db = one(db).ok_or_else(|| bad("bad database"))?;
                let name = one(name).ok_or_else(|| bad("bad name"))?;
                let grantee = (GranteeType::DatabaseRole, format!("{db}.{name}"));
                self.role_grants(request, grantee, rest)
            }
            ["databases", db, "schemas"] if get => {
                Self::show_limit(request)?;
                let db = one(db).ok_or_else(|| bad("bad database"))?;
                let schemas = self
                    .databases
                    .get(&db)
                    .ok_or_else(|| missing(format!("Database '{db}' does not exist")))?;
                let list: Vec<Value> = schemas.keys().map(|s| json!({"name": s})).collect();
                Ok(json_response(StatusCode::OK, &Value::Array(list)))
            }
            [
                "databases",
                db,
                "schemas",
                schema,
                kind @ ("tables" | "views"),
            ] if get => {
                Self::show_limit(request)?;
                let db = one(db).ok_or_else(|| bad("bad database"))?;
                let schema_name = one(schema).ok_or_else(|| bad("bad schema"))?;
                let schema = self
                    .databases
                    .get(&db)
                    .and_then(|d| d.get(&schema_name))
                    .ok_or_else(|| {
                        missing(format!("Schema '{db}.{schema_name}' does not exist"))
                    })?;
                let names = if *kind == "tables" {
                    &schema.tables
                } else {
                    &schema.views
                };
                let list: Vec<Value> = names.iter().map(|s| json!({"name": s})).collect();
                Ok(json_response(StatusCode::OK, &Value::Array(list)))
            }
            ["grants", gt, gn, rest @ ..] => {
                let type_ = legacy_grantee_type(gt)?;
                let name = ident(gn).ok_or_else(|| bad("bad grantee name"))?.join(".");
                let grantee = (type_, name);
                // The query parameters the definition gives each path: the listing
                // `showLimit`, the revokes `deleteMode`, the grants none.
                let allowed: &[&str] = if get {
                    &["showLimit"]
                } else if delete {
                    &["deleteMode"]
                } else {
                    &[]
                };
                let query = params(&request.query, allowed).map_err(bad)?;
                if let Some(mode) = query.get("deleteMode")
                    && !["restrict", "cascade"].contains(&mode.as_str())
                {
                    return Err(bad("deleteMode is restrict or cascade"));
                }
                if !get && type_ == GranteeType::User {
                    // Privileges are never granted to users; roles are, with
                    // GRANT ROLE, which these privilege paths do not express.
                    return Err(bad(
                        "privileges cannot be granted to a user; grant a role to the user instead",
                    ));
                }
                match rest {
                    [] if get => {
                        Self::show_limit(request)?;
                        self.require_grantee(&grantee)?;
                        let listing =
                            self.with_raw_rows(&grantee, false, self.legacy_listing(&grantee));
                        Ok(json_response(StatusCode::OK, &listing))
                    }
                    [
                        bulk,
                        plural,
                        scope_type,
                        scope_name,
                        "privileges",
                        tail @ ..,
                    ] => {
                        if !["all", "future"].contains(bulk) {
                            return Err(bad(format!(
                                "bulkGrantType must be one of all, future, not {bulk}"
                            )));
                        }
                        let singular = legacy_plural(plural)?;
                        let scope_type = legacy_scope_type(scope_type)?;
                        let scope = self.scope(scope_type, scope_name)?;
                        self.require_grantee(&grantee)?;
                        match tail {
                            [] if post => {
                                let (privileges, option) = privileges_body(request)?;
                                self.bulk(
                                    &grantee,
                                    bulk,
                                    singular,
                                    &scope,
                                    &privileges,
                                    Some(option),
                                )
                            }
                            [privilege] if delete => self.bulk(
                                &grantee,
                                bulk,
                                singular,
                                &scope,
                                &[privilege.to_string()],
                                None,
                            ),
                            [privilege, "grant-option"] if delete => {
                                self.bulk_revoke_option(&grantee, bulk, singular, &scope, privilege)
                            }
                            _ => Err(err(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")),
                        }
                    }
                    [st, sn, "privileges", tail @ ..] => {
                        if role_type(st).is_some() {
                            return Err(bad(format!(
                                "{st} is granted with GRANT ROLE, not as a privilege on a securable"
                            )));
                        }
                        let object = self.object(st, sn)?;
                        self.require_grantee(&grantee)?;
                        match tail {
                            [] if post => {
                                let (privileges, option) = privileges_body(request)?;
                                self.grant(&grantee, &object, &privileges, option)?;
                                Ok(ok())
                            }
                            [privilege] if delete => {
                                self.revoke(&grantee, &object, &[privilege.to_string()], false);
                                Ok(ok())
                            }
                            [privilege, "grant-option"] if delete => {
                                self.revoke(&grantee, &object, &[privilege.to_string()], true);
                                Ok(ok())
                            }
                            _ => Err(err(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")),
                        }
                    }
                    _ => Err(missing("Not found")),
                }
            }
            _ => Err(missing("Not found")),
        }
    }
}

fn accepted(handle: &str) -> Response {
    let mut response = json_response(
        StatusCode::ACCEPTED,
        &json!({
            "code": "392604",
            "message": "Request execution in progress. Use the provided location header or result handler ID to perform query monitoring and management.",
            "resultHandler": handle,
        }),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("/api/v2/results/{handle}")) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn response_json(response: Response) -> Value {
    // Our own answers are built from JSON values; read the body back synchronously.
    let body = response.into_body();
    let bytes =
        futures::executor::block_on(axum::body::to_bytes(body, usize::MAX)).unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}
