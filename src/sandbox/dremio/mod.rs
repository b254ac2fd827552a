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
use std::sync::Mutex;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::emulator::{self, ApiError, Server, Vendor, json_response};
#[allow(unused_imports)] // re-exported for the tests that use them
pub use super::emulator::{Call, Fault, FaultKind};

mod catalog;
mod control;
mod grants;
mod principals;
mod routes;

use routes::handle;

const READ_ONLY_MESSAGE: &str = "User does not have MANAGE GRANTS privilege";

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

/// The emulator. The server stops when this value is dropped.
pub type DremioEmulator = Server<Dremio>;

/// Dremio's side of the [`Server`]: routes, auth and state.
#[derive(Default)]
pub struct Dremio(Mutex<State>);

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
