//! Strict in-process HTTP emulator of Sigma Computing's REST API (OAuth tokens,
//! connection grants, member and team look-ups) for integration tests.
//!
//! It is deliberately strict: anything the documented API would not accept is
//! answered with the documented error shape `{"message","code","requestId"}`,
//! so a client that passes against it is likely to behave against the real one.
//! No request data can make it panic.
//!
//! Dependencies: axum 0.8, tokio, serde_json, http 1, base64 0.22 and std.
#![allow(dead_code)] // not every test binary uses every helper

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as AxumState;
use axum::response::Response;
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use serde_json::{Map, Value, json};

/// Largest request body read; bigger ones are answered 413.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
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

/// One request received by the emulator.
///
/// `status` is the final status answered (0 while the request is still being
/// handled, e.g. during an injected delay). `body` is the parsed JSON body,
/// or for form bodies an object of the form fields with `client_secret`
/// redacted, or the raw text of any other non-empty body.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    pub body: Option<Value>,
    pub authorization: Option<String>,
    pub at: Instant,
}

/// A fault fired on the next `times` requests whose method matches (`None`:
/// any) and whose path starts with `path_prefix`. Faults are checked in the
/// order they were injected, before routing and authentication; at most one
/// fault fires per request.
#[derive(Clone, Debug)]
pub struct Fault {
    pub method: Option<String>,
    pub path_prefix: String,
    pub times: usize,
    pub kind: FaultKind,
}

#[derive(Clone, Debug)]
pub enum FaultKind {
    /// Answer this status with a Sigma error body; state is not touched.
    Status(u16),
    /// Answer 429 with a `Retry-After: <secs>` header; state is not touched.
    RateLimited { retry_after_secs: u64 },
    /// Sleep this long, then handle the request normally. The request is
    /// handled to the end even if the client gives up meanwhile.
    Delay(Duration),
}

/// The emulator. The server stops when this value is dropped.
pub struct SigmaEmulator {
    shared: Shared,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

type Shared = Arc<Mutex<State>>;

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

struct PageCursor {
    scope: String,
    offset: usize,
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
    page_tokens: HashMap<String, PageCursor>,
    page_size_cap: usize,
    calls: Vec<(u64, Call)>,
    next_call_seq: u64,
    faults: Vec<Fault>,
    last_timestamp_ms: i64,
}

impl State {
    fn new() -> Self {
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
            page_tokens: HashMap::new(),
            page_size_cap: MAX_LIMIT,
            calls: Vec::new(),
            next_call_seq: 0,
            faults: Vec::new(),
            last_timestamp_ms: 0,
        }
    }

    /// Wall-clock milliseconds, strictly increasing across calls so that an
    /// update always changes `updatedAt`.
    fn timestamp_ms(&mut self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let ms = now.max(self.last_timestamp_ms.saturating_add(1));
        self.last_timestamp_ms = ms;
        ms
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

    fn take_fault(&mut self, method: &str, path: &str) -> Option<FaultKind> {
        let idx = self.faults.iter().position(|f| {
            f.times > 0
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && path.starts_with(&f.path_prefix)
        })?;
        let fault = &mut self.faults[idx];
        fault.times -= 1;
        let kind = fault.kind.clone();
        if fault.times == 0 {
            self.faults.remove(idx);
        }
        Some(kind)
    }

    fn finish_call(&mut self, seq: u64, status: u16) {
        if let Some((_, call)) = self.calls.iter_mut().find(|(s, _)| *s == seq) {
            call.status = status;
        }
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

impl SigmaEmulator {
    /// Binds 127.0.0.1 on a free port and serves in a tokio task.
    pub async fn start() -> SigmaEmulator {
        Self::start_on(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await
    }

    /// Binds `addr` (e.g. `0.0.0.0:0` to be reachable from a cluster).
    pub async fn start_on(addr: SocketAddr) -> SigmaEmulator {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("sigma emulator: cannot bind {addr}: {e}"));
        let local = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("sigma emulator: no local address: {e}"));
        let shared: Shared = Arc::new(Mutex::new(State::new()));
        let app = Router::new().fallback(entry).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        SigmaEmulator {
            shared,
            addr: local,
            task,
        }
    }

    /// Base URL without trailing slash. An unspecified bind address
    /// (0.0.0.0 / ::) is shown as the loopback address.
    pub fn url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
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

    /// Every request received, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.iter().map(|(_, c)| c.clone()).collect()
    }

    pub fn clear_calls(&self) {
        self.state().calls.clear();
    }

    /// Calls whose method matches (case-insensitive) and whose path starts
    /// with `path_prefix`.
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.state()
            .calls
            .iter()
            .filter(|(_, c)| {
                c.method.eq_ignore_ascii_case(method) && c.path.starts_with(path_prefix)
            })
            .count()
    }

    /// Tokens issued so far: (by client_credentials, by refresh_token).
    pub fn tokens_issued(&self) -> (usize, usize) {
        let st = self.state();
        (st.issued_client_credentials, st.issued_refresh)
    }

    // --- fault injection ---------------------------------------------------

    pub fn inject(&self, fault: Fault) {
        if fault.times > 0 {
            self.state().faults.push(fault);
        }
    }
}

impl Drop for SigmaEmulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------
// Request entry point
// ---------------------------------------------------------------------------

async fn entry(AxumState(shared): AxumState<Shared>, req: Request<Body>) -> Response {
    let at = Instant::now();
    let (parts, body) = req.into_parts();
    let method = parts.method;
    let headers = parts.headers;
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());

    let declared_too_large = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES as u64);
    let body: Result<Bytes, Response> = if declared_too_large {
        Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        ))
    } else {
        axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| error(StatusCode::BAD_REQUEST, "request body could not be read"))
    };

    let seq = {
        let mut st = lock(&shared);
        let seq = st.next_call_seq;
        st.next_call_seq += 1;
        let recorded = body.as_ref().ok().and_then(|b| recorded_body(&headers, b));
        st.calls.push((
            seq,
            Call {
                method: method.as_str().to_string(),
                path: path.clone(),
                query: query.clone(),
                status: 0,
                body: recorded,
                authorization,
                at,
            },
        ));
        seq
    };

    // Handle in a task of its own so that a request is carried out (and
    // recorded) to the end even if the client disconnects, e.g. after a
    // client-side timeout during an injected delay.
    let task_shared = shared.clone();
    let job = tokio::spawn(async move {
        let response = match body {
            Ok(bytes) => process(&task_shared, &method, &path, &query, &headers, &bytes).await,
            Err(response) => response,
        };
        lock(&task_shared).finish_call(seq, response.status().as_u16());
        response
    });
    match job.await {
        Ok(response) => response,
        Err(_) => {
            let response = error(StatusCode::INTERNAL_SERVER_ERROR, "emulator task failed");
            lock(&shared).finish_call(seq, response.status().as_u16());
            response
        }
    }
}

fn recorded_body(headers: &HeaderMap, bytes: &Bytes) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
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
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => Some(v),
        Err(_) => Some(Value::String(String::from_utf8_lossy(bytes).into_owned())),
    }
}

enum Route {
    Token,
    Grants(String),
    Grant(String, String),
    Members,
    Teams,
}

impl Route {
    fn allowed(&self) -> &'static [Method] {
        match self {
            Route::Token => &[Method::POST],
            Route::Grants(_) => &[Method::GET, Method::POST],
            Route::Grant(..) => &[Method::DELETE],
            Route::Members | Route::Teams => &[Method::GET],
        }
    }
}

fn resolve(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2/")?;
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    let seg = |s: &str| percent_decode(s, false).ok().filter(|d| !d.is_empty());
    match segs.as_slice() {
        ["auth", "token"] => Some(Route::Token),
        ["members"] => Some(Route::Members),
        ["teams"] => Some(Route::Teams),
        ["connections", c, "grants"] => Some(Route::Grants(seg(c)?)),
        ["connections", c, "grants", g] => Some(Route::Grant(seg(c)?, seg(g)?)),
        _ => None,
    }
}

async fn process(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let fault = lock(shared).take_fault(method.as_str(), path);
    match fault {
        Some(FaultKind::Delay(d)) => tokio::time::sleep(d).await,
        Some(FaultKind::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(
                status,
                format!("injected fault: status {}", status.as_u16()),
            );
        }
        Some(FaultKind::RateLimited { retry_after_secs }) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return response;
        }
        None => {}
    }

    let Some(route) = resolve(path) else {
        return error(StatusCode::NOT_FOUND, format!("no such route: {path}"));
    };
    if !route.allowed().contains(method) {
        let allow = route
            .allowed()
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let mut response = error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {method} not allowed on {path}"),
        );
        if let Ok(v) = HeaderValue::from_str(&allow) {
            response.headers_mut().insert(header::ALLOW, v);
        }
        return response;
    }

    let mut st = lock(shared);
    if !matches!(route, Route::Token)
        && let Err(e) = check_bearer(&st, headers)
    {
        return e.into_response();
    }
    let result = match (route, method) {
        (Route::Token, _) => token(&mut st, headers, body),
        (Route::Grants(c), &Method::GET) => list_grants(&mut st, &c, query),
        (Route::Grants(c), _) => create_grants(&mut st, &c, headers, body),
        (Route::Grant(c, g), _) => delete_grant(&mut st, &c, &g),
        (Route::Members, _) => list_members(&mut st, query),
        (Route::Teams, _) => list_teams(&mut st, query),
    };
    result.unwrap_or_else(ApiError::into_response)
}

type Answer = Result<Response, ApiError>;

/// An error answer not yet rendered (kept small so `Result`s stay cheap).
struct ApiError {
    status: StatusCode,
    message: String,
}

fn err(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        message: message.into(),
    }
}

impl ApiError {
    fn into_response(self) -> Response {
        error(self.status, self.message)
    }
}

// ---------------------------------------------------------------------------
// Auth
// ---------------------------------------------------------------------------

fn check_bearer(st: &State, headers: &HeaderMap) -> Result<(), ApiError> {
    let unauthorized = |msg: &str| err(StatusCode::UNAUTHORIZED, msg);
    let values: Vec<&HeaderValue> = headers.get_all(header::AUTHORIZATION).iter().collect();
    let value = match values.as_slice() {
        [] => return Err(unauthorized("missing Authorization header")),
        [one] => *one,
        _ => return Err(unauthorized("more than one Authorization header")),
    };
    let value = value
        .to_str()
        .map_err(|_| unauthorized("malformed Authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| unauthorized("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(unauthorized("a Bearer access token is required"));
    }
    let token = st
        .access_tokens
        .get(token.trim())
        .ok_or_else(|| unauthorized("invalid access token"))?;
    if token.revoked || Instant::now() >= token.issued_at + token.ttl {
        return Err(unauthorized("access token expired"));
    }
    Ok(())
}

/// Client credentials from the Authorization header, if it is there.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    let bad = |msg: &str| err(StatusCode::UNAUTHORIZED, msg);
    let values: Vec<&HeaderValue> = headers.get_all(header::AUTHORIZATION).iter().collect();
    let value = match values.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        _ => return Err(bad("more than one Authorization header")),
    };
    let value = value
        .to_str()
        .map_err(|_| bad("malformed Authorization header"))?;
    let (scheme, encoded) = value
        .split_once(' ')
        .ok_or_else(|| bad("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad("client authentication must use HTTP Basic"));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
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
    let total = st
        .connections
        .get(connection_id)
        .ok_or_else(|| unknown_connection(connection_id))?
        .len();
    let q = params(query, &["limit", "page"]).map_err(|m| err(StatusCode::BAD_REQUEST, &m))?;
    let scope = format!("grants\u{0}{connection_id}");
    let (start, end, next) = page_window(st, &q, &scope, total)?;
    let entries: Vec<Value> = st
        .connections
        .get(connection_id)
        .map(|gs| {
            gs.get(start..end)
                .unwrap_or(&[])
                .iter()
                .map(|g| grant_json(st, g))
                .collect()
        })
        .unwrap_or_default();
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
    if let Some(k) = top.keys().find(|k| *k != "grants") {
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
        if let Some(k) = entry.keys().find(|k| *k != "grantee" && *k != "permission") {
            return Err(format!("grants[{i}]: unknown field: {k}"));
        }
        let grantee = entry
            .get("grantee")
            .ok_or_else(|| format!("grants[{i}].grantee is required"))?
            .as_object()
            .ok_or_else(|| format!("grants[{i}].grantee must be an object"))?;
        if let Some(k) = grantee.keys().find(|k| *k != "memberId" && *k != "teamId") {
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
    let start = match q.get("page") {
        None => 0,
        Some(token) => match st.page_tokens.get(token) {
            Some(cursor) if cursor.scope == scope => cursor.offset,
            _ => {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    format!("invalid page token: {token:?}"),
                ));
            }
        },
    };
    let start = start.min(total);
    let end = start.saturating_add(size).min(total);
    let next = if end < total {
        let token = random_alnum(32);
        st.page_tokens.insert(
            token.clone(),
            PageCursor {
                scope: scope.to_string(),
                offset: end,
            },
        );
        Some(token)
    } else {
        None
    };
    Ok((start, end, next))
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

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

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

fn media_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case(expected)
        })
}

/// Decodes `%XX` (and `+` as space when `plus_as_space`); malformed escapes
/// and invalid UTF-8 are errors.
fn percent_decode(s: &str, plus_as_space: bool) -> Result<String, String> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex);
                let lo = bytes.get(i + 2).copied().and_then(hex);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(format!("malformed percent-encoding in {s:?}")),
                }
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("invalid UTF-8 in {s:?}"))
}

/// Parses `a=1&b=2` (query string or form body).
fn parse_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            Ok((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

/// Parses into a map, rejecting unknown and repeated parameters.
fn params(text: &str, allowed: &[&str]) -> Result<HashMap<String, String>, String> {
    let mut map = HashMap::new();
    for (k, v) in parse_pairs(text)? {
        if !allowed.contains(&k.as_str()) {
            return Err(format!("unknown parameter: {k}"));
        }
        if map.insert(k.clone(), v).is_some() {
            return Err(format!("parameter given more than once: {k}"));
        }
    }
    Ok(map)
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `2022-02-28T21:42:56.809Z` from milliseconds since the Unix epoch.
fn rfc3339_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

/// Random 64 bits from std's randomly keyed SipHash (no `rand` dependency).
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    hasher.finish()
}

fn random_alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| {
            let i = (random_u64() % ALPHABET.len() as u64) as usize;
            char::from(ALPHABET.get(i).copied().unwrap_or(b'x'))
        })
        .collect()
}

/// A random UUID-v4-shaped string.
fn uuid_like() -> String {
    let hi = random_u64();
    let lo = random_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0x0fff,
        ((lo >> 48) & 0x3fff) | 0x8000,
        lo & 0xffff_ffff_ffff
    )
}
