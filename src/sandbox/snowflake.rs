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

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use serde_json::{Map, Value, json};

use super::emulator::{
    self, Answer, Server, Vendor, err, json_response, lock, params, percent_decode, random_alnum,
    unknown_key,
};
#[allow(unused_imports)]
pub use super::emulator::{Call, Fault, FaultKind};

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

// ---------------------------------------------------------------------------
// Identifiers (the emulator's own reading of Snowflake's rules)
// ---------------------------------------------------------------------------

fn plain_upper(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '$')
}

fn quote(text: &str) -> String {
    if plain_upper(text) {
        text.to_string()
    } else {
        format!("\"{}\"", text.replace('"', "\"\""))
    }
}

/// The parts of a (dotted) identifier, each as Snowflake shows it.
pub fn ident(text: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    loop {
        if chars.get(i) == Some(&'"') {
            i += 1;
            let mut inner = String::new();
            loop {
                match chars.get(i) {
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        inner.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        inner.push(*c);
                        i += 1;
                    }
                    None => return None,
                }
            }
            if inner.is_empty() {
                return None;
            }
            parts.push(quote(&inner));
        } else {
            let start = i;
            while let Some(c) = chars.get(i) {
                if *c == '.' {
                    break;
                }
                if !(c.is_ascii_alphanumeric() || *c == '_' || *c == '$') {
                    return None;
                }
                i += 1;
            }
            let bare: String = chars[start..i].iter().collect();
            if bare.is_empty() || bare.starts_with(|c: char| c.is_ascii_digit() || c == '$') {
                return None;
            }
            parts.push(bare.to_ascii_uppercase());
        }
        match chars.get(i) {
            None => return Some(parts),
            Some('.') => i += 1,
            Some(_) => return None,
        }
    }
}

fn one(text: &str) -> Option<String> {
    match ident(text)?.as_slice() {
        [part] => Some(part.clone()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

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

fn spki_der(public_pem: &str) -> Vec<u8> {
    let body: String = public_pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .expect("public key PEM")
}

/// The base64 SHA-256 fingerprint of a PEM public key (`DESC USER` shows it).
pub fn fingerprint(public_pem: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, &spki_der(public_pem));
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
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

fn bad(message: impl Into<String>) -> emulator::ApiError {
    err(StatusCode::BAD_REQUEST, message)
}

fn missing(message: impl Into<String>) -> emulator::ApiError {
    err(StatusCode::NOT_FOUND, message)
}

fn ok() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"status": "Request successfully completed"}),
    )
}

fn body_object(request: &emulator::Request) -> Result<Map<String, Value>, emulator::ApiError> {
    if !emulator::media_type_is(&request.headers, "application/json") {
        return Err(bad("Content-Type must be application/json"));
    }
    match serde_json::from_slice::<Value>(&request.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(bad("the request body is not a JSON object")),
    }
}

fn privileges_of(body: &Map<String, Value>) -> Result<Vec<String>, emulator::ApiError> {
    let list = body
        .get("privileges")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("privileges is required"))?;
    if list.is_empty() {
        return Err(bad("privileges is empty"));
    }
    list.iter()
        .map(|p| {
            p.as_str()
                .filter(|p| {
                    !p.is_empty()
                        && p.split(' ').all(|w| {
                            !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                        })
                })
                .map(String::from)
                .ok_or_else(|| bad(format!("invalid privilege {p}")))
        })
        .collect()
}

fn grant_option_of(body: &Map<String, Value>) -> Result<bool, emulator::ApiError> {
    match body.get("grant_option") {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad("grant_option must be a boolean")),
    }
}

/// `granteeType` of the Legacy paths: the definition's enum (`user`, `role`,
/// `application-role`, `database-role`, `share`); the emulator holds no
/// application roles or shares, so those name nobody.
fn legacy_grantee_type(text: &str) -> Result<GranteeType, emulator::ApiError> {
    match text {
        "role" => Ok(GranteeType::Role),
        "database-role" => Ok(GranteeType::DatabaseRole),
        "user" => Ok(GranteeType::User),
        "application-role" | "share" => Err(missing(format!(
            "{text} grantees are not held by this account"
        ))),
        _ => Err(bad(format!(
            "granteeType must be one of user, role, application-role, database-role, share, not {text}"
        ))),
    }
}

/// `securableTypePlural` of the Legacy bulk paths, lower-case as the
/// definition writes it ("schemas", "tables").
fn legacy_plural(text: &str) -> Result<&'static str, emulator::ApiError> {
    match text {
        "tables" => Ok("TABLE"),
        "views" => Ok("VIEW"),
        "schemas" => Ok("SCHEMA"),
        _ if text.chars().any(|c| c.is_ascii_uppercase()) => Err(bad(format!(
            "securableTypePlural is a lower-case plural type such as tables, not {text}"
        ))),
        _ => Err(bad(format!("unsupported securableTypePlural {text}"))),
    }
}

/// `scopeType` of the Legacy bulk paths: the definition's enum (`database`, `schema`).
fn legacy_scope_type(text: &str) -> Result<&'static str, emulator::ApiError> {
    match text {
        "database" => Ok("DATABASE"),
        "schema" => Ok("SCHEMA"),
        _ => Err(bad(format!(
            "scopeType must be one of database, schema, not {text}"
        ))),
    }
}

/// A securable type as listings write it (`SHOW GRANTS` joins words with `_`).
fn listed_type(type_: &str) -> String {
    type_.replace(' ', "_")
}

/// `ROLE` or `DATABASE ROLE` (any case, `_` for the space): a granted role.
fn role_type(text: &str) -> Option<&'static str> {
    let words: Vec<String> = text
        .split([' ', '_'])
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    match words.join(" ").as_str() {
        "ROLE" => Some("ROLE"),
        "DATABASE ROLE" => Some("DATABASE ROLE"),
        _ => None,
    }
}

/// A body's `securable_type`, as a SQL keyword phrase: case does not matter,
/// and `_` reads as a space (`database_role`, `DATABASE ROLE`).
fn securable_type_of(body: &Map<String, Value>) -> Result<String, emulator::ApiError> {
    let text = body
        .get("securable_type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("securable_type is required"))?;
    let words: Vec<String> = text
        .split([' ', '_'])
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    if words.is_empty()
        || !words
            .iter()
            .all(|w| w.chars().all(|c| c.is_ascii_uppercase()))
    {
        return Err(bad(format!("invalid securable_type {text}")));
    }
    Ok(words.join(" "))
}

fn singular(plural: &str) -> Option<&'static str> {
    match plural {
        "TABLES" => Some("TABLE"),
        "VIEWS" => Some("VIEW"),
        "SCHEMAS" => Some("SCHEMA"),
        _ => None,
    }
}

impl State {
    fn now(&self) -> i64 {
        now() + self.clock_offset
    }

    fn authenticate(&self, request: &emulator::Request) -> Result<(), emulator::ApiError> {
        let unauthorized = |m: &str| err(StatusCode::UNAUTHORIZED, m);
        let token_type = request
            .headers
            .get("x-snowflake-authorization-token-type")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized("X-Snowflake-Authorization-Token-Type is missing"))?;
        let token = match emulator::authorization(&request.headers) {
            Ok(Some((scheme, token))) if scheme == "Bearer" => token,
            _ => return Err(unauthorized("Bearer token is missing")),
        };
        match token_type {
            "KEYPAIR_JWT" => self.verify_jwt(&token).map_err(|m| unauthorized(&m)),
            "OAUTH" | "PROGRAMMATIC_ACCESS_TOKEN" => match self.tokens.get(&token) {
                Some(kind) if *kind == token_type => Ok(()),
                Some(_) => Err(unauthorized("the token is not of the declared type")),
                None => Err(unauthorized("Invalid OAuth access token")),
            },
            _ => Err(unauthorized("unknown token type")),
        }
    }

    fn verify_jwt(&self, token: &str) -> Result<(), String> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| "JWT token is invalid")?;
        if header.alg != jsonwebtoken::Algorithm::RS256 {
            return Err("JWT must be RS256".into());
        }
        let payload = token.split('.').nth(1).ok_or("JWT token is invalid")?;
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .map_err(|_| "JWT token is invalid")?,
        )
        .map_err(|_| "JWT token is invalid")?;
        let sub = claims["sub"].as_str().ok_or("JWT has no sub")?;
        let iss = claims["iss"].as_str().ok_or("JWT has no iss")?;
        let keys = self
            .key_users
            .get(sub)
            .ok_or("JWT token is invalid: unknown user")?;
        let (issuer_user, fp) = iss
            .split_once(".SHA256:")
            .ok_or("JWT iss lacks the fingerprint")?;
        if issuer_user != sub {
            return Err("JWT iss does not name the subject".into());
        }
        let key = keys
            .iter()
            .find(|der| {
                let digest = ring::digest::digest(&ring::digest::SHA256, der);
                base64::engine::general_purpose::STANDARD.encode(digest.as_ref()) == fp
            })
            .ok_or("JWT public key fingerprint does not match")?;
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            spki_rsa_key(key).ok_or("bad registered key")?,
        );
        let (signed, signature) = token.rsplit_once('.').ok_or("JWT token is invalid")?;
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| "JWT token is invalid")?;
        public
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| "JWT signature is invalid")?;
        let iat = claims["iat"].as_i64().ok_or("JWT has no iat")?;
        let exp = claims["exp"].as_i64().ok_or("JWT has no exp")?;
        let now = self.now();
        if iat > now + 60 {
            return Err("JWT iat is in the future".into());
        }
        if exp <= now {
            return Err("JWT token has expired".into());
        }
        if exp - iat > 3600 {
            return Err("JWT lifetime exceeds one hour".into());
        }
        Ok(())
    }

    fn route(&mut self, request: &emulator::Request) -> Answer {
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

    fn show_limit(request: &emulator::Request) -> Result<usize, emulator::ApiError> {
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
                                let body = body_object(request)?;
                                if let Some(key) =
                                    unknown_key(&body, &["privileges", "grant_option"])
                                {
                                    return Err(bad(format!("unknown field {key}")));
                                }
                                let privileges = privileges_of(&body)?;
                                let option = grant_option_of(&body)?;
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
                                let body = body_object(request)?;
                                if let Some(key) =
                                    unknown_key(&body, &["privileges", "grant_option"])
                                {
                                    return Err(bad(format!("unknown field {key}")));
                                }
                                let privileges = privileges_of(&body)?;
                                let option = grant_option_of(&body)?;
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

    fn require_grantee(&self, grantee: &GranteeId) -> Result<(), emulator::ApiError> {
        let exists = match grantee.0 {
            GranteeType::Role => self.roles.contains(&grantee.1),
            GranteeType::DatabaseRole => self.database_roles.contains(&grantee.1),
            GranteeType::User => self.users.contains(&grantee.1),
        };
        if exists {
            Ok(())
        } else {
            Err(missing(format!(
                "{} '{}' does not exist or not authorized.",
                grantee.0.wire(),
                grantee.1
            )))
        }
    }

    /// A named securable that exists, as `(type, dotted name)`.
    fn object(&self, type_: &str, name: &str) -> Result<Object, emulator::ApiError> {
        if !TYPES.contains(&type_) {
            return Err(bad(format!("unsupported securable type {type_}")));
        }
        let parts = ident(name).ok_or_else(|| bad(format!("invalid identifier {name}")))?;
        let exists = match (type_, parts.as_slice()) {
            ("ROLE", [role]) => self.roles.contains(role),
            ("DATABASE ROLE", [_, _]) => self.database_roles.contains(&parts.join(".")),
            ("DATABASE", [db]) => self.databases.contains_key(db),
            ("WAREHOUSE", [wh]) => self.warehouses.contains(wh),
            ("SCHEMA", [db, s]) => self.databases.get(db).is_some_and(|d| d.contains_key(s)),
            ("TABLE", [db, s, t]) => self
                .databases
                .get(db)
                .and_then(|d| d.get(s))
                .is_some_and(|s| s.tables.contains(t)),
            ("VIEW", [db, s, v]) => self
                .databases
                .get(db)
                .and_then(|d| d.get(s))
                .is_some_and(|s| s.views.contains(v)),
            _ => return Err(bad(format!("{type_} {name} has the wrong number of parts"))),
        };
        if !exists {
            return Err(missing(format!(
                "{type_} '{}' does not exist or not authorized.",
                parts.join(".")
            )));
        }
        Ok((type_.to_string(), parts.join(".")))
    }

    fn scope(
        &self,
        scope_type: &str,
        name: &str,
    ) -> Result<(String, Vec<String>), emulator::ApiError> {
        let parts = ident(name).ok_or_else(|| bad("invalid scope name"))?;
        let exists = match (scope_type, parts.as_slice()) {
            ("DATABASE", [db]) => self.databases.contains_key(db),
            ("SCHEMA", [db, s]) => self.databases.get(db).is_some_and(|d| d.contains_key(s)),
            _ => return Err(bad("invalid scope")),
        };
        if !exists {
            return Err(missing(format!(
                "{scope_type} '{}' does not exist",
                parts.join(".")
            )));
        }
        Ok((scope_type.to_string(), parts))
    }

    /// Objects of `singular` type in a scope.
    fn objects_in(&self, singular: &str, scope: &(String, Vec<String>)) -> Vec<Object> {
        let mut out = Vec::new();
        let Some(db) = scope.1.first() else {
            return out;
        };
        let Some(schemas) = self.databases.get(db) else {
            return out;
        };
        for (schema_name, schema) in schemas {
            if scope.0 == "SCHEMA" && scope.1.get(1) != Some(schema_name) {
                continue;
            }
            match singular {
                "SCHEMA" if scope.0 == "DATABASE" && schema_name != "INFORMATION_SCHEMA" => {
                    out.push(("SCHEMA".into(), format!("{db}.{schema_name}")))
                }
                "TABLE" => out.extend(
                    schema
                        .tables
                        .iter()
                        .map(|t| ("TABLE".to_string(), format!("{db}.{schema_name}.{t}"))),
                ),
                "VIEW" => out.extend(
                    schema
                        .views
                        .iter()
                        .map(|v| ("VIEW".to_string(), format!("{db}.{schema_name}.{v}"))),
                ),
                _ => {}
            }
        }
        out
    }

    fn grant(
        &mut self,
        grantee: &GranteeId,
        object: &Object,
        privileges: &[String],
        option: bool,
    ) -> Result<(), emulator::ApiError> {
        let valid = valid_privileges(&object.0);
        if let Some(bad_one) = privileges.iter().find(|p| !valid.contains(&p.as_str())) {
            return Err(bad(format!(
                "Invalid privilege {bad_one} for {} (SQL compilation error)",
                object.0
            )));
        }
        let held = self
            .grants
            .entry(grantee.clone())
            .or_default()
            .entry(object.clone())
            .or_default();
        for privilege in privileges {
            let entry = held.entry(privilege.clone()).or_insert(false);
            *entry = *entry || option;
        }
        Ok(())
    }

    fn revoke(
        &mut self,
        grantee: &GranteeId,
        object: &Object,
        privileges: &[String],
        option_only: bool,
    ) {
        if let Some(objects) = self.grants.get_mut(grantee)
            && let Some(held) = objects.get_mut(object)
        {
            for privilege in privileges {
                if option_only {
                    if let Some(flag) = held.get_mut(privilege) {
                        *flag = false;
                    }
                } else {
                    held.remove(privilege);
                }
            }
            if held.is_empty() {
                objects.remove(object);
            }
        }
    }

    /// Legacy bulk grant (`option` set) or revoke (`None`).
    fn bulk(
        &mut self,
        grantee: &GranteeId,
        bulk: &str,
        singular: &str,
        scope: &(String, Vec<String>),
        privileges: &[String],
        option: Option<bool>,
    ) -> Answer {
        if bulk == "future" {
            if grantee.0 == GranteeType::User {
                return Err(bad("future grants to a user are not supported"));
            }
            let key = (singular.to_string(), scope.0.clone(), scope.1.join("."));
            match option {
                Some(option) => {
                    let valid = valid_privileges(singular);
                    if let Some(p) = privileges.iter().find(|p| !valid.contains(&p.as_str())) {
                        return Err(bad(format!("Invalid privilege {p} for {singular}")));
                    }
                    let held = self
                        .futures
                        .entry(grantee.clone())
                        .or_default()
                        .entry(key)
                        .or_default();
                    for p in privileges {
                        let entry = held.entry(p.clone()).or_insert(false);
                        *entry = *entry || option;
                    }
                }
                None => self.future_revoke(grantee, &key, privileges, false),
            }
            return Ok(ok());
        }
        for object in self.objects_in(singular, scope) {
            match option {
                Some(option) => self.grant(grantee, &object, privileges, option)?,
                None => self.revoke(grantee, &object, privileges, false),
            }
        }
        Ok(ok())
    }

    fn bulk_revoke_option(
        &mut self,
        grantee: &GranteeId,
        bulk: &str,
        singular: &str,
        scope: &(String, Vec<String>),
        privilege: &str,
    ) -> Answer {
        let privileges = [privilege.to_string()];
        if bulk == "future" {
            let key = (singular.to_string(), scope.0.clone(), scope.1.join("."));
            self.future_revoke(grantee, &key, &privileges, true);
        } else {
            for object in self.objects_in(singular, scope) {
                self.revoke(grantee, &object, &privileges, true);
            }
        }
        Ok(ok())
    }

    fn future_revoke(
        &mut self,
        grantee: &GranteeId,
        key: &FutureKey,
        privileges: &[String],
        option_only: bool,
    ) {
        if let Some(futures) = self.futures.get_mut(grantee)
            && let Some(held) = futures.get_mut(key)
        {
            for p in privileges {
                if option_only {
                    if let Some(flag) = held.get_mut(p) {
                        *flag = false;
                    }
                } else {
                    held.remove(p);
                }
            }
            if held.is_empty() {
                futures.remove(key);
            }
        }
    }

    fn role_grants(
        &mut self,
        request: &emulator::Request,
        grantee: GranteeId,
        rest: &[&str],
    ) -> Answer {
        self.require_grantee(&grantee)?;
        let get = request.method == Method::GET;
        let post = request.method == Method::POST;
        match rest {
            ["grants"] if get => {
                Self::show_limit(request)?;
                let listing = self.with_raw_rows(&grantee, false, self.role_listing(&grantee));
                Ok(json_response(StatusCode::OK, &listing))
            }
            ["future-grants"] if get => {
                Self::show_limit(request)?;
                let listing = self.with_raw_rows(&grantee, true, self.future_listing(&grantee));
                Ok(json_response(StatusCode::OK, &listing))
            }
            [action @ ("grants" | "grants:revoke" | "future-grants" | "future-grants:revoke")]
                if post =>
            {
                let revoke = action.ends_with(":revoke");
                let future = action.starts_with("future");
                // The role and database-role revokes take `mode` only; the grants,
                // and every user endpoint, no query parameter at all.
                let allowed: &[&str] = if revoke && grantee.0 != GranteeType::User {
                    &["mode"]
                } else {
                    &[]
                };
                let query = params(&request.query, allowed).map_err(bad)?;
                if let Some(mode) = query.get("mode")
                    && !["restrict", "cascade"].contains(&mode.as_str())
                {
                    return Err(bad("mode is restrict or cascade"));
                }
                let body = body_object(request)?;
                let option_only = revoke && grant_option_of(&body)?;
                if future {
                    self.future_write(&grantee, &body, revoke, option_only)
                } else {
                    self.grants_write(&grantee, &body, revoke, option_only)
                }
            }
            _ => Err(missing("Not found")),
        }
    }

    /// `future-grants` and `future-grants:revoke`: privileges on the future
    /// objects of a type in the `containing_scope`.
    fn future_write(
        &mut self,
        grantee: &GranteeId,
        body: &Map<String, Value>,
        revoke: bool,
        option_only: bool,
    ) -> Answer {
        let allowed = [
            "securable_type",
            "containing_scope",
            "privileges",
            "grant_option",
        ];
        if let Some(key) = unknown_key(body, &allowed) {
            return Err(bad(format!("unknown field {key}")));
        }
        let type_ = securable_type_of(body)?;
        let privileges = privileges_of(body)?;
        let option = grant_option_of(body)?;
        let scope = self.containing_scope(body)?;
        singular(&format!("{type_}S"))
            .ok_or_else(|| bad(format!("unsupported securable_type {type_}")))?;
        let key = (type_.clone(), scope.0.clone(), scope.1.join("."));
        if revoke {
            self.future_revoke(grantee, &key, &privileges, option_only);
            Ok(ok())
        } else {
            self.bulk(grantee, "future", &type_, &scope, &privileges, Some(option))
        }
    }

    /// `grants` and `grants:revoke`: privileges on the named `securable`, or on
    /// every object of the type in the `containing_scope` (`ALL`, expanded to
    /// the objects existing now; a revoke strips every one of them).
    fn grants_write(
        &mut self,
        grantee: &GranteeId,
        body: &Map<String, Value>,
        revoke: bool,
        option_only: bool,
    ) -> Answer {
        let user = grantee.0 == GranteeType::User;
        // user.yaml's Grant has no grant_option; role.yaml's and
        // database-role.yaml's have.
        let allowed: &[&str] = if user {
            &[
                "securable_type",
                "securable",
                "containing_scope",
                "privileges",
            ]
        } else {
            &[
                "securable_type",
                "securable",
                "containing_scope",
                "privileges",
                "grant_option",
            ]
        };
        if let Some(key) = unknown_key(body, allowed) {
            return Err(bad(format!("unknown field {key}")));
        }
        let type_ = securable_type_of(body)?;
        if user && type_ != "ROLE" {
            return Err(bad(format!(
                "securable_type {type_} cannot be granted to a user: only ROLE is supported"
            )));
        }
        if role_type(&type_).is_some() {
            return self.role_grant_write(grantee, body, &type_, revoke);
        }
        let privileges = privileges_of(body)?;
        let option = grant_option_of(body)?;
        match (body.get("securable"), body.get("containing_scope")) {
            (Some(_), Some(_)) => Err(bad("give either securable or containing_scope, not both")),
            (None, None) => Err(bad("securable or containing_scope is required")),
            (None, Some(_)) => {
                let scope = self.containing_scope(body)?;
                let singular = singular(&format!("{type_}S"))
                    .filter(|kind| *kind != "SCHEMA" || scope.0 == "DATABASE")
                    .ok_or_else(|| {
                        bad(format!(
                            "unsupported securable_type {type_} in a {} scope",
                            scope.0
                        ))
                    })?;
                if revoke {
                    for object in self.objects_in(singular, &scope) {
                        self.revoke(grantee, &object, &privileges, option_only);
                    }
                    Ok(ok())
                } else {
                    self.bulk(grantee, "all", singular, &scope, &privileges, Some(option))
                }
            }
            (Some(securable), None) => {
                let securable = securable
                    .as_object()
                    .ok_or_else(|| bad("securable must be an object"))?;
                if let Some(key) = unknown_key(securable, &["database", "schema", "name"]) {
                    return Err(bad(format!("unknown field securable.{key}")));
                }
                let name: Vec<&str> = ["database", "schema", "name"]
                    .iter()
                    .filter_map(|k| securable.get(*k).and_then(Value::as_str))
                    .collect();
                if securable.get("name").is_none() {
                    return Err(bad("securable.name is required"));
                }
                let object = self.object(&type_, &name.join("."))?;
                if revoke {
                    self.revoke(grantee, &object, &privileges, option_only);
                } else {
                    self.grant(grantee, &object, &privileges, option)?;
                }
                Ok(ok())
            }
        }
    }

    /// Grants (or revokes) a role to a user, a role or a database role: GRANT
    /// ROLE / GRANT DATABASE ROLE. The role is granted whole: `privileges`, if
    /// given, is `[USAGE]`, and there is no grant option. An account role is
    /// never granted to a database role, a database role only to a database
    /// role of its own database, and no role to itself.
    fn role_grant_write(
        &mut self,
        grantee: &GranteeId,
        body: &Map<String, Value>,
        type_: &str,
        revoke: bool,
    ) -> Answer {
        if body.contains_key("containing_scope") {
            return Err(bad(
                "a role is granted by name: give securable, not containing_scope",
            ));
        }
        match body.get("privileges") {
            None => {}
            Some(Value::Array(list)) if list == &[json!("USAGE")] => {}
            Some(_) => {
                return Err(bad(format!(
                    "a {type_} is granted whole: privileges, if given, is [\"USAGE\"]"
                )));
            }
        }
        if grant_option_of(body)? {
            return Err(bad(format!(
                "a {type_} cannot be granted with the grant option"
            )));
        }
        let securable = body
            .get("securable")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("securable is required"))?;
        if let Some(key) = unknown_key(securable, &["database", "name"]) {
            return Err(bad(format!("unknown field securable.{key} of a {type_}")));
        }
        let name = securable
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("securable.name is required"))?;
        let text = match (type_, securable.get("database").and_then(Value::as_str)) {
            ("ROLE", None) => name.to_string(),
            ("DATABASE ROLE", Some(database)) => format!("{database}.{name}"),
            ("ROLE", Some(_)) => return Err(bad("an account role has no database")),
            _ => return Err(bad("securable.database is required for a DATABASE ROLE")),
        };
        let object = self.object(type_, &text)?;
        let granted_database = object.1.split('.').next().unwrap_or_default().to_string();
        match (grantee.0, type_) {
            (GranteeType::DatabaseRole, "ROLE") => {
                return Err(bad(
                    "SQL compilation error: an account role cannot be granted to a database role",
                ));
            }
            (GranteeType::DatabaseRole, _)
                if grantee.1.split('.').next() != Some(granted_database.as_str()) =>
            {
                return Err(bad(
                    "SQL compilation error: a database role can only be granted to a database role of the same database",
                ));
            }
            _ => {}
        }
        if (grantee.0, object.1.as_str()) == (GranteeType::Role, grantee.1.as_str())
            && type_ == "ROLE"
            || (grantee.0 == GranteeType::DatabaseRole
                && type_ == "DATABASE ROLE"
                && object.1 == grantee.1)
        {
            return Err(bad("a role cannot be granted to itself"));
        }
        let usage = ["USAGE".to_string()];
        if revoke {
            self.revoke(grantee, &object, &usage, false);
        } else {
            self.grant(grantee, &object, &usage, false)?;
        }
        Ok(ok())
    }

    /// The `containing_scope` of a body, which must exist.
    fn containing_scope(
        &self,
        body: &Map<String, Value>,
    ) -> Result<(String, Vec<String>), emulator::ApiError> {
        let scope = body
            .get("containing_scope")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("containing_scope is required"))?;
        if let Some(key) = unknown_key(scope, &["database", "schema"]) {
            return Err(bad(format!("unknown field containing_scope.{key}")));
        }
        let db = scope
            .get("database")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("containing_scope.database is required"))?;
        let (scope_type, name) = match scope.get("schema").and_then(Value::as_str) {
            Some(schema) => ("SCHEMA", format!("{db}.{schema}")),
            None => ("DATABASE", db.to_string()),
        };
        self.scope(scope_type, &name)
    }

    /// A listing with the grantee's raw rows appended.
    fn with_raw_rows(&self, grantee: &GranteeId, future: bool, listing: Value) -> Value {
        let mut rows = match listing {
            Value::Array(rows) => rows,
            other => return other,
        };
        if let Some(raw) = self.raw_rows.get(&(grantee.clone(), future)) {
            rows.extend(raw.iter().cloned());
        }
        Value::Array(rows)
    }

    fn grouped(&self, grantee: &GranteeId) -> Vec<(Object, bool, Vec<String>)> {
        let mut out = Vec::new();
        for (object, held) in self.grants.get(grantee).into_iter().flatten() {
            for option in [false, true] {
                let privileges: Vec<String> = held
                    .iter()
                    .filter(|(_, o)| **o == option)
                    .map(|(p, _)| p.clone())
                    .collect();
                if !privileges.is_empty() {
                    out.push((object.clone(), option, privileges));
                }
            }
        }
        out
    }

    /// `GET .../grants` in `RoleGrants`' Grant shape. A granted role is listed as
    /// `SHOW GRANTS` shows it: USAGE on a `ROLE` or `DATABASE_ROLE`; to a user,
    /// only the role (user.yaml's Grant has no grant option, and `SHOW GRANTS TO
    /// USER` no privilege).
    fn role_listing(&self, grantee: &GranteeId) -> Value {
        let user = grantee.0 == GranteeType::User;
        Value::Array(
            self.grouped(grantee)
                .into_iter()
                .map(|((type_, name), option, privileges)| {
                    let parts = ident(&name).unwrap_or_default();
                    let securable = match parts.as_slice() {
                        [n] => json!({"name": n}),
                        [d, n] => json!({"database": d, "name": n}),
                        [d, s, n] => json!({"database": d, "schema": s, "name": n}),
                        _ => json!({}),
                    };
                    let mut row = json!({
                        "securable_type": listed_type(&type_),
                        "securable": securable,
                        "created_on": "2026-01-01T00:00:00Z",
                        "granted_by": "SECURITYADMIN",
                    });
                    if !user {
                        row["privileges"] = json!(privileges);
                        row["grant_option"] = json!(option);
                    }
                    row
                })
                .collect(),
        )
    }

    /// `GET /api/v2/grants/{granteeType}/{granteeName}`: `SHOW GRANTS TO` rows.
    fn legacy_listing(&self, grantee: &GranteeId) -> Value {
        let user = grantee.0 == GranteeType::User;
        Value::Array(
            self.grouped(grantee)
                .into_iter()
                .map(|((type_, name), option, privileges)| {
                    let mut row = json!({
                        "created_on": "2026-01-01T00:00:00Z",
                        "grantee_type": grantee.0.wire(),
                        "grantee_name": grantee.1,
                        "securable_type": listed_type(&type_),
                        "securable_name": name,
                        "granted_by_role_type": "ROLE",
                        "granted_by_name": "SECURITYADMIN",
                    });
                    if !user {
                        row["privileges"] = json!(privileges);
                        row["grant_option"] = json!(option);
                    }
                    row
                })
                .collect(),
        )
    }

    fn future_listing(&self, grantee: &GranteeId) -> Value {
        let mut out = Vec::new();
        for ((type_, scope_type, scope_name), held) in
            self.futures.get(grantee).into_iter().flatten()
        {
            let parts = ident(scope_name).unwrap_or_default();
            let scope = if scope_type == "SCHEMA" {
                json!({"database": parts.first(), "schema": parts.get(1)})
            } else {
                json!({"database": parts.first()})
            };
            let (field, scope) = if self.futures_as_securable {
                let mut securable = scope;
                securable["name"] = json!(format!("<{type_}>"));
                ("securable", securable)
            } else {
                ("containing_scope", scope)
            };
            for option in [false, true] {
                let privileges: Vec<&String> = held
                    .iter()
                    .filter(|(_, o)| **o == option)
                    .map(|(p, _)| p)
                    .collect();
                if !privileges.is_empty() {
                    let mut row = json!({
                        "securable_type": type_,
                        "privileges": privileges,
                        "grant_option": option,
                    });
                    row[field] = scope.clone();
                    out.push(row);
                }
            }
        }
        Value::Array(out)
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

/// The RSA public key (PKCS#1) inside an RSA SubjectPublicKeyInfo DER.
fn spki_rsa_key(der: &[u8]) -> Option<&[u8]> {
    // SEQUENCE { AlgorithmIdentifier, BIT STRING { 0x00, RSAPublicKey } }
    fn header(der: &[u8]) -> Option<(usize, usize)> {
        let first = *der.get(1)?;
        if first < 0x80 {
            Some((2, first as usize))
        } else {
            let count = (first & 0x7f) as usize;
            let mut len = 0usize;
            for i in 0..count {
                len = (len << 8) | *der.get(2 + i)? as usize;
            }
            Some((2 + count, len))
        }
    }
    let (outer, _) = header(der)?;
    let inner = der.get(outer..)?;
    let (alg_header, alg_len) = header(inner)?;
    let bit = inner.get(alg_header + alg_len..)?;
    let (bit_header, _) = header(bit)?;
    bit.get(bit_header + 1..)
}

/// A `(securable, privilege)` row as tests compare them.
fn held_row(securable: String, privilege: &str, option: bool) -> Held {
    (
        securable,
        if option {
            format!("{privilege} WITH GRANT OPTION")
        } else {
            privilege.to_string()
        },
    )
}

impl Server<Snowflake> {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.vendor().state)
    }

    /// Registers a public key (PEM) for key-pair JWTs of `ACCOUNT.USER`.
    pub fn add_key_user(&self, account: &str, user: &str, public_pem: &str) {
        self.state()
            .key_users
            .entry(format!(
                "{}.{}",
                account.to_ascii_uppercase(),
                user.to_ascii_uppercase()
            ))
            .or_default()
            .push(spki_der(public_pem));
    }

    pub fn add_oauth_token(&self, token: &str) {
        self.state().tokens.insert(token.into(), "OAUTH");
    }

    pub fn add_pat(&self, token: &str) {
        self.state()
            .tokens
            .insert(token.into(), "PROGRAMMATIC_ACCESS_TOKEN");
    }

    /// Moves the emulator's clock (JWT checks) by `seconds`.
    pub fn shift_clock(&self, seconds: i64) {
        self.state().clock_offset = seconds;
    }

    /// Adds a role (name as written in SQL).
    pub fn add_role(&self, name: &str) {
        let name = one(name).expect("role name");
        self.state().roles.insert(name);
    }

    pub fn add_database_role(&self, name: &str) {
        let parts = ident(name).expect("database role name");
        self.state().database_roles.insert(parts.join("."));
    }

    pub fn add_user(&self, name: &str) {
        let name = one(name).expect("user name");
        self.state().users.insert(name);
    }

    pub fn add_database(&self, name: &str) {
        let name = one(name).expect("database name");
        self.state().databases.entry(name).or_default();
    }

    pub fn add_warehouse(&self, name: &str) {
        let name = one(name).expect("warehouse name");
        self.state().warehouses.insert(name);
    }

    /// Adds a schema `DB.SCHEMA` (its database too), applying future grants on schemas.
    pub fn add_schema(&self, name: &str) {
        let parts = ident(name).expect("schema name");
        let [db, schema] = parts.as_slice() else {
            panic!("a schema is DB.SCHEMA")
        };
        let mut state = self.state();
        state
            .databases
            .entry(db.clone())
            .or_default()
            .entry(schema.clone())
            .or_default();
        state.apply_futures("SCHEMA", db, schema, &format!("{db}.{schema}"));
    }

    /// Adds a table `DB.SCHEMA.TABLE` (schema and database too), applying future grants.
    pub fn add_table(&self, name: &str) {
        self.add_in_schema(name, true);
    }

    /// Adds a view `DB.SCHEMA.VIEW`, applying future grants.
    pub fn add_view(&self, name: &str) {
        self.add_in_schema(name, false);
    }

    fn add_in_schema(&self, name: &str, table: bool) {
        let parts = ident(name).expect("object name");
        let [db, schema, object] = parts.as_slice() else {
            panic!("an object is DB.SCHEMA.NAME")
        };
        let mut state = self.state();
        let entry = state
            .databases
            .entry(db.clone())
            .or_default()
            .entry(schema.clone())
            .or_default();
        if table {
            entry.tables.insert(object.clone());
        } else {
            entry.views.insert(object.clone());
        }
        let type_ = if table { "TABLE" } else { "VIEW" };
        state.apply_futures(type_, db, schema, &parts.join("."));
    }

    /// Grants directly (another administrator).
    pub fn grant_direct(
        &self,
        grantee_type: &str,
        grantee: &str,
        type_: &str,
        name: &str,
        privilege: &str,
        option: bool,
    ) {
        let mut state = self.state();
        let grantee = (
            GranteeType::from_wire(grantee_type).expect("grantee type"),
            ident(grantee).expect("grantee").join("."),
        );
        let object = state.object(type_, name).expect("object exists");
        state
            .grant(&grantee, &object, &[privilege.to_string()], option)
            .expect("valid grant");
    }

    /// Revokes directly (another administrator).
    pub fn revoke_direct(
        &self,
        grantee_type: &str,
        grantee: &str,
        type_: &str,
        name: &str,
        privilege: &str,
    ) {
        let mut state = self.state();
        let grantee = (
            GranteeType::from_wire(grantee_type).expect("grantee type"),
            ident(grantee).expect("grantee").join("."),
        );
        let object = (type_.to_string(), ident(name).expect("name").join("."));
        state.revoke(&grantee, &object, &[privilege.to_string()], false);
    }

    /// Privileges a grantee holds, as `(SECURABLE_TYPE NAME, PRIVILEGE[ WITH GRANT OPTION])`, sorted.
    pub fn live(&self, grantee_type: &str, grantee: &str) -> Vec<Held> {
        let state = self.state();
        let grantee = (
            GranteeType::from_wire(grantee_type).expect("grantee type"),
            ident(grantee).expect("grantee").join("."),
        );
        let mut out: Vec<Held> = Vec::new();
        for ((type_, name), held) in state.grants.get(&grantee).into_iter().flatten() {
            for (privilege, option) in held {
                out.push(held_row(format!("{type_} {name}"), privilege, *option));
            }
        }
        out.sort();
        out
    }

    /// Future grants of a grantee, as `(FUTURE TYPES IN SCOPE NAME, PRIVILEGE[...])`, sorted.
    pub fn future_live(&self, grantee_type: &str, grantee: &str) -> Vec<Held> {
        let state = self.state();
        let grantee = (
            GranteeType::from_wire(grantee_type).expect("grantee type"),
            ident(grantee).expect("grantee").join("."),
        );
        let mut out = Vec::new();
        for ((type_, scope_type, scope), held) in state.futures.get(&grantee).into_iter().flatten()
        {
            for (privilege, option) in held {
                out.push(held_row(
                    format!("FUTURE {type_}S IN {scope_type} {scope}"),
                    privilege,
                    *option,
                ));
            }
        }
        out.sort();
        out
    }

    /// The next `times` answered requests answer `202`; each result needs `polls` polls.
    pub fn answer_async(&self, times: usize, polls: usize) {
        let mut state = self.state();
        state.async_left = times;
        state.async_polls = polls;
    }

    /// How many times results were polled.
    pub fn result_polls(&self) -> usize {
        self.state().result_polls
    }

    /// Listings answer `size` rows per page, the rest behind `Link: <...>; rel="next"`.
    pub fn set_page_size(&self, size: usize) {
        self.state().page_size = Some(size);
    }

    /// Pages after the first read through `Link` headers.
    pub fn page_reads(&self) -> usize {
        self.state().page_reads
    }

    /// Successful writes (grants and revokes) so far.
    pub fn writes(&self) -> usize {
        self.state().writes
    }

    /// Grants the grantee `USAGE` on `count` new warehouses (`FILLER_00000`,
    /// ...): more grants than a listing answers, when `count` exceeds showLimit.
    pub fn add_filler_grants(&self, grantee_type: &str, grantee: &str, count: usize) {
        let mut state = self.state();
        let grantee = (
            GranteeType::from_wire(grantee_type).expect("grantee type"),
            ident(grantee).expect("grantee").join("."),
        );
        for i in 0..count {
            let warehouse = format!("FILLER_{i:05}");
            state.warehouses.insert(warehouse.clone());
            state
                .grants
                .entry(grantee.clone())
                .or_default()
                .entry(("WAREHOUSE".into(), warehouse))
                .or_default()
                .insert("USAGE".into(), false);
        }
    }

    /// Gives the grantee `count` future grants (`SELECT` on future tables of
    /// databases `FILLER_00000`, ...).
    pub fn add_filler_futures(&self, grantee_type: &str, grantee: &str, count: usize) {
        let mut state = self.state();
        let grantee = (
            GranteeType::from_wire(grantee_type).expect("grantee type"),
            ident(grantee).expect("grantee").join("."),
        );
        for i in 0..count {
            state
                .futures
                .entry(grantee.clone())
                .or_default()
                .entry(("TABLE".into(), "DATABASE".into(), format!("FILLER_{i:05}")))
                .or_default()
                .insert("SELECT".into(), false);
        }
    }

    /// Adds `count` tables (`T00000`, ...) to the schema `DB.SCHEMA`.
    pub fn add_tables(&self, schema: &str, count: usize) {
        let parts = ident(schema).expect("schema name");
        let [db, schema] = parts.as_slice() else {
            panic!("a schema is DB.SCHEMA")
        };
        let mut state = self.state();
        let entry = state
            .databases
            .entry(db.clone())
            .or_default()
            .entry(schema.clone())
            .or_default();
        entry.tables.extend((0..count).map(|i| format!("T{i:05}")));
    }

    /// Appends `row`, as it is, to the grantee's grants listing (`future`:
    /// its future-grants listing).
    pub fn add_raw_row(&self, grantee_type: &str, grantee: &str, future: bool, row: Value) {
        let grantee = (
            GranteeType::from_wire(grantee_type).expect("grantee type"),
            ident(grantee).expect("grantee").join("."),
        );
        self.state()
            .raw_rows
            .entry((grantee, future))
            .or_default()
            .push(row);
    }

    /// The future-grants listing describes each grant by the `securable` it is
    /// on (`{database, schema, name: "<TABLE>"}`) instead of its `containing_scope`.
    pub fn list_futures_as_securables(&self) {
        self.state().futures_as_securable = true;
    }
}

impl State {
    fn apply_futures(&mut self, type_: &str, db: &str, schema: &str, object: &str) {
        let mut granted: Vec<(GranteeId, Vec<(String, bool)>)> = Vec::new();
        for (grantee, futures) in &self.futures {
            for ((future_type, scope_type, scope), held) in futures {
                let matches = future_type == type_
                    && ((scope_type == "DATABASE" && scope == db)
                        || (scope_type == "SCHEMA" && *scope == format!("{db}.{schema}")));
                if matches {
                    granted.push((
                        grantee.clone(),
                        held.iter().map(|(p, o)| (p.clone(), *o)).collect(),
                    ));
                }
            }
        }
        for (grantee, privileges) in granted {
            let held = self
                .grants
                .entry(grantee)
                .or_default()
                .entry((type_.to_string(), object.to_string()))
                .or_default();
            for (privilege, option) in privileges {
                let entry = held.entry(privilege).or_insert(false);
                *entry = *entry || option;
            }
        }
    }
}
