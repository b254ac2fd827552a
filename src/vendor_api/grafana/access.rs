//! The `AccessControl` permissions API (Grafana 9+): reading the managed,
//! non-inherited entries of a data source and setting or removing one grantee's
//! permission per call.

use std::collections::BTreeMap;

use futures::{StreamExt, stream};

use crate::api::GrafanaPermission;
use crate::plan::{Action, Key};
use crate::vendor_api::{Live, OtherEntry, OtherKind, ResolvedTarget, VendorError, unreadable};

use super::client::AccessEntry;
use super::{
    GrafanaClient, PARALLEL_WRITES, VENDOR, access_grantee, listed_name, not_a_grantee, positive,
    push_listed,
};

impl GrafanaClient {
    pub(super) async fn apply_access(
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

    /// Reads the managed, non-inherited entries of the data source's
    /// `AccessControl` listing into `live`; every other entry is left alone.
    pub(super) async fn read_access(
        &self,
        target: &ResolvedTarget,
        live: &mut Live<GrafanaPermission>,
    ) -> Result<(), VendorError> {
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
            push_listed(live, key, perm, entry.id, &entry.user_login, &entry.team);
        }
        Ok(())
    }
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

/// A managed AccessControl entry the operator cannot read (see
/// [`crate::vendor_api::unreadable`]).
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
