//! Grafana data source permissions.
//!
//! - Keys are `user:<id>`, `team:<id>` and `role:<Viewer|Editor|Admin>`;
//!   permissions are the levels `Query` < `Edit` < `Admin`.
//! - Two vendor APIs, chosen by the provider's `permissionsApi`, `Auto`
//!   detecting once per provider which one the server serves:
//!   - `AccessControl` (Grafana 9+): one call sets or (with `""`) removes the
//!     managed permission of a user, team or built-in role. Only managed,
//!     non-inherited entries are read as grants; every other entry is left
//!     alone, counted as unmanaged and kept for reviews (inherited, or fixed).
//!   - `Legacy` (Grafana Enterprise before 10.3): numeric levels (1 Query,
//!     2 Edit), no update call, so a level change is remove-then-add; no
//!     built-in roles and no Admin level (refused as `InvalidGrant`).
//!     Permissions of a data source that has them disabled are enabled before
//!     the first grant; they are never disabled.
//! - Users are resolved in organisation scope (works with service account
//!   tokens): logins with the user look-up, emails with the organisation's user
//!   listing, both matched exactly (never a substring match); teams with the
//!   exact-name team search. Answers and data sources are cached per provider.
//!
//! This module owns the client type, its errors and the grammar of keys;
//! `permission` the levels, grantees and API choice; `access` and `legacy` read
//! and write each permissions API; `vendor` is the `Vendor` impl with name
//! resolution; `kind` maps `GrafanaGrant` to the planner; `client` the REST
//! calls and wire types.

mod access;
pub mod client;
pub mod connect;
mod kind;
mod legacy;
mod permission;
pub mod review;
#[cfg(test)]
mod tests;
mod vendor;

use std::time::Duration;

use tokio::sync::OnceCell;

use crate::api::{GrafanaDatasourceRef, GrafanaPermission, GrafanaPermissionsApi, VendorKind};
use crate::cache::TtlCache;
use crate::plan::{Key, LiveGrant};

use self::client::{AccessGrantee, Datasource, GrafanaApi, LegacyGrantee};
use super::http::CallError;
use super::{Live, VendorError};

pub use permission::{GrafanaGrantee, PermissionsApi};

const VENDOR: VendorKind = VendorKind::Grafana;
/// How long a resolved name or data source is trusted.
const NAME_TTL: Duration = Duration::from_secs(3600);
/// Resolved names kept per provider.
const NAME_CACHE: usize = 20_000;
/// Data sources kept per provider.
const TARGET_CACHE: usize = 10_000;
/// Above this many unknown logins, list the organisation's users once instead.
const BULK_LOOKUP: usize = 25;
/// Writes in flight at once (the provider's rate limit still applies).
const PARALLEL_WRITES: usize = 8;

/// The Grafana client of one provider.
pub struct GrafanaClient {
    api: GrafanaApi,
    configured: GrafanaPermissionsApi,
    detected: OnceCell<PermissionsApi>,
    names: TtlCache<GrafanaGrantee, Key>,
    targets: TtlCache<GrafanaDatasourceRef, Datasource>,
    /// Legacy: whether permissions were enabled at the last read, by data source id.
    enabled: TtlCache<i64, bool>,
}

impl std::fmt::Debug for GrafanaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrafanaClient")
            .field("api", &self.api)
            .field("configured", &self.configured)
            .finish_non_exhaustive()
    }
}

impl GrafanaClient {
    /// A client over `api` using the `configured` permissions API.
    pub fn new(api: GrafanaApi, configured: GrafanaPermissionsApi) -> GrafanaClient {
        GrafanaClient {
            api,
            configured,
            detected: OnceCell::new(),
            names: TtlCache::new(NAME_CACHE, NAME_TTL),
            targets: TtlCache::new(TARGET_CACHE, NAME_TTL),
            enabled: TtlCache::new(TARGET_CACHE, NAME_TTL),
        }
    }

    /// The permissions API in use: as configured, or detected once.
    pub async fn permissions_api(&self) -> Result<PermissionsApi, VendorError> {
        match self.configured {
            GrafanaPermissionsApi::AccessControl => Ok(PermissionsApi::AccessControl),
            GrafanaPermissionsApi::Legacy => Ok(PermissionsApi::Legacy),
            GrafanaPermissionsApi::Auto => self
                .detected
                .get_or_try_init(|| async {
                    Ok(if self.api.serves_access_control().await? {
                        PermissionsApi::AccessControl
                    } else {
                        PermissionsApi::Legacy
                    })
                })
                .await
                .copied(),
        }
    }
}

impl GrafanaClient {
    fn target_not_found(&self, what: String) -> VendorError {
        // The data source may have been recreated under a new id: look it up again next time.
        self.targets.clear();
        VendorError::TargetNotFound {
            vendor: VENDOR,
            what,
        }
    }

    fn write_error(
        &self,
        error: CallError,
        operation: &'static str,
        datasource: &str,
    ) -> VendorError {
        error.into_vendor_error(VENDOR, operation, |_| {
            self.target_not_found(format!("data source {datasource}"))
        })
    }
}

fn access_grantee(key: &str) -> Option<AccessGrantee> {
    let (kind, id) = key.split_once(':')?;
    match kind {
        "user" => id.parse().ok().map(AccessGrantee::User),
        "team" => id.parse().ok().map(AccessGrantee::Team),
        "role" if matches!(id, "Viewer" | "Editor" | "Admin") => {
            Some(AccessGrantee::BuiltIn(id.to_string()))
        }
        _ => None,
    }
}

fn legacy_grantee(key: &str) -> Option<LegacyGrantee> {
    match access_grantee(key)? {
        AccessGrantee::User(id) => Some(LegacyGrantee::User(id)),
        AccessGrantee::Team(id) => Some(LegacyGrantee::Team(id)),
        AccessGrantee::BuiltIn(_) => None,
    }
}

fn invalid(message: String) -> VendorError {
    VendorError::Invalid {
        vendor: VENDOR,
        operation: "set_permission",
        message,
    }
}

fn not_a_grantee(key: &str) -> VendorError {
    invalid(format!("{key} is not a Grafana grantee"))
}

fn positive(id: Option<i64>) -> Option<i64> {
    id.filter(|id| *id > 0)
}

/// The name a listing shows for an entry's user or team, if any.
fn listed_name(user_login: &Option<String>, team: &Option<String>) -> Option<String> {
    user_login
        .as_ref()
        .or(team.as_ref())
        .filter(|name| !name.is_empty())
        .cloned()
}

/// Adds a grant read from either API's listing to `live`, with the name the
/// listing shows for its user or team.
fn push_listed(
    live: &mut Live<GrafanaPermission>,
    key: Key,
    perm: GrafanaPermission,
    entry_id: i64,
    user_login: &Option<String>,
    team: &Option<String>,
) {
    if let Some(name) = listed_name(user_login, team) {
        live.names.insert(key.clone(), name);
    }
    live.grants.push(LiveGrant {
        key,
        perm,
        vendor_id: Some(entry_id.to_string()),
    });
}
