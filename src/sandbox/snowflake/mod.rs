//! Strict in-process HTTP emulator of Snowflake's grants REST APIs, for
//! integration tests.
//!
//! - Auth: `Authorization: Bearer <token>` with
//!   `X-Snowflake-Authorization-Token-Type` on every call. `KEYPAIR_JWT`: RS256
//!   signature checked against the public keys registered for `ACCOUNT.USER`,
//!   `iss` must carry the SHA-256 fingerprint of one of them, `sub` the user,
//!   `iat` not in the future and `exp` not passed and at most an hour after
//!   `iat` (the emulator's clock can be moved). `OAUTH` and
//!   `PROGRAMMATIC_ACCESS_TOKEN`: tokens registered with their kind. Anything
//!   else is 401 with Snowflake's error body `{message, code, request_id}`.
//! - `RoleGrants`: `/api/v2/roles/{name}/grants` (GET, POST), `grants:revoke`
//!   (`grant_option: true` in its body revokes only the grant option; `mode` its
//!   only query parameter), `future-grants` and `future-grants:revoke`, the
//!   same under `/api/v2/databases/{db}/database-roles/{name}/`, and
//!   `/api/v2/users/{name}/grants` (and `grants:revoke`).
//! - Roles are granted whole (`securable_type` `ROLE` or `DATABASE ROLE`, no
//!   privileges but `USAGE`, no grant option): to users (whose grants take only
//!   `ROLE`, with no `grant_option` field and no query parameter, as user.yaml
//!   defines them), to roles, and database roles to database roles of their own
//!   database. Listings show a granted role as `SHOW GRANTS` does: USAGE on a
//!   `ROLE` or `DATABASE_ROLE`, and to a user only the role. The `Legacy`
//!   privilege paths grant nothing to users and no role.
//! - `Legacy`: `/api/v2/grants/{granteeType}/{granteeName}` (listing), `.../{securableType}/{securableName}/privileges`
//!   (POST; DELETE `/{privilege}` and `/{privilege}/grant-option`) and the bulk
//!   `.../{all|future}/{plural}/{scopeType}/{scopeName}/privileges` paths, with
//!   only the values `grant.yaml` defines: `granteeType` `role`,
//!   `database-role`, `user` (`application-role` and `share` name nobody here),
//!   `scopeType` `database` / `schema`, plurals lower-case (`tables`), and
//!   `deleteMode` the only query parameter (of the revokes). Anything else is 400.
//! - Objects: databases, schemas, tables, views, warehouses; listings of schemas,
//!   tables and views; `GET /api/v2/roles?showLimit=`.
//! - Identifiers: each name in a path or body is read with Snowflake's rules
//!   (unquoted upper-cased, quoted kept exactly with `""` for a quote).
//! - Bulk `all` (`Legacy`'s `all` paths, `RoleGrants`' `containing_scope` on
//!   `grants`) expands to the objects existing at that moment, and its revoke
//!   strips every object of the scope, whoever declared it; `future` grants
//!   are kept apart (listed only in `future-grants`) and applied to objects
//!   created later with [`SnowflakeEmulator::add_table`] and friends.
//! - `202`: [`SnowflakeEmulator::answer_async`] makes the next requests answer
//!   `202 {code: "392604", resultHandler}` with a `Location`; the result is
//!   `GET /api/v2/results/{handle}`, `202` until polled enough, then the answer.
//! - Listings answer at most `showLimit` rows (10,000 without it), as the SHOW
//!   command behind them does; [`SnowflakeEmulator::set_page_size`] cuts that
//!   answer into pages linked with `Link: </api/v2/results/{handle}>;
//!   rel="next"`, never past the cap. Test hooks give a grantee more grants than
//!   the cap ([`SnowflakeEmulator::add_filler_grants`] and friends), describe
//!   future grants by their `securable` as the definition allows
//!   ([`SnowflakeEmulator::list_futures_as_securables`]), or add rows as they
//!   are ([`SnowflakeEmulator::add_raw_row`]).
//! - Fault injection and the call log are the shared plumbing of `super::emulator`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::emulator::{self, Server, Vendor, json_response, lock};
#[allow(unused_imports)]
pub use super::emulator::{Call, Fault, FaultKind};

mod auth;
mod control;
mod ident;
mod listings;
mod role_grants;
mod routes;
mod store;
mod wire;

pub use auth::fingerprint;
pub use ident::ident;

/// The emulator.
pub type SnowflakeEmulator = Server<Snowflake>;

/// A grant key as tests compare them: `(securable, privilege)` with
/// `" WITH GRANT OPTION"` appended when it carries the option.
pub type Held = (String, String);

const TYPES: &[&str] = &[
    "DATABASE",
    "SCHEMA",
    "TABLE",
    "VIEW",
    "WAREHOUSE",
    "ROLE",
    "DATABASE ROLE",
];

fn valid_privileges(type_: &str) -> &'static [&'static str] {
    match type_ {
        "DATABASE" => &["USAGE", "MONITOR", "CREATE SCHEMA", "MODIFY"],
        "SCHEMA" => &["USAGE", "MONITOR", "CREATE TABLE", "CREATE VIEW", "MODIFY"],
        "TABLE" => &[
            "SELECT",
            "INSERT",
            "UPDATE",
            "DELETE",
            "TRUNCATE",
            "REFERENCES",
        ],
        "VIEW" => &["SELECT", "REFERENCES"],
        "WAREHOUSE" => &["USAGE", "OPERATE", "MONITOR", "MODIFY"],
        // A granted role shows as USAGE on it.
        "ROLE" | "DATABASE ROLE" => &["USAGE"],
        _ => &[],
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GranteeType {
    Role,
    DatabaseRole,
    User,
}

impl GranteeType {
    fn wire(self) -> &'static str {
        match self {
            GranteeType::Role => "ROLE",
            GranteeType::DatabaseRole => "DATABASE_ROLE",
            GranteeType::User => "USER",
        }
    }
    fn from_wire(text: &str) -> Option<GranteeType> {
        match text {
            "ROLE" => Some(GranteeType::Role),
            "DATABASE_ROLE" => Some(GranteeType::DatabaseRole),
            "USER" => Some(GranteeType::User),
            _ => None,
        }
    }
}

type GranteeId = (GranteeType, String);
/// `(type, dotted name as shown)`.
type Object = (String, String);
/// `(singular type, scope type, scope name)`.
type FutureKey = (String, String, String);

#[derive(Default)]
struct Schema {
    tables: BTreeSet<String>,
    views: BTreeSet<String>,
}

#[derive(Default)]
struct State {
    /// `ACCOUNT.USER` -> registered public keys (SPKI DER).
    key_users: HashMap<String, Vec<Vec<u8>>>,
    tokens: HashMap<String, &'static str>,
    clock_offset: i64,
    databases: BTreeMap<String, BTreeMap<String, Schema>>,
    warehouses: BTreeSet<String>,
    roles: BTreeSet<String>,
    database_roles: BTreeSet<String>,
    users: BTreeSet<String>,
    grants: BTreeMap<GranteeId, BTreeMap<Object, BTreeMap<String, bool>>>,
    futures: BTreeMap<GranteeId, BTreeMap<FutureKey, BTreeMap<String, bool>>>,
    /// Requests still to answer `202`, and the polls each result needs.
    async_left: usize,
    async_polls: usize,
    results: HashMap<String, (usize, StatusCode, Value)>,
    result_polls: usize,
    writes: usize,
    /// Rows per page of every listing (`None`: one page).
    page_size: Option<usize>,
    /// Rows added as they are to a grantee's grants (`false`) or future-grants
    /// (`true`) listing, read or not.
    raw_rows: BTreeMap<(GranteeId, bool), Vec<Value>>,
    /// Whether the future-grants listing describes each grant by the
    /// `securable` it is on (`SALES.PUBLIC.<TABLE>`) rather than its
    /// `containing_scope`; the definition's Grant allows both.
    futures_as_securable: bool,
    pages: HashMap<String, Vec<Value>>,
    page_reads: usize,
}

/// The emulator's state.
#[derive(Default)]
pub struct Snowflake {
    state: Mutex<State>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn request_id() -> String {
    emulator::uuid_like()
}

impl Vendor for Snowflake {
    const NAME: &'static str = "snowflake";
    const MAX_BODY_BYTES: usize = 1024 * 1024;

    fn error(status: StatusCode, message: &str) -> Response {
        let code = match status.as_u16() {
            401 => "390144",
            404 => "002003",
            _ => "000001",
        };
        json_response(
            status,
            &json!({"message": message, "code": code, "request_id": request_id()}),
        )
    }

    fn handle(&self, request: &emulator::Request) -> Response {
        let mut state = lock(&self.state);
        match state.route(request) {
            Ok(response) => response,
            Err(error) => error.into_response::<Snowflake>(),
        }
    }
}
