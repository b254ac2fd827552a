//! Listings: a grantee's grants, future grants and `Legacy` listing as the
//! SHOW commands behind them show them, with raw rows added by tests.

use serde_json::{Value, json};

use super::ident::ident;
use super::wire::listed_type;
use super::{GranteeId, GranteeType, Held, Object, State};

impl State {
    /// A listing with the grantee's raw rows appended.
    pub(super) fn with_raw_rows(&self, grantee: &GranteeId, future: bool, listing: Value) -> Value {
        let mut rows = match listing {
            Value::Array(rows) => rows,
            other => return other,
        };
        if let Some(raw) = self.raw_rows.get(&(grantee.clone(), future)) {
            rows.extend(raw.iter().cloned());
        }
        Value::Array(rows)
    }

    fn grouped(&self, grantee: &GranteeId) -> Vec<(Object, bool, Vec<String>)> {
        let mut out = Vec::new();
        for (object, held) in self.grants.get(grantee).into_iter().flatten() {
            for option in [false, true] {
                let privileges: Vec<String> = held
                    .iter()
                    .filter(|(_, o)| **o == option)
                    .map(|(p, _)| p.clone())
                    .collect();
                if !privileges.is_empty() {
                    out.push((object.clone(), option, privileges));
                }
            }
        }
        out
    }

    /// `GET .../grants` in `RoleGrants`' Grant shape. A granted role is listed as
    /// `SHOW GRANTS` shows it: USAGE on a `ROLE` or `DATABASE_ROLE`; to a user,
    /// only the role (user.yaml's Grant has no grant option, and `SHOW GRANTS TO
    /// USER` no privilege).
    pub(super) fn role_listing(&self, grantee: &GranteeId) -> Value {
        let user = grantee.0 == GranteeType::User;
        Value::Array(
            self.grouped(grantee)
                .into_iter()
                .map(|((type_, name), option, privileges)| {
                    let parts = ident(&name).unwrap_or_default();
                    let securable = match parts.as_slice() {
                        [n] => json!({"name": n}),
                        [d, n] => json!({"database": d, "name": n}),
                        [d, s, n] => json!({"database": d, "schema": s, "name": n}),
                        _ => json!({}),
                    };
                    let mut row = json!({
                        "securable_type": listed_type(&type_),
                        "securable": securable,
                        "created_on": "2026-01-01T00:00:00Z",
                        "granted_by": "SECURITYADMIN",
                    });
                    if !user {
                        row["privileges"] = json!(privileges);
                        row["grant_option"] = json!(option);
                    }
                    row
                })
                .collect(),
        )
    }

    /// `GET /api/v2/grants/{granteeType}/{granteeName}`: `SHOW GRANTS TO` rows.
    pub(super) fn legacy_listing(&self, grantee: &GranteeId) -> Value {
        let user = grantee.0 == GranteeType::User;
        Value::Array(
            self.grouped(grantee)
                .into_iter()
                .map(|((type_, name), option, privileges)| {
                    let mut row = json!({
                        "created_on": "2026-01-01T00:00:00Z",
                        "grantee_type": grantee.0.wire(),
                        "grantee_name": grantee.1,
                        "securable_type": listed_type(&type_),
                        "securable_name": name,
                        "granted_by_role_type": "ROLE",
                        "granted_by_name": "SECURITYADMIN",
                    });
                    if !user {
                        row["privileges"] = json!(privileges);
                        row["grant_option"] = json!(option);
                    }
                    row
                })
                .collect(),
        )
    }

    pub(super) fn future_listing(&self, grantee: &GranteeId) -> Value {
        let mut out = Vec::new();
        for ((type_, scope_type, scope_name), held) in
            self.futures.get(grantee).into_iter().flatten()
        {
            let parts = ident(scope_name).unwrap_or_default();
            let scope = if scope_type == "SCHEMA" {
                json!({"database": parts.first(), "schema": parts.get(1)})
            } else {
                json!({"database": parts.first()})
            };
            let (field, scope) = if self.futures_as_securable {
                let mut securable = scope;
                securable["name"] = json!(format!("<{type_}>"));
                ("securable", securable)
            } else {
                ("containing_scope", scope)
            };
            for option in [false, true] {
                let privileges: Vec<&String> = held
                    .iter()
                    .filter(|(_, o)| **o == option)
                    .map(|(p, _)| p)
                    .collect();
                if !privileges.is_empty() {
                    let mut row = json!({
                        "securable_type": type_,
                        "privileges": privileges,
                        "grant_option": option,
                    });
                    row[field] = scope.clone();
                    out.push(row);
                }
            }
        }
        Value::Array(out)
    }
}

/// A `(securable, privilege)` row as tests compare them.
pub(super) fn held_row(securable: String, privilege: &str, option: bool) -> Held {
    (
        securable,
        if option {
            format!("{privilege} WITH GRANT OPTION")
        } else {
            privilege.to_string()
        },
    )
}
