//! The [`Vendor`] impl of the Snowflake client: resolve, read, apply, check.

use std::collections::BTreeMap;

use crate::api::{GrantTarget, SnowflakeGrantee, SnowflakeGrantsApi};
use crate::plan::{Key, Plan};
use crate::vendor_api::{Live, ResolvedTarget, Vendor, VendorError};

use super::identifiers::Name;
use super::kind::parse_grantee;
use super::listing::grantee_of;
use super::model::{Grantee, GranteeType, SnowflakePrivilege};
use super::overlap::Kept;
use super::{DeclaredSecurable, SnowflakeClient, VENDOR};

impl Vendor for SnowflakeClient {
    type Perm = SnowflakePrivilege;
    type Target = SnowflakeGrantee;
    type Grantee = DeclaredSecurable;

    async fn resolve(
        &self,
        grantees: &[DeclaredSecurable],
    ) -> Result<Vec<Option<Key>>, VendorError> {
        grantees
            .iter()
            .map(|declared| match &declared.0 {
                Ok(securable) => Ok(Some(securable.key())),
                Err(message) => Err(VendorError::Invalid {
                    vendor: VENDOR,
                    operation: "grant",
                    message: message.clone(),
                }),
            })
            .collect()
    }

    async fn resolve_target(
        &self,
        declared: &SnowflakeGrantee,
    ) -> Result<ResolvedTarget, VendorError> {
        let grantee = parse_grantee(declared).map_err(|message| VendorError::Invalid {
            vendor: VENDOR,
            operation: "list_grants",
            message,
        })?;
        Ok(ResolvedTarget {
            id: grantee.key(),
            status: GrantTarget {
                grantee: Some(grantee.to_string()),
                ..GrantTarget::default()
            },
            name: None,
        })
    }

    async fn read(
        &self,
        target: &ResolvedTarget,
        known: &[Key],
    ) -> Result<Live<SnowflakePrivilege>, VendorError> {
        self.read_grantee(target, known, false).await
    }

    /// A review sees the grantee's future grants even where no resource declares
    /// one (a sync reads them only when it can touch a `FUTURE` key).
    async fn read_for_review(
        &self,
        target: &ResolvedTarget,
        known: &[Key],
    ) -> Result<Live<SnowflakePrivilege>, VendorError> {
        self.read_grantee(target, known, true).await
    }

    /// Every role of the account (users and database roles are not listed: a
    /// review or an export names them).
    async fn list_targets(&self) -> Result<Option<Vec<ResolvedTarget>>, VendorError> {
        let roles = self
            .api
            .object_names("list_roles", "/api/v2/roles", "the account", "roles")
            .await
            .map_err(|error| {
                error.into_vendor_error("list_roles", |message| VendorError::Protocol {
                    vendor: VENDOR,
                    operation: "list_roles",
                    message,
                })
            })?;
        Ok(Some(
            roles
                .into_iter()
                .map(|role| {
                    let grantee = Grantee {
                        type_: GranteeType::Role,
                        name: Name(vec![role]),
                    };
                    ResolvedTarget {
                        id: grantee.key(),
                        status: GrantTarget {
                            grantee: Some(grantee.to_string()),
                            ..GrantTarget::default()
                        },
                        name: None,
                    }
                })
                .collect(),
        ))
    }

    async fn apply(
        &self,
        target: &ResolvedTarget,
        plan: &Plan<SnowflakePrivilege>,
    ) -> BTreeMap<Key, VendorError> {
        let actions = plan.actions.as_slice();
        let mut failures = BTreeMap::new();
        let grantee = match grantee_of(target) {
            Ok(grantee) => grantee,
            Err(error) => {
                for action in actions {
                    failures.insert(action.key.clone(), error.clone());
                }
                return failures;
            }
        };
        let kept = Kept::new(&plan.kept);
        for action in actions {
            if let Err(error) = self.apply_key(&grantee, action, &kept).await {
                failures.insert(action.key.clone(), error);
            }
        }
        failures
    }

    async fn check(&self) -> Result<String, VendorError> {
        self.api.probe().await?;
        Ok(format!(
            "authenticated with {} to {} ({} grants API)",
            self.api.auth().describe(),
            self.api.base(),
            match self.api.grants_api() {
                SnowflakeGrantsApi::RoleGrants => "RoleGrants",
                SnowflakeGrantsApi::Legacy => "Legacy",
            }
        ))
    }
}
