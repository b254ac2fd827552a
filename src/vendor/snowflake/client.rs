//! Snowflake REST calls and wire types: the `RoleGrants` API (roles, database
//! roles and users under `/api/v2`) and the `Legacy` grants API of the seed
//! (`/api/v2/grants/...`), object listings for bulk `ALL` grants, and `202`
//! answers followed through their result handle.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::api::{SnowflakeGrantsApi, VendorKind};
use crate::vendor::VendorError;
use crate::vendor::http::{CallError, HttpClient, HttpResponse};

use super::auth::{Auth, TOKEN_TYPE_HEADER, bearer};
use super::identifiers::{Name, Part, encode_segment, parse_listed, parse_listed_part};
use super::model::{BulkKind, Grantee, GranteeType, ScopeType, singular};

const VENDOR: VendorKind = VendorKind::Snowflake;
/// Rows asked for per listing (the documented maximum).
const SHOW_LIMIT: &str = "10000";
/// A bound on pages of one listing, against a server that never ends it.
const MAX_PAGES: usize = 1000;

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

#[derive(Deserialize, Debug, schemars::JsonSchema)]
struct WireGrant {
    #[serde(default)]
    securable_type: String,
    #[serde(default)]
    securable: Option<WireObject>,
    #[serde(default)]
    securable_name: Option<String>,
    #[serde(default)]
    privileges: Vec<String>,
    #[serde(default)]
    grant_option: bool,
}

#[derive(Deserialize, Debug, schemars::JsonSchema)]
struct WireFuture {
    #[serde(default)]
    securable_type: String,
    #[serde(default)]
    containing_scope: Option<WireObject>,
    #[serde(default)]
    privileges: Vec<String>,
    #[serde(default)]
    grant_option: bool,
}

#[derive(Deserialize, Debug, schemars::JsonSchema)]
struct Named {
    name: String,
}

#[derive(Deserialize, Debug, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Accepted {
    #[serde(default)]
    result_handler: Option<String>,
}

/// The body of a `RoleGrants` grant or revoke.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct RoleGrantBody {
    /// Singular type.
    pub securable_type: String,
    /// Named securable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub securable: Option<WireObject>,
    /// Scope of a future grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containing_scope: Option<WireObject>,
    /// Privileges.
    pub privileges: Vec<String>,
    /// Grant option.
    pub grant_option: bool,
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
        let result = self
            .http
            .send(operation, |client| {
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
            Err(CallError::Transport {
                message: "refused to follow a link to another host".into(),
            })
        }
    }

    /// A listing, every page: the first with `showLimit`, the next ones through
    /// the `Link: <...>; rel="next"` header.
    async fn list<T: for<'de> Deserialize<'de>>(
        &self,
        operation: &'static str,
        path: &str,
        what: &str,
    ) -> Result<Vec<T>, CallError> {
        let mut response = self
            .call(
                operation,
                Method::GET,
                path,
                &[("showLimit", SHOW_LIMIT.into())],
                None,
            )
            .await?;
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: Vec<T> = parse_body(&response, what)?;
            all.extend(page);
            let Some(next) = response.link.as_deref().and_then(next_link) else {
                return Ok(all);
            };
            let url = self.own_url(&next)?;
            response = self
                .call_url(operation, Method::GET, &url, &[], None)
                .await?;
        }
        Err(CallError::Transport {
            message: format!("the {what} did not end after {MAX_PAGES} pages"),
        })
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
                    return Err(CallError::Transport {
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
        format!(
            "/api/v2/grants/{}/{}",
            grantee.type_.as_str(),
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

    /// Every grant the grantee holds (one listing; `CallError` so 404 is the caller's).
    pub async fn grants_of(&self, grantee: &Grantee) -> Result<Vec<ListedGrant>, CallError> {
        let path = match self.grants_api {
            SnowflakeGrantsApi::RoleGrants => format!("{}/grants", self.role_base(grantee)),
            SnowflakeGrantsApi::Legacy => Self::legacy_base(grantee),
        };
        let wire: Vec<WireGrant> = self.list("list_grants", &path, "grants listing").await?;
        Ok(wire
            .into_iter()
            .map(|grant| ListedGrant {
                securable_type: super::model::keyword(&grant.securable_type),
                name: match (&grant.securable, &grant.securable_name) {
                    (Some(object), _) => listed_name(object),
                    (None, Some(name)) => parse_listed(name),
                    (None, None) => Name(Vec::new()),
                },
                privileges: grant
                    .privileges
                    .iter()
                    .map(|p| super::model::keyword(p))
                    .collect(),
                grant_option: grant.grant_option,
            })
            .collect())
    }

    /// The grantee's future grants (the role listing in both modes: the legacy
    /// listing is `SHOW GRANTS TO`, which never shows them).
    pub async fn future_grants_of(
        &self,
        grantee: &Grantee,
    ) -> Result<Vec<ListedFuture>, CallError> {
        let wire: Vec<WireFuture> = self
            .list(
                "list_future_grants",
                &format!("{}/future-grants", self.role_base(grantee)),
                "future grants listing",
            )
            .await?;
        Ok(wire
            .into_iter()
            .filter_map(|future| {
                let scope = future.containing_scope?;
                let database = parse_listed_part(scope.database.as_deref()?);
                let (scope_type, scope_name) = match &scope.schema {
                    Some(schema) => (
                        ScopeType::Schema,
                        Name(vec![database, parse_listed_part(schema)]),
                    ),
                    None => (ScopeType::Database, Name(vec![database])),
                };
                let type_ = super::model::keyword(&future.securable_type);
                Some(ListedFuture {
                    plural: super::model::plural(&singular(&type_)),
                    scope: scope_type,
                    scope_name,
                    privileges: future
                        .privileges
                        .iter()
                        .map(|p| super::model::keyword(p))
                        .collect(),
                    grant_option: future.grant_option,
                })
            })
            .collect())
    }

    /// Names of the objects of a listing path (schemas, tables, views).
    pub async fn object_names(
        &self,
        operation: &'static str,
        path: &str,
    ) -> Result<Vec<Part>, CallError> {
        let wire: Vec<Named> = self.list(operation, path, "object listing").await?;
        Ok(wire
            .into_iter()
            .map(|object| parse_listed_part(&object.name))
            .collect())
    }

    /// `RoleGrants`: grants or revokes (`grants` or `grants:revoke`, and the
    /// `future-grants` equivalents) with one body; `grant_option_only` revokes
    /// only the grant option (`grantOptionOnly=true`).
    pub async fn role_grants_write(
        &self,
        grantee: &Grantee,
        future: bool,
        revoke: bool,
        grant_option_only: bool,
        body: &RoleGrantBody,
    ) -> Result<(), CallError> {
        let (operation, suffix) = match (future, revoke) {
            (false, false) => ("grant", "grants"),
            (false, true) => ("revoke", "grants:revoke"),
            (true, false) => ("grant_future", "future-grants"),
            (true, true) => ("revoke_future", "future-grants:revoke"),
        };
        let mut query = Vec::new();
        if grant_option_only {
            query.push(("grantOptionOnly", "true".to_string()));
        }
        let body = serde_json::to_value(body).unwrap_or_default();
        self.call(
            operation,
            Method::POST,
            &format!("{}/{suffix}", self.role_base(grantee)),
            &query,
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
                "{}/{}/{}/{}",
                kind.as_str().to_ascii_lowercase(),
                encode_segment(plural),
                scope.as_str(),
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
    serde_json::from_slice(&response.body).map_err(|error| CallError::Transport {
        message: format!("unexpected {what}: {error}"),
    })
}

/// The answers this client reads, each with an operation that gives it:
/// `(method, path template, status, schema of the wire type)`, for the
/// conformance test to compare with Snowflake's own definitions.
pub fn response_wire_types() -> Vec<(&'static str, &'static str, &'static str, schemars::Schema)> {
    let grants = || schemars::schema_for!(Vec<WireGrant>);
    let futures = || schemars::schema_for!(Vec<WireFuture>);
    let named = || schemars::schema_for!(Vec<Named>);
    vec![
        ("GET", "/api/v2/roles/{name}/grants", "200", grants()),
        (
            "GET",
            "/api/v2/databases/{database}/database-roles/{name}/grants",
            "200",
            grants(),
        ),
        ("GET", "/api/v2/users/{name}/grants", "200", grants()),
        (
            "GET",
            "/api/v2/grants/{granteeType}/{granteeName}",
            "200",
            grants(),
        ),
        (
            "GET",
            "/api/v2/roles/{name}/future-grants",
            "200",
            futures(),
        ),
        (
            "GET",
            "/api/v2/databases/{database}/database-roles/{name}/future-grants",
            "200",
            futures(),
        ),
        (
            "GET",
            "/api/v2/databases/{database}/schemas",
            "200",
            named(),
        ),
        (
            "GET",
            "/api/v2/databases/{database}/schemas/{schema}/tables",
            "200",
            named(),
        ),
        (
            "GET",
            "/api/v2/databases/{database}/schemas/{schema}/views",
            "200",
            named(),
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
    use crate::vendor::snowflake::identifiers::parse;

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
            "/api/v2/grants/ROLE/%22My%20Role%22/SCHEMA/SALES.%22My%20Schema%22/privileges"
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
            "/api/v2/grants/ROLE/%22My%20Role%22/future/TABLES/SCHEMA/SALES.%22My%20Schema%22/privileges"
        );
    }
}
