//! Dremio catalog grants, Software and Cloud.
//!
//! - Keys are `user:<id>` and `role:<id>`; permissions are privileges (sets,
//!   no privilege includes another).
//! - The write call replaces the object's whole grant list, so every write
//!   reads the current list, merges the planned changes into it (only the
//!   privileges planned to go are removed, only those planned to come are
//!   added), keeps every other entry exactly as it was, reads again, and writes
//!   only if nothing changed in between; otherwise it merges again on the newer
//!   list. The controller's read after the write verifies it.
//! - A write is never sent again blind: repeated after its answer was lost, it
//!   could land after another writer's change and drop it. A write whose answer
//!   never came may still land later; the controller then holds every write to
//!   the object for a while (see `controller::grant`, "unanswered writes"), so a
//!   newer list is not overwritten by the late one. Dremio offers no conditional
//!   write, so a request the server holds longer than that cannot be ruled out.
//! - Requested privileges are checked against the object's
//!   `availablePrivileges`: one that is not available is refused as
//!   `InvalidGrant` naming it, and the others are still applied.
//! - Catalog objects are resolved by path (each part escaped) or taken by id;
//!   users and roles by name (the by-name look-ups: Software's under
//!   `/api/v3`, Cloud's at organisation level under `/v1`) or taken by id.
//!   Answers are cached.
//!
//! This module owns the privilege and grantee types and the client's calls
//! around one object's grant list; `grant_list` reads a list into live grants and
//! merges planned changes into it; `vendor` is the `Vendor` impl; `kind` maps
//! `DremioGrant` to the planner; `client` the REST calls and wire types.

pub mod client;
pub mod connect;
mod grant_list;
mod kind;
pub mod review;
#[cfg(test)]
mod tests;
mod vendor;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use reqwest::StatusCode;
use tracing::debug;

use crate::api::VendorKind;
use crate::cache::TtlCache;
use crate::plan::{Key, Permission};

use self::client::{DremioApi, GranteeType, ObjectGrants};
use self::grant_list::{as_entries, merge, same};
use super::VendorError;
use super::http::CallError;

const VENDOR: VendorKind = VendorKind::Dremio;
/// How long a resolved name or path is trusted.
const NAME_TTL: Duration = Duration::from_secs(3600);
/// Resolved names and paths kept per provider.
const NAME_CACHE: usize = 20_000;
/// Read-merge-write rounds before giving up on a list that keeps changing.
const MERGE_ATTEMPTS: usize = 5;

/// A Dremio privilege (`SELECT`, `ALTER`, `MANAGE_GRANTS`, ...).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Privilege(pub String);

impl Permission for Privilege {
    fn closure(&self) -> Vec<Self> {
        vec![self.clone()]
    }
}

impl std::fmt::Display for Privilege {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Privilege {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        if !text.is_empty() && text.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            Ok(Privilege(text.to_string()))
        } else {
            Err(())
        }
    }
}

/// A grantee as declared in a `DremioGrant`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DremioGrantee {
    /// `user: { id }`.
    UserId(String),
    /// `user: { name }`.
    UserName(String),
    /// `role: { id }`.
    RoleId(String),
    /// `role: { name }`.
    RoleName(String),
}

/// One grantee's planned change, for a merge.
#[derive(Clone, Debug)]
struct Change {
    key: Key,
    grantee_type: GranteeType,
    id: String,
    removed: BTreeSet<String>,
    added: BTreeSet<String>,
}

/// Why a write did not happen.
enum WriteError {
    /// The vendor refused the written list as invalid (400).
    Refused(VendorError),
    /// Anything else.
    Other(VendorError),
}

/// The Dremio client of one provider.
pub struct DremioClient {
    api: DremioApi,
    names: TtlCache<DremioGrantee, Key>,
    paths: TtlCache<Vec<String>, String>,
}

impl std::fmt::Debug for DremioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DremioClient")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl DremioClient {
    /// A client over `api`.
    pub fn new(api: DremioApi) -> DremioClient {
        DremioClient {
            api,
            names: TtlCache::new(NAME_CACHE, NAME_TTL),
            paths: TtlCache::new(NAME_CACHE, NAME_TTL),
        }
    }

    fn target_error(&self, error: CallError, operation: &'static str, object: &str) -> VendorError {
        error.into_vendor_error(VENDOR, operation, |_| {
            // The object may have been recreated under a new id: look paths up again.
            self.paths.clear();
            VendorError::TargetNotFound {
                vendor: VENDOR,
                what: format!("catalog object {object}"),
            }
        })
    }

    /// The object's grant list; an entry that cannot be read fails it (every
    /// read, the read-merge-write's included, so nothing is written from it).
    async fn current(&self, object: &str) -> Result<ObjectGrants, VendorError> {
        self.api
            .grants(object)
            .await
            .map_err(|error| self.target_error(error, "list_grants", object))?
    }

    /// One read-merge-write of `changes`; returns the privileges refused as unavailable.
    async fn write(
        &self,
        object: &str,
        changes: &[Change],
    ) -> Result<BTreeMap<Key, VendorError>, WriteError> {
        for attempt in 1..=MERGE_ATTEMPTS {
            let current = self.current(object).await.map_err(WriteError::Other)?;
            let (merged, refused) = merge(object, &current, changes);
            if same(&merged, &current.grants) {
                return Ok(refused);
            }
            // Read again just before writing: a list that changed since is merged again,
            // so another writer's entry is never dropped.
            let check = self.current(object).await.map_err(WriteError::Other)?;
            if !same(&as_entries(&check.grants), &current.grants) {
                debug!(
                    object,
                    attempt, "the grant list changed while merging; merging again"
                );
                continue;
            }
            return match self.api.put_grants(object, &merged).await {
                Ok(()) => Ok(refused),
                Err(error) if error.status() == Some(StatusCode::BAD_REQUEST) => Err(
                    WriteError::Refused(self.target_error(error, "put_grants", object)),
                ),
                Err(error) => Err(WriteError::Other(self.target_error(
                    error,
                    "put_grants",
                    object,
                ))),
            };
        }
        Err(WriteError::Other(VendorError::Conflict {
            vendor: VENDOR,
            operation: "put_grants",
            message: format!(
                "the grant list of catalog object {object} kept changing while it was being written ({MERGE_ATTEMPTS} attempts)"
            ),
        }))
    }

    async fn lookup(&self, grantee: &DremioGrantee) -> Result<Option<Key>, VendorError> {
        let (kind, name) = match grantee {
            DremioGrantee::UserName(name) => (GranteeType::User, name),
            DremioGrantee::RoleName(name) => (GranteeType::Role, name),
            DremioGrantee::UserId(id) => return Ok(Some(format!("user:{id}"))),
            DremioGrantee::RoleId(id) => return Ok(Some(format!("role:{id}"))),
        };
        if let Some(key) = self.names.get(grantee) {
            return Ok(Some(key));
        }
        let key = self
            .api
            .principal_by_name(kind, name)
            .await?
            .map(|id| format!("{}:{id}", kind.prefix()));
        if let Some(key) = &key {
            self.names.put(grantee.clone(), key.clone());
        }
        Ok(key)
    }
}
