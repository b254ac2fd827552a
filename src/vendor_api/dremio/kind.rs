//! `DremioGrant` as a grant kind: its unit (the catalog object as written),
//! keys, privileges, status target and the written-back reference for `export`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::{
    DremioCatalogObjectRef, DremioGrant, GrantPolicy, GrantStatus, ProviderConfig, VendorKind,
};
use crate::plan::{Key, LiveGrant};
use crate::vendor_api::{GrantKind, VendorClient, normalize_url};

use super::client::GranteeType;
use super::grant_list::parse_key;
use super::{DremioClient, DremioGrantee, Privilege};

impl GrantKind for DremioGrant {
    type Vendor = DremioClient;
    const VENDOR: VendorKind = VendorKind::Dremio;
    const KIND: &'static str = "DremioGrant";

    fn policy(&self) -> &GrantPolicy {
        &self.spec.policy
    }

    fn status(&self) -> Option<&GrantStatus> {
        self.status.as_ref()
    }

    fn unit_key(&self) -> String {
        object_key(&self.spec.catalog_object)
    }

    fn unit_key_of(object: &serde_json::Value) -> Option<String> {
        let reference: DremioCatalogObjectRef =
            serde_json::from_value(object["spec"]["catalogObject"].clone()).ok()?;
        Some(object_key(&reference))
    }

    fn target(&self) -> DremioCatalogObjectRef {
        self.spec.catalog_object.clone()
    }

    fn declarations(&self) -> Vec<crate::vendor_api::Declared<Self>> {
        let mut declared = Vec::new();
        for entry in &self.spec.grants {
            let grantee = match (&entry.user, &entry.role) {
                (Some(user), None) => match (&user.id, &user.name) {
                    (Some(id), _) => DremioGrantee::UserId(id.clone()),
                    (None, Some(name)) => DremioGrantee::UserName(name.clone()),
                    (None, None) => continue,
                },
                (None, Some(role)) => match (&role.id, &role.name) {
                    (Some(id), _) => DremioGrantee::RoleId(id.clone()),
                    (None, Some(name)) => DremioGrantee::RoleName(name.clone()),
                    (None, None) => continue,
                },
                // The schema refuses these; never guess.
                _ => continue,
            };
            for privilege in &entry.privileges {
                declared.push((grantee.clone(), Privilege(privilege.clone())));
            }
        }
        declared
    }

    fn grantee_label(grantee: &DremioGrantee) -> String {
        match grantee {
            DremioGrantee::UserId(id) | DremioGrantee::UserName(id) => format!("user:{id}"),
            DremioGrantee::RoleId(id) | DremioGrantee::RoleName(id) => format!("role:{id}"),
        }
    }

    fn endpoint<P: ProviderConfig>(provider: &P) -> Option<String> {
        provider.dremio().map(|dremio| {
            let project = dremio.project_id.as_deref().unwrap_or("software");
            format!("{}#project={project}", normalize_url(&dremio.url))
        })
    }

    fn client(client: &VendorClient) -> Option<Arc<DremioClient>> {
        match client {
            VendorClient::Dremio(client) => Some(client.clone()),
            _ => None,
        }
    }

    fn target_named(id: &str) -> DremioCatalogObjectRef {
        DremioCatalogObjectRef {
            path: None,
            id: Some(id.to_string()),
        }
    }

    fn declaring(policy: GrantPolicy, id: &str, live: &[LiveGrant<Privilege>]) -> Vec<DremioGrant> {
        let mut by_grantee: BTreeMap<Key, Vec<String>> = BTreeMap::new();
        for grant in live {
            let privileges = by_grantee.entry(grant.key.clone()).or_default();
            if !privileges.contains(&grant.perm.0) {
                privileges.push(grant.perm.0.clone());
            }
        }
        let grants = by_grantee
            .into_iter()
            .filter_map(|(key, mut privileges)| {
                privileges.sort();
                let (kind, id) = parse_key(&key)?;
                let principal = Some(crate::api::DremioPrincipalRef {
                    name: None,
                    id: Some(id),
                });
                Some(match kind {
                    GranteeType::User => crate::api::DremioGrantEntry {
                        user: principal,
                        role: None,
                        privileges,
                    },
                    GranteeType::Role => crate::api::DremioGrantEntry {
                        user: None,
                        role: principal,
                        privileges,
                    },
                })
            })
            .collect();
        vec![DremioGrant::new(
            "",
            crate::api::DremioGrantSpec {
                policy,
                catalog_object: Self::target_named(id),
                grants,
            },
        )]
    }
}

/// The unit of a catalog object reference, as written.
pub(super) fn object_key(reference: &DremioCatalogObjectRef) -> String {
    match (&reference.id, &reference.path) {
        (Some(id), _) => format!("id:{id}"),
        (None, Some(path)) => format!("path:{}", serde_json::to_string(path).unwrap_or_default()),
        (None, None) => String::new(),
    }
}
