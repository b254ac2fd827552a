//! The grant store: objects and scopes looked up by name, grants and revokes
//! of one object or a whole scope, future grants and their application to
//! objects created later.

use crate::sandbox::emulator::{self, Answer};

use super::ident::ident;
use super::wire::{bad, missing, ok};
use super::{FutureKey, GranteeId, GranteeType, Object, Schema, State, TYPES, valid_privileges};

impl State {
    /// The schema `db.schema`, added (with its database) when missing.
    pub(super) fn schema_entry(&mut self, db: &str, schema: &str) -> &mut Schema {
        self.databases
            .entry(db.to_string())
            .or_default()
            .entry(schema.to_string())
            .or_default()
    }

    pub(super) fn require_grantee(&self, grantee: &GranteeId) -> Result<(), emulator::ApiError> {
        let exists = match grantee.0 {
            GranteeType::Role => self.roles.contains(&grantee.1),
            GranteeType::DatabaseRole => self.database_roles.contains(&grantee.1),
            GranteeType::User => self.users.contains(&grantee.1),
        };
        if exists {
            Ok(())
        } else {
            Err(missing(format!(
                "{} '{}' does not exist or not authorized.",
                grantee.0.wire(),
                grantee.1
            )))
        }
    }

    /// A named securable that exists, as `(type, dotted name)`.
    pub(super) fn object(&self, type_: &str, name: &str) -> Result<Object, emulator::ApiError> {
        if !TYPES.contains(&type_) {
            return Err(bad(format!("unsupported securable type {type_}")));
        }
        let parts = ident(name).ok_or_else(|| bad(format!("invalid identifier {name}")))?;
        let exists = match (type_, parts.as_slice()) {
            ("ROLE", [role]) => self.roles.contains(role),
            ("DATABASE ROLE", [_, _]) => self.database_roles.contains(&parts.join(".")),
            ("DATABASE", [db]) => self.databases.contains_key(db),
            ("WAREHOUSE", [wh]) => self.warehouses.contains(wh),
            ("SCHEMA", [db, s]) => self.databases.get(db).is_some_and(|d| d.contains_key(s)),
            ("TABLE", [db, s, t]) => self
                .databases
                .get(db)
                .and_then(|d| d.get(s))
                .is_some_and(|s| s.tables.contains(t)),
            ("VIEW", [db, s, v]) => self
                .databases
                .get(db)
                .and_then(|d| d.get(s))
                .is_some_and(|s| s.views.contains(v)),
            _ => return Err(bad(format!("{type_} {name} has the wrong number of parts"))),
        };
        if !exists {
            return Err(missing(format!(
                "{type_} '{}' does not exist or not authorized.",
                parts.join(".")
            )));
        }
        Ok((type_.to_string(), parts.join(".")))
    }

    pub(super) fn scope(
        &self,
        scope_type: &str,
        name: &str,
    ) -> Result<(String, Vec<String>), emulator::ApiError> {
        let parts = ident(name).ok_or_else(|| bad("invalid scope name"))?;
        let exists = match (scope_type, parts.as_slice()) {
            ("DATABASE", [db]) => self.databases.contains_key(db),
            ("SCHEMA", [db, s]) => self.databases.get(db).is_some_and(|d| d.contains_key(s)),
            _ => return Err(bad("invalid scope")),
        };
        if !exists {
            return Err(missing(format!(
                "{scope_type} '{}' does not exist",
                parts.join(".")
            )));
        }
        Ok((scope_type.to_string(), parts))
    }

    /// Objects of `singular` type in a scope.
    pub(super) fn objects_in(&self, singular: &str, scope: &(String, Vec<String>)) -> Vec<Object> {
        let mut out = Vec::new();
        let Some(db) = scope.1.first() else {
            return out;
        };
        let Some(schemas) = self.databases.get(db) else {
            return out;
        };
        for (schema_name, schema) in schemas {
            if scope.0 == "SCHEMA" && scope.1.get(1) != Some(schema_name) {
                continue;
            }
            match singular {
                "SCHEMA" if scope.0 == "DATABASE" && schema_name != "INFORMATION_SCHEMA" => {
                    out.push(("SCHEMA".into(), format!("{db}.{schema_name}")))
                }
                "TABLE" => out.extend(
                    schema
                        .tables
                        .iter()
                        .map(|t| ("TABLE".to_string(), format!("{db}.{schema_name}.{t}"))),
                ),
                "VIEW" => out.extend(
                    schema
                        .views
                        .iter()
                        .map(|v| ("VIEW".to_string(), format!("{db}.{schema_name}.{v}"))),
                ),
                _ => {}
            }
        }
        out
    }

    pub(super) fn grant(
        &mut self,
        grantee: &GranteeId,
        object: &Object,
        privileges: &[String],
        option: bool,
    ) -> Result<(), emulator::ApiError> {
        let valid = valid_privileges(&object.0);
        if let Some(bad_one) = privileges.iter().find(|p| !valid.contains(&p.as_str())) {
            return Err(bad(format!(
                "Invalid privilege {bad_one} for {} (SQL compilation error)",
                object.0
            )));
        }
        let held = self
            .grants
            .entry(grantee.clone())
            .or_default()
            .entry(object.clone())
            .or_default();
        for privilege in privileges {
            let entry = held.entry(privilege.clone()).or_insert(false);
            *entry = *entry || option;
        }
        Ok(())
    }

    pub(super) fn revoke(
        &mut self,
        grantee: &GranteeId,
        object: &Object,
        privileges: &[String],
        option_only: bool,
    ) {
        if let Some(objects) = self.grants.get_mut(grantee)
            && let Some(held) = objects.get_mut(object)
        {
            for privilege in privileges {
                if option_only {
                    if let Some(flag) = held.get_mut(privilege) {
                        *flag = false;
                    }
                } else {
                    held.remove(privilege);
                }
            }
            if held.is_empty() {
                objects.remove(object);
            }
        }
    }

    /// Legacy bulk grant (`option` set) or revoke (`None`).
    pub(super) fn bulk(
        &mut self,
        grantee: &GranteeId,
        bulk: &str,
        singular: &str,
        scope: &(String, Vec<String>),
        privileges: &[String],
        option: Option<bool>,
    ) -> Answer {
        if bulk == "future" {
            if grantee.0 == GranteeType::User {
                return Err(bad("future grants to a user are not supported"));
            }
            let key = (singular.to_string(), scope.0.clone(), scope.1.join("."));
            match option {
                Some(option) => {
                    let valid = valid_privileges(singular);
                    if let Some(p) = privileges.iter().find(|p| !valid.contains(&p.as_str())) {
                        return Err(bad(format!("Invalid privilege {p} for {singular}")));
                    }
                    let held = self
                        .futures
                        .entry(grantee.clone())
                        .or_default()
                        .entry(key)
                        .or_default();
                    for p in privileges {
                        let entry = held.entry(p.clone()).or_insert(false);
                        *entry = *entry || option;
                    }
                }
                None => self.future_revoke(grantee, &key, privileges, false),
            }
            return Ok(ok());
        }
        for object in self.objects_in(singular, scope) {
            match option {
                Some(option) => self.grant(grantee, &object, privileges, option)?,
                None => self.revoke(grantee, &object, privileges, false),
            }
        }
        Ok(ok())
    }

    pub(super) fn bulk_revoke_option(
        &mut self,
        grantee: &GranteeId,
        bulk: &str,
        singular: &str,
        scope: &(String, Vec<String>),
        privilege: &str,
    ) -> Answer {
        let privileges = [privilege.to_string()];
        if bulk == "future" {
            let key = (singular.to_string(), scope.0.clone(), scope.1.join("."));
            self.future_revoke(grantee, &key, &privileges, true);
        } else {
            for object in self.objects_in(singular, scope) {
                self.revoke(grantee, &object, &privileges, true);
            }
        }
        Ok(ok())
    }

    pub(super) fn future_revoke(
        &mut self,
        grantee: &GranteeId,
        key: &FutureKey,
        privileges: &[String],
        option_only: bool,
    ) {
        if let Some(futures) = self.futures.get_mut(grantee)
            && let Some(held) = futures.get_mut(key)
        {
            for p in privileges {
                if option_only {
                    if let Some(flag) = held.get_mut(p) {
                        *flag = false;
                    }
                } else {
                    held.remove(p);
                }
            }
            if held.is_empty() {
                futures.remove(key);
            }
        }
    }

    pub(super) fn apply_futures(&mut self, type_: &str, db: &str, schema: &str, object: &str) {
        let mut granted: Vec<(GranteeId, Vec<(String, bool)>)> = Vec::new();
        for (grantee, futures) in &self.futures {
            for ((future_type, scope_type, scope), held) in futures {
                let matches = future_type == type_
                    && ((scope_type == "DATABASE" && scope == db)
                        || (scope_type == "SCHEMA" && *scope == format!("{db}.{schema}")));
                if matches {
                    granted.push((
                        grantee.clone(),
                        held.iter().map(|(p, o)| (p.clone(), *o)).collect(),
                    ));
                }
            }
        }
        for (grantee, privileges) in granted {
            let held = self
                .grants
                .entry(grantee)
                .or_default()
                .entry((type_.to_string(), object.to_string()))
                .or_default();
            for (privilege, option) in privileges {
                let entry = held.entry(privilege).or_insert(false);
                *entry = *entry || option;
            }
        }
    }
}
