//! The calls and wire types of Grafana's two data source permissions APIs:
//! `Legacy` (`/api/datasources/:id/permissions`, numeric levels) and
//! `AccessControl` (`/api/access-control/datasources/:uid`).

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::vendor_api::http::CallError;
use crate::vendor_api::{VendorError, read_entries};

use super::{GrafanaApi, VENDOR, encode, json};

/// The Legacy listing of one data source.
#[derive(Deserialize, Debug, Clone)]
pub struct LegacyListing {
    /// Whether permissions are enabled on the data source.
    pub enabled: bool,
    /// The entries (the seed's sample shows an object; it is an array).
    pub permissions: Vec<LegacyEntry>,
}

#[derive(Deserialize)]
struct RawLegacyListing {
    enabled: bool,
    permissions: Vec<serde_json::Value>,
}

/// One Legacy permission entry.
#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct LegacyEntry {
    /// Permission id (what `DELETE` takes).
    pub id: i64,
    /// User grantee (absent or 0 for a team entry).
    #[serde(default)]
    pub user_id: Option<i64>,
    /// Team grantee (absent or 0 for a user entry).
    #[serde(default)]
    pub team_id: Option<i64>,
    /// Numeric level.
    pub permission: i64,
    /// The user's login, for people (never compared).
    #[serde(default)]
    pub user_login: Option<String>,
    /// The team's name, for people (never compared).
    #[serde(default)]
    pub team: Option<String>,
}

/// Who a Legacy permission is for.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyGrantee {
    /// A user.
    #[serde(rename = "userId")]
    User(i64),
    /// A team.
    #[serde(rename = "teamId")]
    Team(i64),
}

#[derive(Serialize)]
struct LegacyAdd {
    #[serde(flatten)]
    grantee: LegacyGrantee,
    permission: i64,
}

/// One AccessControl entry.
#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntry {
    /// Entry id.
    pub id: i64,
    /// User grantee (0 or absent otherwise).
    #[serde(default)]
    pub user_id: Option<i64>,
    /// Team grantee (0 or absent otherwise).
    #[serde(default)]
    pub team_id: Option<i64>,
    /// Built-in role grantee (empty or absent otherwise).
    #[serde(default)]
    pub built_in_role: Option<String>,
    /// `Query`, `Edit`, `Admin`, or a level the operator does not know.
    pub permission: String,
    /// Managed through this API (the only entries ever changed). Required: an
    /// entry that does not say is unreadable.
    pub is_managed: bool,
    /// Inherited from elsewhere (never changed). Required, as `is_managed`.
    pub is_inherited: bool,
    /// The user's login, for people (never compared).
    #[serde(default)]
    pub user_login: Option<String>,
    /// The team's name, for people (never compared).
    #[serde(default)]
    pub team: Option<String>,
    /// The role the entry comes from (`managed:users:7:permissions`,
    /// `fixed:datasources:reader`, `basic:viewer`), for people.
    #[serde(default)]
    pub role_name: Option<String>,
}

/// Who an AccessControl permission is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessGrantee {
    /// `/users/:id`.
    User(i64),
    /// `/teams/:id`.
    Team(i64),
    /// `/builtInRoles/:role`.
    BuiltIn(String),
}

#[derive(Serialize)]
struct AccessSet<'a> {
    permission: &'a str,
}

impl GrafanaApi {
    /// The Legacy listing of a data source; `Ok(Err(_))` for an entry that
    /// cannot be read.
    pub async fn legacy_list(
        &self,
        datasource_id: i64,
    ) -> Result<Result<LegacyListing, VendorError>, CallError> {
        let response = self
            .call(
                "list_permissions",
                Method::GET,
                &format!("/api/datasources/{datasource_id}/permissions"),
                &[],
                None,
            )
            .await?;
        let raw: RawLegacyListing =
            serde_json::from_slice(&response.body).map_err(|error| CallError::Unreadable {
                message: format!("unexpected permissions listing: {error}"),
            })?;
        Ok(
            read_entries(VENDOR, "list_permissions", raw.permissions, |_| Ok(())).map(
                |permissions| LegacyListing {
                    enabled: raw.enabled,
                    permissions,
                },
            ),
        )
    }

    /// Turns Legacy permissions on for a data source (never off).
    pub async fn legacy_enable(&self, datasource_id: i64) -> Result<(), CallError> {
        self.call(
            "enable_permissions",
            Method::POST,
            &format!("/api/datasources/{datasource_id}/enable-permissions"),
            &[],
            Some(serde_json::json!({})),
        )
        .await
        .map(|_| ())
    }

    /// Adds a Legacy permission.
    pub async fn legacy_add(
        &self,
        datasource_id: i64,
        grantee: LegacyGrantee,
        permission: i64,
    ) -> Result<(), CallError> {
        let body = LegacyAdd {
            grantee,
            permission,
        };
        self.call(
            "add_permission",
            Method::POST,
            &format!("/api/datasources/{datasource_id}/permissions"),
            &[],
            Some(json(&body)),
        )
        .await
        .map(|_| ())
    }

    /// Removes a Legacy permission; one already gone counts as removed.
    pub async fn legacy_remove(
        &self,
        datasource_id: i64,
        permission_id: &str,
    ) -> Result<(), CallError> {
        match self
            .call(
                "remove_permission",
                Method::DELETE,
                &format!(
                    "/api/datasources/{datasource_id}/permissions/{}",
                    encode(permission_id)
                ),
                &[],
                None,
            )
            .await
        {
            Err(error) if error.status() == Some(StatusCode::NOT_FOUND) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Every AccessControl entry of a data source; `Ok(Err(_))` for an entry
    /// that cannot be read.
    pub async fn access_list(
        &self,
        uid: &str,
    ) -> Result<Result<Vec<AccessEntry>, VendorError>, CallError> {
        let response = self
            .call(
                "list_permissions",
                Method::GET,
                &format!("/api/access-control/datasources/{}", encode(uid)),
                &[],
                None,
            )
            .await?;
        let raw: Vec<serde_json::Value> =
            serde_json::from_slice(&response.body).map_err(|error| CallError::Unreadable {
                message: format!("unexpected permissions listing: {error}"),
            })?;
        Ok(read_entries(VENDOR, "list_permissions", raw, |_| Ok(())))
    }

    /// Sets (or with `""` removes) the managed permission of a grantee.
    pub async fn access_set(
        &self,
        uid: &str,
        grantee: &AccessGrantee,
        permission: &str,
    ) -> Result<(), CallError> {
        let who = match grantee {
            AccessGrantee::User(id) => format!("users/{id}"),
            AccessGrantee::Team(id) => format!("teams/{id}"),
            AccessGrantee::BuiltIn(role) => format!("builtInRoles/{}", encode(role)),
        };
        let operation = if permission.is_empty() {
            "remove_permission"
        } else {
            "set_permission"
        };
        self.call(
            operation,
            Method::POST,
            &format!("/api/access-control/datasources/{}/{who}", encode(uid)),
            &[],
            Some(json(&AccessSet { permission })),
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_bodies_name_exactly_one_grantee() {
        let body = LegacyAdd {
            grantee: LegacyGrantee::Team(3),
            permission: 1,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap_or_default(),
            serde_json::json!({"teamId": 3, "permission": 1})
        );
    }

    #[test]
    fn listings_parse_zero_and_missing_grantees() {
        let listing: LegacyListing = serde_json::from_value(serde_json::json!({
            "datasourceId": 1,
            "enabled": true,
            "permissions": [
                {"id": 1, "datasourceId": 1, "userId": 7, "teamId": 0, "permission": 1},
                {"id": 2, "datasourceId": 1, "teamId": 3, "permission": 2, "team": "A Team"}
            ]
        }))
        .unwrap_or_else(|error| panic!("{error}"));
        assert!(listing.enabled);
        assert_eq!(listing.permissions[0].team_id, Some(0));
        assert_eq!(listing.permissions[1].user_id, None);
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }
}
