//! The calls the Snowflake vendor module makes: the probe, the grants and
//! future-grants listings of a grantee, object listings for `ALL` keys, and the
//! writes of both APIs.

use reqwest::Method;

use crate::api::SnowflakeGrantsApi;
use crate::vendor_api::VendorError;
use crate::vendor_api::http::CallError;
use crate::vendor_api::snowflake::identifiers::{Part, encode_segment, parse_listed_part};
use crate::vendor_api::snowflake::model::{Grantee, GranteeType};

use super::rows::{ListingError, read_future, read_grant, typed};
use super::wire::{GrantListing, LegacyTarget, ListedFuture, ListedGrant, NamedRow, RoleGrantBody};
use super::{SnowflakeApi, VENDOR};

impl SnowflakeApi {
    /// Proves the credentials work with the cheapest documented call: one role of
    /// `GET /api/v2/roles?showLimit=1`.
    pub async fn probe(&self) -> Result<(), VendorError> {
        let operation = "list_roles";
        self.call(
            operation,
            Method::GET,
            "/api/v2/roles",
            &[("showLimit", "1".into())],
            None,
        )
        .await
        .map(|_| ())
        .map_err(|error| {
            error.into_vendor_error(VENDOR, operation, |message| VendorError::Config {
                vendor: VENDOR,
                message: format!(
                    "no Snowflake REST API at {} (404: {message})",
                    self.root.base()
                ),
            })
        })
    }

    /// Every grant the grantee holds (one listing; 404 is the caller's).
    pub async fn grants_of(&self, grantee: &Grantee) -> Result<Vec<ListedGrant>, ListingError> {
        let path = match self.grants_api {
            SnowflakeGrantsApi::RoleGrants => format!("{}/grants", self.role_base(grantee)),
            SnowflakeGrantsApi::Legacy => Self::legacy_base(grantee),
        };
        let listing = match (self.grants_api, grantee.type_) {
            (SnowflakeGrantsApi::Legacy, _) => GrantListing::Legacy,
            (SnowflakeGrantsApi::RoleGrants, GranteeType::User) => GrantListing::User,
            (SnowflakeGrantsApi::RoleGrants, _) => GrantListing::Role,
        };
        let subject = grantee.to_string();
        let rows = self.list("list_grants", &path, &subject, "grants").await?;
        Self::read_rows(rows, &subject, "grants", |row| read_grant(row, listing))
    }

    /// The grantee's future grants (the role listing in both modes: the legacy
    /// listing is `SHOW GRANTS TO`, which never shows them).
    pub async fn future_grants_of(
        &self,
        grantee: &Grantee,
    ) -> Result<Vec<ListedFuture>, ListingError> {
        let subject = grantee.to_string();
        let rows = self
            .list(
                "list_future_grants",
                &format!("{}/future-grants", self.role_base(grantee)),
                &subject,
                "future grants",
            )
            .await?;
        Self::read_rows(rows, &subject, "future grants", read_future)
    }

    /// Names of the objects of a listing path (schemas, tables, views), which
    /// `subject` (`SCHEMA SALES.PUBLIC`) holds as `rows_are` (`tables`).
    pub async fn object_names(
        &self,
        operation: &'static str,
        path: &str,
        subject: &str,
        rows_are: &str,
    ) -> Result<Vec<Part>, ListingError> {
        let rows = self.list(operation, path, subject, rows_are).await?;
        Self::read_rows(rows, subject, rows_are, |row| {
            let row: NamedRow = typed(row)?;
            row.name
                .as_ref()
                .and_then(serde_json::Value::as_str)
                .filter(|name| !name.is_empty())
                .map(parse_listed_part)
                .ok_or_else(|| "no name".to_string())
        })
    }

    /// `RoleGrants`: grants or revokes (`grants` or `grants:revoke`, and the
    /// `future-grants` equivalents) with one body. On a revoke, the body's
    /// `grant_option: true` revokes only the grant option (REVOKE GRANT OPTION
    /// FOR, as Snowflake's own Python client sends it); the revoke endpoints
    /// define no other flag.
    pub async fn role_grants_write(
        &self,
        grantee: &Grantee,
        future: bool,
        revoke: bool,
        body: &RoleGrantBody,
    ) -> Result<(), CallError> {
        let option_only = body.grant_option == Some(true);
        let (operation, suffix) = match (future, revoke, option_only) {
            (false, false, _) => ("grant", "grants"),
            (false, true, false) => ("revoke", "grants:revoke"),
            (false, true, true) => ("revoke_grant_option", "grants:revoke"),
            (true, false, _) => ("grant_future", "future-grants"),
            (true, true, _) => ("revoke_future", "future-grants:revoke"),
        };
        let body = serde_json::to_value(body).unwrap_or_default();
        self.call(
            operation,
            Method::POST,
            &format!("{}/{suffix}", self.role_base(grantee)),
            &[],
            Some(&body),
        )
        .await
        .map(|_| ())
    }

    pub(super) fn legacy_path(grantee: &Grantee, target: &LegacyTarget<'_>) -> String {
        let on = match target {
            LegacyTarget::Named { type_, name } => {
                format!("{}/{}", encode_segment(type_), encode_segment(&name.sql()))
            }
            LegacyTarget::Bulk {
                kind,
                plural,
                scope,
                scope_name,
            } => format!(
                // `bulkGrantType` and `scopeType` are lower-case enums; the plural
                // is lower-case as the definition writes it ("tables").
                "{}/{}/{}/{}",
                kind.as_str().to_ascii_lowercase(),
                encode_segment(&plural.to_ascii_lowercase()),
                scope.as_str().to_ascii_lowercase(),
                encode_segment(&scope_name.sql())
            ),
        };
        format!("{}/{on}/privileges", Self::legacy_base(grantee))
    }

    /// `Legacy`: grants privileges (one call for all of them).
    pub async fn legacy_grant(
        &self,
        grantee: &Grantee,
        target: &LegacyTarget<'_>,
        privileges: &[String],
        grant_option: bool,
    ) -> Result<(), CallError> {
        let body = serde_json::json!({"privileges": privileges, "grant_option": grant_option});
        self.call(
            "grant",
            Method::POST,
            &Self::legacy_path(grantee, target),
            &[],
            Some(&body),
        )
        .await
        .map(|_| ())
    }

    /// `Legacy`: revokes one privilege, or only its grant option.
    pub async fn legacy_revoke(
        &self,
        grantee: &Grantee,
        target: &LegacyTarget<'_>,
        privilege: &str,
        grant_option_only: bool,
    ) -> Result<(), CallError> {
        let mut path = format!(
            "{}/{}",
            Self::legacy_path(grantee, target),
            encode_segment(privilege)
        );
        if grant_option_only {
            path.push_str("/grant-option");
        }
        self.call(
            if grant_option_only {
                "revoke_grant_option"
            } else {
                "revoke"
            },
            Method::DELETE,
            &path,
            &[],
            None,
        )
        .await
        .map(|_| ())
    }
}
