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

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::emulator::{
    self, ApiError, Millis, PageTokens, Server, Vendor, json_response, media_type_is, parse_pairs,
    random_alnum, uuid_like,
};
#[allow(unused_imports)] // re-exported for the tests that use them
pub use super::emulator::{Call, Fault, FaultKind};

mod auth;
mod control;
mod grants;
mod members;
mod paging;
mod routes;

use routes::handle;

/// Most grants one POST may add (the vendor's documented limit).
const MAX_GRANTS_PER_CALL: usize = 100;
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;
const DEFAULT_TTL_SECS: u64 = 3600;

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

/// The emulator. The server stops when this value is dropped.
///
/// In the call log ([`Call::body`]) a form body is shown as an object of its
/// fields with `client_secret` redacted.
pub type SigmaEmulator = Server<Sigma>;

/// Sigma's side of the [`Server`]: routes, auth and state.
#[derive(Default)]
pub struct Sigma(Mutex<State>);

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
