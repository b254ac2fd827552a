//! How a `DremioGrant` reads in an access review (`grant-operator access`): the
//! names its declarations write and what a `--grantee` text names on it.

use crate::api::DremioGrant;
use crate::cli::access::{Reviewed, plain_name};

use super::DremioGrantee;

impl Reviewed for DremioGrant {
    fn declared_name(grantee: &DremioGrantee) -> Option<String> {
        match grantee {
            DremioGrantee::UserName(name) | DremioGrantee::RoleName(name) => Some(name.clone()),
            DremioGrantee::UserId(_) | DremioGrantee::RoleId(_) => None,
        }
    }

    fn grantee_candidates(text: &str) -> Vec<DremioGrantee> {
        if let Some(id) = text.strip_prefix("user:").filter(|id| !id.is_empty()) {
            vec![DremioGrantee::UserId(id.to_string())]
        } else if let Some(id) = text.strip_prefix("role:").filter(|id| !id.is_empty()) {
            vec![DremioGrantee::RoleId(id.to_string())]
        } else if !plain_name(text) {
            Vec::new()
        } else {
            vec![
                DremioGrantee::UserName(text.to_string()),
                DremioGrantee::RoleName(text.to_string()),
            ]
        }
    }

    fn key_form(text: &str) -> bool {
        ["user:", "role:"]
            .iter()
            .any(|prefix| text.starts_with(prefix))
    }
}
