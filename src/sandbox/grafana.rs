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
//! Server, call log and fault injection are the shared plumbing of
//! `super::emulator`: [`GrafanaEmulator`] is a [`Server`], which gives `url`, `addr`,
//! `calls`, `clear_calls`, `count` and `inject`.
//! The org header a request sent is `call.header("x-grafana-org-id")`.
//!
//! Dependencies: axum 0.8, tokio, serde_json, http 1, base64 0.22 and std.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::emulator::{
    self, Answer, ApiError, Millis, Server, Vendor, capitalize, err, json_response, lock,
    media_type_is, params, path_segment, random_from, rfc3339_millis, unknown_key,
};
#[allow(unused_imports)] // re-exported for the tests that use them
pub use super::emulator::{Call, Fault, FaultKind};

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

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

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
    /// Entries the listings show as given, after the real ones (see
    /// [`GrafanaEmulator::inject_raw_entry`]).
    raw_access: Vec<Value>,
    raw_legacy: Vec<Value>,
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
    clock: Millis,
}

impl Default for State {
    fn default() -> Self {
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
            clock: Millis::default(),
        }
    }
}

impl State {
    fn new_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Wall-clock milliseconds, strictly increasing across calls so that an
    /// update always changes `updated`.
    fn timestamp_ms(&mut self) -> i64 {
        self.clock.now()
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

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/// The emulator. The server stops when this value is dropped.
pub type GrafanaEmulator = Server<Grafana>;

/// Grafana's side of the [`Server`]: routes, auth and state.
#[derive(Default)]
pub struct Grafana(Mutex<State>);

impl GrafanaEmulator {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.vendor().0)
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
            raw_access: Vec::new(),
            raw_legacy: Vec::new(),
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

    /// Adds an entry that the data source's permission listing of one API
    /// (`legacy` or AccessControl) shows exactly as given, after its real
    /// entries (for instance one a client cannot read). It cannot be changed
    /// through the API. Panics on an unknown data source.
    pub fn inject_raw_entry(&self, ds_uid: &str, legacy: bool, entry: Value) {
        let mut st = self.state();
        let ds = st
            .datasource_mut(ds_uid)
            .unwrap_or_else(|| panic!("inject_raw_entry: unknown data source {ds_uid}"));
        if legacy {
            ds.raw_legacy.push(entry);
        } else {
            ds.raw_access.push(entry);
        }
    }

    /// Removes the entries added with [`Self::inject_raw_entry`].
    pub fn clear_raw_entries(&self, ds_uid: &str) {
        let mut st = self.state();
        if let Some(ds) = st.datasource_mut(ds_uid) {
            ds.raw_access.clear();
            ds.raw_legacy.clear();
        }
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
}

// ---------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------

impl Vendor for Grafana {
    const NAME: &'static str = "grafana";
    const MAX_BODY_BYTES: usize = 1024 * 1024;

    fn error(status: StatusCode, message: &str) -> Response {
        error(status, message)
    }

    fn handle(&self, request: &emulator::Request) -> Response {
        handle(&self.0, request).unwrap_or_else(ApiError::into_response::<Grafana>)
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

fn handle(shared: &Mutex<State>, request: &emulator::Request) -> Answer {
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

fn bad_request(message: impl Into<String>) -> ApiError {
    err(StatusCode::BAD_REQUEST, message)
}

fn bad_request_data() -> ApiError {
    bad_request("bad request data")
}

fn datasource_not_found() -> ApiError {
    err(StatusCode::NOT_FOUND, "Data source not found")
}

// ---------------------------------------------------------------------------
// Auth
// ---------------------------------------------------------------------------

fn authenticate(st: &State, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let unauthorized = || err(StatusCode::UNAUTHORIZED, "Unauthorized");
    let (scheme, credentials) = emulator::authorization(headers)
        .ok()
        .flatten()
        .ok_or_else(unauthorized)?;
    let credentials = credentials.as_str();
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

/// Grafana's default `datasource_limit`: the listing shows at most this many.
pub const DATASOURCE_LIMIT: usize = 5000;

/// `GET /api/datasources`: the data sources of the org in the fields of
/// Grafana's listing, by name, at most [`DATASOURCE_LIMIT`] (no pages).
fn list_datasources(st: &State, org: i64) -> Answer {
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
        .chain(d.raw_legacy.iter().cloned())
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
    if unknown_key(&obj, &["userId", "teamId", "permission"]).is_some() {
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
        .chain(d.raw_access.iter().cloned())
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

/// The Grafana answer `{"message"}`, for errors and for most writes.
fn message(status: StatusCode, message: impl AsRef<str>) -> Response {
    json_response(status, &json!({"message": message.as_ref()}))
}

fn error(status: StatusCode, text: impl AsRef<str>) -> Response {
    message(status, text)
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

/// A Grafana-like uid: 14 lowercase letters and digits.
fn random_uid() -> String {
    random_from(b"abcdefghijklmnopqrstuvwxyz0123456789", 14)
}
