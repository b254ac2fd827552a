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
use std::sync::Mutex;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::emulator::{self, ApiError, Millis, Server, Vendor, json_response, random_from};
#[allow(unused_imports)] // re-exported for the tests that use them
pub use super::emulator::{Call, Fault, FaultKind};

mod access_control;
mod auth;
mod control;
mod legacy;
mod lookups;
mod routes;

pub use lookups::DATASOURCE_LIMIT;
use routes::{datasource_not_found, handle};

/// Default `limit` of the user look-up and `perpage` of the team search.
const DEFAULT_PAGE: i64 = 1000;
const ORG_HEADER: &str = "x-grafana-org-id";
const VERSION: &str = "10.2.3";
const BUILT_IN_ROLES: [&str; 3] = ["Viewer", "Editor", "Admin"];
const READ_ONLY_MESSAGE: &str = "You'll need additional permissions to perform this action. \
                                 Permissions needed: datasources.permissions:write";

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
    /// An entry a client writes (managed, not inherited), made at `ts`.
    fn written(id: i64, grantee: Grantee, level: Level, ts: i64) -> Entry {
        Entry {
            id,
            grantee,
            level,
            managed: true,
            inherited: false,
            created_ms: ts,
            updated_ms: ts,
        }
    }

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

/// The emulator. The server stops when this value is dropped.
pub type GrafanaEmulator = Server<Grafana>;

/// Grafana's side of the [`Server`]: routes, auth and state.
#[derive(Default)]
pub struct Grafana(Mutex<State>);

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
