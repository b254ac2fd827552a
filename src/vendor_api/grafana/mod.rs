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

pub mod client;
pub mod connect;
pub mod review;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, stream};
use tokio::sync::OnceCell;

use crate::api::{
    GrafanaBuiltInRole, GrafanaDatasourceRef, GrafanaGrant, GrafanaPermission,
    GrafanaPermissionsApi, GrantPolicy, GrantStatus, GrantTarget, ProviderConfig, VendorKind,
};
use crate::cache::TtlCache;
use crate::plan::{Action, Key, LiveGrant, Permission, Plan};

use self::client::{
    AccessEntry, AccessGrantee, Datasource, DatasourceLookup, GrafanaApi, LegacyEntry,
    LegacyGrantee, OrgUser, PAGE_SIZE,
};
use super::http::CallError;
use super::{
    GrantKind, Live, OtherEntry, OtherKind, ResolvedTarget, Vendor, VendorClient, VendorError,
    normalize_url, unreadable,
};

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

impl Permission for GrafanaPermission {
    fn closure(&self) -> Vec<Self> {
        match self {
            GrafanaPermission::Query => vec![GrafanaPermission::Query],
            GrafanaPermission::Edit => vec![GrafanaPermission::Edit, GrafanaPermission::Query],
            GrafanaPermission::Admin => vec![
                GrafanaPermission::Admin,
                GrafanaPermission::Edit,
                GrafanaPermission::Query,
            ],
        }
    }
}

impl GrafanaPermission {
    /// The AccessControl API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            GrafanaPermission::Query => "Query",
            GrafanaPermission::Edit => "Edit",
            GrafanaPermission::Admin => "Admin",
        }
    }

    /// The Legacy API's number (`None`: the Legacy API has no such level).
    pub fn legacy_level(self) -> Option<i64> {
        match self {
            GrafanaPermission::Query => Some(1),
            GrafanaPermission::Edit => Some(2),
            GrafanaPermission::Admin => None,
        }
    }

    /// A Legacy number; `None` for levels the operator does not manage.
    pub fn from_legacy(level: i64) -> Option<Self> {
        match level {
            1 => Some(GrafanaPermission::Query),
            2 => Some(GrafanaPermission::Edit),
            _ => None,
        }
    }
}

impl std::fmt::Display for GrafanaPermission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for GrafanaPermission {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        match text {
            "Query" => Ok(GrafanaPermission::Query),
            "Edit" => Ok(GrafanaPermission::Edit),
            "Admin" => Ok(GrafanaPermission::Admin),
            _ => Err(()),
        }
    }
}

impl GrafanaBuiltInRole {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            GrafanaBuiltInRole::Viewer => "Viewer",
            GrafanaBuiltInRole::Editor => "Editor",
            GrafanaBuiltInRole::Admin => "Admin",
        }
    }
}

/// A grantee as declared in a `GrafanaGrant`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GrafanaGrantee {
    /// `user: { id }`.
    UserId(i64),
    /// `user: { login }`.
    UserLogin(String),
    /// `user: { email }`.
    UserEmail(String),
    /// `team: { id }`.
    TeamId(i64),
    /// `team: { name }`.
    TeamName(String),
    /// `role: Viewer | Editor | Admin`.
    Role(GrafanaBuiltInRole),
}

/// Which permissions API a provider uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PermissionsApi {
    /// `/api/access-control/datasources/:uid`.
    AccessControl,
    /// `/api/datasources/:id/permissions`.
    Legacy,
}

impl PermissionsApi {
    fn as_str(self) -> &'static str {
        match self {
            PermissionsApi::AccessControl => "AccessControl",
            PermissionsApi::Legacy => "Legacy",
        }
    }
}

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

    /// Logins to user keys: an exact match among the look-up's substring matches.
    async fn lookup_login(
        &self,
        login: &str,
        everyone: &OnceCell<Vec<OrgUser>>,
    ) -> Result<Option<Key>, VendorError> {
        let users = self.api.lookup_users(login).await?;
        let found = exact(&users, |user| user.login.as_str(), login).map(|user| user.user_id);
        if found.is_some() || users.len() < PAGE_SIZE {
            return Ok(found.map(|id| format!("user:{id}")));
        }
        // The look-up was cut off at its limit: look through every user instead.
        let everyone = self.org_users(everyone).await?;
        Ok(exact(everyone, |user| user.login.as_str(), login)
            .map(|user| format!("user:{}", user.user_id)))
    }

    async fn org_users<'a>(
        &self,
        everyone: &'a OnceCell<Vec<OrgUser>>,
    ) -> Result<&'a Vec<OrgUser>, VendorError> {
        everyone.get_or_try_init(|| self.api.org_users()).await
    }

    async fn lookup_team(&self, name: &str) -> Result<Option<Key>, VendorError> {
        let teams = self.api.search_teams(name).await?;
        Ok(exact(&teams, |team| team.name.as_str(), name).map(|team| format!("team:{}", team.id)))
    }

    fn target_not_found(&self, what: String) -> VendorError {
        // The data source may have been recreated under a new id: look it up again next time.
        self.targets.clear();
        VendorError::TargetNotFound {
            vendor: VENDOR,
            what,
        }
    }

    async fn apply_access(
        &self,
        uid: &str,
        actions: &[Action<GrafanaPermission>],
    ) -> BTreeMap<Key, VendorError> {
        let results = stream::iter(actions.iter().cloned().map(|action| async move {
            let result = match access_grantee(&action.key) {
                None => Err(not_a_grantee(&action.key)),
                Some(grantee) => {
                    let level = action
                        .target_top()
                        .first()
                        .map(|perm| perm.as_str())
                        .unwrap_or("");
                    self.api
                        .access_set(uid, &grantee, level)
                        .await
                        .map_err(|error| self.write_error(error, "set_permission", uid))
                }
            };
            (action.key.clone(), result)
        }))
        .buffer_unordered(PARALLEL_WRITES)
        .collect::<Vec<_>>()
        .await;
        results
            .into_iter()
            .filter_map(|(key, result)| result.err().map(|error| (key, error)))
            .collect()
    }

    async fn apply_legacy(
        &self,
        id: i64,
        actions: &[Action<GrafanaPermission>],
    ) -> BTreeMap<Key, VendorError> {
        let mut failures = BTreeMap::new();
        // Refuse what the Legacy API cannot express before touching anything.
        let mut writable = Vec::new();
        for action in actions {
            let level = action.target_top().first().copied();
            if let Some(level) = level {
                if action.key.starts_with("role:") {
                    failures.insert(
                        action.key.clone(),
                        invalid(format!(
                            "{} is a built-in role; built-in roles need the AccessControl permissions API, and this provider uses the Legacy API",
                            action.key
                        )),
                    );
                    continue;
                }
                if level.legacy_level().is_none() {
                    failures.insert(
                        action.key.clone(),
                        invalid(format!(
                            "the Legacy permissions API has no {level} level (only Query and Edit); use permissionsApi AccessControl for {}",
                            action.key
                        )),
                    );
                    continue;
                }
            }
            writable.push(action);
        }

        let granting = writable.iter().any(|action| !action.target.is_empty());
        if granting && self.enabled.get(&id) == Some(false) {
            match self.api.legacy_enable(id).await {
                Ok(()) => self.enabled.put(id, true),
                Err(error) => {
                    let error = self.write_error(error, "enable_permissions", &id.to_string());
                    for action in writable.iter().filter(|action| !action.target.is_empty()) {
                        failures.insert(action.key.clone(), error.clone());
                    }
                    writable.retain(|action| action.target.is_empty());
                }
            }
        }

        let results = stream::iter(writable.into_iter().cloned().map(|action| async move {
            (action.key.clone(), self.legacy_action(id, &action).await)
        }))
        .buffer_unordered(PARALLEL_WRITES)
        .collect::<Vec<_>>()
        .await;
        for (key, result) in results {
            if let Err(error) = result {
                failures.insert(key, error);
            }
        }
        failures
    }

    /// One Legacy action: remove the entries at the key, then add the new level
    /// (the API has no update, and refuses a second entry for a grantee).
    async fn legacy_action(
        &self,
        id: i64,
        action: &Action<GrafanaPermission>,
    ) -> Result<(), VendorError> {
        let datasource = id.to_string();
        for vendor_id in &action.vendor_ids {
            self.api
                .legacy_remove(id, vendor_id)
                .await
                .map_err(|error| self.write_error(error, "remove_permission", &datasource))?;
        }
        let Some(level) = action
            .target_top()
            .first()
            .and_then(|perm| perm.legacy_level())
        else {
            return Ok(());
        };
        let grantee = legacy_grantee(&action.key).ok_or_else(|| not_a_grantee(&action.key))?;
        self.api
            .legacy_add(id, grantee, level)
            .await
            .map_err(|error| self.write_error(error, "add_permission", &datasource))
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

/// The one item named `wanted`: an exact match, or else the only
/// case-insensitive one (Grafana compares logins and team names without case).
fn exact<'a, T>(items: &'a [T], name: impl Fn(&T) -> &str, wanted: &str) -> Option<&'a T> {
    if let Some(item) = items.iter().find(|item| name(item) == wanted) {
        return Some(item);
    }
    let mut folded = items
        .iter()
        .filter(|item| name(item).to_lowercase() == wanted.to_lowercase());
    match (folded.next(), folded.next()) {
        (Some(item), None) => Some(item),
        _ => None,
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

impl Vendor for GrafanaClient {
    type Perm = GrafanaPermission;
    type Target = GrafanaDatasourceRef;
    type Grantee = GrafanaGrantee;

    async fn resolve(&self, grantees: &[GrafanaGrantee]) -> Result<Vec<Option<Key>>, VendorError> {
        let mut resolved: Vec<Option<Key>> = vec![None; grantees.len()];
        let mut logins: Vec<(usize, String)> = Vec::new();
        let mut emails: Vec<(usize, String)> = Vec::new();
        let mut teams: Vec<(usize, String)> = Vec::new();
        for (index, grantee) in grantees.iter().enumerate() {
            match grantee {
                GrafanaGrantee::UserId(id) => resolved[index] = Some(format!("user:{id}")),
                GrafanaGrantee::TeamId(id) => resolved[index] = Some(format!("team:{id}")),
                GrafanaGrantee::Role(role) => {
                    resolved[index] = Some(format!("role:{}", role.as_str()));
                }
                other => match self.names.get(other) {
                    Some(key) => resolved[index] = Some(key),
                    None => match other {
                        GrafanaGrantee::UserLogin(login) => logins.push((index, login.clone())),
                        GrafanaGrantee::UserEmail(email) => emails.push((index, email.clone())),
                        GrafanaGrantee::TeamName(name) => teams.push((index, name.clone())),
                        _ => {}
                    },
                },
            }
        }

        // The organisation's users, listed at most once per resolution.
        let everyone: OnceCell<Vec<OrgUser>> = OnceCell::new();
        if logins.len() > BULK_LOOKUP {
            let users = self.org_users(&everyone).await?;
            for (index, login) in &logins {
                resolved[*index] = exact(users, |user| user.login.as_str(), login)
                    .map(|user| format!("user:{}", user.user_id));
            }
        } else {
            let everyone = &everyone;
            let found = stream::iter(logins.clone().into_iter().map(|(index, login)| async move {
                (index, self.lookup_login(&login, everyone).await)
            }))
            .buffer_unordered(4)
            .collect::<Vec<_>>()
            .await;
            for (index, key) in found {
                resolved[index] = key?;
            }
        }
        for (index, login) in logins {
            if let Some(key) = &resolved[index] {
                self.names
                    .put(GrafanaGrantee::UserLogin(login), key.clone());
            }
        }

        if !emails.is_empty() {
            let users = self.org_users(&everyone).await?;
            for (index, email) in emails {
                let mut matching = users
                    .iter()
                    .filter(|user| user.email.eq_ignore_ascii_case(&email));
                let key = match (matching.next(), matching.next()) {
                    (Some(user), None) => Some(format!("user:{}", user.user_id)),
                    _ => None,
                };
                if let Some(key) = &key {
                    self.names
                        .put(GrafanaGrantee::UserEmail(email), key.clone());
                }
                resolved[index] = key;
            }
        }

        for (index, name) in teams {
            let key = self.lookup_team(&name).await?;
            if let Some(key) = &key {
                self.names.put(GrafanaGrantee::TeamName(name), key.clone());
            }
            resolved[index] = key;
        }
        Ok(resolved)
    }

    async fn resolve_target(
        &self,
        reference: &GrafanaDatasourceRef,
    ) -> Result<ResolvedTarget, VendorError> {
        let datasource = match self.targets.get(reference) {
            Some(datasource) => datasource,
            None => {
                let (lookup, what) = match (&reference.uid, &reference.name, reference.id) {
                    (Some(uid), _, _) => {
                        (DatasourceLookup::Uid(uid), format!("data source uid {uid}"))
                    }
                    (None, Some(name), _) => (
                        DatasourceLookup::Name(name),
                        format!("data source named {name:?}"),
                    ),
                    (None, None, Some(id)) => {
                        (DatasourceLookup::Id(id), format!("data source id {id}"))
                    }
                    (None, None, None) => {
                        return Err(VendorError::Config {
                            vendor: VENDOR,
                            message: "the datasource names no uid, name or id".into(),
                        });
                    }
                };
                let datasource =
                    self.api
                        .datasource(lookup)
                        .await?
                        .ok_or(VendorError::TargetNotFound {
                            vendor: VENDOR,
                            what,
                        })?;
                self.targets.put(reference.clone(), datasource.clone());
                datasource
            }
        };
        Ok(ResolvedTarget {
            id: datasource.uid.clone(),
            status: GrantTarget {
                datasource_id: Some(datasource.id),
                datasource_uid: Some(datasource.uid),
                ..GrantTarget::default()
            },
            name: Some(datasource.name).filter(|name| !name.is_empty()),
        })
    }

    async fn read(
        &self,
        target: &ResolvedTarget,
        _known: &[Key],
    ) -> Result<Live<GrafanaPermission>, VendorError> {
        let mut live = Live::default();
        match self.permissions_api().await? {
            PermissionsApi::AccessControl => {
                let entries = self.api.access_list(&target.id).await.map_err(|error| {
                    error.into_vendor_error(VENDOR, "list_permissions", |_| {
                        self.target_not_found(format!("data source uid {}", target.id))
                    })
                })??;
                for entry in entries {
                    // Inherited entries and those of fixed or basic roles are
                    // known and never ours to change, whatever they name.
                    if !entry.is_managed || entry.is_inherited {
                        live.leave_alone(other_access(entry));
                        continue;
                    }
                    let key = match (
                        positive(entry.user_id),
                        positive(entry.team_id),
                        entry
                            .built_in_role
                            .as_deref()
                            .filter(|role| !role.is_empty()),
                    ) {
                        (Some(user), None, None) => format!("user:{user}"),
                        (None, Some(team), None) => format!("team:{team}"),
                        (None, None, Some(role)) => format!("role:{role}"),
                        (None, None, None) => {
                            return Err(unreadable_access(
                                &entry,
                                "a managed entry names no user, team or role",
                            ));
                        }
                        _ => {
                            return Err(unreadable_access(
                                &entry,
                                "a managed entry names more than one grantee",
                            ));
                        }
                    };
                    let Ok(perm) = entry.permission.parse::<GrafanaPermission>() else {
                        return Err(unreadable_access(
                            &entry,
                            &format!(
                                "the level {:?} is not Query, Edit or Admin",
                                entry.permission
                            ),
                        ));
                    };
                    if let Some(name) = listed_name(&entry.user_login, &entry.team) {
                        live.names.insert(key.clone(), name);
                    }
                    live.grants.push(LiveGrant {
                        key,
                        perm,
                        vendor_id: Some(entry.id.to_string()),
                    });
                }
            }
            PermissionsApi::Legacy => {
                let id = legacy_id(target)?;
                let listing = self.api.legacy_list(id).await.map_err(|error| {
                    error.into_vendor_error(VENDOR, "list_permissions", |_| {
                        self.target_not_found(format!("data source id {id}"))
                    })
                })??;
                // Read every entry before remembering anything from the listing.
                for entry in &listing.permissions {
                    let key = match (positive(entry.user_id), positive(entry.team_id)) {
                        (Some(user), None) => format!("user:{user}"),
                        (None, Some(team)) => format!("team:{team}"),
                        (None, None) => {
                            return Err(unreadable_legacy(entry, "it names no user and no team"));
                        }
                        (Some(_), Some(_)) => {
                            return Err(unreadable_legacy(
                                entry,
                                "it names both a user and a team",
                            ));
                        }
                    };
                    let Some(perm) = GrafanaPermission::from_legacy(entry.permission) else {
                        return Err(unreadable_legacy(
                            entry,
                            &format!(
                                "the level {} is not 1 (Query) or 2 (Edit)",
                                entry.permission
                            ),
                        ));
                    };
                    if let Some(name) = listed_name(&entry.user_login, &entry.team) {
                        live.names.insert(key.clone(), name);
                    }
                    live.grants.push(LiveGrant {
                        key,
                        perm,
                        vendor_id: Some(entry.id.to_string()),
                    });
                }
                self.enabled.put(id, listing.enabled);
            }
        }
        Ok(live)
    }

    async fn apply(
        &self,
        target: &ResolvedTarget,
        plan: &Plan<GrafanaPermission>,
    ) -> BTreeMap<Key, VendorError> {
        let actions = plan.actions.as_slice();
        let api = match self.permissions_api().await {
            Ok(api) => api,
            Err(error) => {
                return actions
                    .iter()
                    .map(|action| (action.key.clone(), error.clone()))
                    .collect();
            }
        };
        match api {
            PermissionsApi::AccessControl => self.apply_access(&target.id, actions).await,
            PermissionsApi::Legacy => match legacy_id(target) {
                Ok(id) => self.apply_legacy(id, actions).await,
                Err(error) => actions
                    .iter()
                    .map(|action| (action.key.clone(), error.clone()))
                    .collect(),
            },
        }
    }

    async fn list_targets(&self) -> Result<Option<Vec<ResolvedTarget>>, VendorError> {
        let datasources = self.api.datasources().await?;
        Ok(Some(
            datasources
                .into_iter()
                .map(|datasource| ResolvedTarget {
                    id: datasource.uid.clone(),
                    status: GrantTarget {
                        datasource_id: Some(datasource.id),
                        datasource_uid: Some(datasource.uid),
                        ..GrantTarget::default()
                    },
                    name: Some(datasource.name).filter(|name| !name.is_empty()),
                })
                .collect(),
        ))
    }

    async fn check(&self) -> Result<String, VendorError> {
        let org = self.api.current_org().await?;
        let api = self.permissions_api().await?;
        let how = match self.configured {
            GrafanaPermissionsApi::Auto => "detected",
            _ => "configured",
        };
        Ok(format!(
            "authenticated to Grafana at {} in organisation {:?} (id {}); {} permissions API ({how})",
            self.api.base(),
            org.name,
            org.id,
            api.as_str()
        ))
    }
}

/// A managed AccessControl entry the operator cannot read (see [`super::unreadable`]).
/// The name a listing shows for an entry's user or team, if any.
fn listed_name(user_login: &Option<String>, team: &Option<String>) -> Option<String> {
    user_login
        .as_ref()
        .or(team.as_ref())
        .filter(|name| !name.is_empty())
        .cloned()
}

/// An AccessControl entry left alone (inherited, or of a fixed or basic role),
/// as a review shows it. It is never planned, so whatever it names is shown as
/// listed: an entry naming nobody the operator knows shows its role name.
fn other_access(entry: AccessEntry) -> OtherEntry {
    let role = entry.built_in_role.clone().filter(|role| !role.is_empty());
    let key = match (positive(entry.user_id), positive(entry.team_id), role) {
        (Some(user), _, _) => format!("user:{user}"),
        (None, Some(team), _) => format!("team:{team}"),
        (None, None, Some(role)) => format!("role:{role}"),
        (None, None, None) => entry
            .role_name
            .clone()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| format!("entry {}", entry.id)),
    };
    OtherEntry {
        key,
        name: listed_name(&entry.user_login, &entry.team),
        permission: entry.permission,
        kind: if entry.is_inherited {
            OtherKind::Inherited
        } else {
            OtherKind::Fixed
        },
        detail: entry.role_name.filter(|name| !name.is_empty()),
    }
}

fn unreadable_access(entry: &AccessEntry, why: &str) -> VendorError {
    let shown = serde_json::json!({
        "id": entry.id,
        "userId": entry.user_id,
        "teamId": entry.team_id,
        "builtInRole": entry.built_in_role,
        "permission": entry.permission,
        "isManaged": entry.is_managed,
        "isInherited": entry.is_inherited,
    });
    unreadable(VENDOR, "list_permissions", &shown, why)
}

/// A Legacy entry the operator cannot read (see [`super::unreadable`]).
fn unreadable_legacy(entry: &LegacyEntry, why: &str) -> VendorError {
    let shown = serde_json::json!({
        "id": entry.id,
        "userId": entry.user_id,
        "teamId": entry.team_id,
        "permission": entry.permission,
    });
    unreadable(VENDOR, "list_permissions", &shown, why)
}

fn legacy_id(target: &ResolvedTarget) -> Result<i64, VendorError> {
    target
        .status
        .datasource_id
        .ok_or_else(|| VendorError::Protocol {
            vendor: VENDOR,
            operation: "list_permissions",
            message: format!("data source {} has no numeric id", target.id),
        })
}

impl GrantKind for GrafanaGrant {
    type Vendor = GrafanaClient;
    const VENDOR: VendorKind = VendorKind::Grafana;
    const KIND: &'static str = "GrafanaGrant";

    fn policy(&self) -> &GrantPolicy {
        &self.spec.policy
    }

    fn status(&self) -> Option<&GrantStatus> {
        self.status.as_ref()
    }

    fn unit_key(&self) -> String {
        datasource_key(&self.spec.datasource)
    }

    fn unit_key_of(object: &serde_json::Value) -> Option<String> {
        let reference: GrafanaDatasourceRef =
            serde_json::from_value(object["spec"]["datasource"].clone()).ok()?;
        Some(datasource_key(&reference))
    }

    fn target(&self) -> GrafanaDatasourceRef {
        self.spec.datasource.clone()
    }

    fn declarations(&self) -> Vec<crate::vendor_api::Declared<Self>> {
        self.spec
            .permissions
            .iter()
            .filter_map(|entry| {
                let grantee = match (&entry.user, &entry.team, entry.role) {
                    (Some(user), None, None) => match (user.id, &user.login, &user.email) {
                        (Some(id), _, _) => GrafanaGrantee::UserId(id),
                        (None, Some(login), _) => GrafanaGrantee::UserLogin(login.clone()),
                        (None, None, Some(email)) => GrafanaGrantee::UserEmail(email.clone()),
                        (None, None, None) => return None,
                    },
                    (None, Some(team), None) => match (team.id, &team.name) {
                        (Some(id), _) => GrafanaGrantee::TeamId(id),
                        (None, Some(name)) => GrafanaGrantee::TeamName(name.clone()),
                        (None, None) => return None,
                    },
                    (None, None, Some(role)) => GrafanaGrantee::Role(role),
                    // The schema refuses these; never guess.
                    _ => return None,
                };
                Some((grantee, entry.permission))
            })
            .collect()
    }

    fn grantee_label(grantee: &GrafanaGrantee) -> String {
        match grantee {
            GrafanaGrantee::UserId(id) => format!("user:{id}"),
            GrafanaGrantee::UserLogin(login) => format!("user:{login}"),
            GrafanaGrantee::UserEmail(email) => format!("user:{email}"),
            GrafanaGrantee::TeamId(id) => format!("team:{id}"),
            GrafanaGrantee::TeamName(name) => format!("team:{name}"),
            GrafanaGrantee::Role(role) => format!("role:{}", role.as_str()),
        }
    }

    fn endpoint<P: ProviderConfig>(provider: &P) -> Option<String> {
        provider.grafana().map(|grafana| {
            let org = grafana
                .org_id
                .map(|org| org.to_string())
                .unwrap_or_else(|| "default".into());
            format!("{}#org={org}", normalize_url(&grafana.url))
        })
    }

    fn client(client: &VendorClient) -> Option<Arc<GrafanaClient>> {
        match client {
            VendorClient::Grafana(client) => Some(client.clone()),
            _ => None,
        }
    }

    fn target_named(id: &str) -> GrafanaDatasourceRef {
        GrafanaDatasourceRef {
            uid: Some(id.to_string()),
            name: None,
            id: None,
        }
    }

    fn declaring(
        policy: GrantPolicy,
        id: &str,
        live: &[LiveGrant<GrafanaPermission>],
    ) -> Vec<GrafanaGrant> {
        let permissions = crate::vendor_api::highest(live)
            .into_iter()
            .filter_map(|(key, permission)| {
                let entry = |user, team, role| crate::api::GrafanaPermissionEntry {
                    user,
                    team,
                    role,
                    permission,
                };
                Some(match access_grantee(&key)? {
                    AccessGrantee::User(id) => entry(
                        Some(crate::api::GrafanaUserRef {
                            login: None,
                            email: None,
                            id: Some(id),
                        }),
                        None,
                        None,
                    ),
                    AccessGrantee::Team(id) => entry(
                        None,
                        Some(crate::api::GrafanaTeamRef {
                            name: None,
                            id: Some(id),
                        }),
                        None,
                    ),
                    AccessGrantee::BuiltIn(role) => {
                        let role = match role.as_str() {
                            "Viewer" => GrafanaBuiltInRole::Viewer,
                            "Editor" => GrafanaBuiltInRole::Editor,
                            _ => GrafanaBuiltInRole::Admin,
                        };
                        entry(None, None, Some(role))
                    }
                })
            })
            .collect();
        vec![GrafanaGrant::new(
            "",
            crate::api::GrafanaGrantSpec {
                policy,
                datasource: Self::target_named(id),
                permissions,
            },
        )]
    }
}

/// The unit of a data source reference, as written.
fn datasource_key(reference: &GrafanaDatasourceRef) -> String {
    match (&reference.uid, &reference.name, reference.id) {
        (Some(uid), _, _) => format!("uid:{uid}"),
        (None, Some(name), _) => format!("name:{name}"),
        (None, None, Some(id)) => format!("id:{id}"),
        (None, None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_include_lower_levels() {
        assert_eq!(
            GrafanaPermission::Admin.closure(),
            vec![
                GrafanaPermission::Admin,
                GrafanaPermission::Edit,
                GrafanaPermission::Query
            ]
        );
        assert_eq!(
            GrafanaPermission::Query.closure(),
            vec![GrafanaPermission::Query]
        );
        assert_eq!(
            "Edit".parse::<GrafanaPermission>(),
            Ok(GrafanaPermission::Edit)
        );
        assert!("View".parse::<GrafanaPermission>().is_err());
    }

    #[test]
    fn legacy_levels_are_numbers() {
        assert_eq!(GrafanaPermission::Query.legacy_level(), Some(1));
        assert_eq!(GrafanaPermission::Edit.legacy_level(), Some(2));
        assert_eq!(GrafanaPermission::Admin.legacy_level(), None);
        assert_eq!(
            GrafanaPermission::from_legacy(2),
            Some(GrafanaPermission::Edit)
        );
        assert_eq!(GrafanaPermission::from_legacy(4), None);
        assert_eq!(GrafanaPermission::from_legacy(0), None);
    }

    #[test]
    fn keys_map_to_grantees() {
        assert_eq!(access_grantee("user:7"), Some(AccessGrantee::User(7)));
        assert_eq!(access_grantee("team:3"), Some(AccessGrantee::Team(3)));
        assert_eq!(
            access_grantee("role:Viewer"),
            Some(AccessGrantee::BuiltIn("Viewer".into()))
        );
        assert_eq!(access_grantee("role:Owner"), None);
        assert_eq!(access_grantee("user:jane"), None);
        assert_eq!(legacy_grantee("role:Viewer"), None);
        assert_eq!(legacy_grantee("team:3"), Some(LegacyGrantee::Team(3)));
    }

    #[test]
    fn names_match_exactly_never_by_substring() {
        let names = ["jane", "janet", "Bob", "bob2"];
        assert_eq!(exact(&names, |name| name, "jane"), Some(&"jane"));
        assert_eq!(exact(&names, |name| name, "jan"), None);
        assert_eq!(exact(&names, |name| name, "bob"), Some(&"Bob"));
        let ambiguous = ["Ann", "ANN"];
        assert_eq!(
            exact(&ambiguous, |name| name, "ann"),
            None,
            "two case-insensitive matches"
        );
        assert_eq!(exact(&ambiguous, |name| name, "ANN"), Some(&"ANN"));
    }

    #[test]
    fn units_follow_the_reference_as_written() {
        let reference =
            |uid: Option<&str>, name: Option<&str>, id: Option<i64>| GrafanaDatasourceRef {
                uid: uid.map(String::from),
                name: name.map(String::from),
                id,
            };
        assert_eq!(
            datasource_key(&reference(Some("P8E"), None, None)),
            "uid:P8E"
        );
        assert_eq!(
            datasource_key(&reference(None, Some("Prom"), None)),
            "name:Prom"
        );
        assert_eq!(datasource_key(&reference(None, None, Some(4))), "id:4");
        let object = serde_json::json!({"spec": {"datasource": {"name": "Prom"}}});
        assert_eq!(
            GrafanaGrant::unit_key_of(&object).as_deref(),
            Some("name:Prom")
        );
    }
}
