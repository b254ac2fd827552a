//! Snowflake REST calls and wire types: the `RoleGrants` API (roles, database
//! roles and users under `/api/v2`) and the `Legacy` grants API of the seed
//! (`/api/v2/grants/...`), object listings for bulk `ALL` grants, and `202`
//! answers followed through their result handle. Listings are read entry by
//! entry, every shape the definitions allow; one that reaches [`SHOW_LIMIT`]
//! rows, or holds an entry that cannot be read, is refused whole
//! ([`ListingError`]).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::api::{SnowflakeGrantsApi, VendorKind};
use crate::vendor_api::VendorError;
use crate::vendor_api::http::{CallError, HttpClient, HttpResponse, Repeat};

use super::auth::{Auth, TOKEN_TYPE_HEADER, bearer};
use super::identifiers::{Name, Part, encode_segment, parse_listed, parse_listed_part};
use super::model::{BulkKind, Grantee, GranteeType, ScopeType, singular};

const VENDOR: VendorKind = VendorKind::Snowflake;
/// Rows a Snowflake listing answers at most: `showLimit`'s maximum
/// (common.yaml), which every listing asks for. It caps the rows of the SHOW
/// command behind the listing; `Link` pages cut that answer, they never go past
/// it. So a listing of this many rows may have left some out.
pub const SHOW_LIMIT: usize = 10_000;
/// [`SHOW_LIMIT`] as messages write it.
const SHOW_LIMIT_TEXT: &str = "10,000";
/// A bound on pages of one listing, against a server that never ends it.
const MAX_PAGES: usize = 1000;
/// How much of an unreadable entry a message quotes.
const ENTRY_QUOTE: usize = 300;

/// Why a listing cannot be used.
#[derive(Debug)]
pub enum ListingError {
    /// The call failed.
    Call(CallError),
    /// As many rows as Snowflake answers at most and no link to more: it may be
    /// incomplete, so nothing may be decided from it (the message says whose).
    Capped(String),
    /// An entry this version cannot read: unknown is not absent, so nothing may
    /// be decided from the listing (the message quotes the entry).
    Unreadable(String),
}

impl From<CallError> for ListingError {
    fn from(error: CallError) -> ListingError {
        ListingError::Call(error)
    }
}

impl ListingError {
    /// The status code, when Snowflake answered with an error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ListingError::Call(error) => error.status(),
            _ => None,
        }
    }

    /// The error as the sync reports it: a capped listing is
    /// `VendorUnavailable` (retried; Snowflake answers no more), an unreadable
    /// entry an unexpected answer (`VendorUnavailable` too).
    pub fn into_vendor_error(
        self,
        operation: &'static str,
        not_found: impl FnOnce(String) -> VendorError,
    ) -> VendorError {
        match self {
            ListingError::Call(error) => error.into_vendor_error(VENDOR, operation, not_found),
            ListingError::Capped(message) => VendorError::Unavailable {
                vendor: VENDOR,
                operation,
                message,
            },
            ListingError::Unreadable(message) => VendorError::Protocol {
                vendor: VENDOR,
                operation,
                message,
            },
        }
    }
}

/// How a `202` answer is followed.
#[derive(Clone, Debug)]
pub struct PollPolicy {
    /// First wait.
    pub first: Duration,
    /// Longest single wait.
    pub max: Duration,
    /// Longest total wait before giving up.
    pub total: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            first: Duration::from_millis(100),
            max: Duration::from_secs(2),
            total: Duration::from_secs(30),
        }
    }
}

/// A grant as a grantee listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedGrant {
    /// Securable type keyword (`SCHEMA`).
    pub securable_type: String,
    /// Securable name.
    pub name: Name,
    /// Privileges.
    pub privileges: Vec<String>,
    /// Whether they carry the grant option.
    pub grant_option: bool,
}

/// A future grant as the `future-grants` listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedFuture {
    /// Plural type (`TABLES`).
    pub plural: String,
    /// Scope.
    pub scope: ScopeType,
    /// Scope name.
    pub scope_name: Name,
    /// Privileges.
    pub privileges: Vec<String>,
    /// Whether they carry the grant option.
    pub grant_option: bool,
}

/// `securable` / `containing_scope` objects.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub struct WireObject {
    /// Database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A `containing_scope` as a future-grants listing shows it (the definitions'
/// `ContainingScope`: a database, and a schema in it).
#[derive(Deserialize, Debug, schemars::JsonSchema)]
pub struct WireScope {
    /// Database.
    #[serde(default)]
    pub database: Option<String>,
    /// Schema.
    #[serde(default)]
    pub schema: Option<String>,
}

// The rows of each listing as this client reads them: exactly the fields it
// reads, one type per listing, so that the conformance test can check each field
// against the answer the vendor's definition gives (`response_wire_types`).
// Scalars stay JSON values: the readers below say what is wrong with them.

/// A row of a role's or database role's grants listing (`RoleGrants`: the
/// `Grant` of role.yaml and database-role.yaml).
#[derive(Deserialize, Debug, schemars::JsonSchema)]
pub struct RoleGrantRow {
    #[serde(default)]
    securable_type: Option<serde_json::Value>,
    #[serde(default)]
    securable: Option<WireObject>,
    #[serde(default)]
    privileges: Option<serde_json::Value>,
    #[serde(default)]
    grant_option: Option<serde_json::Value>,
}

/// A row of a user's grants listing (`RoleGrants`: user.yaml's `Grant`, which
/// has no grant option: users hold roles).
#[derive(Deserialize, Debug, schemars::JsonSchema)]
pub struct UserGrantRow {
    #[serde(default)]
    securable_type: Option<serde_json::Value>,
    #[serde(default)]
    securable: Option<WireObject>,
    #[serde(default)]
    privileges: Option<serde_json::Value>,
}

/// A row of the `Legacy` grants listing (grant.yaml's `Grant`, the output of
/// `SHOW GRANTS TO`: the securable by name).
#[derive(Deserialize, Debug, schemars::JsonSchema)]
pub struct LegacyGrantRow {
    #[serde(default)]
    securable_type: Option<serde_json::Value>,
    #[serde(default)]
    securable_name: Option<serde_json::Value>,
    #[serde(default)]
    privileges: Option<serde_json::Value>,
    #[serde(default)]
    grant_option: Option<serde_json::Value>,
}

/// A row of a future-grants listing (the `Grant` of role.yaml and
/// database-role.yaml: the scope as `containing_scope` or as `securable`).
#[derive(Deserialize, Debug, schemars::JsonSchema)]
pub struct FutureGrantRow {
    #[serde(default)]
    securable_type: Option<serde_json::Value>,
    #[serde(default)]
    containing_scope: Option<WireScope>,
    #[serde(default)]
    securable: Option<WireObject>,
    #[serde(default)]
    privileges: Option<serde_json::Value>,
    #[serde(default)]
    grant_option: Option<serde_json::Value>,
}

/// A row of an object listing (schemas, tables, views): its name.
#[derive(Deserialize, Debug, schemars::JsonSchema)]
pub struct NamedRow {
    #[serde(default)]
    name: Option<serde_json::Value>,
}

/// Which grants listing a row comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GrantListing {
    /// A role's or database role's (`RoleGrants`).
    Role,
    /// A user's (`RoleGrants`).
    User,
    /// `Legacy`.
    Legacy,
}

#[derive(Deserialize, Debug, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Accepted {
    #[serde(default)]
    result_handler: Option<String>,
}

/// The body of a `RoleGrants` grant or revoke (the definitions' `Grant`).
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct RoleGrantBody {
    /// Singular type.
    pub securable_type: String,
    /// Named securable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub securable: Option<WireObject>,
    /// Scope of an `ALL` or future grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containing_scope: Option<WireObject>,
    /// Privileges; none when a role is granted (the role itself is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileges: Option<Vec<String>>,
    /// Grant option; none when a role is granted (user.yaml's Grant has no
    /// such field, and a role is never granted with it). On a revoke, `true`
    /// revokes only the grant option.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_option: Option<bool>,
}

/// A named securable as the `securable` object (`{database, schema, name}` by part count).
pub fn wire_object(name: &Name) -> Option<WireObject> {
    let parts: Vec<String> = name.parts().iter().map(Part::sql).collect();
    match parts.as_slice() {
        [name] => Some(WireObject {
            name: Some(name.clone()),
            ..WireObject::default()
        }),
        [database, name] => Some(WireObject {
            database: Some(database.clone()),
            name: Some(name.clone()),
            ..WireObject::default()
        }),
        [database, schema, name] => Some(WireObject {
            database: Some(database.clone()),
            schema: Some(schema.clone()),
            name: Some(name.clone()),
        }),
        _ => None,
    }
}

/// A scope as the `containing_scope` object.
pub fn wire_scope(scope: ScopeType, name: &Name) -> WireObject {
    let parts: Vec<String> = name.parts().iter().map(Part::sql).collect();
    match (scope, parts.as_slice()) {
        (ScopeType::Schema, [database, schema]) => WireObject {
            database: Some(database.clone()),
            schema: Some(schema.clone()),
            name: None,
        },
        _ => WireObject {
            database: Some(name.sql()),
            ..WireObject::default()
        },
    }
}

/// The privilege a granted role shows as.
pub const USAGE: &str = "USAGE";

/// Whether a securable type is a role (`ROLE`, `DATABASE ROLE`): granting it is
/// GRANT ROLE, not a privilege on an object.
pub fn is_role_type(type_: &str) -> bool {
    type_ == "ROLE" || type_ == "DATABASE ROLE"
}

/// A securable type as a listing writes it, keyed as declared: `SHOW GRANTS`
/// joins the words with `_` (`DATABASE_ROLE`), resources with spaces.
fn listed_type(text: &str) -> String {
    super::model::keyword(&text.replace('_', " "))
}

fn listed_name(object: &WireObject) -> Name {
    Name(
        [&object.database, &object.schema, &object.name]
            .into_iter()
            .flatten()
            .map(|part| parse_listed_part(part))
            .collect(),
    )
}

/// A grant or revoke of the `Legacy` API, on one named or bulk securable.
#[derive(Clone, Debug)]
pub enum LegacyTarget<'a> {
    /// `{securableType}/{securableName}`.
    Named {
        /// Type keyword.
        type_: &'a str,
        /// Name.
        name: &'a Name,
    },
    /// `{bulkGrantType}/{securableTypePlural}/{scopeType}/{scopeName}`.
    Bulk {
        /// All or future.
        kind: BulkKind,
        /// Plural type.
        plural: &'a str,
        /// Scope type.
        scope: ScopeType,
        /// Scope name.
        scope_name: &'a Name,
    },
}

/// The Snowflake API of one provider.
pub struct SnowflakeApi {
    http: HttpClient,
    base: String,
    auth: Auth,
    grants_api: SnowflakeGrantsApi,
    poll: PollPolicy,
}

impl std::fmt::Debug for SnowflakeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnowflakeApi")
            .field("base", &self.base)
            .field("auth", &self.auth)
            .field("grants_api", &self.grants_api)
            .finish_non_exhaustive()
    }
}

impl SnowflakeApi {
    /// A client for the account at `account_url`.
    pub fn new(
        http: HttpClient,
        account_url: &str,
        auth: Auth,
        grants_api: SnowflakeGrantsApi,
    ) -> SnowflakeApi {
        SnowflakeApi {
            http,
            base: account_url.trim_end_matches('/').to_string(),
            auth,
            grants_api,
            poll: PollPolicy::default(),
        }
    }

    /// The same client with another `202` policy.
    pub fn with_poll(mut self, poll: PollPolicy) -> SnowflakeApi {
        self.poll = poll;
        self
    }

    /// Which grants API this provider uses.
    pub fn grants_api(&self) -> SnowflakeGrantsApi {
        self.grants_api
    }

    /// The account URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// How the operator authenticates (no secret).
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    async fn send(
        &self,
        operation: &'static str,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<HttpResponse, CallError> {
        let token = self.auth.token().map_err(|error| CallError::Status {
            status: StatusCode::UNAUTHORIZED,
            message: error.0,
            retry_after: None,
        })?;
        let authorization = bearer(&token);
        let token_type = self.auth.token_type();
        let repeat = if method == Method::GET {
            Repeat::Read
        } else {
            Repeat::Idempotent
        };
        let result = self
            .http
            // Grants and revokes are the same when repeated: Snowflake documents
            // them as succeeding when the privilege is already held or already
            // gone (a 202 is polled, never sent again).
            .send(operation, repeat, |client| {
                let mut request = client
                    .request(method.clone(), url)
                    .header(reqwest::header::AUTHORIZATION, authorization.as_str())
                    .header(TOKEN_TYPE_HEADER, token_type)
                    .header(reqwest::header::ACCEPT, "application/json");
                if !query.is_empty() {
                    request = request.query(query);
                }
                match body {
                    Some(body) => request.json(body),
                    None => request,
                }
            })
            .await;
        if let Err(error) = &result
            && error.status() == Some(StatusCode::UNAUTHORIZED)
        {
            // An expired or refused JWT is minted again on the next call.
            self.auth.forget();
        }
        result
    }

    /// One call, a `202` followed to its result.
    async fn call(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<HttpResponse, CallError> {
        let url = format!("{}{path}", self.base);
        self.call_url(operation, method, &url, query, body).await
    }

    /// A URL a `Link` or `Location` header names, only on the account's own host
    /// (the token is never sent elsewhere).
    fn own_url(&self, target: &str) -> Result<String, CallError> {
        if target.starts_with('/') {
            Ok(format!("{}{target}", self.base))
        } else if target.starts_with(&format!("{}/", self.base)) {
            Ok(target.to_string())
        } else {
            Err(CallError::Unreadable {
                message: "refused to follow a link to another host".into(),
            })
        }
    }

    /// A listing, every page: the first with `showLimit`, the next ones through
    /// the `Link: <...>; rel="next"` header. `subject` holds `rows_are` (`ROLE
    /// ANALYST` holds `grants`), for the messages. A listing that reaches
    /// [`SHOW_LIMIT`] rows is refused as possibly incomplete (and counted).
    async fn list(
        &self,
        operation: &'static str,
        path: &str,
        subject: &str,
        rows_are: &str,
    ) -> Result<Vec<serde_json::Value>, ListingError> {
        let what = format!("{rows_are} listing of {subject}");
        let mut response = self
            .call(
                operation,
                Method::GET,
                path,
                &[("showLimit", SHOW_LIMIT.to_string())],
                None,
            )
            .await?;
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: Vec<serde_json::Value> = parse_body(&response, &what)?;
            all.extend(page);
            let Some(next) = response.link.as_deref().and_then(next_link) else {
                if all.len() >= SHOW_LIMIT {
                    self.http.metrics().incomplete_listing(VENDOR.as_str());
                    return Err(ListingError::Capped(format!(
                        "{subject} holds more {rows_are} than Snowflake lists in one answer ({SHOW_LIMIT_TEXT}, showLimit's maximum): the listing may be incomplete, so nothing is granted, revoked or reported in sync from it"
                    )));
                }
                return Ok(all);
            };
            let url = self.own_url(&next)?;
            response = self
                .call_url(operation, Method::GET, &url, &[], None)
                .await?;
        }
        Err(ListingError::Call(CallError::Unreadable {
            message: format!("the {what} did not end after {MAX_PAGES} pages"),
        }))
    }

    /// Reads every row of a listing with `read`; the first row it cannot read
    /// fails the whole listing, quoted.
    fn read_rows<T>(
        rows: Vec<serde_json::Value>,
        subject: &str,
        rows_are: &str,
        read: impl Fn(&serde_json::Value) -> Result<T, String>,
    ) -> Result<Vec<T>, ListingError> {
        rows.iter()
            .map(|row| {
                read(row).map_err(|problem| {
                    let mut entry = row.to_string();
                    if entry.len() > ENTRY_QUOTE {
                        let mut end = ENTRY_QUOTE;
                        while !entry.is_char_boundary(end) {
                            end -= 1;
                        }
                        entry.truncate(end);
                        entry.push_str("...");
                    }
                    ListingError::Unreadable(format!(
                        "the {rows_are} listing of {subject} has an entry this version cannot read ({problem}): {entry}; nothing is revoked or reported in sync until it can be read"
                    ))
                })
            })
            .collect()
    }

    /// One call to a full URL, a `202` followed to its result.
    async fn call_url(
        &self,
        operation: &'static str,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<HttpResponse, CallError> {
        let mut response = self.send(operation, method, url, query, body).await?;
        let started = tokio::time::Instant::now();
        let mut wait = self.poll.first;
        while response.status == StatusCode::ACCEPTED {
            let handle = serde_json::from_slice::<Accepted>(&response.body)
                .ok()
                .and_then(|accepted| accepted.result_handler);
            let result_url = match (handle, &response.location) {
                (Some(handle), _) => {
                    format!("{}/api/v2/results/{}", self.base, encode_segment(&handle))
                }
                (None, Some(location)) => self.own_url(location)?,
                (None, None) => {
                    return Err(CallError::Unreadable {
                        message: "202 answer without a result handle".into(),
                    });
                }
            };
            if started.elapsed() + wait > self.poll.total {
                return Err(CallError::Transport {
                    message: format!(
                        "the request was still running after {}s (202, result handle polled)",
                        self.poll.total.as_secs()
                    ),
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.poll.max);
            response = self
                .send(operation, Method::GET, &result_url, &[], None)
                .await?;
        }
        Ok(response)
    }

    fn role_base(&self, grantee: &Grantee) -> String {
        let parts = grantee.name.parts();
        match (grantee.type_, parts) {
            (GranteeType::DatabaseRole, [database, role]) => format!(
                "/api/v2/databases/{}/database-roles/{}",
                encode_segment(&database.sql()),
                encode_segment(&role.sql())
            ),
            (GranteeType::User, _) => {
                format!("/api/v2/users/{}", encode_segment(&grantee.name.sql()))
            }
            _ => format!("/api/v2/roles/{}", encode_segment(&grantee.name.sql())),
        }
    }

    fn legacy_base(grantee: &Grantee) -> String {
        // grant.yaml's `granteeType` enum: user, role, application-role,
        // database-role, share.
        let type_ = match grantee.type_ {
            GranteeType::Role => "role",
            GranteeType::DatabaseRole => "database-role",
            GranteeType::User => "user",
        };
        format!(
            "/api/v2/grants/{type_}/{}",
            encode_segment(&grantee.name.sql())
        )
    }

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
                message: format!("no Snowflake REST API at {} (404: {message})", self.base),
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

    fn legacy_path(grantee: &Grantee, target: &LegacyTarget<'_>) -> String {
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

/// The target of `rel="next"` in a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        let next = params.split(';').any(|param| {
            let param = param.trim().to_ascii_lowercase();
            param == "rel=\"next\"" || param == "rel=next"
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        next.then(|| target.to_string())
    })
}

fn parse_body<T: for<'de> Deserialize<'de>>(
    response: &HttpResponse,
    what: &str,
) -> Result<T, CallError> {
    serde_json::from_slice(&response.body).map_err(|error| CallError::Unreadable {
        message: format!("unexpected {what}: {error}"),
    })
}

/// Whether `text` (upper-cased) is a keyword phrase: words of letters, digits
/// and `_`.
fn is_keyword_phrase(text: &str) -> bool {
    !text.is_empty()
        && text.split(' ').all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
}

/// A row read as the type of its listing; what the type cannot hold is named.
fn typed<T: for<'de> Deserialize<'de>>(row: &serde_json::Value) -> Result<T, String> {
    if !row.is_object() {
        return Err("not an object".into());
    }
    serde_json::from_value(row.clone()).map_err(|error| error.to_string())
}

/// The `privileges` of a listed entry, upper-cased (absent: none).
fn read_privileges(privileges: Option<&serde_json::Value>) -> Result<Vec<String>, String> {
    match privileges {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|item| {
                let privilege = item
                    .as_str()
                    .map(super::model::keyword)
                    .filter(|privilege| is_keyword_phrase(privilege))
                    .ok_or_else(|| format!("privilege {item} is not a privilege"))?;
                Ok(privilege)
            })
            .collect(),
        Some(other) => Err(format!("privileges {other} is not a list")),
    }
}

/// The `grant_option` of a listed entry (absent: false).
fn read_grant_option(option: Option<&serde_json::Value>) -> Result<bool, String> {
    match option {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(option)) => Ok(*option),
        Some(other) => Err(format!("grant_option {other} is not a boolean")),
    }
}

/// The `securable_type` of a listed entry, keyed as declared.
fn read_type(securable_type: Option<&serde_json::Value>) -> Result<String, String> {
    let text = securable_type
        .and_then(serde_json::Value::as_str)
        .ok_or("no securable_type")?;
    let type_ = listed_type(text);
    if is_keyword_phrase(&type_) {
        Ok(type_)
    } else {
        Err(format!("securable_type {text:?} is not a type"))
    }
}

/// The name of a listed `securable` object.
fn securable_name(securable: &WireObject) -> Result<Name, String> {
    if securable.name.as_deref().is_none_or(str::is_empty) {
        return Err("securable has no name".into());
    }
    Ok(listed_name(securable))
}

/// One entry of a grants listing: `RoleGrants` names the securable as an
/// object (`securable`), `Legacy` as text (`securable_name`). A granted role
/// shows no privilege to a user: it is USAGE.
fn read_grant(row: &serde_json::Value, listing: GrantListing) -> Result<ListedGrant, String> {
    let (securable_type, name, privileges, grant_option) = match listing {
        GrantListing::Role => {
            let row: RoleGrantRow = typed(row)?;
            let type_ = read_type(row.securable_type.as_ref())?;
            let securable = row.securable.as_ref().ok_or("no securable")?;
            let option = read_grant_option(row.grant_option.as_ref())?;
            (type_, securable_name(securable)?, row.privileges, option)
        }
        GrantListing::User => {
            let row: UserGrantRow = typed(row)?;
            let type_ = read_type(row.securable_type.as_ref())?;
            let securable = row.securable.as_ref().ok_or("no securable")?;
            (type_, securable_name(securable)?, row.privileges, false)
        }
        GrantListing::Legacy => {
            let row: LegacyGrantRow = typed(row)?;
            let type_ = read_type(row.securable_type.as_ref())?;
            let name = match row.securable_name.as_ref() {
                Some(serde_json::Value::String(name)) if !name.is_empty() => parse_listed(name),
                _ => return Err("no securable_name".into()),
            };
            let option = read_grant_option(row.grant_option.as_ref())?;
            (type_, name, row.privileges, option)
        }
    };
    let mut privileges = read_privileges(privileges.as_ref())?;
    if privileges.is_empty() {
        if is_role_type(&securable_type) {
            privileges.push(USAGE.to_string());
        } else {
            return Err("no privileges".into());
        }
    }
    Ok(ListedGrant {
        securable_type,
        name,
        privileges,
        grant_option,
    })
}

/// One entry of a future-grants listing. The definition's Grant describes the
/// scope either as `containing_scope`, or as the `securable` the grant is on:
/// its database and schema, with the name either the placeholder of the future
/// objects (`<TABLE>`, as `SHOW FUTURE GRANTS` prints `SALES.PUBLIC.<TABLE>`)
/// or the scope's own name.
fn read_future(row: &serde_json::Value) -> Result<ListedFuture, String> {
    let row: FutureGrantRow = typed(row)?;
    let type_ = read_type(row.securable_type.as_ref())?;
    let parts: Vec<Part> = match (&row.containing_scope, &row.securable) {
        (Some(scope), _) => {
            let database = scope
                .database
                .as_deref()
                .ok_or("containing_scope has no database")?;
            std::iter::once(database)
                .chain(scope.schema.as_deref())
                .map(parse_listed_part)
                .collect()
        }
        (_, Some(securable)) => {
            let placeholder = securable
                .name
                .as_deref()
                .is_some_and(|name| name.starts_with('<') && name.ends_with('>'));
            [&securable.database, &securable.schema, &securable.name]
                .into_iter()
                .flatten()
                .filter(|part| !(placeholder && part.starts_with('<')))
                .map(|part| parse_listed_part(part))
                .collect()
        }
        _ => return Err("no containing_scope or securable".into()),
    };
    let (scope, scope_name) = match parts.as_slice() {
        [_] => (ScopeType::Database, Name(parts)),
        [_, _] => (ScopeType::Schema, Name(parts)),
        _ => return Err("the scope is not a database or a schema".into()),
    };
    let privileges = read_privileges(row.privileges.as_ref())?;
    if privileges.is_empty() {
        return Err("no privileges".into());
    }
    Ok(ListedFuture {
        plural: super::model::plural(&singular(&type_)),
        scope,
        scope_name,
        privileges,
        grant_option: read_grant_option(row.grant_option.as_ref())?,
    })
}

/// The answers this client reads, each with an operation that gives it:
/// `(method, path template, status, schema of the row type read)`, for the
/// conformance test to compare with Snowflake's own definitions.
pub fn response_wire_types() -> Vec<(&'static str, &'static str, &'static str, schemars::Schema)> {
    vec![
        (
            "GET",
            "/api/v2/roles/{name}/grants",
            "200",
            schemars::schema_for!(Vec<RoleGrantRow>),
        ),
        (
            "GET",
            "/api/v2/databases/{database}/database-roles/{name}/grants",
            "200",
            schemars::schema_for!(Vec<RoleGrantRow>),
        ),
        (
            "GET",
            "/api/v2/users/{name}/grants",
            "200",
            schemars::schema_for!(Vec<UserGrantRow>),
        ),
        (
            "GET",
            "/api/v2/grants/{granteeType}/{granteeName}",
            "200",
            schemars::schema_for!(Vec<LegacyGrantRow>),
        ),
        (
            "GET",
            "/api/v2/roles/{name}/future-grants",
            "200",
            schemars::schema_for!(Vec<FutureGrantRow>),
        ),
        (
            "GET",
            "/api/v2/databases/{database}/database-roles/{name}/future-grants",
            "200",
            schemars::schema_for!(Vec<FutureGrantRow>),
        ),
        (
            "GET",
            "/api/v2/roles",
            "200",
            schemars::schema_for!(Vec<NamedRow>),
        ),
        (
            "GET",
            "/api/v2/databases/{database}/schemas",
            "200",
            schemars::schema_for!(Vec<NamedRow>),
        ),
        (
            "GET",
            "/api/v2/databases/{database}/schemas/{schema}/tables",
            "200",
            schemars::schema_for!(Vec<NamedRow>),
        ),
        (
            "GET",
            "/api/v2/databases/{database}/schemas/{schema}/views",
            "200",
            schemars::schema_for!(Vec<NamedRow>),
        ),
        (
            "POST",
            "/api/v2/roles/{name}/grants",
            "202",
            schemars::schema_for!(Accepted),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendor_api::snowflake::identifiers::parse;

    #[test]
    fn securables_split_into_wire_objects_by_part_count() {
        let table = parse(r#"sales."My Schema".orders"#).unwrap();
        assert_eq!(
            serde_json::to_value(wire_object(&table)).unwrap_or_default(),
            serde_json::json!({"database": "SALES", "schema": "\"My Schema\"", "name": "ORDERS"})
        );
        let schema = parse("sales.public").unwrap();
        assert_eq!(
            serde_json::to_value(wire_object(&schema)).unwrap_or_default(),
            serde_json::json!({"database": "SALES", "name": "PUBLIC"})
        );
        assert_eq!(wire_object(&parse("a.b.c.d").unwrap()), None);
        assert_eq!(
            wire_scope(ScopeType::Schema, &schema),
            WireObject {
                database: Some("SALES".into()),
                schema: Some("PUBLIC".into()),
                name: None
            }
        );
    }

    #[test]
    fn grant_entries_are_read_or_refused_never_dropped() {
        let table = read_grant(&serde_json::json!({"securable_type": "TABLE", "securable": {"database": "SALES", "schema": "\"My S\"", "name": "T"}, "privileges": ["select"], "grant_option": true}), GrantListing::Role).unwrap();
        assert_eq!(table.securable_type, "TABLE");
        assert_eq!(table.name.sql(), r#"SALES."My S".T"#);
        assert_eq!(table.privileges, vec!["SELECT".to_string()]);
        assert!(table.grant_option);
        let legacy = read_grant(&serde_json::json!({"securable_type": "EXTERNAL_TABLE", "securable_name": "A.B.C", "privileges": ["SELECT"]}), GrantListing::Legacy).unwrap();
        assert_eq!(legacy.securable_type, "EXTERNAL TABLE");
        assert!(!legacy.grant_option);
        // A role granted to a user: no privilege shown, USAGE meant.
        let role = read_grant(&serde_json::json!({"securable_type": "DATABASE_ROLE", "securable": {"database": "SALES", "name": "READER"}}), GrantListing::User).unwrap();
        assert_eq!(
            (
                role.securable_type.as_str(),
                role.name.sql(),
                role.privileges
            ),
            (
                "DATABASE ROLE",
                "SALES.READER".to_string(),
                vec!["USAGE".to_string()]
            )
        );
        for (entry, listing, problem) in [
            (
                serde_json::json!({"securable": {"name": "X"}, "privileges": ["USAGE"]}),
                GrantListing::Role,
                "no securable_type",
            ),
            (
                serde_json::json!({"securable_type": "TABLE", "securable": {"database": "S"}, "privileges": ["SELECT"]}),
                GrantListing::Role,
                "securable has no name",
            ),
            (
                serde_json::json!({"securable_type": "TABLE", "securable": "S.T", "privileges": ["SELECT"]}),
                GrantListing::Role,
                "expected struct WireObject",
            ),
            (
                serde_json::json!({"securable_type": "TABLE", "privileges": ["SELECT"]}),
                GrantListing::Role,
                "no securable",
            ),
            (
                // Each listing is read with the fields its definition gives it.
                serde_json::json!({"securable_type": "TABLE", "securable_name": "A.B.C", "privileges": ["SELECT"]}),
                GrantListing::Role,
                "no securable",
            ),
            (
                serde_json::json!({"securable_type": "TABLE", "securable": {"database": "A", "schema": "B", "name": "C"}, "privileges": ["SELECT"]}),
                GrantListing::Legacy,
                "no securable_name",
            ),
            (
                serde_json::json!({"securable_type": "TABLE", "securable_name": "A.B.C"}),
                GrantListing::Legacy,
                "no privileges",
            ),
            (
                serde_json::json!({"securable_type": "TABLE", "securable_name": "A.B.C", "privileges": [3]}),
                GrantListing::Legacy,
                "is not a privilege",
            ),
            (
                serde_json::json!({"securable_type": "TABLE", "securable_name": "A.B.C", "privileges": ["SELECT"], "grant_option": "yes"}),
                GrantListing::Legacy,
                "not a boolean",
            ),
            (
                serde_json::json!({"securable_type": "TA-BLE", "securable_name": "A.B.C", "privileges": ["SELECT"]}),
                GrantListing::Legacy,
                "is not a type",
            ),
            (
                serde_json::json!(["TABLE"]),
                GrantListing::Role,
                "not an object",
            ),
        ] {
            let error = read_grant(&entry, listing).unwrap_err();
            assert!(error.contains(problem), "{entry}: {error}");
        }
    }

    #[test]
    fn future_entries_are_read_in_every_shape_the_definition_allows() {
        let scope_of = |entry: serde_json::Value| {
            let future = read_future(&entry).unwrap();
            (future.plural, future.scope, future.scope_name.sql())
        };
        let schema = (
            "TABLES".to_string(),
            ScopeType::Schema,
            "SALES.PUBLIC".to_string(),
        );
        assert_eq!(
            scope_of(
                serde_json::json!({"securable_type": "TABLE", "containing_scope": {"database": "SALES", "schema": "PUBLIC"}, "privileges": ["SELECT"]})
            ),
            schema
        );
        // By the securable: the future objects' placeholder, or the scope itself.
        assert_eq!(
            scope_of(
                serde_json::json!({"securable_type": "TABLE", "securable": {"database": "SALES", "schema": "PUBLIC", "name": "<TABLE>"}, "privileges": ["SELECT"]})
            ),
            schema
        );
        assert_eq!(
            scope_of(
                serde_json::json!({"securable_type": "TABLE", "securable": {"database": "SALES", "name": "PUBLIC"}, "privileges": ["SELECT"]})
            ),
            schema
        );
        assert_eq!(
            scope_of(
                serde_json::json!({"securable_type": "SCHEMA", "securable": {"database": "SALES", "name": "<SCHEMA>"}, "privileges": ["USAGE"]})
            ),
            (
                "SCHEMAS".to_string(),
                ScopeType::Database,
                "SALES".to_string()
            )
        );
        assert_eq!(
            scope_of(
                serde_json::json!({"securable_type": "VIEW", "securable": {"name": "SALES"}, "privileges": ["SELECT"]})
            ),
            (
                "VIEWS".to_string(),
                ScopeType::Database,
                "SALES".to_string()
            )
        );
        for (entry, problem) in [
            (
                serde_json::json!({"securable_type": "TABLE", "privileges": ["SELECT"]}),
                "no containing_scope or securable",
            ),
            (
                serde_json::json!({"securable_type": "TABLE", "containing_scope": {"schema": "P"}, "privileges": ["SELECT"]}),
                "containing_scope has no database",
            ),
            (
                serde_json::json!({"securable_type": "TABLE", "securable": {"database": "A", "schema": "B", "name": "C"}, "privileges": ["SELECT"]}),
                "not a database or a schema",
            ),
            (
                serde_json::json!({"securable_type": "TABLE", "containing_scope": {"database": "A"}}),
                "no privileges",
            ),
            (
                serde_json::json!({"containing_scope": {"database": "A"}, "privileges": ["SELECT"]}),
                "no securable_type",
            ),
        ] {
            let error = read_future(&entry).unwrap_err();
            assert!(error.contains(problem), "{entry}: {error}");
        }
    }

    #[test]
    fn an_unreadable_row_is_quoted_in_the_error() {
        let rows = vec![
            serde_json::json!({"name": "ORDERS"}),
            serde_json::json!({"kind": "x".repeat(1000)}),
        ];
        let error = SnowflakeApi::read_rows(rows, "SCHEMA S.P", "tables", |row| {
            row.get("name")
                .and_then(serde_json::Value::as_str)
                .map(String::from)
                .ok_or_else(|| "no name".to_string())
        })
        .unwrap_err();
        let ListingError::Unreadable(message) = error else {
            panic!("unreadable")
        };
        assert!(
            message.starts_with("the tables listing of SCHEMA S.P has an entry this version cannot read (no name): {\"kind\":\"xxx"),
            "{message}"
        );
        assert!(message.len() < 600, "quoted, not copied whole");
    }

    #[test]
    fn next_links_are_found() {
        assert_eq!(
            next_link(r#"</api/v2/results/a?page=2>; rel="next", </x>; rel="prev""#).as_deref(),
            Some("/api/v2/results/a?page=2")
        );
        assert_eq!(
            next_link(r#"</x>; rel="prev", <https://h/y>; rel=next"#).as_deref(),
            Some("https://h/y")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn legacy_paths_encode_each_segment() {
        let grantee = Grantee::parse(GranteeType::Role, r#""My Role""#).unwrap();
        let name = parse(r#"sales."My Schema""#).unwrap();
        assert_eq!(
            SnowflakeApi::legacy_path(
                &grantee,
                &LegacyTarget::Named {
                    type_: "SCHEMA",
                    name: &name
                }
            ),
            "/api/v2/grants/role/%22My%20Role%22/SCHEMA/SALES.%22My%20Schema%22/privileges"
        );
        assert_eq!(
            SnowflakeApi::legacy_path(
                &grantee,
                &LegacyTarget::Bulk {
                    kind: BulkKind::Future,
                    plural: "TABLES",
                    scope: ScopeType::Schema,
                    scope_name: &name
                }
            ),
            "/api/v2/grants/role/%22My%20Role%22/future/tables/schema/SALES.%22My%20Schema%22/privileges"
        );
    }
}
