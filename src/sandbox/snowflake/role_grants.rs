//! The `RoleGrants` API: `grants`, `grants:revoke`, `future-grants` and
//! `future-grants:revoke` of roles, database roles and users.

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::sandbox::emulator::{self, Answer, json_response, params, unknown_key};

use super::wire::{
    bad, body_object, grant_option_of, missing, object_field, ok, privileges_of, role_type,
    securable_type_of, singular, str_field,
};
use super::{GranteeId, GranteeType, Object, State};

impl State {
    pub(super) fn role_grants(
        &mut self,
        request: &emulator::Request,
        grantee: GranteeId,
        rest: &[&str],
    ) -> Answer {
        self.require_grantee(&grantee)?;
        let get = request.method == Method::GET;
        let post = request.method == Method::POST;
        match rest {
            ["grants"] if get => {
                Self::show_limit(request)?;
                let listing = self.with_raw_rows(&grantee, false, self.role_listing(&grantee));
                Ok(json_response(StatusCode::OK, &listing))
            }
            ["future-grants"] if get => {
                Self::show_limit(request)?;
                let listing = self.with_raw_rows(&grantee, true, self.future_listing(&grantee));
                Ok(json_response(StatusCode::OK, &listing))
            }
            [action @ ("grants" | "grants:revoke" | "future-grants" | "future-grants:revoke")]
                if post =>
            {
                let revoke = action.ends_with(":revoke");
                let future = action.starts_with("future");
                // The role and database-role revokes take `mode` only; the grants,
                // and every user endpoint, no query parameter at all.
                let allowed: &[&str] = if revoke && grantee.0 != GranteeType::User {
                    &["mode"]
                } else {
                    &[]
                };
                let query = params(&request.query, allowed).map_err(bad)?;
                if let Some(mode) = query.get("mode")
                    && !["restrict", "cascade"].contains(&mode.as_str())
                {
                    return Err(bad("mode is restrict or cascade"));
                }
                let body = body_object(request)?;
                let option_only = revoke && grant_option_of(&body)?;
                if future {
                    self.future_write(&grantee, &body, revoke, option_only)
                } else {
                    self.grants_write(&grantee, &body, revoke, option_only)
                }
            }
            _ => Err(missing("Not found")),
        }
    }

    /// `future-grants` and `future-grants:revoke`: privileges on the future
    /// objects of a type in the `containing_scope`.
    fn future_write(
        &mut self,
        grantee: &GranteeId,
        body: &Map<String, Value>,
        revoke: bool,
        option_only: bool,
    ) -> Answer {
        let allowed = [
            "securable_type",
            "containing_scope",
            "privileges",
            "grant_option",
        ];
        if let Some(key) = unknown_key(body, &allowed) {
            return Err(bad(format!("unknown field {key}")));
        }
        let type_ = securable_type_of(body)?;
        let privileges = privileges_of(body)?;
        let option = grant_option_of(body)?;
        let scope = self.containing_scope(body)?;
        singular(&format!("{type_}S"))
            .ok_or_else(|| bad(format!("unsupported securable_type {type_}")))?;
        let key = (type_.clone(), scope.0.clone(), scope.1.join("."));
        if revoke {
            self.future_revoke(grantee, &key, &privileges, option_only);
            Ok(ok())
        } else {
            self.bulk(grantee, "future", &type_, &scope, &privileges, Some(option))
        }
    }

    /// `grants` and `grants:revoke`: privileges on the named `securable`, or on
    /// every object of the type in the `containing_scope` (`ALL`, expanded to
    /// the objects existing now; a revoke strips every one of them).
    fn grants_write(
        &mut self,
        grantee: &GranteeId,
        body: &Map<String, Value>,
        revoke: bool,
        option_only: bool,
    ) -> Answer {
        let user = grantee.0 == GranteeType::User;
        // user.yaml's Grant has no grant_option; role.yaml's and
        // database-role.yaml's have.
        let allowed: &[&str] = if user {
            &[
                "securable_type",
                "securable",
                "containing_scope",
                "privileges",
            ]
        } else {
            &[
                "securable_type",
                "securable",
                "containing_scope",
                "privileges",
                "grant_option",
            ]
        };
        if let Some(key) = unknown_key(body, allowed) {
            return Err(bad(format!("unknown field {key}")));
        }
        let type_ = securable_type_of(body)?;
        if user && type_ != "ROLE" {
            return Err(bad(format!(
                "securable_type {type_} cannot be granted to a user: only ROLE is supported"
            )));
        }
        if role_type(&type_).is_some() {
            return self.role_grant_write(grantee, body, &type_, revoke);
        }
        let privileges = privileges_of(body)?;
        let option = grant_option_of(body)?;
        match (body.get("securable"), body.get("containing_scope")) {
            (Some(_), Some(_)) => Err(bad("give either securable or containing_scope, not both")),
            (None, None) => Err(bad("securable or containing_scope is required")),
            (None, Some(_)) => {
                let scope = self.containing_scope(body)?;
                let singular = singular(&format!("{type_}S"))
                    .filter(|kind| *kind != "SCHEMA" || scope.0 == "DATABASE")
                    .ok_or_else(|| {
                        bad(format!(
                            "unsupported securable_type {type_} in a {} scope",
                            scope.0
                        ))
                    })?;
                if revoke {
                    for object in self.objects_in(singular, &scope) {
                        self.revoke(grantee, &object, &privileges, option_only);
                    }
                    Ok(ok())
                } else {
                    self.bulk(grantee, "all", singular, &scope, &privileges, Some(option))
                }
            }
            (Some(securable), None) => {
                let securable = securable
                    .as_object()
                    .ok_or_else(|| bad("securable must be an object"))?;
                if let Some(key) = unknown_key(securable, &["database", "schema", "name"]) {
                    return Err(bad(format!("unknown field securable.{key}")));
                }
                let name: Vec<&str> = ["database", "schema", "name"]
                    .iter()
                    .filter_map(|k| securable.get(*k).and_then(Value::as_str))
                    .collect();
                if securable.get("name").is_none() {
                    return Err(bad("securable.name is required"));
                }
                let object = self.object(&type_, &name.join("."))?;
                let option = if revoke { option_only } else { option };
                self.grant_or_revoke(grantee, &object, &privileges, revoke, option)
            }
        }
    }

    /// Grants (or revokes) a role to a user, a role or a database role: GRANT
    /// ROLE / GRANT DATABASE ROLE. The role is granted whole: `privileges`, if
    /// given, is `[USAGE]`, and there is no grant option. An account role is
    /// never granted to a database role, a database role only to a database
    /// role of its own database, and no role to itself.
    fn role_grant_write(
        &mut self,
        grantee: &GranteeId,
        body: &Map<String, Value>,
        type_: &str,
        revoke: bool,
    ) -> Answer {
        if body.contains_key("containing_scope") {
            return Err(bad(
                "a role is granted by name: give securable, not containing_scope",
            ));
        }
        match body.get("privileges") {
            None => {}
            Some(Value::Array(list)) if list == &[json!("USAGE")] => {}
            Some(_) => {
                return Err(bad(format!(
                    "a {type_} is granted whole: privileges, if given, is [\"USAGE\"]"
                )));
            }
        }
        if grant_option_of(body)? {
            return Err(bad(format!(
                "a {type_} cannot be granted with the grant option"
            )));
        }
        let securable = object_field(body, "securable")?;
        if let Some(key) = unknown_key(securable, &["database", "name"]) {
            return Err(bad(format!("unknown field securable.{key} of a {type_}")));
        }
        let name = str_field(securable, "securable", "name")?;
        let text = match (type_, securable.get("database").and_then(Value::as_str)) {
            ("ROLE", None) => name.to_string(),
            ("DATABASE ROLE", Some(database)) => format!("{database}.{name}"),
            ("ROLE", Some(_)) => return Err(bad("an account role has no database")),
            _ => return Err(bad("securable.database is required for a DATABASE ROLE")),
        };
        let object = self.object(type_, &text)?;
        let granted_database = object.1.split('.').next().unwrap_or_default().to_string();
        match (grantee.0, type_) {
            (GranteeType::DatabaseRole, "ROLE") => {
                return Err(bad(
                    "SQL compilation error: an account role cannot be granted to a database role",
                ));
            }
            (GranteeType::DatabaseRole, _)
                if grantee.1.split('.').next() != Some(granted_database.as_str()) =>
            {
                return Err(bad(
                    "SQL compilation error: a database role can only be granted to a database role of the same database",
                ));
            }
            _ => {}
        }
        if (grantee.0, object.1.as_str()) == (GranteeType::Role, grantee.1.as_str())
            && type_ == "ROLE"
            || (grantee.0 == GranteeType::DatabaseRole
                && type_ == "DATABASE ROLE"
                && object.1 == grantee.1)
        {
            return Err(bad("a role cannot be granted to itself"));
        }
        let usage = ["USAGE".to_string()];
        self.grant_or_revoke(grantee, &object, &usage, revoke, false)
    }

    /// Grants `privileges` on `object` (with the grant option when `option`),
    /// or, when `revoke`, revokes them (only the grant option when `option`).
    fn grant_or_revoke(
        &mut self,
        grantee: &GranteeId,
        object: &Object,
        privileges: &[String],
        revoke: bool,
        option: bool,
    ) -> Answer {
        if revoke {
            self.revoke(grantee, object, privileges, option);
        } else {
            self.grant(grantee, object, privileges, option)?;
        }
        Ok(ok())
    }

    /// The `containing_scope` of a body, which must exist.
    fn containing_scope(
        &self,
        body: &Map<String, Value>,
    ) -> Result<(String, Vec<String>), emulator::ApiError> {
        let scope = object_field(body, "containing_scope")?;
        if let Some(key) = unknown_key(scope, &["database", "schema"]) {
            return Err(bad(format!("unknown field containing_scope.{key}")));
        }
        let db = str_field(scope, "containing_scope", "database")?;
        let (scope_type, name) = match scope.get("schema").and_then(Value::as_str) {
            Some(schema) => ("SCHEMA", format!("{db}.{schema}")),
            None => ("DATABASE", db.to_string()),
        };
        self.scope(scope_type, &name)
    }
}
