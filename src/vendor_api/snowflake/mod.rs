//! Snowflake privilege grants, `RoleGrants` and `Legacy` APIs.
//!
//! - The unit is the grantee (`ROLE:ANALYST`): one grants listing per grantee
//!   per sync serves every resource on it. Keys are securables
//!   (`SCHEMA SALES.PUBLIC`, `ALL TABLES IN SCHEMA SALES.PUBLIC`,
//!   `FUTURE TABLES IN DATABASE SALES`); permissions are privileges with or
//!   without the grant option (the option includes the privilege).
//! - Identifiers need no look-up: a missing grantee shows as 404 on the listing
//!   (`GranteeNotFound` for the sync), a missing securable as 404 on the grant
//!   call (`TargetNotFound` for that key). `Authoritative` covers only the
//!   resource's own securable.
//! - Future grants are not in the grantee listing: the `future-grants` listing
//!   is read too, only when the sync can touch a `FUTURE` key.
//! - Listings are read whole or not at all: one that reaches `showLimit`'s
//!   maximum may be incomplete, and an entry that cannot be read is not absent;
//!   either fails the read (so the sync writes nothing) with a message saying
//!   whose listing and which entry.
//! - `ALL` grants expand into per-object grants: for each `ALL` key the sync
//!   can touch, the objects of the type in the scope are listed and the key is
//!   live with a privilege when every object has it (with no object, what the
//!   operator last applied counts as live). A new object therefore shows as
//!   drift and the bulk grant is issued again. Both APIs grant with their bulk
//!   form (`Legacy`: the `all` paths; `RoleGrants`: `containing_scope`). A
//!   revoke on all objects strips every object of the scope, so it never goes
//!   in bulk over what another key keeps there ([`overlap`]): then it goes
//!   object by object and spares those. A revoke at one object likewise spares
//!   what a covering `ALL` key keeps. `TABLES` and `VIEWS` (in a schema or
//!   database) and `SCHEMAS` (in a database) are supported for `all`.
//! - Roles are granted whole, as a securable of type `ROLE` or `DATABASE
//!   ROLE` with the privilege `USAGE` (the key `ROLE ANALYST`, as listings show
//!   a granted role): to a user (Snowflake grants users roles, never
//!   privileges), to a role (the role hierarchy), or to a database role of the
//!   same database. Only `RoleGrants` can write them (the `Legacy` paths grant
//!   privileges on securables); both read them.
//! - Turning the grant option off revokes only the grant option.
//! - `OWNERSHIP` is never managed (it is transferred, not revoked).
//!
//! This module owns the client type and its write memory; `listing` reads a
//! grantee's grants (and the objects an `ALL` key covers) into live grants;
//! `statements` carries out a key's action with the calls of either API;
//! `vendor` is the [`Vendor`](super::Vendor) impl; `kind` maps `SnowflakeGrant`
//! to the planner ([`GrantKind`](super::GrantKind)); `client` the REST calls and
//! wire types.

pub mod auth;
pub mod client;
pub mod connect;
pub mod identifiers;
mod kind;
mod listing;
pub mod model;
pub mod overlap;
pub mod review;
mod statements;
#[cfg(test)]
mod tests;
mod vendor;

use std::sync::Mutex;

use crate::api::VendorKind;

use self::client::SnowflakeApi;
use self::model::Securable;
use self::overlap::WriteMemory;

pub use self::model::SnowflakePrivilege;

const VENDOR: VendorKind = VendorKind::Snowflake;
/// Never managed: ownership is transferred, not granted or revoked.
const OWNERSHIP: &str = "OWNERSHIP";
/// Schema every database has, left out of bulk grants on schemas and their objects.
const INFORMATION_SCHEMA: &str = "INFORMATION_SCHEMA";

/// A securable as declared in a `SnowflakeGrant` (`target`), the per-row "grantee"
/// of the planner: its text, resolved to its normalised key without calls.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeclaredSecurable(pub Result<Securable, String>);

/// The Snowflake client of one provider.
pub struct SnowflakeClient {
    api: SnowflakeApi,
    /// What the client's own writes did that no listing shows (see [`WriteMemory`]).
    memory: Mutex<WriteMemory>,
}

impl std::fmt::Debug for SnowflakeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnowflakeClient")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl SnowflakeClient {
    /// A client over `api`.
    pub fn new(api: SnowflakeApi) -> SnowflakeClient {
        SnowflakeClient {
            api,
            memory: Mutex::new(WriteMemory::default()),
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, WriteMemory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }
}
