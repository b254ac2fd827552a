//! Reading a grantee: its grants and future grants as live grants of the
//! planner (`OWNERSHIP` and other entries left alone), the objects an `ALL` key
//! covers, and what the client's own revokes spared on them.

use std::collections::{BTreeSet, HashMap};

use reqwest::StatusCode;

use crate::plan::{Key, LiveGrant};
use crate::vendor_api::{Live, OtherEntry, OtherKind, ResolvedTarget, VendorError};

use super::client::{ListedGrant, ListingError};
use super::identifiers::{Name, encode_segment};
use super::model::{BulkKind, Grantee, GranteeType, ScopeType, Securable, SnowflakePrivilege};
use super::overlap::{Object, WriteMemory};
use super::{INFORMATION_SCHEMA, OWNERSHIP, SnowflakeClient, VENDOR, identifiers};

impl SnowflakeClient {
    /// The objects an `ALL` key covers, as named securables; `Ok(None)` when the
    /// scope does not exist, `Err` for a type this version cannot list.
    pub(super) async fn objects(
        &self,
        securable: &Securable,
    ) -> Result<Option<Vec<Object>>, VendorError> {
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
}

/// How the objects an `ALL` key covers are listed: their singular type, the
/// listing's operation and its path leaf under a schema (`""` for the schemas
/// of a database). Other types are refused: this version could not read them back.
pub(super) fn all_listing(
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

pub(super) fn grantee_of(target: &ResolvedTarget) -> Result<Grantee, VendorError> {
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

pub(super) fn live_of(
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

impl SnowflakeClient {
    /// What the grantee holds (see [`Vendor::read`]); with `all_futures`, its
    /// future grants are read whatever `known` holds.
    pub(super) async fn read_grantee(
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
