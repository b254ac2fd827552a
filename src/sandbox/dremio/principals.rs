//! Users and roles: look-ups by name or id, in the shapes of Dremio
//! Software and Dremio Cloud.

use serde_json::{Value, json};

use super::{GranteeType, Role, State, User};

pub(super) fn kind_name(kind: GranteeType) -> &'static str {
    match kind {
        GranteeType::User => "User",
        GranteeType::Role => "Role",
    }
}

fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "name": u.name,
        "firstName": u.first_name,
        "lastName": u.last_name,
        "email": u.email,
    })
}

fn role_json(r: &Role) -> Value {
    json!({"id": r.id, "name": r.name, "type": "INTERNAL"})
}

/// A Cloud user as Dremio Cloud's Users API shows one.
fn cloud_user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "name": u.name,
        "firstName": u.first_name,
        "lastName": u.last_name,
        "identityType": "REGULAR_USER",
        "active": true,
    })
}

/// A Cloud role as Dremio Cloud's Roles API shows one.
fn cloud_role_json(r: &Role) -> Value {
    json!({"id": r.id, "name": r.name, "type": "INTERNAL", "description": ""})
}

/// The first user or role for which `matches(id, name)` holds, in Cloud's or
/// Software's shape.
pub(super) fn principal_json(
    st: &State,
    kind: GranteeType,
    cloud: bool,
    matches: impl Fn(&str, &str) -> bool,
) -> Option<Value> {
    match kind {
        GranteeType::User => st
            .users
            .iter()
            .find(|u| matches(&u.id, &u.name))
            .map(if cloud { cloud_user_json } else { user_json }),
        GranteeType::Role => st
            .roles
            .iter()
            .find(|r| matches(&r.id, &r.name))
            .map(if cloud { cloud_role_json } else { role_json }),
    }
}
