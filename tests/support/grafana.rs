//! Strict in-process HTTP emulator of Grafana's data source permission APIs for
//! integration tests: the legacy API (`/api/datasources/:id/permissions`,
//! enable/disable), the access-control API
//! (`/api/access-control/datasources/:uid`), and the org, data source, user and
//! team look-ups a client needs around them.
//!
//! It is deliberately strict: anything outside the contract the client is
//! written against is refused with Grafana's error shape `{"message"}`, so a
//! client that passes against it is likely to behave against the real server.
//! Both permission APIs share one store of entries per data source, and the
//! inherited and unmanaged entries a client must leave alone are there from
//! the start. No request data can make it panic.
//!
//! Dependencies: axum 0.8, tokio, serde_json, http 1, base64 0.22 and std.
#![allow(dead_code)] // not every test binary uses every helper

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
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
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default `limit` of the user look-up and `perpage` of the team search.
const DEFAULT_PAGE: i64 = 1000;
const ORG_HEADER: &str = "x-grafana-org-id";
const VERSION: &str = "10.2.3";
const BUILT_IN_ROLES: [&str; 3] = ["Viewer", "Editor", "Admin"];
const READ_ONLY_MESSAGE: &str = "You'll need additional permissions to perform this action. \
                                 Permissions needed: datasources.permissions:write";

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// Who a permission entry is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Grantee {
    User(i64),
    Team(i64),
    /// `Viewer`, `Editor` or `Admin`.
    BuiltIn(String),
}

/// A data source permission level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Query,
    Edit,
    Admin,
}

impl Level {
    /// The access-control API's name: `Query`, `Edit` or `Admin`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Query => "Query",
            Level::Edit => "Edit",
            Level::Admin => "Admin",
        }
    }

    /// The legacy API's number: 1, 2 or 4.
    pub fn legacy_code(self) -> i64 {
        match self {
            Level::Query => 1,
            Level::Edit => 2,
            Level::Admin => 4,
        }
    }

    fn from_name(name: &str) -> Option<Level> {
        match name {
            "Query" => Some(Level::Query),
            "Edit" => Some(Level::Edit),
            "Admin" => Some(Level::Admin),
            _ => None,
        }
    }

    fn actions(self) -> Vec<&'static str> {
        match self {
            Level::Query => vec!["datasources:query", "datasources:read"],
            Level::Edit => vec![
                "datasources:delete",
                "datasources:query",
                "datasources:read",
                "datasources:write",
            ],
            Level::Admin => vec![
                "datasources.permissions:read",
                "datasources.permissions:write",
                "datasources:delete",
                "datasources:query",
                "datasources:read",
                "datasources:write",
            ],
        }
    }
}

/// A permission entry as stored by the emulator. Only entries with
/// `managed && !inherited` are ones a client may change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionRecord {
    pub id: i64,
    pub grantee: Grantee,
    pub permission: Level,
    pub managed: bool,
    pub inherited: bool,
}

/// One request received by the emulator.
///
/// `status` is the final status answered (0 while the request is still being
/// handled, e.g. during an injected delay). `body` is the parsed JSON body, or
/// the raw text of any other non-empty body. `org_id` is the raw
/// `X-Grafana-Org-Id` header, if sent.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    pub body: Option<Value>,
    pub authorization: Option<String>,
    pub org_id: Option<String>,
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
    /// Answer this status with a Grafana error body; state is not touched.
    Status(u16),
    /// Answer 429 with a `Retry-After: <secs>` header; state is not touched.
    RateLimited { retry_after_secs: u64 },
    /// Sleep this long, then handle the request normally. The request is
    /// handled to the end even if the client gives up meanwhile.
    Delay(Duration),
}

/// The emulator. The server stops when this value is dropped.
pub struct GrafanaEmulator {
    shared: Shared,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

type Shared = Arc<Mutex<State>>;

struct TokenPrincipal {
    org: i64,
    read_only: bool,
    revoked: bool,
}

struct BasicPrincipal {
    password: String,
    /// The first one is the default org.
    orgs: Vec<i64>,
    read_only: bool,
    revoked: bool,
}

struct User {
    id: i64,
    uid: String,
    login: String,
    email: String,
    name: String,
    orgs: Vec<i64>,
    created_ms: i64,
}

struct Team {
    id: i64,
    uid: String,
    org: i64,
    name: String,
}

struct Entry {
    id: i64,
    grantee: Grantee,
    level: Level,
    managed: bool,
    inherited: bool,
    created_ms: i64,
    updated_ms: i64,
}

impl Entry {
    /// Whether a client may change or remove this entry.
    fn own(&self) -> bool {
        self.managed && !self.inherited
    }

    fn record(&self) -> PermissionRecord {
        PermissionRecord {
            id: self.id,
            grantee: self.grantee.clone(),
            permission: self.level,
            managed: self.managed,
            inherited: self.inherited,
        }
    }
}

struct DataSource {
    id: i64,
    uid: String,
    org: i64,
    name: String,
    kind: String,
    url: String,
    /// The legacy API's switch (off for a new data source).
    permissions_enabled: bool,
    entries: Vec<Entry>,
    enable_calls: usize,
    disable_calls: usize,
}

/// Who a request is from, once authenticated.
struct Principal {
    org: i64,
    read_only: bool,
}

struct State {
    orgs: BTreeMap<i64, String>,
    tokens: HashMap<String, TokenPrincipal>,
    basic: HashMap<String, BasicPrincipal>,
    users: Vec<User>,
    teams: Vec<Team>,
    datasources: Vec<DataSource>,
    /// One sequence for every id (data sources, users, teams, entries), so an
    /// id of one kind is never a valid id of another.
    next_id: i64,
    legacy_api: bool,
    access_control_api: bool,
    calls: Vec<(u64, Call)>,
    next_call_seq: u64,
    faults: Vec<Fault>,
    last_timestamp_ms: i64,
}

impl State {
    fn new() -> Self {
        let mut orgs = BTreeMap::new();
        orgs.insert(1, "Main Org.".to_string());
        State {
            orgs,
            tokens: HashMap::new(),
            basic: HashMap::new(),
            users: Vec::new(),
            teams: Vec::new(),
            datasources: Vec::new(),
            next_id: 1,
            legacy_api: true,
            access_control_api: true,
            calls: Vec::new(),
            next_call_seq: 0,
            faults: Vec::new(),
            last_timestamp_ms: 0,
        }
    }

    fn new_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Wall-clock milliseconds, strictly increasing across calls so that an
    /// update always changes `updated`.
    fn timestamp_ms(&mut self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let ms = now.max(self.last_timestamp_ms.saturating_add(1));
        self.last_timestamp_ms = ms;
        ms
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

    fn user(&self, id: i64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    fn team(&self, id: i64) -> Option<&Team> {
        self.teams.iter().find(|t| t.id == id)
    }

    fn user_in_org(&self, id: i64, org: i64) -> bool {
        self.user(id).is_some_and(|u| u.orgs.contains(&org))
    }

    fn team_in_org(&self, id: i64, org: i64) -> bool {
        self.team(id).is_some_and(|t| t.org == org)
    }

    /// Whether a grantee can hold a permission on a data source of `org`.
    fn grantee_in_org(&self, grantee: &Grantee, org: i64) -> bool {
        match grantee {
            Grantee::User(id) => self.user_in_org(*id, org),
            Grantee::Team(id) => self.team_in_org(*id, org),
            Grantee::BuiltIn(role) => BUILT_IN_ROLES.contains(&role.as_str()),
        }
    }

    fn datasource_mut(&mut self, uid: &str) -> Option<&mut DataSource> {
        self.datasources.iter_mut().find(|d| d.uid == uid)
    }

    /// Index of a data source of `org` matching `pred`, or 404.
    fn find_datasource(
        &self,
        org: i64,
        pred: impl Fn(&DataSource) -> bool,
    ) -> Result<usize, ApiError> {
        self.datasources
            .iter()
            .position(|d| d.org == org && pred(d))
            .ok_or_else(datasource_not_found)
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

impl GrafanaEmulator {
    /// Binds 127.0.0.1 on a free port and serves in a tokio task.
    pub async fn start() -> GrafanaEmulator {
        Self::start_on(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await
    }

    /// Binds `addr` (e.g. `0.0.0.0:0` to be reachable from a cluster).
    pub async fn start_on(addr: SocketAddr) -> GrafanaEmulator {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("grafana emulator: cannot bind {addr}: {e}"));
        let local = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("grafana emulator: no local address: {e}"));
        let shared: Shared = Arc::new(Mutex::new(State::new()));
        let app = Router::new().fallback(entry).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        GrafanaEmulator {
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

    // --- setup: organisations and credentials ------------------------------

    /// Adds an organisation (or renames an existing one). Org 1 "Main Org."
    /// exists from the start.
    pub fn add_org(&self, id: i64, name: &str) {
        assert!(id > 0, "add_org: org ids are positive, got {id}");
        self.state().orgs.insert(id, name.to_string());
    }

    /// Registers a service-account token bound to `org_id` (replacing the
    /// org of an existing token). Panics if the org does not exist.
    pub fn add_token(&self, org_id: i64, token: &str) {
        let mut st = self.state();
        assert!(
            st.orgs.contains_key(&org_id),
            "add_token: unknown org {org_id}"
        );
        st.tokens.insert(
            token.to_string(),
            TokenPrincipal {
                org: org_id,
                read_only: false,
                revoked: false,
            },
        );
    }

    /// Registers a basic-auth principal that belongs to `orgs` (the first is
    /// its default org). Panics if `orgs` is empty or names an unknown org.
    pub fn add_basic_user(&self, login: &str, password: &str, orgs: &[i64]) {
        let mut st = self.state();
        assert!(!orgs.is_empty(), "add_basic_user: {login} needs an org");
        for org in orgs {
            assert!(
                st.orgs.contains_key(org),
                "add_basic_user: unknown org {org}"
            );
        }
        st.basic.insert(
            login.to_string(),
            BasicPrincipal {
                password: password.to_string(),
                orgs: orgs.to_vec(),
                read_only: false,
                revoked: false,
            },
        );
    }

    /// From now on, every write of a permission route by this token or basic
    /// login is answered 403. Panics if neither is known.
    pub fn set_read_only(&self, token_or_login: &str) {
        let mut st = self.state();
        let mut found = false;
        if let Some(token) = st.tokens.get_mut(token_or_login) {
            token.read_only = true;
            found = true;
        }
        if let Some(user) = st.basic.get_mut(token_or_login) {
            user.read_only = true;
            found = true;
        }
        assert!(found, "set_read_only: unknown principal {token_or_login}");
    }

    /// From now on, this token or basic login is answered 401. Panics if
    /// neither is known.
    pub fn revoke_credentials(&self, token_or_login: &str) {
        let mut st = self.state();
        let mut found = false;
        if let Some(token) = st.tokens.get_mut(token_or_login) {
            token.revoked = true;
            found = true;
        }
        if let Some(user) = st.basic.get_mut(token_or_login) {
            user.revoked = true;
            found = true;
        }
        assert!(
            found,
            "revoke_credentials: unknown principal {token_or_login}"
        );
    }

    /// Switches each permission API on or off (both on at start). A switched-off
    /// API answers 404 `{"message":"Not found"}` on all its routes.
    pub fn set_apis(&self, legacy: bool, access_control: bool) {
        let mut st = self.state();
        st.legacy_api = legacy;
        st.access_control_api = access_control;
    }

    // --- setup: data sources, users, teams ---------------------------------

    /// Adds a Prometheus data source to `org`; returns its id. It starts with
    /// the inherited `Admin` built-in role entry and with the legacy API's
    /// permissions disabled. Panics on an unknown org, a uid already used in
    /// any org, or a name already used in the org.
    pub fn add_datasource(&self, org: i64, uid: &str, name: &str) -> i64 {
        let mut st = self.state();
        assert!(
            st.orgs.contains_key(&org),
            "add_datasource: unknown org {org}"
        );
        assert!(
            !st.datasources.iter().any(|d| d.uid == uid),
            "add_datasource: uid {uid} already used"
        );
        assert!(
            !st.datasources
                .iter()
                .any(|d| d.org == org && d.name == name),
            "add_datasource: name {name} already used in org {org}"
        );
        let id = st.new_id();
        let entry_id = st.new_id();
        let ts = st.timestamp_ms();
        st.datasources.push(DataSource {
            id,
            uid: uid.to_string(),
            org,
            name: name.to_string(),
            kind: "prometheus".to_string(),
            url: "http://prometheus.monitoring:9090".to_string(),
            permissions_enabled: false,
            entries: vec![Entry {
                id: entry_id,
                grantee: Grantee::BuiltIn("Admin".to_string()),
                level: Level::Admin,
                managed: false,
                inherited: true,
                created_ms: ts,
                updated_ms: ts,
            }],
            enable_calls: 0,
            disable_calls: 0,
        });
        id
    }

    /// Adds a user to `org`; returns its id. Calling again with the same login
    /// adds the same user (same id, first email kept) to another org. Its name
    /// is made from the email's local part (`jane.doe@x` -> `Jane Doe`).
    pub fn add_user(&self, org: i64, login: &str, email: &str) -> i64 {
        let mut st = self.state();
        assert!(st.orgs.contains_key(&org), "add_user: unknown org {org}");
        if let Some(user) = st.users.iter_mut().find(|u| u.login == login) {
            if !user.orgs.contains(&org) {
                user.orgs.push(org);
            }
            return user.id;
        }
        let id = st.new_id();
        let created_ms = st.timestamp_ms();
        let local = email.split('@').next().unwrap_or_default();
        let name = local
            .split(['.', '_', '-'])
            .filter(|part| !part.is_empty())
            .map(capitalize)
            .collect::<Vec<_>>()
            .join(" ");
        st.users.push(User {
            id,
            uid: random_uid(),
            login: login.to_string(),
            email: email.to_string(),
            name,
            orgs: vec![org],
            created_ms,
        });
        id
    }

    /// Adds a team to `org`; returns its id. Panics on an unknown org or a
    /// name already used (exactly) in the org.
    pub fn add_team(&self, org: i64, name: &str) -> i64 {
        let mut st = self.state();
        assert!(st.orgs.contains_key(&org), "add_team: unknown org {org}");
        assert!(
            !st.teams.iter().any(|t| t.org == org && t.name == name),
            "add_team: team {name} already exists in org {org}"
        );
        let id = st.new_id();
        st.teams.push(Team {
            id,
            uid: random_uid(),
            org,
            name: name.to_string(),
        });
        id
    }

    // --- setup: permissions ------------------------------------------------

    /// Inserts an entry directly; returns its id. Panics on an unknown data
    /// source, a grantee that cannot hold a permission there (user or team of
    /// another org, unknown role), or a second managed non-inherited entry for
    /// the grantee.
    pub fn seed_permission(
        &self,
        ds_uid: &str,
        grantee: Grantee,
        level: Level,
        managed: bool,
        inherited: bool,
    ) -> i64 {
        let mut st = self.state();
        let org = st
            .datasources
            .iter()
            .find(|d| d.uid == ds_uid)
            .map(|d| d.org)
            .unwrap_or_else(|| panic!("seed_permission: unknown data source {ds_uid}"));
        assert!(
            st.grantee_in_org(&grantee, org),
            "seed_permission: {grantee:?} cannot hold a permission in org {org}"
        );
        let id = st.new_id();
        let ts = st.timestamp_ms();
        let ds = st
            .datasource_mut(ds_uid)
            .unwrap_or_else(|| panic!("seed_permission: unknown data source {ds_uid}"));
        let entry = Entry {
            id,
            grantee,
            level,
            managed,
            inherited,
            created_ms: ts,
            updated_ms: ts,
        };
        assert!(
            !entry.own()
                || !ds
                    .entries
                    .iter()
                    .any(|e| e.own() && e.grantee == entry.grantee),
            "seed_permission: {:?} already has a managed entry on {ds_uid}",
            entry.grantee
        );
        ds.entries.push(entry);
        id
    }

    /// Changes the level of the grantee's managed (non-inherited) entry behind
    /// the operator's back. Panics if there is none.
    pub fn set_level_directly(&self, ds_uid: &str, grantee: &Grantee, level: Level) {
        let mut st = self.state();
        let ts = st.timestamp_ms();
        let entry = st
            .datasource_mut(ds_uid)
            .and_then(|d| {
                d.entries
                    .iter_mut()
                    .find(|e| e.own() && e.grantee == *grantee)
            })
            .unwrap_or_else(|| {
                panic!("set_level_directly: {grantee:?} has no managed entry on {ds_uid}")
            });
        entry.level = level;
        entry.updated_ms = ts;
    }

    /// Removes the grantee's managed (non-inherited) entry behind the
    /// operator's back. Panics if there is none.
    pub fn remove_directly(&self, ds_uid: &str, grantee: &Grantee) {
        let mut st = self.state();
        let ds = st
            .datasource_mut(ds_uid)
            .unwrap_or_else(|| panic!("remove_directly: unknown data source {ds_uid}"));
        let before = ds.entries.len();
        ds.entries.retain(|e| !(e.own() && e.grantee == *grantee));
        assert!(
            ds.entries.len() < before,
            "remove_directly: {grantee:?} has no managed entry on {ds_uid}"
        );
    }

    /// Turns the legacy API's permissions of a data source on or off. Panics
    /// on an unknown data source.
    pub fn set_permissions_enabled(&self, ds_uid: &str, enabled: bool) {
        self.state()
            .datasource_mut(ds_uid)
            .unwrap_or_else(|| panic!("set_permissions_enabled: unknown data source {ds_uid}"))
            .permissions_enabled = enabled;
    }

    // --- inspection --------------------------------------------------------

    /// Every entry of a data source (inherited and unmanaged ones included),
    /// in creation order; empty if the data source is unknown.
    pub fn permissions(&self, ds_uid: &str) -> Vec<PermissionRecord> {
        self.state()
            .datasources
            .iter()
            .find(|d| d.uid == ds_uid)
            .map(|d| d.entries.iter().map(Entry::record).collect())
            .unwrap_or_default()
    }

    /// Whether the legacy API's permissions are enabled (false if unknown).
    pub fn permissions_enabled(&self, ds_uid: &str) -> bool {
        self.state()
            .datasources
            .iter()
            .any(|d| d.uid == ds_uid && d.permissions_enabled)
    }

    /// Successful `enable-permissions` calls on a data source.
    pub fn enable_calls(&self, ds_uid: &str) -> usize {
        self.state()
            .datasources
            .iter()
            .find(|d| d.uid == ds_uid)
            .map_or(0, |d| d.enable_calls)
    }

    /// Successful `disable-permissions` calls on a data source.
    pub fn disable_calls(&self, ds_uid: &str) -> usize {
        self.state()
            .datasources
            .iter()
            .find(|d| d.uid == ds_uid)
            .map_or(0, |d| d.disable_calls)
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

    // --- fault injection ---------------------------------------------------

    pub fn inject(&self, fault: Fault) {
        if fault.times > 0 {
            self.state().faults.push(fault);
        }
    }
}

impl Drop for GrafanaEmulator {
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
    let raw_header = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let authorization = raw_header(header::AUTHORIZATION.as_str());
    let org_id = raw_header(ORG_HEADER);

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
            .map_err(|_| {
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large or unreadable",
                )
            })
    };

    let seq = {
        let mut st = lock(&shared);
        let seq = st.next_call_seq;
        st.next_call_seq += 1;
        let recorded = body.as_ref().ok().and_then(recorded_body);
        st.calls.push((
            seq,
            Call {
                method: method.as_str().to_string(),
                path: path.clone(),
                query: query.clone(),
                status: 0,
                body: recorded,
                authorization,
                org_id,
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

fn recorded_body(bytes: &Bytes) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => Some(v),
        Err(_) => Some(Value::String(String::from_utf8_lossy(bytes).into_owned())),
    }
}

/// Where in the access-control API a permission is set.
enum AcTarget {
    User(String),
    Team(String),
    BuiltIn(String),
}

enum Route {
    Health,
    Org,
    DatasourceByUid(String),
    DatasourceByName(String),
    /// The raw id segment (validated by the handler).
    DatasourceById(String),
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
    let rest = path.strip_prefix("/api/")?;
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    let seg = |s: &str| percent_decode(s, false).ok().filter(|d| !d.is_empty());
    let route = match segs.as_slice() {
        ["health"] => Route::Health,
        ["org"] => Route::Org,
        ["org", "users"] => Route::OrgUsers,
        ["org", "users", "lookup"] => Route::UserLookup,
        ["teams", "search"] => Route::TeamSearch,
        // Static segments win over parameters, as in Grafana's router.
        ["datasources", "uid", uid] => Route::DatasourceByUid(seg(uid)?),
        ["datasources", "name", name] => Route::DatasourceByName(seg(name)?),
        ["datasources", id] => Route::DatasourceById(seg(id)?),
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

    let mut st = lock(shared);
    // A switched-off API is indistinguishable from an unknown route.
    let route = resolve(path).filter(|route| match route.api() {
        Api::Common => true,
        Api::Legacy => st.legacy_api,
        Api::AccessControl => st.access_control_api,
    });
    let Some(route) = route else {
        return error(StatusCode::NOT_FOUND, "Not found");
    };
    if !route.allowed().contains(method) {
        let allow = route
            .allowed()
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
        if let Ok(v) = HeaderValue::from_str(&allow) {
            response.headers_mut().insert(header::ALLOW, v);
        }
        return response;
    }
    if !route.needs_auth() {
        return json_response(
            StatusCode::OK,
            &json!({"database": "ok", "version": VERSION}),
        );
    }
    let principal = match authenticate(&st, headers) {
        Ok(principal) => principal,
        Err(e) => return e.into_response(),
    };
    // Every route that is not a GET writes permissions.
    if method != Method::GET && principal.read_only {
        return error(StatusCode::FORBIDDEN, READ_ONLY_MESSAGE);
    }
    let org = principal.org;
    let result = match route {
        Route::Health => Ok(json_response(StatusCode::OK, &json!({}))),
        Route::Org => get_org(&st, org),
        Route::DatasourceByUid(uid) => get_datasource(&st, org, |d| d.uid == uid),
        Route::DatasourceByName(name) => get_datasource(&st, org, |d| d.name == name),
        Route::DatasourceById(raw) => {
            parse_id(&raw, "id is invalid").and_then(|id| get_datasource(&st, org, |d| d.id == id))
        }
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
    };
    result.unwrap_or_else(ApiError::into_response)
}

type Answer = Result<Response, ApiError>;

/// An error answer not yet rendered.
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

fn bad_request(message: impl Into<String>) -> ApiError {
    err(StatusCode::BAD_REQUEST, message)
}

fn bad_request_data() -> ApiError {
    bad_request("bad request data")
}

fn datasource_not_found() -> ApiError {
    err(StatusCode::NOT_FOUND, "Data source not found")
}

impl ApiError {
    fn into_response(self) -> Response {
        error(self.status, self.message)
    }
}

// ---------------------------------------------------------------------------
// Auth
// ---------------------------------------------------------------------------

fn authenticate(st: &State, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let unauthorized = || err(StatusCode::UNAUTHORIZED, "Unauthorized");
    let values: Vec<&HeaderValue> = headers.get_all(header::AUTHORIZATION).iter().collect();
    let [value] = values.as_slice() else {
        return Err(unauthorized());
    };
    let value = value.to_str().map_err(|_| unauthorized())?;
    let (scheme, credentials) = value.split_once(' ').ok_or_else(unauthorized)?;
    let credentials = credentials.trim();
    // (orgs the principal may act in, the first being the default; read-only)
    let (orgs, read_only) = if scheme.eq_ignore_ascii_case("bearer") {
        let token = st
            .tokens
            .get(credentials)
            .filter(|t| !t.revoked)
            .ok_or_else(unauthorized)?;
        (vec![token.org], token.read_only)
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .map_err(|_| unauthorized())?;
        let decoded = String::from_utf8(decoded).map_err(|_| unauthorized())?;
        let (login, password) = decoded.split_once(':').ok_or_else(unauthorized)?;
        let user = st
            .basic
            .get(login)
            .filter(|u| !u.revoked && u.password == password)
            .ok_or_else(unauthorized)?;
        (user.orgs.clone(), user.read_only)
    } else {
        return Err(unauthorized());
    };
    let default = orgs.first().copied().ok_or_else(unauthorized)?;

    let values: Vec<&HeaderValue> = headers.get_all(ORG_HEADER).iter().collect();
    let org = match values.as_slice() {
        [] => default,
        [value] => {
            let invalid = || bad_request("X-Grafana-Org-Id must be a positive integer");
            let text = value.to_str().map_err(|_| invalid())?;
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            let org = text.parse::<i64>().map_err(|_| invalid())?;
            if org <= 0 {
                return Err(invalid());
            }
            if !orgs.contains(&org) {
                return Err(err(
                    StatusCode::UNAUTHORIZED,
                    format!("Unauthorized: not a member of organization {org}"),
                ));
            }
            org
        }
        _ => return Err(bad_request("X-Grafana-Org-Id given more than once")),
    };
    Ok(Principal { org, read_only })
}

// ---------------------------------------------------------------------------
// Org, data sources, users, teams
// ---------------------------------------------------------------------------

fn get_org(st: &State, org: i64) -> Answer {
    let name = st
        .orgs
        .get(&org)
        .ok_or_else(|| err(StatusCode::NOT_FOUND, "Organization not found"))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"id": org, "name": name}),
    ))
}

fn get_datasource(st: &State, org: i64, pred: impl Fn(&DataSource) -> bool) -> Answer {
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

fn user_lookup(st: &State, org: i64, query: &str) -> Answer {
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

fn org_users(st: &State, org: i64, query: &str) -> Answer {
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

fn team_search(st: &State, org: i64, query: &str) -> Answer {
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

// ---------------------------------------------------------------------------
// Legacy permissions API
// ---------------------------------------------------------------------------

fn parse_id(raw: &str, message: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().map_err(|_| bad_request(message))
}

/// Index of the data source of `org` with the numeric id in `raw`.
fn legacy_datasource(st: &State, org: i64, raw: &str) -> Result<usize, ApiError> {
    let id = parse_id(raw, "id is invalid")?;
    st.find_datasource(org, |d| d.id == id)
}

/// What the legacy API sees: managed, non-inherited user and team entries.
fn legacy_visible(entry: &Entry) -> bool {
    entry.own() && matches!(entry.grantee, Grantee::User(_) | Grantee::Team(_))
}

fn legacy_list(st: &State, org: i64, raw: &str) -> Answer {
    let idx = legacy_datasource(st, org, raw)?;
    let d = st.datasources.get(idx).ok_or_else(datasource_not_found)?;
    let permissions: Vec<Value> = d
        .entries
        .iter()
        .filter(|e| legacy_visible(e))
        .map(|e| {
            let mut obj = Map::new();
            obj.insert("id".into(), json!(e.id));
            obj.insert("datasourceId".into(), json!(d.id));
            match &e.grantee {
                Grantee::User(id) => {
                    let user = st.user(*id);
                    let login = user.map(|u| u.login.as_str()).unwrap_or_default();
                    let email = user.map(|u| u.email.as_str()).unwrap_or_default();
                    obj.insert("userId".into(), json!(id));
                    obj.insert("userLogin".into(), json!(login));
                    obj.insert("userEmail".into(), json!(email));
                    obj.insert("userAvatarUrl".into(), json!(avatar_url(email)));
                }
                Grantee::Team(id) => {
                    let name = st.team(*id).map(|t| t.name.as_str()).unwrap_or_default();
                    obj.insert("teamId".into(), json!(id));
                    obj.insert("team".into(), json!(name));
                    obj.insert("teamAvatarUrl".into(), json!(avatar_url(name)));
                }
                Grantee::BuiltIn(_) => {}
            }
            obj.insert("permission".into(), json!(e.level.legacy_code()));
            obj.insert("permissionName".into(), json!(e.level.name()));
            obj.insert("created".into(), json!(rfc3339_millis(e.created_ms)));
            obj.insert("updated".into(), json!(rfc3339_millis(e.updated_ms)));
            Value::Object(obj)
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "datasourceId": d.id,
            "enabled": d.permissions_enabled,
            "permissions": permissions,
        }),
    ))
}

/// A JSON object body sent as `application/json`, or `bad request data`.
fn json_object(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if !media_type_is(headers, "application/json") {
        return Err(bad_request_data());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        _ => Err(bad_request_data()),
    }
}

/// A positive integer JSON value.
fn positive_id(value: &Value) -> Option<i64> {
    value.as_i64().filter(|id| *id > 0)
}

fn legacy_add(st: &mut State, org: i64, raw: &str, headers: &HeaderMap, body: &Bytes) -> Answer {
    let idx = legacy_datasource(st, org, raw)?;
    let obj = json_object(headers, body)?;
    if obj
        .keys()
        .any(|k| !matches!(k.as_str(), "userId" | "teamId" | "permission"))
    {
        return Err(bad_request_data());
    }
    let grantee = match (obj.get("userId"), obj.get("teamId")) {
        (Some(user), None) => Grantee::User(positive_id(user).ok_or_else(bad_request_data)?),
        (None, Some(team)) => Grantee::Team(positive_id(team).ok_or_else(bad_request_data)?),
        _ => return Err(bad_request_data()),
    };
    let level = match obj.get("permission").and_then(Value::as_i64) {
        Some(1) => Level::Query,
        Some(2) => Level::Edit,
        _ => return Err(bad_request_data()),
    };
    let enabled = st
        .datasources
        .get(idx)
        .ok_or_else(datasource_not_found)?
        .permissions_enabled;
    if !enabled {
        return Err(bad_request(
            "Permissions are not enabled for this data source",
        ));
    }
    match grantee {
        Grantee::User(id) if !st.user_in_org(id, org) => {
            return Err(bad_request("Failed to add permission: user not found"));
        }
        Grantee::Team(id) if !st.team_in_org(id, org) => {
            return Err(bad_request("Failed to add permission: team not found"));
        }
        _ => {}
    }
    let id = st.new_id();
    let ts = st.timestamp_ms();
    let d = st
        .datasources
        .get_mut(idx)
        .ok_or_else(datasource_not_found)?;
    if d.entries.iter().any(|e| e.own() && e.grantee == grantee) {
        return Err(bad_request("Permission for user/team already exists"));
    }
    d.entries.push(Entry {
        id,
        grantee,
        level,
        managed: true,
        inherited: false,
        created_ms: ts,
        updated_ms: ts,
    });
    Ok(message(StatusCode::OK, "Datasource permission added"))
}

fn legacy_remove(st: &mut State, org: i64, raw: &str, raw_permission: &str) -> Answer {
    let idx = legacy_datasource(st, org, raw)?;
    let permission_id = parse_id(raw_permission, "permissionId is invalid")?;
    let d = st
        .datasources
        .get_mut(idx)
        .ok_or_else(datasource_not_found)?;
    let position = d
        .entries
        .iter()
        .position(|e| e.id == permission_id && legacy_visible(e))
        .ok_or_else(|| err(StatusCode::NOT_FOUND, "Permission not found"))?;
    d.entries.remove(position);
    Ok(message(StatusCode::OK, "Datasource permission removed"))
}

fn legacy_switch(
    st: &mut State,
    org: i64,
    raw: &str,
    headers: &HeaderMap,
    body: &Bytes,
    enable: bool,
) -> Answer {
    let idx = legacy_datasource(st, org, raw)?;
    // An empty body, or `{}` sent as JSON.
    if !body.is_empty() && !json_object(headers, body)?.is_empty() {
        return Err(bad_request_data());
    }
    let d = st
        .datasources
        .get_mut(idx)
        .ok_or_else(datasource_not_found)?;
    d.permissions_enabled = enable;
    if enable {
        d.enable_calls += 1;
        Ok(message(StatusCode::OK, "Datasource permissions enabled"))
    } else {
        d.disable_calls += 1;
        Ok(message(StatusCode::OK, "Datasource permissions disabled"))
    }
}

// ---------------------------------------------------------------------------
// Access-control permissions API
// ---------------------------------------------------------------------------

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

fn ac_list(st: &State, org: i64, uid: &str) -> Answer {
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
            match &e.grantee {
                Grantee::User(id) => {
                    let user = st.user(*id);
                    let login = user.map(|u| u.login.as_str()).unwrap_or_default();
                    let email = user.map(|u| u.email.as_str()).unwrap_or_default();
                    obj.insert("userId".into(), json!(id));
                    obj.insert("userLogin".into(), json!(login));
                    obj.insert("userAvatarUrl".into(), json!(avatar_url(email)));
                }
                Grantee::Team(id) => {
                    let name = st.team(*id).map(|t| t.name.as_str()).unwrap_or_default();
                    obj.insert("teamId".into(), json!(id));
                    obj.insert("team".into(), json!(name));
                    obj.insert("teamAvatarUrl".into(), json!(avatar_url(name)));
                }
                Grantee::BuiltIn(role) => {
                    obj.insert("builtInRole".into(), json!(role));
                }
            }
            obj.insert("actions".into(), json!(e.level.actions()));
            obj.insert("permission".into(), json!(e.level.name()));
            Value::Object(obj)
        })
        .collect();
    Ok(json_response(StatusCode::OK, &Value::Array(entries)))
}

fn ac_set(
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
    match grantee {
        Grantee::User(id) if !st.user_in_org(id, org) => {
            return Err(bad_request("user not found"));
        }
        Grantee::Team(id) if !st.team_in_org(id, org) => {
            return Err(bad_request("team not found"));
        }
        _ => {}
    }
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
        (Some(level), None) => d.entries.push(Entry {
            id: new_id,
            grantee,
            level,
            managed: true,
            inherited: false,
            created_ms: ts,
            updated_ms: ts,
        }),
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

/// The Grafana answer `{"message"}`, for errors and for most writes.
fn message(status: StatusCode, message: impl AsRef<str>) -> Response {
    json_response(status, &json!({"message": message.as_ref()}))
}

fn error(status: StatusCode, text: impl AsRef<str>) -> Response {
    message(status, text)
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

/// Parses `a=1&b=2`.
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

/// `/avatar/<32 hex digits>` derived from `key` (Grafana uses an MD5 of the
/// email; any stable digest does for tests).
fn avatar_url(key: &str) -> String {
    let fnv = |seed: u64| {
        key.to_lowercase().bytes().fold(seed, |hash, b| {
            (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    format!(
        "/avatar/{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x8422_2325_cbf2_9ce4)
    )
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

/// A Grafana-like uid: 14 lowercase letters and digits.
fn random_uid() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..14)
        .map(|_| {
            let i = (random_u64() % ALPHABET.len() as u64) as usize;
            char::from(ALPHABET.get(i).copied().unwrap_or(b'x'))
        })
        .collect()
}
