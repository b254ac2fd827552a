//! How a `GrafanaGrant` reads in an access review (`grant-operator access`): the
//! names its declarations write and what a `--grantee` text names on it.

use crate::api::{GrafanaBuiltInRole, GrafanaGrant};
use crate::cli::access::{Reviewed, plain_name};

use super::GrafanaGrantee;

impl Reviewed for GrafanaGrant {
    fn declared_name(grantee: &GrafanaGrantee) -> Option<String> {
        match grantee {
            GrafanaGrantee::UserLogin(name)
            | GrafanaGrantee::UserEmail(name)
            | GrafanaGrantee::TeamName(name) => Some(name.clone()),
            GrafanaGrantee::Role(role) => Some(role.as_str().to_string()),
            GrafanaGrantee::UserId(_) | GrafanaGrantee::TeamId(_) => None,
        }
    }

    fn grantee_candidates(text: &str) -> Vec<GrafanaGrantee> {
        let role = |name: &str| match name {
            "Viewer" => Some(GrafanaBuiltInRole::Viewer),
            "Editor" => Some(GrafanaBuiltInRole::Editor),
            "Admin" => Some(GrafanaBuiltInRole::Admin),
            _ => None,
        };
        if let Some(id) = text.strip_prefix("user:") {
            return id
                .parse()
                .map(|id| vec![GrafanaGrantee::UserId(id)])
                .unwrap_or_default();
        }
        if let Some(id) = text.strip_prefix("team:") {
            return id
                .parse()
                .map(|id| vec![GrafanaGrantee::TeamId(id)])
                .unwrap_or_default();
        }
        if let Some(name) = text.strip_prefix("role:") {
            return role(name).map(GrafanaGrantee::Role).into_iter().collect();
        }
        if !plain_name(text) {
            return Vec::new();
        }
        let mut out = Vec::new();
        if text.contains('@') {
            out.push(GrafanaGrantee::UserEmail(text.to_string()));
        }
        out.push(GrafanaGrantee::UserLogin(text.to_string()));
        if !text.contains('@') {
            out.push(GrafanaGrantee::TeamName(text.to_string()));
        }
        out.extend(role(text).map(GrafanaGrantee::Role));
        out
    }

    fn key_form(text: &str) -> bool {
        ["user:", "team:", "role:"]
            .iter()
            .any(|prefix| text.starts_with(prefix))
    }
}
