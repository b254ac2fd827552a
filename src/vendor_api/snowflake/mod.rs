//! Snowflake privilege grants, `RoleGrants` and `Legacy` APIs.
//!
//! - The unit is the grantee (`ROLE:ANALYST`): one grants listing per grantee
//!   per sync serves every resource on it. Keys are securables
//!   (`SCHEMA SALES.PUBLIC`, `ALL TABLES IN SCHEMA SALES.PUBLIC`,
//!   `FUTURE TABLES IN DATABASE SALES`); permissions are privileges with or
//!   without the grant option (the option includes the privilege).
//! - Identifiers need no look-up: a missing grantee shows as 404 on the listing
//!   (`GranteeNotFound` for the sync), a missing securable as 404 on the grant
//!   call (`TargetNotFound` for that key). `Authoritative` covers only the
//!   resource's own securable.
//! - Future grants are not in the grantee listing: the `future-grants` listing
//!   is read too, only when the sync can touch a `FUTURE` key.
//! - Listings are read whole or not at all: one that reaches `showLimit`'s
//!   maximum may be incomplete, and an entry that cannot be read is not absent;
//!   either fails the read (so the sync writes nothing) with a message saying
//!   whose listing and which entry.
//! - `ALL` grants expand into per-object grants: for each `ALL` key the sync
//!   can touch, the objects of the type in the scope are listed and the key is
//!   live with a privilege when every object has it (with no object, what the
//!   operator last applied counts as live). A new object therefore shows as
//!   drift and the bulk grant is issued again. Both APIs grant with their bulk
//!   form (`Legacy`: the `all` paths; `RoleGrants`: `containing_scope`). A
//!   revoke on all objects strips every object of the scope, so it never goes
//!   in bulk over what another key keeps there ([`overlap`]): then it goes
//!   object by object and spares those. A revoke at one object likewise spares
//!   what a covering `ALL` key keeps. `TABLES` and `VIEWS` (in a schema or
//!   database) and `SCHEMAS` (in a database) are supported for `all`.
//! - Roles are granted whole, as a securable of type `ROLE` or `DATABASE
//!   ROLE` with the privilege `USAGE` (the key `ROLE ANALYST`, as listings show
//!   a granted role): to a user (Snowflake grants users roles, never
//!   privileges), to a role (the role hierarchy), or to a database role of the
//!   same database. Only `RoleGrants` can write them (the `Legacy` paths grant
//!   privileges on securables); both read them.
//! - Turning the grant option off revokes only the grant option.
//! - `OWNERSHIP` is never managed (it is transferred, not revoked).

pub mod auth;
pub mod client;
pub mod connect;
pub mod identifiers;
pub mod model;
pub mod overlap;
pub mod review;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;

use crate::api::{
    GrantPolicy, GrantStatus, GrantTarget, ProviderConfig, SnowflakeGrant, SnowflakeGrantee,
    SnowflakeGranteeType, SnowflakeGrantsApi, SnowflakeScopeType, SnowflakeTarget, VendorKind,
};
use crate::plan::{Action, Key, LiveGrant, Plan};

use self::client::{
    LegacyTarget, ListedGrant, ListingError, RoleGrantBody, SnowflakeApi, USAGE, is_role_type,
    wire_object, wire_scope,
};
use self::identifiers::{Name, encode_segment};
pub use self::model::SnowflakePrivilege;
use self::model::{BulkKind, Grantee, GranteeType, ScopeType, Securable, plural, singular};
use self::overlap::{AllRevocation, Kept, Object, Removal, WriteMemory};
use super::http::CallError;
use super::{
    GrantKind, Live, OtherEntry, OtherKind, ResolvedTarget, Vendor, VendorClient, VendorError,
    normalize_url,
};

const VENDOR: VendorKind = VendorKind::Snowflake;
/// Never managed: ownership is transferred, not granted or revoked.
const OWNERSHIP: &str = "OWNERSHIP";
/// Schema every database has, left out of bulk grants on schemas and their objects.
const INFORMATION_SCHEMA: &str = "INFORMATION_SCHEMA";

/// A securable as declared in a `SnowflakeGrant` (`target`), the per-row "grantee"
/// of the planner: its text, resolved to its normalised key without calls.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeclaredSecurable(pub Result<Securable, String>);

/// The Snowflake client of one provider.
pub struct SnowflakeClient {
    api: SnowflakeApi,
    /// What the client's own writes did that no listing shows (see [`WriteMemory`]).
    memory: Mutex<WriteMemory>,
}

impl std::fmt::Debug for SnowflakeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnowflakeClient")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

/// What one key's action does per privilege.
#[derive(Debug, Default, PartialEq, Eq)]
struct Changes {
    grant: Vec<String>,
    grant_with_option: Vec<String>,
    revoke: Vec<String>,
    revoke_option: Vec<String>,
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

fn changes(action: &Action<SnowflakePrivilege>) -> Changes {
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
    /// A client over `api`.
    pub fn new(api: SnowflakeApi) -> SnowflakeClient {
        SnowflakeClient {
            api,
            memory: Mutex::new(WriteMemory::default()),
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, WriteMemory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The objects an `ALL` key covers, as named securables; `Ok(None)` when the
    /// scope does not exist, `Err` for a type this version cannot list.
    async fn objects(&self, securable: &Securable) -> Result<Option<Vec<Object>>, VendorError> {
        let (type_, operation, leaf) = all_listing(securable)?;
        let Securable::Bulk {
            scope, scope_name, ..
        } = securable
        else {
            return Err(unsupported_all(securable));
        };
        let listing = |error: ListingError, operation| match error.status() {
            Some(StatusCode::NOT_FOUND) => Ok(None),
            _ => Err(
                error.into_vendor_error(operation, |m| VendorError::Protocol {
                    vendor: VENDOR,
                    operation,
                    message: m,
                }),
            ),
        };
        let rows_are = match type_ {
            "TABLE" => "tables",
            "VIEW" => "views",
            _ => "schemas",
        };
        let schemas_of = |database: &identifiers::Part| {
            format!(
                "/api/v2/databases/{}/schemas",
                encode_segment(&database.sql())
            )
        };
        // The schemas to look in.
        let schemas: Vec<Name> = match (scope, scope_name.parts()) {
            (ScopeType::Schema, [_, _]) => vec![scope_name.clone()],
            (ScopeType::Database, [database]) => {
                match self
                    .api
                    .object_names(
                        "list_schemas",
                        &schemas_of(database),
                        &format!("DATABASE {}", database.sql()),
                        "schemas",
                    )
                    .await
                {
                    Ok(names) => names
                        .into_iter()
                        .filter(|schema| schema.text != INFORMATION_SCHEMA)
                        .map(|schema| Name(vec![database.clone(), schema]))
                        .collect(),
                    Err(error) => return listing(error, "list_schemas"),
                }
            }
            _ => return Err(unsupported_all(securable)),
        };
        if type_ == "SCHEMA" {
            return Ok(Some(
                schemas
                    .into_iter()
                    .map(|name| ("SCHEMA".to_string(), name))
                    .collect(),
            ));
        }
        let mut objects = Vec::new();
        for schema in schemas {
            let [database, schema_part] = schema.parts() else {
                continue;
            };
            let path = format!(
                "{}/{}/{leaf}",
                schemas_of(database),
                encode_segment(&schema_part.sql())
            );
            match self
                .api
                .object_names(operation, &path, &format!("SCHEMA {schema}"), rows_are)
                .await
            {
                Ok(names) => objects.extend(names.into_iter().map(|object| {
                    let mut parts = schema.parts().to_vec();
                    parts.push(object);
                    (type_.to_string(), Name(parts))
                })),
                Err(error) => match listing(error, operation)? {
                    // A schema dropped while listing: nothing in it.
                    None if *scope == ScopeType::Database => {}
                    None => return Ok(None),
                    Some(_) => {}
                },
            }
        }
        Ok(Some(objects))
    }

    /// Applies one key's changes; the first failure is returned.
    async fn apply_key(
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
        match self.api.grants_api() {
            SnowflakeGrantsApi::Legacy => {
                let target = legacy_target(securable);
                for (names, option_only) in [(&removal.option_only, true), (&removal.full, false)] {
                    for name in names {
                        let result = self
                            .api
                            .legacy_revoke(grantee, &target, name, option_only)
                            .await;
                        let operation = if option_only {
                            "revoke_grant_option"
                        } else {
                            "revoke"
                        };
                        record(first, result, operation, securable, true);
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
                    let operation = if option_only {
                        "revoke_grant_option"
                    } else {
                        "revoke"
                    };
                    record(first, result, operation, securable, true);
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

/// How the objects an `ALL` key covers are listed: their singular type, the
/// listing's operation and its path leaf under a schema (`""` for the schemas
/// of a database). Other types are refused: this version could not read them back.
fn all_listing(
    securable: &Securable,
) -> Result<(&'static str, &'static str, &'static str), VendorError> {
    let Securable::Bulk {
        plural: kind,
        scope,
        scope_name,
        ..
    } = securable
    else {
        return Err(unsupported_all(securable));
    };
    let depth_fits = match scope {
        ScopeType::Database => scope_name.parts().len() == 1,
        ScopeType::Schema => scope_name.parts().len() == 2,
    };
    match kind.as_str() {
        "TABLES" if depth_fits => Ok(("TABLE", "list_tables", "tables")),
        "VIEWS" if depth_fits => Ok(("VIEW", "list_views", "views")),
        "SCHEMAS" if depth_fits && *scope == ScopeType::Database => {
            Ok(("SCHEMA", "list_schemas", ""))
        }
        _ => Err(unsupported_all(securable)),
    }
}

fn unsupported_all(securable: &Securable) -> VendorError {
    VendorError::Invalid {
        vendor: VENDOR,
        operation: "grant",
        message: format!(
            "{securable}: `all` supports TABLES and VIEWS in a schema or database, and SCHEMAS in a database (use `future` or name the securables for other types)"
        ),
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

fn grantee_of(target: &ResolvedTarget) -> Result<Grantee, VendorError> {
    Grantee::from_key(&target.id).ok_or_else(|| VendorError::Config {
        vendor: VENDOR,
        message: format!("{} is not a Snowflake grantee", target.id),
    })
}

/// Takes out of the live grants what the client revoked at a key but left on
/// objects another key keeps: held there on the other key's behalf, not at this
/// key any more.
fn spare_masked(live: &mut Live<SnowflakePrivilege>, memory: &WriteMemory, grantee: &str) {
    let keys: BTreeSet<Key> = live.grants.iter().map(|grant| grant.key.clone()).collect();
    for key in keys {
        let spared = memory.spared(grantee, &key);
        if spared.is_empty() {
            continue;
        }
        let held: BTreeSet<SnowflakePrivilege> = crate::plan::close(
            live.grants
                .iter()
                .filter(|grant| grant.key == key)
                .map(|grant| &grant.perm),
        );
        let left: BTreeSet<SnowflakePrivilege> = held.difference(&spared).cloned().collect();
        live.grants.retain(|grant| grant.key != key);
        live.grants.extend(
            crate::plan::maximal(&left)
                .into_iter()
                .map(|perm| LiveGrant {
                    key: key.clone(),
                    perm,
                    vendor_id: None,
                }),
        );
    }
}

fn live_of(
    listed: &[ListedGrant],
    live: &mut Live<SnowflakePrivilege>,
) -> HashMap<Key, BTreeSet<SnowflakePrivilege>> {
    let mut by_key: HashMap<Key, BTreeSet<SnowflakePrivilege>> = HashMap::new();
    for grant in listed {
        let key = format!("{} {}", grant.securable_type, grant.name.sql());
        for privilege in &grant.privileges {
            if privilege == OWNERSHIP {
                live.leave_alone(OtherEntry {
                    key: key.clone(),
                    name: None,
                    permission: OWNERSHIP.to_string(),
                    kind: OtherKind::Fixed,
                    detail: None,
                });
                continue;
            }
            let perm = SnowflakePrivilege {
                name: privilege.clone(),
                grant_option: grant.grant_option,
            };
            let set = by_key.entry(key.clone()).or_default();
            for included in crate::plan::Permission::closure(&perm) {
                set.insert(included);
            }
            live.grants.push(LiveGrant {
                key: key.clone(),
                perm,
                vendor_id: None,
            });
        }
    }
    by_key
}

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

impl SnowflakeClient {
    /// What the grantee holds (see [`Vendor::read`]); with `all_futures`, its
    /// future grants are read whatever `known` holds.
    async fn read_grantee(
        &self,
        target: &ResolvedTarget,
        known: &[Key],
        all_futures: bool,
    ) -> Result<Live<SnowflakePrivilege>, VendorError> {
        let grantee = grantee_of(target)?;
        // Keys no resource names any more are never read again: forget them.
        self.memory().forget_unknown(&grantee.key(), known);
        let not_found = |_| VendorError::GranteeNotFound {
            vendor: VENDOR,
            what: grantee.to_string(),
        };
        let listed = self
            .api
            .grants_of(&grantee)
            .await
            .map_err(|error| error.into_vendor_error("list_grants", not_found))?;
        let mut live = Live::default();
        let by_key = live_of(&listed, &mut live);
        let securables: Vec<Securable> = known
            .iter()
            .filter_map(|key| Securable::from_key(key))
            .collect();
        let wants_future = securables.iter().any(|s| {
            matches!(
                s,
                Securable::Bulk {
                    kind: BulkKind::Future,
                    ..
                }
            )
        });
        if (wants_future || all_futures) && grantee.type_ != GranteeType::User {
            let futures = self
                .api
                .future_grants_of(&grantee)
                .await
                .map_err(|error| error.into_vendor_error("list_future_grants", not_found))?;
            for future in futures {
                let key = Securable::Bulk {
                    kind: BulkKind::Future,
                    plural: future.plural.clone(),
                    scope: future.scope,
                    scope_name: future.scope_name.clone(),
                }
                .key();
                for privilege in &future.privileges {
                    live.grants.push(LiveGrant {
                        key: key.clone(),
                        perm: SnowflakePrivilege {
                            name: privilege.clone(),
                            grant_option: future.grant_option,
                        },
                        vendor_id: None,
                    });
                }
            }
        }
        for securable in &securables {
            if !matches!(
                securable,
                Securable::Bulk {
                    kind: BulkKind::All,
                    ..
                }
            ) {
                continue;
            }
            let key = securable.key();
            let objects = match self.objects(securable).await {
                Ok(Some(objects)) => objects,
                // A scope that does not exist (or a type `all` does not support) holds
                // nothing live; the grant call reports why.
                Ok(None) | Err(VendorError::Invalid { .. }) => continue,
                Err(error) => return Err(error),
            };
            let held: BTreeSet<SnowflakePrivilege> = if objects.is_empty() {
                self.memory().vacuous(&grantee.key(), &key)
            } else {
                let empty = BTreeSet::new();
                let mut sets = objects.iter().map(|(type_, name)| {
                    by_key
                        .get(&format!("{type_} {}", name.sql()))
                        .unwrap_or(&empty)
                });
                let first = sets.next().cloned().unwrap_or_default();
                sets.fold(first, |acc, set| acc.intersection(set).cloned().collect())
            };
            for perm in held {
                live.grants.push(LiveGrant {
                    key: key.clone(),
                    perm,
                    vendor_id: None,
                });
            }
        }
        spare_masked(&mut live, &self.memory(), &grantee.key());
        Ok(live)
    }
}

fn parse_grantee(declared: &SnowflakeGrantee) -> Result<Grantee, String> {
    let type_ = match declared.type_ {
        crate::api::SnowflakeGranteeType::Role => GranteeType::Role,
        crate::api::SnowflakeGranteeType::DatabaseRole => GranteeType::DatabaseRole,
        crate::api::SnowflakeGranteeType::User => GranteeType::User,
    };
    Grantee::parse(type_, &declared.name).map_err(|error| error.to_string())
}

/// The grantee's unit key, or the raw text when it does not parse (the sync then
/// reports why).
fn grantee_key(declared: &SnowflakeGrantee) -> String {
    parse_grantee(declared)
        .map(|grantee| grantee.key())
        .unwrap_or_else(|_| format!("{:?}:{}", declared.type_, declared.name))
}

/// The resource's securable.
fn declared_securable(grant: &SnowflakeGrant) -> DeclaredSecurable {
    let target = &grant.spec.target;
    let parsed = match (&target.securable, &target.all, &target.future) {
        (Some(securable), None, None) => {
            Securable::named(&securable.type_, &securable.name).map_err(|error| error.to_string())
        }
        (None, Some(bulk), None) | (None, None, Some(bulk)) => {
            let kind = if target.all.is_some() {
                BulkKind::All
            } else {
                BulkKind::Future
            };
            let scope = match bulk.in_.type_ {
                SnowflakeScopeType::Database => ScopeType::Database,
                SnowflakeScopeType::Schema => ScopeType::Schema,
            };
            Securable::bulk(kind, &bulk.securable_type, scope, &bulk.in_.name)
                .map_err(|error| error.to_string())
        }
        _ => Err("set exactly one of securable, all or future".to_string()),
    };
    DeclaredSecurable(parsed.map(|securable| match securable {
        // `TABLE` and `TABLES` alike: the key always carries the plural.
        Securable::Bulk {
            kind,
            plural: kind_plural,
            scope,
            scope_name,
        } => Securable::Bulk {
            kind,
            plural: plural(&singular(&kind_plural)),
            scope,
            scope_name,
        },
        named => named,
    }))
}

impl GrantKind for SnowflakeGrant {
    type Vendor = SnowflakeClient;
    const VENDOR: VendorKind = VendorKind::Snowflake;
    const KIND: &'static str = "SnowflakeGrant";

    fn policy(&self) -> &GrantPolicy {
        &self.spec.policy
    }

    fn status(&self) -> Option<&GrantStatus> {
        self.status.as_ref()
    }

    fn unit_key(&self) -> String {
        grantee_key(&self.spec.grantee)
    }

    fn unit_key_of(object: &serde_json::Value) -> Option<String> {
        let grantee: SnowflakeGrantee =
            serde_json::from_value(object["spec"]["grantee"].clone()).ok()?;
        Some(grantee_key(&grantee))
    }

    fn target(&self) -> SnowflakeGrantee {
        self.spec.grantee.clone()
    }

    fn declarations(&self) -> Vec<crate::vendor_api::Declared<Self>> {
        let securable = declared_securable(self);
        self.spec
            .privileges
            .iter()
            .map(|privilege| {
                (
                    securable.clone(),
                    SnowflakePrivilege::new(privilege, self.spec.with_grant_option),
                )
            })
            .collect()
    }

    fn grantee_label(grantee: &DeclaredSecurable) -> String {
        match &grantee.0 {
            Ok(securable) => securable.key(),
            Err(message) => message.clone(),
        }
    }

    fn target_status(&self, resolved: &GrantTarget) -> GrantTarget {
        GrantTarget {
            securable: declared_securable(self).0.ok().map(|s| s.key()),
            ..resolved.clone()
        }
    }

    fn authoritative_keys(&self) -> Option<Vec<Key>> {
        Some(
            declared_securable(self)
                .0
                .map(|s| s.key())
                .into_iter()
                .collect(),
        )
    }

    fn endpoint<P: ProviderConfig>(provider: &P) -> Option<String> {
        provider.snowflake().map(|snowflake| {
            format!(
                "{}#account={}",
                normalize_url(&snowflake.account_url),
                auth::account_identifier(&snowflake.account)
            )
        })
    }

    fn client(client: &VendorClient) -> Option<Arc<SnowflakeClient>> {
        match client {
            VendorClient::Snowflake(client) => Some(client.clone()),
            _ => None,
        }
    }

    fn target_named(id: &str) -> SnowflakeGrantee {
        // `export --target ROLE:ANALYST` (or `DATABASE_ROLE:DB.ROLE`, `USER:NAME`).
        let (type_, name) = id.split_once(':').unwrap_or(("ROLE", id));
        let type_ = match type_ {
            "DATABASE_ROLE" => SnowflakeGranteeType::DatabaseRole,
            "USER" => SnowflakeGranteeType::User,
            _ => SnowflakeGranteeType::Role,
        };
        SnowflakeGrantee {
            type_,
            name: name.to_string(),
        }
    }

    fn declaring(
        policy: GrantPolicy,
        id: &str,
        live: &[LiveGrant<SnowflakePrivilege>],
    ) -> Vec<SnowflakeGrant> {
        let grantee = Self::target_named(id);
        // Per securable: the privileges held with the grant option, and those without.
        let mut by_key: BTreeMap<Key, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
        for grant in live {
            // OWNERSHIP is transferred, never granted: it is not declared.
            if grant.perm.name == "OWNERSHIP" {
                continue;
            }
            let (with, without) = by_key.entry(grant.key.clone()).or_default();
            if grant.perm.grant_option {
                with.insert(grant.perm.name.clone());
            } else {
                without.insert(grant.perm.name.clone());
            }
        }
        let mut out = Vec::new();
        for (key, (with, without)) in by_key {
            let Some(securable) = Securable::from_key(&key) else {
                continue;
            };
            let target = match &securable {
                Securable::Named { type_, name } => SnowflakeTarget {
                    securable: Some(crate::api::SnowflakeSecurable {
                        type_: type_.clone(),
                        name: name.sql(),
                    }),
                    all: None,
                    future: None,
                },
                Securable::Bulk {
                    kind,
                    plural,
                    scope,
                    scope_name,
                } => {
                    let bulk = crate::api::SnowflakeBulk {
                        securable_type: plural.clone(),
                        in_: crate::api::SnowflakeScope {
                            type_: match scope {
                                ScopeType::Database => SnowflakeScopeType::Database,
                                ScopeType::Schema => SnowflakeScopeType::Schema,
                            },
                            name: scope_name.sql(),
                        },
                    };
                    match kind {
                        BulkKind::All => SnowflakeTarget {
                            securable: None,
                            all: Some(bulk),
                            future: None,
                        },
                        BulkKind::Future => SnowflakeTarget {
                            securable: None,
                            all: None,
                            future: Some(bulk),
                        },
                    }
                }
            };
            let without: Vec<String> = without.difference(&with).cloned().collect();
            for (privileges, with_grant_option) in [
                (with.into_iter().collect::<Vec<_>>(), true),
                (without, false),
            ] {
                if privileges.is_empty() {
                    continue;
                }
                out.push(SnowflakeGrant::new(
                    "",
                    crate::api::SnowflakeGrantSpec {
                        policy: policy.clone(),
                        grantee: grantee.clone(),
                        target: target.clone(),
                        privileges,
                        with_grant_option,
                    },
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn privilege(name: &str, option: bool) -> SnowflakePrivilege {
        SnowflakePrivilege::new(name, option)
    }

    fn action(live: &[(&str, bool)], target: &[(&str, bool)]) -> Action<SnowflakePrivilege> {
        let close = |list: &[(&str, bool)]| {
            list.iter()
                .flat_map(|(name, option)| {
                    crate::plan::Permission::closure(&privilege(name, *option))
                })
                .collect()
        };
        Action {
            key: "SCHEMA S.P".into(),
            live: close(live),
            target: close(target),
            vendor_ids: Vec::new(),
        }
    }

    #[test]
    fn grant_option_off_revokes_only_the_option() {
        let planned = changes(&action(&[("USAGE", true)], &[("USAGE", false)]));
        assert_eq!(
            planned,
            Changes {
                revoke_option: vec!["USAGE".into()],
                ..Changes::default()
            }
        );
    }

    #[test]
    fn changes_group_privileges_per_call() {
        let planned = changes(&action(
            &[("USAGE", false), ("MONITOR", true), ("OLD", false)],
            &[
                ("USAGE", true),
                ("MONITOR", true),
                ("CREATE TABLE", false),
                ("NEW", false),
            ],
        ));
        assert_eq!(
            planned,
            Changes {
                grant: vec!["CREATE TABLE".into(), "NEW".into()],
                grant_with_option: vec!["USAGE".into()],
                revoke: vec!["OLD".into()],
                revoke_option: vec![],
            }
        );
        let revoke_all = changes(&action(&[("USAGE", true)], &[]));
        assert_eq!(revoke_all.revoke, vec!["USAGE".to_string()]);
        assert!(revoke_all.revoke_option.is_empty());
    }

    fn grant(spec: serde_json::Value) -> SnowflakeGrant {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "grantoperator.dev/v1alpha1",
            "kind": "SnowflakeGrant",
            "metadata": {"name": "g", "namespace": "ns"},
            "spec": spec,
        }))
        .expect("grant")
    }

    #[test]
    fn resources_map_to_grantee_units_and_securable_keys() {
        let object = grant(serde_json::json!({
            "providerRef": {"name": "p"},
            "grantee": {"type": "ROLE", "name": "analyst"},
            "target": {"securable": {"type": "schema", "name": r#"sales."Public""#}},
            "privileges": ["usage", "CREATE TABLE"],
            "withGrantOption": true,
        }));
        assert_eq!(object.unit_key(), "ROLE:ANALYST");
        let declared = object.declarations();
        assert_eq!(declared.len(), 2);
        assert_eq!(
            SnowflakeGrant::grantee_label(&declared[0].0),
            r#"SCHEMA SALES."Public""#
        );
        assert_eq!(declared[0].1, privilege("USAGE", true));
        assert_eq!(
            object.authoritative_keys(),
            Some(vec![r#"SCHEMA SALES."Public""#.to_string()])
        );
        let future = grant(serde_json::json!({
            "providerRef": {"name": "p"},
            "grantee": {"type": "DATABASE_ROLE", "name": "sales.reader"},
            "target": {"future": {"securableType": "tables", "in": {"type": "DATABASE", "name": "sales"}}},
            "privileges": ["SELECT"],
        }));
        assert_eq!(future.unit_key(), "DATABASE_ROLE:SALES.READER");
        assert_eq!(
            SnowflakeGrant::grantee_label(&future.declarations()[0].0),
            "FUTURE TABLES IN DATABASE SALES"
        );
        let raw = serde_json::json!({"spec": {"grantee": {"type": "USER", "name": "jane"}}});
        assert_eq!(
            SnowflakeGrant::unit_key_of(&raw).as_deref(),
            Some("USER:JANE")
        );
    }

    #[test]
    fn ownership_is_never_managed() {
        let mut live = Live::default();
        let listed = vec![ListedGrant {
            securable_type: "TABLE".into(),
            name: identifiers::parse("A.B.C").unwrap(),
            privileges: vec!["OWNERSHIP".into(), "SELECT".into()],
            grant_option: true,
        }];
        let by_key = live_of(&listed, &mut live);
        assert_eq!(live.unmanaged, 1);
        assert_eq!(
            live.others,
            vec![OtherEntry {
                key: "TABLE A.B.C".into(),
                name: None,
                permission: "OWNERSHIP".into(),
                kind: OtherKind::Fixed,
                detail: None,
            }]
        );
        assert_eq!(live.grants.len(), 1);
        assert_eq!(
            by_key["TABLE A.B.C"],
            BTreeSet::from([privilege("SELECT", true), privilege("SELECT", false)])
        );
    }
}
