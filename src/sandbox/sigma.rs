//! Strict in-process HTTP emulator of Sigma Computing's REST API (OAuth tokens,
//! connection grants, member and team look-ups) for integration tests.
//!
//! It is deliberately strict: anything the documented API would not accept is
//! answered with the documented error shape `{"message","code","requestId"}`,
//! so a client that passes against it is likely to behave against the real one.
//! No request data can make it panic.
//!
//! Server, call log and fault injection are the shared plumbing of
//! `super::emulator`: [`SigmaEmulator`] is a [`Server`], which gives `url`, `addr`,
//! `calls`, `clear_calls`, `count` and `inject`.
//!
//! Dependencies: axum 0.8, tokio, serde_json, http 1, base64 0.22 and std.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::emulator::{
    self, Answer, ApiError, AuthHeaderError, Millis, PageTokens, Server, Vendor, capitalize, err,
    json_response, lock, media_type_is, params, parse_pairs, path_segment, random_alnum,
    rfc3339_millis, unknown_key, uuid_like,
};
#[allow(unused_imports)] // re-exported for the tests that use them
pub use super::emulator::{Call, Fault, FaultKind};

/// Most grants one POST may add (the vendor's documented limit).
const MAX_GRANTS_PER_CALL: usize = 100;
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;
const DEFAULT_TTL_SECS: u64 = 3600;

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// Who a grant is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Grantee {
    Member(String),
    Team(String),
}

/// A grant as stored by the emulator.
#[derive(Clone, Debug)]
pub struct GrantRecord {
    pub grant_id: String,
    pub grantee: Grantee,
    pub permission: String,
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

struct AccessToken {
    issued_at: Instant,
    ttl: Duration,
    revoked: bool,
}

struct Member {
    id: String,
    email: String,
    first_name: String,
    last_name: String,
    created_ms: i64,
}

struct Team {
    id: String,
    name: String,
    created_ms: i64,
}

struct StoredGrant {
    id: String,
    grantee: Grantee,
    permission: String,
    created_by: String,
    updated_by: String,
    created_ms: i64,
    updated_ms: i64,
}

struct State {
    organization_id: String,
    /// memberId of the admin the API client acts as (createdBy / updatedBy).
    api_member_id: String,
    clients: HashMap<String, String>,
    access_tokens: HashMap<String, AccessToken>,
    /// refresh token -> client id it was issued to
    refresh_tokens: HashMap<String, String>,
    token_ttl: u64,
    issued_client_credentials: usize,
    issued_refresh: usize,
    members: Vec<Member>,
    teams: Vec<Team>,
    connections: HashMap<String, Vec<StoredGrant>>,
    /// Entries a listing shows as given, after the stored grants (see
    /// [`SigmaEmulator::inject_raw_grant`]).
    raw_grants: HashMap<String, Vec<Value>>,
    page_tokens: PageTokens,
    page_size_cap: usize,
    clock: Millis,
}

impl Default for State {
    fn default() -> Self {
        State {
            organization_id: uuid_like(),
            api_member_id: random_alnum(29),
            clients: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            token_ttl: DEFAULT_TTL_SECS,
            issued_client_credentials: 0,
            issued_refresh: 0,
            members: Vec::new(),
            teams: Vec::new(),
            connections: HashMap::new(),
            raw_grants: HashMap::new(),
            page_tokens: PageTokens::default(),
            page_size_cap: MAX_LIMIT,
            clock: Millis::default(),
        }
    }
}

impl State {
    /// Wall-clock milliseconds, strictly increasing across calls so that an
    /// update always changes `updatedAt`.
    fn timestamp_ms(&mut self) -> i64 {
        self.clock.now()
    }

    fn issue_tokens(&mut self, client_id: &str) -> Value {
        let access = format!("sat_{}", random_alnum(40));
        let refresh = format!("srt_{}", random_alnum(40));
        self.access_tokens.insert(
            access.clone(),
            AccessToken {
                issued_at: Instant::now(),
                ttl: Duration::from_secs(self.token_ttl),
                revoked: false,
            },
        );
        self.refresh_tokens
            .insert(refresh.clone(), client_id.to_string());
        json!({
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "bearer",
            "expires_in": self.token_ttl,
        })
    }
}

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/// The emulator. The server stops when this value is dropped.
///
/// In the call log ([`Call::body`]) a form body is shown as an object of its
/// fields with `client_secret` redacted.
pub type SigmaEmulator = Server<Sigma>;

/// Sigma's side of the [`Server`]: routes, auth and state.
#[derive(Default)]
pub struct Sigma(Mutex<State>);

impl SigmaEmulator {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.vendor().0)
    }

    // --- setup -------------------------------------------------------------

    /// Registers valid API credentials (replacing the secret of an existing id).
    pub fn add_client(&self, client_id: &str, client_secret: &str) {
        self.state()
            .clients
            .insert(client_id.to_string(), client_secret.to_string());
    }

    /// Adds an organization member; returns its new memberId.
    pub fn add_member(&self, email: &str) -> String {
        let mut st = self.state();
        let id = random_alnum(29);
        let local = email.split('@').next().unwrap_or_default();
        let (first, last) = local.split_once('.').unwrap_or((local, ""));
        let created_ms = st.timestamp_ms();
        st.members.push(Member {
            id: id.clone(),
            email: email.to_string(),
            first_name: capitalize(first),
            last_name: capitalize(last),
            created_ms,
        });
        id
    }

    /// Adds a team; returns its new teamId.
    pub fn add_team(&self, name: &str) -> String {
        let mut st = self.state();
        let id = uuid_like();
        let created_ms = st.timestamp_ms();
        st.teams.push(Team {
            id: id.clone(),
            name: name.to_string(),
            created_ms,
        });
        id
    }

    /// Adds a connection without grants (no-op if it exists).
    pub fn add_connection(&self, connection_id: &str) {
        self.state()
            .connections
            .entry(connection_id.to_string())
            .or_default();
    }

    /// Adds an entry that the connection's grant listing shows exactly as given,
    /// after its grants (for instance one without a grantee, which a client
    /// cannot read). It cannot be revoked or changed through the API. Panics
    /// if the connection was not added (a test bug).
    pub fn inject_raw_grant(&self, connection_id: &str, entry: Value) {
        let mut st = self.state();
        assert!(
            st.connections.contains_key(connection_id),
            "inject_raw_grant: unknown connection {connection_id}"
        );
        st.raw_grants
            .entry(connection_id.to_string())
            .or_default()
            .push(entry);
    }

    /// Removes the entries added with [`Self::inject_raw_grant`].
    pub fn clear_raw_grants(&self, connection_id: &str) {
        self.state().raw_grants.remove(connection_id);
    }

    /// Inserts a grant directly with any permission string; returns its grantId.
    /// Panics if the connection was not added (a test bug).
    pub fn seed_grant(&self, connection_id: &str, grantee: Grantee, permission: &str) -> String {
        let mut st = self.state();
        let ts = st.timestamp_ms();
        let by = st.api_member_id.clone();
        let id = uuid_like();
        let grants = st
            .connections
            .get_mut(connection_id)
            .unwrap_or_else(|| panic!("seed_grant: unknown connection {connection_id}"));
        grants.push(StoredGrant {
            id: id.clone(),
            grantee,
            permission: permission.to_string(),
            created_by: by.clone(),
            updated_by: by,
            created_ms: ts,
            updated_ms: ts,
        });
        id
    }

    /// Removes a grant "behind the operator's back". Panics if it does not exist.
    pub fn delete_grant_directly(&self, connection_id: &str, grant_id: &str) {
        let mut st = self.state();
        let grants = st
            .connections
            .get_mut(connection_id)
            .unwrap_or_else(|| panic!("delete_grant_directly: unknown connection {connection_id}"));
        let before = grants.len();
        grants.retain(|g| g.id != grant_id);
        assert!(
            grants.len() < before,
            "delete_grant_directly: unknown grant {grant_id} on {connection_id}"
        );
    }

    /// Changes a grant's permission (any string) behind the operator's back.
    /// Panics if it does not exist.
    pub fn set_permission_directly(&self, connection_id: &str, grant_id: &str, permission: &str) {
        let mut st = self.state();
        let ts = st.timestamp_ms();
        let grant = st
            .connections
            .get_mut(connection_id)
            .and_then(|gs| gs.iter_mut().find(|g| g.id == grant_id))
            .unwrap_or_else(|| {
                panic!("set_permission_directly: unknown grant {grant_id} on {connection_id}")
            });
        grant.permission = permission.to_string();
        grant.updated_ms = ts;
    }

    /// `expires_in` (and lifetime) of tokens issued from now on. Default 3600.
    pub fn set_token_ttl(&self, secs: u64) {
        self.state().token_ttl = secs;
    }

    /// Every access token issued so far becomes invalid (401). Refresh tokens
    /// stay valid.
    pub fn expire_all_tokens(&self) {
        for token in self.state().access_tokens.values_mut() {
            token.revoked = true;
        }
    }

    /// Server-side cap on page size (default 1000; at least 1).
    pub fn set_page_size_cap(&self, n: usize) {
        self.state().page_size_cap = n.max(1);
    }

    // --- inspection --------------------------------------------------------

    /// Grants of a connection in creation order (empty if unknown).
    pub fn grants(&self, connection_id: &str) -> Vec<GrantRecord> {
        self.state()
            .connections
            .get(connection_id)
            .map(|gs| {
                gs.iter()
                    .map(|g| GrantRecord {
                        grant_id: g.id.clone(),
                        grantee: g.grantee.clone(),
                        permission: g.permission.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Tokens issued so far: (by client_credentials, by refresh_token).
    pub fn tokens_issued(&self) -> (usize, usize) {
        let st = self.state();
        (st.issued_client_credentials, st.issued_refresh)
    }
}

// ---------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------

impl Vendor for Sigma {
    const NAME: &'static str = "sigma";
    const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

    fn error(status: StatusCode, message: &str) -> Response {
        error(status, message)
    }

    fn recorded_body(headers: &HeaderMap, bytes: &Bytes) -> Option<Value> {
        if media_type_is(headers, "application/x-www-form-urlencoded")
            && let Ok(pairs) = parse_pairs(&String::from_utf8_lossy(bytes))
        {
            let mut obj = Map::new();
            for (k, v) in pairs {
                let v = if k == "client_secret" {
                    "<redacted>".to_string()
                } else {
                    v
                };
                obj.insert(k, Value::String(v));
            }
            return Some(Value::Object(obj));
        }
        emulator::json_or_text(bytes)
    }

    fn handle(&self, request: &emulator::Request) -> Response {
        handle(&self.0, request).unwrap_or_else(ApiError::into_response::<Sigma>)
    }
}

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

fn handle(shared: &Mutex<State>, request: &emulator::Request) -> Answer {
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

// ---------------------------------------------------------------------------
// Auth
// ---------------------------------------------------------------------------

/// The scheme and credentials of the one Authorization header, if any.
fn authorization(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    emulator::authorization(headers).map_err(|e| {
        err(
            StatusCode::UNAUTHORIZED,
            match e {
                AuthHeaderError::Repeated => "more than one Authorization header",
                AuthHeaderError::Malformed => "malformed Authorization header",
            },
        )
    })
}

fn check_bearer(st: &State, headers: &HeaderMap) -> Result<(), ApiError> {
    let unauthorized = |msg: &str| err(StatusCode::UNAUTHORIZED, msg);
    let (scheme, token) =
        authorization(headers)?.ok_or_else(|| unauthorized("missing Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(unauthorized("a Bearer access token is required"));
    }
    let token = st
        .access_tokens
        .get(&token)
        .ok_or_else(|| unauthorized("invalid access token"))?;
    if token.revoked || Instant::now() >= token.issued_at + token.ttl {
        return Err(unauthorized("access token expired"));
    }
    Ok(())
}

/// Client credentials from the Authorization header, if it is there.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    let bad = |msg: &str| err(StatusCode::UNAUTHORIZED, msg);
    let Some((scheme, encoded)) = authorization(headers)? else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad("client authentication must use HTTP Basic"));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| bad("malformed Basic credentials"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad("malformed Basic credentials"))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| bad("malformed Basic credentials"))?;
    Ok(Some((id.to_string(), secret.to_string())))
}

fn token(st: &mut State, headers: &HeaderMap, body: &Bytes) -> Answer {
    let bad = |msg: &str| err(StatusCode::BAD_REQUEST, msg);
    let unauthorized = |msg: &str| err(StatusCode::UNAUTHORIZED, msg);
    if !media_type_is(headers, "application/x-www-form-urlencoded") {
        return Err(bad(
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    let text = std::str::from_utf8(body).map_err(|_| bad("body is not UTF-8"))?;
    let form = params(
        text,
        &[
            "grant_type",
            "client_id",
            "client_secret",
            "refresh_token",
            "scope",
        ],
    )
    .map_err(|m| bad(&m))?;

    let basic = basic_credentials(headers)?;
    let form_id = form.get("client_id");
    let form_secret = form.get("client_secret");
    let client = match (basic, form_id, form_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(bad(
                "client credentials given both as HTTP Basic and as form fields",
            ));
        }
        (Some(creds), None, None) => Some(creds),
        (None, Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
        (None, Some(_), None) => return Err(unauthorized("client_secret is missing")),
        (None, None, Some(_)) => return Err(bad("client_secret given without client_id")),
        (None, None, None) => None,
    };
    if let Some((id, secret)) = &client
        && st.clients.get(id) != Some(secret)
    {
        return Err(unauthorized("invalid client credentials"));
    }

    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| bad("grant_type is required"))?;
    match grant_type.as_str() {
        "client_credentials" => {
            let (id, _) = client.ok_or_else(|| unauthorized("client credentials are required"))?;
            st.issued_client_credentials += 1;
            let answer = st.issue_tokens(&id);
            Ok(json_response(StatusCode::OK, &answer))
        }
        "refresh_token" => {
            let presented = form
                .get("refresh_token")
                .ok_or_else(|| bad("refresh_token is required"))?;
            let owner = st
                .refresh_tokens
                .get(presented)
                .cloned()
                .ok_or_else(|| unauthorized("invalid refresh token"))?;
            if let Some((id, _)) = &client
                && *id != owner
            {
                return Err(unauthorized("refresh token was issued to another client"));
            }
            st.refresh_tokens.remove(presented);
            st.issued_refresh += 1;
            let answer = st.issue_tokens(&owner);
            Ok(json_response(StatusCode::OK, &answer))
        }
        other => Err(bad(&format!("unsupported grant_type: {other}"))),
    }
}

// ---------------------------------------------------------------------------
// Grants
// ---------------------------------------------------------------------------

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

fn list_grants(st: &mut State, connection_id: &str, query: &str) -> Answer {
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

fn create_grants(st: &mut State, connection_id: &str, headers: &HeaderMap, body: &Bytes) -> Answer {
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

fn delete_grant(st: &mut State, connection_id: &str, grant_id: &str) -> Answer {
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

// ---------------------------------------------------------------------------
// Members and teams
// ---------------------------------------------------------------------------

fn list_members(st: &mut State, query: &str) -> Answer {
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
fn list_connections(st: &mut State, query: &str) -> Answer {
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

fn list_teams(st: &mut State, query: &str) -> Answer {
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

// ---------------------------------------------------------------------------
// Pagination
// ---------------------------------------------------------------------------

fn parse_limit(raw: Option<&String>) -> Result<usize, String> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    let msg = || format!("limit must be an integer from 1 to {MAX_LIMIT}, got {raw:?}");
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(msg());
    }
    match raw.parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(msg()),
    }
}

/// Resolves `limit` and `page` into `[start, end)` of a listing of `total`
/// items, and issues the next page token if there is more.
fn page_window(
    st: &mut State,
    q: &HashMap<String, String>,
    scope: &str,
    total: usize,
) -> Result<(usize, usize, Option<String>), ApiError> {
    let limit = parse_limit(q.get("limit")).map_err(|m| err(StatusCode::BAD_REQUEST, &m))?;
    let size = limit.min(st.page_size_cap).max(1);
    let token = q.get("page");
    st.page_tokens
        .page(scope, token.map(String::as_str), size, total)
        .ok_or_else(|| {
            err(
                StatusCode::BAD_REQUEST,
                format!(
                    "invalid page token: {:?}",
                    token.cloned().unwrap_or_default()
                ),
            )
        })
}

fn list_response(entries: Vec<Value>, next: Option<String>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "entries": entries,
            "hasMore": next.is_some(),
            "nextPage": next,
        }),
    )
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn error_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        413 => "payload_too_large",
        429 => "too_many_requests",
        500 => "internal_error",
        502 => "bad_gateway",
        503 => "service_unavailable",
        504 => "gateway_timeout",
        _ => "error",
    }
}

/// The Sigma error answer `{"message","code","requestId"}`.
fn error(status: StatusCode, message: impl AsRef<str>) -> Response {
    json_response(
        status,
        &json!({
            "message": message.as_ref(),
            "code": error_code(status),
            "requestId": uuid_like(),
        }),
    )
}
