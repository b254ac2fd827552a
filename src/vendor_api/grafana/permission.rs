//! Grafana permission levels (`Query` < `Edit` < `Admin`, and their legacy
//! numbers), built-in roles, the grantees a resource declares, and which
//! permissions API a server serves.

use crate::api::{GrafanaBuiltInRole, GrafanaPermission};
use crate::plan::Permission;

impl Permission for GrafanaPermission {
    fn closure(&self) -> Vec<Self> {
        match self {
            GrafanaPermission::Query => vec![GrafanaPermission::Query],
            GrafanaPermission::Edit => vec![GrafanaPermission::Edit, GrafanaPermission::Query],
            GrafanaPermission::Admin => vec![
                GrafanaPermission::Admin,
                GrafanaPermission::Edit,
                GrafanaPermission::Query,
            ],
        }
    }
}

impl GrafanaPermission {
    /// The AccessControl API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            GrafanaPermission::Query => "Query",
            GrafanaPermission::Edit => "Edit",
            GrafanaPermission::Admin => "Admin",
        }
    }

    /// The Legacy API's number (`None`: the Legacy API has no such level).
    pub fn legacy_level(self) -> Option<i64> {
        match self {
            GrafanaPermission::Query => Some(1),
            GrafanaPermission::Edit => Some(2),
            GrafanaPermission::Admin => None,
        }
    }

    /// A Legacy number; `None` for levels the operator does not manage.
    pub fn from_legacy(level: i64) -> Option<Self> {
        match level {
            1 => Some(GrafanaPermission::Query),
            2 => Some(GrafanaPermission::Edit),
            _ => None,
        }
    }
}

impl std::fmt::Display for GrafanaPermission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for GrafanaPermission {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        match text {
            "Query" => Ok(GrafanaPermission::Query),
            "Edit" => Ok(GrafanaPermission::Edit),
            "Admin" => Ok(GrafanaPermission::Admin),
            _ => Err(()),
        }
    }
}

impl GrafanaBuiltInRole {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            GrafanaBuiltInRole::Viewer => "Viewer",
            GrafanaBuiltInRole::Editor => "Editor",
            GrafanaBuiltInRole::Admin => "Admin",
        }
    }
}

/// A grantee as declared in a `GrafanaGrant`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GrafanaGrantee {
    /// `user: { id }`.
    UserId(i64),
    /// `user: { login }`.
    UserLogin(String),
    /// `user: { email }`.
    UserEmail(String),
    /// `team: { id }`.
    TeamId(i64),
    /// `team: { name }`.
    TeamName(String),
    /// `role: Viewer | Editor | Admin`.
    Role(GrafanaBuiltInRole),
}

/// Which permissions API a provider uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PermissionsApi {
    /// `/api/access-control/datasources/:uid`.
    AccessControl,
    /// `/api/datasources/:id/permissions`.
    Legacy,
}

impl PermissionsApi {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            PermissionsApi::AccessControl => "AccessControl",
            PermissionsApi::Legacy => "Legacy",
        }
    }
}
