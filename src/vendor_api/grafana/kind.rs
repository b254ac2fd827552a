//! `GrafanaGrant` as a grant kind: its unit (the data source as written), keys
//! and levels, status target and the written-back reference for `export`.

use std::sync::Arc;

use crate::api::{
    GrafanaBuiltInRole, GrafanaDatasourceRef, GrafanaGrant, GrafanaPermission, GrantPolicy,
    GrantStatus, ProviderConfig, VendorKind,
};
use crate::plan::LiveGrant;
use crate::vendor_api::{GrantKind, VendorClient, normalize_url};

use super::client::AccessGrantee;
use super::permission::GrafanaGrantee;
use super::{GrafanaClient, access_grantee};

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
pub(super) fn datasource_key(reference: &GrafanaDatasourceRef) -> String {
    match (&reference.uid, &reference.name, reference.id) {
        (Some(uid), _, _) => format!("uid:{uid}"),
        (None, Some(name), _) => format!("name:{name}"),
        (None, None, Some(id)) => format!("id:{id}"),
        (None, None, None) => String::new(),
    }
}
