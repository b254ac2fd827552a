//! Snowflake REST calls and wire types: the `RoleGrants` API (roles, database
//! roles and users under `/api/v2`) and the `Legacy` grants API of the seed
//! (`/api/v2/grants/...`), object listings for bulk `ALL` grants, and `202`
//! answers followed through their result handle. Listings are read entry by
//! entry, every shape the definitions allow; one that reaches [`SHOW_LIMIT`]
//! rows, or holds an entry that cannot be read, is refused whole
//! ([`ListingError`]).
//!
//! This module owns the transport ([`SnowflakeApi`]: requests, paging, `202`
//! polling); `calls` the calls the vendor module makes; `wire` the request and
//! row types; `rows` the reading of listing entries and [`ListingError`].

mod calls;
mod rows;
#[cfg(test)]
mod tests;
mod wire;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;

use crate::api::{SnowflakeGrantsApi, VendorKind};
use crate::vendor_api::http::{ApiRoot, CallError, HttpClient, HttpResponse, Repeat};

use self::wire::Accepted;
use super::auth::{Auth, TOKEN_TYPE_HEADER, bearer};
use super::identifiers::encode_segment;
use super::model::{Grantee, GranteeType};

pub use rows::ListingError;
pub use wire::{
    FutureGrantRow, LegacyGrantRow, LegacyTarget, ListedFuture, ListedGrant, NamedRow,
    RoleGrantBody, RoleGrantRow, USAGE, UserGrantRow, WireObject, WireScope, is_role_type,
    response_wire_types, wire_object, wire_scope,
};

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

/// The Snowflake API of one provider.
pub struct SnowflakeApi {
    root: ApiRoot,
    auth: Auth,
    grants_api: SnowflakeGrantsApi,
    poll: PollPolicy,
}

impl std::fmt::Debug for SnowflakeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnowflakeApi")
            .field("base", &self.root.base())
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
            root: ApiRoot::new(http, account_url),
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
        self.root.base()
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
            .root
            .http()
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
        let url = self.root.url(path);
        self.call_url(operation, method, &url, query, body).await
    }

    /// A URL a `Link` or `Location` header names, only on the account's own host
    /// (the token is never sent elsewhere).
    fn own_url(&self, target: &str) -> Result<String, CallError> {
        if target.starts_with('/') {
            Ok(self.root.url(target))
        } else if target.starts_with(&format!("{}/", self.root.base())) {
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
                    self.root
                        .http()
                        .metrics()
                        .incomplete_listing(VENDOR.as_str());
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
                (Some(handle), _) => self
                    .root
                    .url(&format!("/api/v2/results/{}", encode_segment(&handle))),
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
