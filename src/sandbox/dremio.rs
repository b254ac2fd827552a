//! Strict in-process HTTP emulator of Dremio's catalog grants API, with the
//! catalog, user and role look-ups a client needs around it, for integration
//! tests.
//!
//! One emulator serves both deployments, chosen per request by the path:
//! - Software: everything under `/api/v3/`.
//! - Cloud: the catalog under `/v0/projects/{projectId}/` (the project must have
//!   been added), users and roles at organisation level by name
//!   (`/v1/users/name/{name}`, `/v1/roles/name/{name}`) and by id
//!   (`/v1/users/{id}`, `/v1/roles/{id}`), as Dremio's own CLI (`dremio-cli`)
//!   looks them up. The filtered organisation listings (`/v0/users?filter=...`)
//!   are not served (404): the operator follows the CLI's by-name look-ups,
//!   which need no quoting of a name inside a filter expression and no paging,
//!   so a request for a listing is a bug.
//!
//! Simplification: both views share one store of catalog objects, users and
//! roles (a real Software cluster and a Cloud organisation are separate
//! worlds, and each Cloud project has its own catalog). Every project added
//! sees the same catalog.
//!
//! It is deliberately strict: anything outside the contract the client is
//! written against is refused with Dremio's error shape
//! `{"errorMessage","moreInfo"}`; a refused write changes nothing. Auth is
//! `Authorization: Bearer <personal access token>` only. No request data can
//! make it panic; the direct helpers panic on a test bug (unknown object,
//! invalid grants).
//!
//! Server, call log and fault injection are the shared plumbing of
//! `super::emulator`: [`DremioEmulator`] is a [`Server`], which gives `url`,
//! `addr`, `calls`, `clear_calls`, `count`, `inject`, `start` and `start_on`.
//!
//! Dependencies: axum 0.8, tokio, serde_json, http 1 and std.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::emulator::{
    self, Answer, ApiError, Server, Vendor, capitalize, empty_response, err, json_response, lock,
    media_type_is, params, percent_decode, random_from, unknown_key, uuid_like,
};
#[allow(unused_imports)] // re-exported for the tests that use them
pub use super::emulator::{Call, Fault, FaultKind};

const READ_ONLY_MESSAGE: &str = "User does not have MANAGE GRANTS privilege";

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// Who a grant entry is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GranteeType {
    User,
    Role,
}

impl GranteeType {
    /// The wire name: `USER` or `ROLE`.
    pub fn wire(self) -> &'static str {
        match self {
            GranteeType::User => "USER",
            GranteeType::Role => "ROLE",
        }
    }

    fn from_wire(text: &str) -> Option<GranteeType> {
        match text {
            "USER" => Some(GranteeType::User),
            "ROLE" => Some(GranteeType::Role),
            _ => None,
        }
    }
}

/// A grant entry as stored: the privileges of one user or role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRecord {
    pub grantee_type: GranteeType,
    pub id: String,
    pub privileges: Vec<String>,
}

impl GrantRecord {
    fn grantee(&self) -> (GranteeType, &str) {
        (self.grantee_type, self.id.as_str())
    }
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

struct Token {
    read_only: bool,
    revoked: bool,
}

struct User {
    id: String,
    name: String,
    first_name: String,
    last_name: String,
    email: String,
}

struct Role {
    id: String,
    name: String,
}

struct Object {
    id: String,
    path: Vec<String>,
    tag: String,
    available: Vec<String>,
    grants: Vec<GrantRecord>,
    /// Entries the grants listing shows as given, after the real ones (see
    /// [`DremioEmulator::inject_raw_grant`]).
    raw_grants: Vec<Value>,
    /// Accepted PUTs of its grants.
    puts: usize,
    /// GETs of its grants answered 200.
    reads: usize,
}

impl Object {
    fn entity_type(&self) -> &'static str {
        if self.path.len() >= 2 {
            "dataset"
        } else {
            "space"
        }
    }
}

/// A change another writer makes once `remaining` more reads are answered.
struct Interference {
    object_id: String,
    remaining: usize,
    change: GrantRecord,
}

#[derive(Default)]
struct State {
    tokens: HashMap<String, Token>,
    projects: Vec<String>,
    users: Vec<User>,
    roles: Vec<Role>,
    objects: Vec<Object>,
    interferences: Vec<Interference>,
}

impl State {
    fn object(&self, id: &str) -> Option<&Object> {
        self.objects.iter().find(|o| o.id == id)
    }

    fn object_mut(&mut self, id: &str) -> Option<&mut Object> {
        self.objects.iter_mut().find(|o| o.id == id)
    }

    fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    fn role(&self, id: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }

    fn grantee_exists(&self, kind: GranteeType, id: &str) -> bool {
        match kind {
            GranteeType::User => self.user(id).is_some(),
            GranteeType::Role => self.role(id).is_some(),
        }
    }

    /// Whether `grants` could be stored on `object`: non-empty privileges
    /// each listed once and available there, each grantee once and existing.
    fn check_grants(&self, object: &Object, grants: &[GrantRecord]) -> Result<(), String> {
        let mut grantees = HashSet::new();
        for (i, entry) in grants.iter().enumerate() {
            if entry.privileges.is_empty() {
                return Err(format!("grants[{i}].privileges must not be empty"));
            }
            let mut seen = HashSet::new();
            for privilege in &entry.privileges {
                if !seen.insert(privilege.as_str()) {
                    return Err(format!(
                        "grants[{i}].privileges lists {privilege} more than once"
                    ));
                }
            }
            if !grantees.insert(entry.grantee()) {
                return Err(format!(
                    "Grantee {} {} appears more than once",
                    entry.grantee_type.wire(),
                    entry.id
                ));
            }
        }
        for entry in grants {
            if let Some(missing) = entry
                .privileges
                .iter()
                .find(|p| !object.available.contains(p))
            {
                return Err(format!(
                    "Privilege {missing} is not available on this object (available: {})",
                    object.available.join(", ")
                ));
            }
        }
        for entry in grants {
            if !self.grantee_exists(entry.grantee_type, &entry.id) {
                return Err(format!(
                    "Grantee {} {} not found",
                    entry.grantee_type.wire(),
                    entry.id
                ));
            }
        }
        Ok(())
    }

    /// Counts an answered read of an object's grants, and applies the
    /// interferences that were waiting for it.
    fn after_grants_read(&mut self, object_id: &str) {
        if let Some(object) = self.object_mut(object_id) {
            object.reads += 1;
        }
        let mut due = Vec::new();
        self.interferences.retain_mut(|i| {
            if i.object_id != object_id {
                return true;
            }
            i.remaining = i.remaining.saturating_sub(1);
            if i.remaining == 0 {
                due.push(i.change.clone());
                false
            } else {
                true
            }
        });
        for change in due {
            self.apply_change(object_id, change);
        }
    }

    /// Inserts `change`, or replaces the entry of its grantee (removes it if
    /// `change` has no privileges).
    fn apply_change(&mut self, object_id: &str, change: GrantRecord) {
        let Some(object) = self.object_mut(object_id) else {
            return;
        };
        let existing = object
            .grants
            .iter()
            .position(|g| g.grantee() == change.grantee());
        match (existing, change.privileges.is_empty()) {
            (Some(i), true) => {
                object.grants.remove(i);
            }
            (Some(i), false) => {
                if let Some(entry) = object.grants.get_mut(i) {
                    *entry = change;
                }
            }
            (None, true) => {}
            (None, false) => object.grants.push(change),
        }
    }
}

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/// The emulator. The server stops when this value is dropped.
pub type DremioEmulator = Server<Dremio>;

/// Dremio's side of the [`Server`]: routes, auth and state.
#[derive(Default)]
pub struct Dremio(Mutex<State>);

impl DremioEmulator {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.vendor().0)
    }

    // --- setup: credentials and projects -----------------------------------

    /// Registers a valid personal access token (again: valid and writable).
    pub fn add_token(&self, token: &str) {
        self.state().tokens.insert(
            token.to_string(),
            Token {
                read_only: false,
                revoked: false,
            },
        );
    }

    /// From now on, this token is answered 401. Panics if unknown.
    pub fn revoke_token(&self, token: &str) {
        self.with_token(token, |t| t.revoked = true);
    }

    /// From now on, a PUT of grants with this token is answered 403 (reads
    /// still work). Panics if unknown.
    pub fn set_read_only(&self, token: &str) {
        self.with_token(token, |t| t.read_only = true);
    }

    fn with_token(&self, token: &str, change: impl FnOnce(&mut Token)) {
        let mut st = self.state();
        let found = st
            .tokens
            .get_mut(token)
            .unwrap_or_else(|| panic!("unknown token {token}"));
        change(found);
    }

    /// Adds a Cloud project (its name is its id). No-op if it exists.
    pub fn add_project(&self, project_id: &str) {
        let mut st = self.state();
        if !st.projects.iter().any(|p| p == project_id) {
            st.projects.push(project_id.to_string());
        }
    }

    // --- setup: catalog, users, roles --------------------------------------

    /// Adds a catalog object at `path` (a `space` if it has one part, else a
    /// `dataset`) accepting `available_privileges`, without grants; returns
    /// its new id. Panics on an empty path or part, or a path already used.
    pub fn add_object(&self, path: &[&str], available_privileges: &[&str]) -> String {
        assert!(
            !path.is_empty() && path.iter().all(|p| !p.is_empty()),
            "add_object: invalid path {path:?}"
        );
        let mut st = self.state();
        assert!(
            !st.objects.iter().any(|o| o.path == path),
            "add_object: path {path:?} already used"
        );
        let id = uuid_like();
        st.objects.push(Object {
            id: id.clone(),
            path: path.iter().map(|p| p.to_string()).collect(),
            tag: random_from(b"abcdefghijklmnopqrstuvwxyz0123456789+/", 12),
            available: available_privileges.iter().map(|p| p.to_string()).collect(),
            grants: Vec::new(),
            raw_grants: Vec::new(),
            puts: 0,
            reads: 0,
        });
        id
    }

    /// Adds a user; returns its new id. Its first and last names come from
    /// the email's local part (`jean_smith@x` -> `Jean`, `Smith`). Panics on a
    /// name already used.
    pub fn add_user(&self, name: &str, email: &str) -> String {
        let mut st = self.state();
        assert!(
            !st.users.iter().any(|u| u.name == name),
            "add_user: user {name} already exists"
        );
        let local = email.split('@').next().unwrap_or_default();
        let mut parts = local
            .split(['.', '_', '-'])
            .filter(|p| !p.is_empty())
            .map(capitalize);
        let first_name = parts.next().unwrap_or_default();
        let last_name = parts.collect::<Vec<_>>().join(" ");
        let id = uuid_like();
        st.users.push(User {
            id: id.clone(),
            name: name.to_string(),
            first_name,
            last_name,
            email: email.to_string(),
        });
        id
    }

    /// Adds a role; returns its new id. Panics on a name already used.
    pub fn add_role(&self, name: &str) -> String {
        let mut st = self.state();
        assert!(
            !st.roles.iter().any(|r| r.name == name),
            "add_role: role {name} already exists"
        );
        let id = uuid_like();
        st.roles.push(Role {
            id: id.clone(),
            name: name.to_string(),
        });
        id
    }

    // --- grants behind the client's back -----------------------------------

    /// Adds an entry that the object's grants listing shows exactly as given,
    /// after its grants (for instance one of a grantee type a client does not
    /// know). A PUT replaces it like any entry. Panics on an unknown object.
    pub fn inject_raw_grant(&self, object_id: &str, entry: Value) {
        let mut st = self.state();
        st.object_mut(object_id)
            .unwrap_or_else(|| panic!("inject_raw_grant: unknown object {object_id}"))
            .raw_grants
            .push(entry);
    }

    /// Removes the entries added with [`Self::inject_raw_grant`].
    pub fn clear_raw_grants(&self, object_id: &str) {
        if let Some(object) = self.state().object_mut(object_id) {
            object.raw_grants.clear();
        }
    }

    /// Replaces the grants of an object, as another writer would. Panics on
    /// an unknown object or grants a PUT would refuse.
    pub fn set_grants_directly(&self, object_id: &str, grants: Vec<GrantRecord>) {
        let mut st = self.state();
        let object = st
            .object(object_id)
            .unwrap_or_else(|| panic!("set_grants_directly: unknown object {object_id}"));
        if let Err(message) = st.check_grants(object, &grants) {
            panic!("set_grants_directly: {message}");
        }
        if let Some(object) = st.object_mut(object_id) {
            object.grants = grants;
        }
    }

    /// After the `reads`-th GET of the object's grants from now on has been
    /// answered (at once if `reads` is 0), applies `change` as if another
    /// client had PUT between that read and the next write: the entry of the
    /// same grantee is replaced in place, or `change` is appended; a `change`
    /// without privileges removes the grantee's entry. Fires once. Panics on
    /// an unknown object or a change a PUT would refuse.
    pub fn interfere_after_reads(&self, object_id: &str, reads: usize, change: GrantRecord) {
        let mut st = self.state();
        let object = st
            .object(object_id)
            .unwrap_or_else(|| panic!("interfere_after_reads: unknown object {object_id}"));
        if !change.privileges.is_empty()
            && let Err(message) = st.check_grants(object, std::slice::from_ref(&change))
        {
            panic!("interfere_after_reads: {message}");
        }
        if reads == 0 {
            st.apply_change(object_id, change);
        } else {
            st.interferences.push(Interference {
                object_id: object_id.to_string(),
                remaining: reads,
                change,
            });
        }
    }

    // --- inspection --------------------------------------------------------

    /// The grants of an object in stored order (empty if unknown).
    pub fn grants(&self, object_id: &str) -> Vec<GrantRecord> {
        self.state()
            .object(object_id)
            .map(|o| o.grants.clone())
            .unwrap_or_default()
    }

    /// PUTs of an object's grants that were accepted (204).
    pub fn puts(&self, object_id: &str) -> usize {
        self.state().object(object_id).map_or(0, |o| o.puts)
    }

    /// GETs of an object's grants that were answered 200.
    pub fn grant_reads(&self, object_id: &str) -> usize {
        self.state().object(object_id).map_or(0, |o| o.reads)
    }
}

// ---------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------

impl Vendor for Dremio {
    const NAME: &'static str = "dremio";
    const MAX_BODY_BYTES: usize = 1024 * 1024;

    fn error(status: StatusCode, message: &str) -> Response {
        json_response(status, &json!({"errorMessage": message, "moreInfo": ""}))
    }

    fn handle(&self, request: &emulator::Request) -> Response {
        handle(&self.0, request).unwrap_or_else(ApiError::into_response::<Dremio>)
    }
}

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

fn bad_request(message: impl Into<String>) -> ApiError {
    err(StatusCode::BAD_REQUEST, message)
}

fn not_found(message: impl Into<String>) -> ApiError {
    err(StatusCode::NOT_FOUND, message)
}

/// A path parameter, percent-decoded.
fn decode(raw: &str) -> Result<String, ApiError> {
    percent_decode(raw, false).map_err(|_| bad_request("Malformed percent-encoding in path"))
}

fn handle(state: &Mutex<State>, request: &emulator::Request) -> Answer {
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

// ---------------------------------------------------------------------------
// Projects and catalog
// ---------------------------------------------------------------------------

fn project_info(raw: Option<&str>) -> Answer {
    let id = decode(raw.unwrap_or_default())?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"id": id, "name": id}),
    ))
}

fn catalog_root(st: &State) -> Answer {
    let data: Vec<Value> = st
        .objects
        .iter()
        .filter(|o| o.path.len() == 1)
        .map(|o| {
            json!({
                "id": o.id,
                "path": o.path,
                "type": "CONTAINER",
                "containerType": "SPACE",
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"data": data})))
}

fn object_json(object: &Object) -> Value {
    json!({
        "entityType": object.entity_type(),
        "id": object.id,
        "path": object.path,
        "tag": object.tag,
    })
}

fn object_not_found(id: &str) -> ApiError {
    not_found(format!("Could not find entity with id [{id}]"))
}

fn object_by_path(st: &State, raw: &[&str]) -> Answer {
    if raw.is_empty() || raw.iter().any(|p| p.is_empty()) {
        return Err(bad_request("Catalog path must not have empty parts"));
    }
    let path = raw
        .iter()
        .map(|p| decode(p))
        .collect::<Result<Vec<String>, ApiError>>()?;
    if path.iter().any(String::is_empty) {
        return Err(bad_request("Catalog path must not have empty parts"));
    }
    let object = st.objects.iter().find(|o| o.path == path).ok_or_else(|| {
        not_found(format!(
            "Could not find entity with path [{}]",
            path.join(", ")
        ))
    })?;
    Ok(json_response(StatusCode::OK, &object_json(object)))
}

// ---------------------------------------------------------------------------
// Grants
// ---------------------------------------------------------------------------

fn list_grants(st: &mut State, id: &str) -> Answer {
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

fn put_grants(st: &mut State, id: &str, read_only: bool, request: &emulator::Request) -> Answer {
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

// ---------------------------------------------------------------------------
// Users and roles
// ---------------------------------------------------------------------------

fn kind_name(kind: GranteeType) -> &'static str {
    match kind {
        GranteeType::User => "User",
        GranteeType::Role => "Role",
    }
}

fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "name": u.name,
        "firstName": u.first_name,
        "lastName": u.last_name,
        "email": u.email,
    })
}

fn role_json(r: &Role) -> Value {
    json!({"id": r.id, "name": r.name, "type": "INTERNAL"})
}

/// A Cloud user as Dremio Cloud's Users API shows one.
fn cloud_user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "name": u.name,
        "firstName": u.first_name,
        "lastName": u.last_name,
        "identityType": "REGULAR_USER",
        "active": true,
    })
}

/// A Cloud role as Dremio Cloud's Roles API shows one.
fn cloud_role_json(r: &Role) -> Value {
    json!({"id": r.id, "name": r.name, "type": "INTERNAL", "description": ""})
}

/// The first user or role for which `matches(id, name)` holds, in Cloud's or
/// Software's shape.
fn principal_json(
    st: &State,
    kind: GranteeType,
    cloud: bool,
    matches: impl Fn(&str, &str) -> bool,
) -> Option<Value> {
    match kind {
        GranteeType::User => st
            .users
            .iter()
            .find(|u| matches(&u.id, &u.name))
            .map(if cloud { cloud_user_json } else { user_json }),
        GranteeType::Role => st
            .roles
            .iter()
            .find(|r| matches(&r.id, &r.name))
            .map(if cloud { cloud_role_json } else { role_json }),
    }
}
