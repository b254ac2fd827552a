//! The `Vendor` impl of the Dremio client.

use std::collections::BTreeMap;

use futures::{StreamExt, stream};

use crate::api::{DremioCatalogObjectRef, GrantTarget};
use crate::plan::{Key, Plan};
use crate::vendor_api::{Live, ResolvedTarget, Vendor, VendorError};

use super::grant_list::{live_of, parse_key};
use super::{Change, DremioClient, DremioGrantee, Privilege, VENDOR, WriteError};

impl Vendor for DremioClient {
    type Perm = Privilege;
    type Target = DremioCatalogObjectRef;
    type Grantee = DremioGrantee;

    async fn resolve(&self, grantees: &[DremioGrantee]) -> Result<Vec<Option<Key>>, VendorError> {
        let found = stream::iter(
            grantees
                .iter()
                .cloned()
                .enumerate()
                .map(|(index, grantee)| async move { (index, self.lookup(&grantee).await) }),
        )
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
        let mut resolved = vec![None; grantees.len()];
        for (index, key) in found {
            resolved[index] = key?;
        }
        Ok(resolved)
    }

    async fn resolve_target(
        &self,
        reference: &DremioCatalogObjectRef,
    ) -> Result<ResolvedTarget, VendorError> {
        let name = reference.path.as_ref().map(|path| path.join("/"));
        let id = match (&reference.id, &reference.path) {
            (Some(id), _) => id.clone(),
            (None, Some(path)) => match self.paths.get(path) {
                Some(id) => id,
                None => {
                    let id = self.api.object_by_path(path).await?.ok_or_else(|| {
                        VendorError::TargetNotFound {
                            vendor: VENDOR,
                            what: format!("catalog object at path {}", path.join("/")),
                        }
                    })?;
                    self.paths.put(path.clone(), id.clone());
                    id
                }
            },
            (None, None) => {
                return Err(VendorError::Config {
                    vendor: VENDOR,
                    message: "the catalogObject names neither path nor id".into(),
                });
            }
        };
        Ok(ResolvedTarget {
            status: GrantTarget {
                catalog_object_id: Some(id.clone()),
                ..GrantTarget::default()
            },
            id,
            name,
        })
    }

    async fn read(
        &self,
        target: &ResolvedTarget,
        _known: &[Key],
    ) -> Result<Live<Privilege>, VendorError> {
        // The client has refused every entry of another grantee type.
        Ok(live_of(self.current(&target.id).await?.grants))
    }

    async fn read_for_review(
        &self,
        target: &ResolvedTarget,
        _known: &[Key],
    ) -> Result<Live<Privilege>, VendorError> {
        let current = self
            .api
            .grants_for_review(&target.id)
            .await
            .map_err(|error| self.target_error(error, "list_grants", &target.id))??;
        Ok(live_of(current.grants))
    }

    async fn apply(
        &self,
        target: &ResolvedTarget,
        plan: &Plan<Privilege>,
    ) -> BTreeMap<Key, VendorError> {
        let actions = plan.actions.as_slice();
        let mut failures = BTreeMap::new();
        let mut changes = Vec::new();
        for action in actions {
            match parse_key(&action.key) {
                Some((grantee_type, id)) => changes.push(Change {
                    key: action.key.clone(),
                    grantee_type,
                    id,
                    removed: action.removed().into_iter().map(|p| p.0).collect(),
                    added: action.added().into_iter().map(|p| p.0).collect(),
                }),
                None => {
                    failures.insert(
                        action.key.clone(),
                        VendorError::Invalid {
                            vendor: VENDOR,
                            operation: "put_grants",
                            message: format!("{} is not a Dremio grantee", action.key),
                        },
                    );
                }
            }
        }
        match self.write(&target.id, &changes).await {
            Ok(refused) => failures.extend(refused),
            // One refused grantee fails the whole list: write each change on its own to
            // find it, so the others still apply.
            Err(WriteError::Refused(_)) if changes.len() > 1 => {
                for change in &changes {
                    match self.write(&target.id, std::slice::from_ref(change)).await {
                        Ok(refused) => failures.extend(refused),
                        Err(WriteError::Refused(error) | WriteError::Other(error)) => {
                            failures.insert(change.key.clone(), error);
                        }
                    }
                }
            }
            Err(WriteError::Refused(error) | WriteError::Other(error)) => {
                for change in &changes {
                    failures.insert(change.key.clone(), error.clone());
                }
            }
        }
        failures
    }

    async fn check(&self) -> Result<String, VendorError> {
        let reached = self.api.probe().await?;
        Ok(format!(
            "authenticated with a personal access token to {reached}"
        ))
    }
}
