//! The statements of one key's action: which privileges are granted, granted
//! with the option, revoked or stripped of the option, and the calls of the
//! `RoleGrants` or `Legacy` API that carry them out (bulk where it is safe,
//! object by object where a revoke must spare what another key keeps).

use std::collections::BTreeSet;

use reqwest::StatusCode;

use crate::api::SnowflakeGrantsApi;
use crate::plan::Action;
use crate::vendor_api::VendorError;
use crate::vendor_api::http::CallError;

use super::client::{LegacyTarget, RoleGrantBody, USAGE, is_role_type, wire_object, wire_scope};
use super::identifiers::Name;
use super::listing::all_listing;
use super::model::{BulkKind, Grantee, GranteeType, Securable, SnowflakePrivilege, singular};
use super::overlap::{AllRevocation, Kept, Removal};
use super::{OWNERSHIP, SnowflakeClient, VENDOR, overlap};

/// What one key's action does per privilege.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Changes {
    pub(super) grant: Vec<String>,
    pub(super) grant_with_option: Vec<String>,
    pub(super) revoke: Vec<String>,
    pub(super) revoke_option: Vec<String>,
}

/// `None`, plain, or with grant option.
fn level(set: &BTreeSet<SnowflakePrivilege>, name: &str) -> u8 {
    if set.contains(&SnowflakePrivilege {
        name: name.to_string(),
        grant_option: true,
    }) {
        2
    } else if set.contains(&SnowflakePrivilege {
        name: name.to_string(),
        grant_option: false,
    }) {
        1
    } else {
        0
    }
}

pub(super) fn changes(action: &Action<SnowflakePrivilege>) -> Changes {
    let names: BTreeSet<&str> = action
        .live
        .iter()
        .chain(action.target.iter())
        .map(|p| p.name.as_str())
        .collect();
    let mut out = Changes::default();
    for name in names {
        let (from, to) = (level(&action.live, name), level(&action.target, name));
        match (from, to) {
            (0, 1) => out.grant.push(name.to_string()),
            (0 | 1, 2) => out.grant_with_option.push(name.to_string()),
            (2, 1) => out.revoke_option.push(name.to_string()),
            (1 | 2, 0) => out.revoke.push(name.to_string()),
            _ => {}
        }
    }
    out
}

impl SnowflakeClient {
    /// Applies one key's changes; the first failure is returned.
    pub(super) async fn apply_key(
        &self,
        grantee: &Grantee,
        action: &Action<SnowflakePrivilege>,
        kept: &Kept<'_>,
    ) -> Result<(), VendorError> {
        let securable = Securable::from_key(&action.key).ok_or_else(|| VendorError::Invalid {
            vendor: VENDOR,
            operation: "grant",
            message: format!("{} is not a Snowflake securable", action.key),
        })?;
        let changes = changes(action);
        let granting = !(changes.grant.is_empty() && changes.grant_with_option.is_empty());
        if changes
            .grant
            .iter()
            .chain(&changes.grant_with_option)
            .any(|name| name == OWNERSHIP)
        {
            return Err(VendorError::Invalid {
                vendor: VENDOR,
                operation: "grant",
                message: "OWNERSHIP is transferred, not granted: grant-operator does not manage it"
                    .into(),
            });
        }
        if let Securable::Named { type_, name } = &securable
            && is_role_type(type_)
        {
            return self
                .apply_role(grantee, &securable, type_, name, &changes)
                .await;
        }
        if grantee.type_ == GranteeType::User && granting {
            return Err(VendorError::Invalid {
                vendor: VENDOR,
                operation: "grant",
                message: crate::api::USER_TAKES_ROLES.into(),
            });
        }
        let all = matches!(
            securable,
            Securable::Bulk {
                kind: BulkKind::All,
                ..
            }
        );
        if all && granting {
            // Only a type this version can read back is granted.
            all_listing(&securable)?;
        }

        let mut first: Option<VendorError> = None;
        let removal = Removal {
            full: changes.revoke.clone(),
            option_only: changes.revoke_option.clone(),
            had_option: changes
                .revoke
                .iter()
                .filter(|name| level(&action.live, name) == 2)
                .cloned()
                .collect(),
        };
        let mut spared = BTreeSet::new();
        if !removal.is_empty() {
            spared = match &securable {
                Securable::Bulk {
                    kind: BulkKind::All,
                    ..
                } => {
                    self.revoke_all(grantee, &securable, &removal, kept, &mut first)
                        .await?
                }
                Securable::Named { type_, name } => {
                    // What an `ALL` key keeps on this object stays.
                    let left = removal.sparing(&kept.on(type_, name, &securable));
                    self.revoke(grantee, &securable, &left, &mut first).await?;
                    removal.spared_by(&left)
                }
                Securable::Bulk { .. } => {
                    self.revoke(grantee, &securable, &removal, &mut first)
                        .await?;
                    BTreeSet::new()
                }
            };
        }
        for (names, option) in [(&changes.grant, false), (&changes.grant_with_option, true)] {
            if !names.is_empty() {
                self.grant(grantee, &securable, names, option, &mut first)
                    .await?;
            }
        }
        match first {
            Some(error) => Err(error),
            None => {
                self.memory()
                    .wrote(&grantee.key(), &action.key, all, &action.target, &spared);
                Ok(())
            }
        }
    }

    /// Grants or revokes a role (GRANT ROLE, GRANT DATABASE ROLE): to a user, to
    /// a role (the role hierarchy), or a database role to a database role. The
    /// role is granted whole, so the key's only privilege is `USAGE`, without
    /// the grant option; the body names the role and nothing else, as
    /// `snowflake.core`'s `grant_role` sends it.
    async fn apply_role(
        &self,
        grantee: &Grantee,
        securable: &Securable,
        type_: &str,
        name: &Name,
        changes: &Changes,
    ) -> Result<(), VendorError> {
        let invalid = |message: String| VendorError::Invalid {
            vendor: VENDOR,
            operation: "grant_role",
            message,
        };
        let whole = changes
            .grant
            .iter()
            .chain(&changes.revoke)
            .all(|privilege| privilege == USAGE)
            && changes.grant_with_option.is_empty()
            && changes.revoke_option.is_empty();
        if !whole {
            return Err(invalid(crate::api::ROLE_GRANTED_WHOLE.into()));
        }
        if grantee.type_ == GranteeType::DatabaseRole
            && type_ == "ROLE"
            && !changes.grant.is_empty()
        {
            return Err(invalid(
                crate::api::DATABASE_ROLE_TAKES_DATABASE_ROLES.into(),
            ));
        }
        let parts = if type_ == "ROLE" { 1 } else { 2 };
        if name.parts().len() != parts {
            return Err(invalid(format!(
                "{type_} {name}: a ROLE is named with one part, a DATABASE ROLE as DATABASE.ROLE"
            )));
        }
        if self.api.grants_api() == SnowflakeGrantsApi::Legacy {
            return Err(invalid(format!(
                "{type_} {name} cannot be granted through the Legacy grants API: its paths grant privileges on securables, and a role is granted with GRANT ROLE; set the provider's grantsApi to RoleGrants to grant roles"
            )));
        }
        let body = RoleGrantBody {
            securable_type: type_.to_string(),
            securable: wire_object(name),
            containing_scope: None,
            privileges: None,
            grant_option: None,
        };
        let mut first = None;
        if !changes.revoke.is_empty() {
            let result = self
                .api
                .role_grants_write(grantee, false, true, &body)
                .await;
            record(&mut first, result, "revoke_role", securable, true);
        }
        if !changes.grant.is_empty() {
            let result = self
                .api
                .role_grants_write(grantee, false, false, &body)
                .await;
            record(&mut first, result, "grant_role", securable, false);
        }
        first.map_or(Ok(()), Err)
    }

    /// Takes `removal` at an `ALL` key. Snowflake strips every object of the
    /// scope, so when another key keeps something on one of them the revoke
    /// goes object by object and spares it; otherwise one bulk revoke. Returns
    /// what was spared.
    async fn revoke_all(
        &self,
        grantee: &Grantee,
        securable: &Securable,
        removal: &Removal,
        kept: &Kept<'_>,
        first: &mut Option<VendorError>,
    ) -> Result<BTreeSet<SnowflakePrivilege>, VendorError> {
        if !kept.touches(securable) {
            self.revoke(grantee, securable, removal, first).await?;
            return Ok(BTreeSet::new());
        }
        let Some(objects) = self.objects(securable).await? else {
            // The scope is gone, and every grant on its objects with it.
            return Ok(BTreeSet::new());
        };
        match overlap::revoke_all(securable, removal, &objects, kept) {
            AllRevocation::Bulk => {
                self.revoke(grantee, securable, removal, first).await?;
                Ok(BTreeSet::new())
            }
            AllRevocation::PerObject { objects, spared } => {
                for ((type_, name), left) in objects {
                    let object = Securable::Named { type_, name };
                    self.revoke(grantee, &object, &left, first).await?;
                }
                Ok(spared)
            }
        }
    }

    /// Revokes `removal` at one securable (named, or all or future objects of a
    /// scope): `Legacy` one privilege per call, `RoleGrants` one call for the
    /// privileges revoked entirely and one for those losing only the grant option.
    async fn revoke(
        &self,
        grantee: &Grantee,
        securable: &Securable,
        removal: &Removal,
        first: &mut Option<VendorError>,
    ) -> Result<(), VendorError> {
        let mut revoked = |result, option_only| {
            record(
                first,
                result,
                revoke_operation(option_only),
                securable,
                true,
            )
        };
        match self.api.grants_api() {
            SnowflakeGrantsApi::Legacy => {
                let target = legacy_target(securable);
                for (names, option_only) in [(&removal.option_only, true), (&removal.full, false)] {
                    for name in names {
                        let result = self
                            .api
                            .legacy_revoke(grantee, &target, name, option_only)
                            .await;
                        revoked(result, option_only);
                    }
                }
            }
            SnowflakeGrantsApi::RoleGrants => {
                let (future, body) = role_grant_body(securable)?;
                for (names, option_only) in [(&removal.option_only, true), (&removal.full, false)] {
                    if names.is_empty() {
                        continue;
                    }
                    let body = RoleGrantBody {
                        privileges: Some(names.to_vec()),
                        grant_option: Some(option_only),
                        ..body.clone()
                    };
                    let result = self
                        .api
                        .role_grants_write(grantee, future, true, &body)
                        .await;
                    revoked(result, option_only);
                }
            }
        }
        Ok(())
    }

    /// Grants `names` at one securable in one call (for `ALL`, the bulk form on
    /// the scope in both APIs).
    async fn grant(
        &self,
        grantee: &Grantee,
        securable: &Securable,
        names: &[String],
        grant_option: bool,
        first: &mut Option<VendorError>,
    ) -> Result<(), VendorError> {
        let result = match self.api.grants_api() {
            SnowflakeGrantsApi::Legacy => {
                self.api
                    .legacy_grant(grantee, &legacy_target(securable), names, grant_option)
                    .await
            }
            SnowflakeGrantsApi::RoleGrants => {
                let (future, body) = role_grant_body(securable)?;
                let body = RoleGrantBody {
                    privileges: Some(names.to_vec()),
                    grant_option: Some(grant_option),
                    ..body
                };
                self.api
                    .role_grants_write(grantee, future, false, &body)
                    .await
            }
        };
        record(first, result, "grant", securable, false);
        Ok(())
    }
}

/// The `RoleGrants` body of a securable, without privileges, and whether it
/// goes to `future-grants`: a named securable as `securable`, all or future
/// objects of a type as the singular type and the `containing_scope`.
fn role_grant_body(securable: &Securable) -> Result<(bool, RoleGrantBody), VendorError> {
    match securable {
        Securable::Named { type_, name } => {
            let object = wire_object(name).ok_or_else(|| VendorError::Invalid {
                vendor: VENDOR,
                operation: "grant",
                message: format!("{type_} {name} has more than three name parts"),
            })?;
            Ok((
                false,
                RoleGrantBody {
                    securable_type: type_.clone(),
                    securable: Some(object),
                    containing_scope: None,
                    privileges: None,
                    grant_option: None,
                },
            ))
        }
        Securable::Bulk {
            kind,
            plural: kind_plural,
            scope,
            scope_name,
        } => Ok((
            *kind == BulkKind::Future,
            RoleGrantBody {
                securable_type: singular(kind_plural),
                securable: None,
                containing_scope: Some(wire_scope(*scope, scope_name)),
                privileges: None,
                grant_option: None,
            },
        )),
    }
}

fn legacy_target(securable: &Securable) -> LegacyTarget<'_> {
    match securable {
        Securable::Named { type_, name } => LegacyTarget::Named { type_, name },
        Securable::Bulk {
            kind,
            plural,
            scope,
            scope_name,
        } => LegacyTarget::Bulk {
            kind: *kind,
            plural,
            scope: *scope,
            scope_name,
        },
    }
}

/// The operation a revoke is counted and reported as: of the grant option only,
/// or of the privilege.
fn revoke_operation(option_only: bool) -> &'static str {
    if option_only {
        "revoke_grant_option"
    } else {
        "revoke"
    }
}

/// Keeps the first failure of a key's calls. A revoke that finds nothing (404) is done.
fn record(
    first: &mut Option<VendorError>,
    result: Result<(), CallError>,
    operation: &'static str,
    securable: &Securable,
    revoke: bool,
) {
    let Err(error) = result else {
        return;
    };
    if revoke && error.status() == Some(StatusCode::NOT_FOUND) {
        return;
    }
    let error = error.into_vendor_error(VENDOR, operation, |_| VendorError::TargetNotFound {
        vendor: VENDOR,
        what: securable.to_string(),
    });
    if first.is_none() {
        *first = Some(error);
    }
}
