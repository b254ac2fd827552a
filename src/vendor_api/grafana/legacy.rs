//! The `Legacy` permissions API (Grafana Enterprise before 10.3): numeric
//! levels, remove-then-add for a level change, permissions enabled before the
//! first grant.

use std::collections::BTreeMap;

use futures::{StreamExt, stream};

use crate::api::GrafanaPermission;
use crate::plan::{Action, Key};
use crate::vendor_api::{Live, ResolvedTarget, VendorError, unreadable};

use super::client::LegacyEntry;
use super::{
    GrafanaClient, PARALLEL_WRITES, VENDOR, invalid, legacy_grantee, not_a_grantee, positive,
    push_listed,
};

impl GrafanaClient {
    pub(super) async fn apply_legacy(
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
                let refusal = if action.key.starts_with("role:") {
                    Some(format!(
                        "{} is a built-in role; built-in roles need the AccessControl permissions API, and this provider uses the Legacy API",
                        action.key
                    ))
                } else if level.legacy_level().is_none() {
                    Some(format!(
                        "the Legacy permissions API has no {level} level (only Query and Edit); use permissionsApi AccessControl for {}",
                        action.key
                    ))
                } else {
                    None
                };
                if let Some(message) = refusal {
                    failures.insert(action.key.clone(), invalid(message));
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

    /// Reads the data source's `Legacy` listing into `live`, and remembers
    /// whether its permissions are enabled.
    pub(super) async fn read_legacy(
        &self,
        target: &ResolvedTarget,
        live: &mut Live<GrafanaPermission>,
    ) -> Result<(), VendorError> {
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
                    return Err(unreadable_legacy(entry, "it names both a user and a team"));
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
            push_listed(live, key, perm, entry.id, &entry.user_login, &entry.team);
        }
        self.enabled.put(id, listing.enabled);
        Ok(())
    }
}

/// A Legacy entry the operator cannot read (see [`crate::vendor_api::unreadable`]).
fn unreadable_legacy(entry: &LegacyEntry, why: &str) -> VendorError {
    let shown = serde_json::json!({
        "id": entry.id,
        "userId": entry.user_id,
        "teamId": entry.team_id,
        "permission": entry.permission,
    });
    unreadable(VENDOR, "list_permissions", &shown, why)
}

pub(super) fn legacy_id(target: &ResolvedTarget) -> Result<i64, VendorError> {
    target
        .status
        .datasource_id
        .ok_or_else(|| VendorError::Protocol {
            vendor: VENDOR,
            operation: "list_permissions",
            message: format!("data source {} has no numeric id", target.id),
        })
}
