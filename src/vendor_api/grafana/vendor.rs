//! The `Vendor` impl of the Grafana client, and the resolution of logins,
//! emails and team names (exact matches only).

use std::collections::BTreeMap;

use futures::{StreamExt, stream};
use tokio::sync::OnceCell;

use crate::api::{GrafanaDatasourceRef, GrafanaPermission, GrafanaPermissionsApi, GrantTarget};
use crate::plan::{Key, Plan};
use crate::vendor_api::{Live, ResolvedTarget, Vendor, VendorError};

use super::client::{Datasource, DatasourceLookup, OrgUser, PAGE_SIZE};
use super::legacy::legacy_id;
use super::permission::{GrafanaGrantee, PermissionsApi};
use super::{BULK_LOOKUP, GrafanaClient, VENDOR};

impl GrafanaClient {
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
}

/// The one item named `wanted`: an exact match, or else the only
/// case-insensitive one (Grafana compares logins and team names without case).
pub(super) fn exact<'a, T>(
    items: &'a [T],
    name: impl Fn(&T) -> &str,
    wanted: &str,
) -> Option<&'a T> {
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
        Ok(resolved(datasource))
    }

    async fn read(
        &self,
        target: &ResolvedTarget,
        _known: &[Key],
    ) -> Result<Live<GrafanaPermission>, VendorError> {
        let mut live = Live::default();
        match self.permissions_api().await? {
            PermissionsApi::AccessControl => self.read_access(target, &mut live).await?,
            PermissionsApi::Legacy => self.read_legacy(target, &mut live).await?,
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
        Ok(Some(datasources.into_iter().map(resolved).collect()))
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

/// A data source as a resolved target: its uid, both ids in the status, and its name.
fn resolved(datasource: Datasource) -> ResolvedTarget {
    ResolvedTarget {
        id: datasource.uid.clone(),
        status: GrantTarget {
            datasource_id: Some(datasource.id),
            datasource_uid: Some(datasource.uid),
            ..GrantTarget::default()
        },
        name: Some(datasource.name).filter(|name| !name.is_empty()),
    }
}
