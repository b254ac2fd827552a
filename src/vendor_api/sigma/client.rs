//! Sigma REST API calls and wire types: OAuth client credentials, connection
//! grants, member and team look-ups.

use std::time::Duration;

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::api::VendorKind;
use crate::vendor_api::http::{ApiRoot, CallError, HttpClient, HttpResponse, Repeat};
use crate::vendor_api::{VendorError, read_entries};

const VENDOR: VendorKind = VendorKind::Sigma;
/// The page size asked for (the vendor's maximum).
pub const PAGE_LIMIT: usize = 1000;
/// The most grants one POST may carry.
pub const MAX_BATCH: usize = 100;
/// A bound on pages of one listing, against a server that never ends it.
const MAX_PAGES: usize = 100_000;

/// Permissions Sigma's definition lists for a grant that the operator knows
/// and never changes (every level but `usage` and `annotate`: the connection
/// levels `admin`, `update`, `writeback`, and the levels of other objects).
/// A listed permission outside these and the managed ones is unreadable.
pub const UNMANAGED_PERMISSIONS: &[&str] = &[
    "admin",
    "update",
    "writeback",
    "create",
    "organize",
    "explore",
    "view",
    "edit",
    "apply",
];

/// One grant of a connection listing (the fields the operator reads).
#[derive(Deserialize, Debug, Clone, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantEntry {
    /// Grant id.
    pub grant_id: String,
    /// Member grantee, or null.
    pub member_id: Option<String>,
    /// Team grantee, or null.
    pub team_id: Option<String>,
    /// `usage`, `annotate`, or a permission the operator does not manage.
    pub permission: String,
}

impl GrantEntry {
    /// Who the grant is for: exactly one of member and team, not empty.
    pub fn grantee(&self) -> Result<GranteeId, String> {
        let present = |id: &Option<String>| id.clone().filter(|id| !id.is_empty());
        match (present(&self.member_id), present(&self.team_id)) {
            (Some(member), None) => Ok(GranteeId::Member(member)),
            (None, Some(team)) => Ok(GranteeId::Team(team)),
            (None, None) => Err("it names no member and no team".into()),
            (Some(_), Some(_)) => Err("it names both a member and a team".into()),
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.grant_id.is_empty() {
            return Err("it has no grantId".into());
        }
        self.grantee().map(|_| ())
    }
}

/// One page of a listing (entries read one by one, so a bad one is named).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The entries of the page.
    #[serde(default)]
    pub entries: Vec<T>,
    /// The token of the next page; null on the last.
    #[serde(default)]
    pub next_page: Option<String>,
}

/// A connection of the connection listing.
#[derive(Deserialize, Debug, Clone, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionEntry {
    /// Connection id.
    pub connection_id: String,
    /// Name, for people (a listing without one is still read).
    #[serde(default)]
    pub name: Option<String>,
}

/// A member of a member search.
#[derive(Deserialize, Debug, Clone, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberEntry {
    /// Member id.
    pub member_id: String,
    /// Email (an entry without one cannot be compared, so it is unreadable).
    pub email: String,
}

/// A team of a team search.
#[derive(Deserialize, Debug, Clone, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamEntry {
    /// Team id.
    pub team_id: String,
    /// Name (an entry without one cannot be compared, so it is unreadable).
    pub name: String,
}

fn not_empty(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        Err(format!("its {what} is empty"))
    } else {
        Ok(())
    }
}

/// Who a new grant is for.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub enum GranteeId {
    /// A member.
    #[serde(rename = "memberId")]
    Member(String),
    /// A team.
    #[serde(rename = "teamId")]
    Team(String),
}

/// One grant to create.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct NewGrant {
    /// Grantee.
    pub grantee: GranteeId,
    /// `usage` or `annotate`.
    pub permission: &'static str,
}

#[derive(Serialize)]
struct CreateBody<'a> {
    grants: &'a [NewGrant],
}

/// The answer of `/v2/auth/token`.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

struct Token {
    access: SecretString,
    refresh: Option<SecretString>,
    renew_at: Instant,
}

/// Client credentials of a Sigma API client.
pub struct Credentials {
    /// Client id.
    pub client_id: SecretString,
    /// Client secret.
    pub client_secret: SecretString,
}

/// The Sigma API of one provider.
pub struct SigmaApi {
    root: ApiRoot,
    credentials: Credentials,
    token: Mutex<Option<Token>>,
}

impl std::fmt::Debug for SigmaApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigmaApi")
            .field("base", &self.root.base())
            .finish_non_exhaustive()
    }
}

impl SigmaApi {
    /// A client for `api_url`.
    pub fn new(http: HttpClient, api_url: &str, credentials: Credentials) -> SigmaApi {
        SigmaApi {
            root: ApiRoot::new(http, api_url),
            credentials,
            token: Mutex::new(None),
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        self.root.base()
    }

    fn url(&self, path: &str) -> String {
        self.root.url(path)
    }

    /// Obtains a new token with the client credentials, and keeps it.
    pub async fn login(&self) -> Result<(), CallError> {
        let mut slot = self.token.lock().await;
        *slot = Some(self.request_token(None).await?);
        Ok(())
    }

    /// A valid access token: the cached one, a refreshed one, or a new one.
    async fn bearer(&self) -> Result<SecretString, CallError> {
        let mut slot = self.token.lock().await;
        if let Some(token) = slot.as_ref()
            && Instant::now() < token.renew_at
        {
            return Ok(token.access.clone());
        }
        let refresh = slot.as_ref().and_then(|token| token.refresh.clone());
        let token = match refresh {
            Some(refresh) => match self.request_token(Some(&refresh)).await {
                Ok(token) => token,
                // An expired or rotated refresh token: log in again.
                Err(CallError::Status { status, .. }) if status.is_client_error() => {
                    self.request_token(None).await?
                }
                Err(error) => return Err(error),
            },
            None => self.request_token(None).await?,
        };
        let access = token.access.clone();
        *slot = Some(token);
        Ok(access)
    }

    /// Forgets `access` after the API refused it (keeps the refresh token).
    async fn invalidate(&self, access: &SecretString) {
        let mut slot = self.token.lock().await;
        if let Some(token) = slot.as_mut()
            && token.access.expose_secret() == access.expose_secret()
        {
            token.renew_at = Instant::now();
        }
    }

    async fn request_token(&self, refresh: Option<&SecretString>) -> Result<Token, CallError> {
        let url = self.url("/v2/auth/token");
        let response = self
            .root
            .http()
            // Asking for a token again is harmless.
            .send("token", Repeat::Read, |client| {
                let request = client.post(&url).basic_auth(
                    self.credentials.client_id.expose_secret(),
                    Some(self.credentials.client_secret.expose_secret()),
                );
                match refresh {
                    Some(refresh) => request.form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh.expose_secret()),
                    ]),
                    None => request.form(&[("grant_type", "client_credentials")]),
                }
            })
            .await
            .map_err(|error| match error {
                // Whatever the token endpoint refuses is a credentials problem.
                CallError::Status {
                    status,
                    message,
                    retry_after,
                } if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS => {
                    CallError::Status {
                        status: StatusCode::UNAUTHORIZED,
                        message: format!("token request refused ({status}): {message}"),
                        retry_after,
                    }
                }
                other => other,
            })?;
        let answer: TokenAnswer =
            serde_json::from_slice(&response.body).map_err(|error| CallError::Unreadable {
                message: format!("unexpected token answer: {error}"),
            })?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        // Renew a minute early, or a quarter early for short-lived tokens.
        let margin = Duration::from_secs(60).min(lifetime / 4);
        Ok(Token {
            access: SecretString::from(answer.access_token),
            refresh: answer.refresh_token.map(SecretString::from),
            renew_at: Instant::now() + lifetime - margin,
        })
    }

    /// An authenticated call; a 401 drops the token and tries once more with a new one.
    async fn call(
        &self,
        operation: &'static str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<HttpResponse, CallError> {
        let mut retried = false;
        loop {
            let access = self.bearer().await?;
            let result = self
                .root
                .http()
                .send(operation, repeat_of(operation), |client| {
                    build(client).bearer_auth(access.expose_secret())
                })
                .await;
            match result {
                Err(CallError::Status { status, .. })
                    if status == StatusCode::UNAUTHORIZED && !retried =>
                {
                    retried = true;
                    self.invalidate(&access).await;
                }
                other => return other,
            }
        }
    }

    /// Every entry of every page of a listing, unparsed.
    async fn list_all(
        &self,
        operation: &'static str,
        path: &str,
        query: &[(&str, &str)],
        not_found: impl Fn(String) -> VendorError,
    ) -> Result<Vec<serde_json::Value>, VendorError> {
        let url = self.url(path);
        let limit = PAGE_LIMIT.to_string();
        let mut entries = Vec::new();
        let mut page: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let response = self
                .call(operation, |client| {
                    let mut params: Vec<(&str, &str)> = query.to_vec();
                    params.push(("limit", &limit));
                    if let Some(page) = &page {
                        params.push(("page", page));
                    }
                    client.get(&url).query(&params)
                })
                .await
                .map_err(|error| error.into_vendor_error(VENDOR, operation, &not_found))?;
            let parsed: Page<serde_json::Value> = response.json(VENDOR, operation)?;
            entries.extend(parsed.entries);
            match parsed.next_page {
                Some(next) if Some(&next) == page.as_ref() => {
                    return Err(VendorError::Protocol {
                        vendor: VENDOR,
                        operation,
                        message: "the listing returned the same page token twice".into(),
                    });
                }
                Some(next) => page = Some(next),
                None => return Ok(entries),
            }
        }
        Err(VendorError::Protocol {
            vendor: VENDOR,
            operation,
            message: format!("the listing did not end after {MAX_PAGES} pages"),
        })
    }

    /// Every grant of a connection; an entry without a grant id or without
    /// exactly one grantee is unreadable.
    pub async fn list_grants(&self, connection_id: &str) -> Result<Vec<GrantEntry>, VendorError> {
        let path = format!("/v2/connections/{}/grants", encode(connection_id));
        let entries = self
            .list_all("list_grants", &path, &[], |_| VendorError::TargetNotFound {
                vendor: VENDOR,
                what: format!("connection {connection_id}"),
            })
            .await?;
        read_entries(VENDOR, "list_grants", entries, GrantEntry::check)
    }

    /// Creates (or raises) up to [`MAX_BATCH`] grants in one call.
    pub async fn create_grants(
        &self,
        connection_id: &str,
        grants: &[NewGrant],
    ) -> Result<(), CallError> {
        let url = self.url(&format!("/v2/connections/{}/grants", encode(connection_id)));
        self.call("create_grants", |client| {
            client.post(&url).json(&CreateBody { grants })
        })
        .await
        .map(|_| ())
    }

    /// Revokes a grant; one that is already gone counts as revoked.
    pub async fn revoke_grant(
        &self,
        connection_id: &str,
        grant_id: &str,
    ) -> Result<(), VendorError> {
        let url = self.url(&format!(
            "/v2/connections/{}/grants/{}",
            encode(connection_id),
            encode(grant_id)
        ));
        match self
            .call("revoke_grant", |client| client.delete(&url))
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.status() == Some(StatusCode::NOT_FOUND) => Ok(()),
            Err(error) => Err(error.into_vendor_error(VENDOR, "revoke_grant", |message| {
                VendorError::Invalid {
                    vendor: VENDOR,
                    operation: "revoke_grant",
                    message,
                }
            })),
        }
    }

    /// Every connection of the organisation.
    pub async fn list_connections(&self) -> Result<Vec<ConnectionEntry>, VendorError> {
        let entries = self
            .list_all("list_connections", "/v2/connections", &[], |message| {
                VendorError::Protocol {
                    vendor: VENDOR,
                    operation: "list_connections",
                    message,
                }
            })
            .await?;
        read_entries(
            VENDOR,
            "list_connections",
            entries,
            |c: &ConnectionEntry| not_empty("connectionId", &c.connection_id),
        )
    }

    /// Members whose email contains `search` (the vendor matches substrings).
    pub async fn search_members(
        &self,
        search: Option<&str>,
    ) -> Result<Vec<MemberEntry>, VendorError> {
        let query: Vec<(&str, &str)> = search
            .map(|search| ("search", search))
            .into_iter()
            .collect();
        let entries = self
            .list_all("search_members", "/v2/members", &query, |message| {
                VendorError::Protocol {
                    vendor: VENDOR,
                    operation: "search_members",
                    message,
                }
            })
            .await?;
        read_entries(VENDOR, "search_members", entries, |m: &MemberEntry| {
            not_empty("memberId", &m.member_id)
        })
    }

    /// Teams whose name contains `name` (the vendor matches substrings).
    pub async fn search_teams(&self, name: Option<&str>) -> Result<Vec<TeamEntry>, VendorError> {
        let query: Vec<(&str, &str)> = name.map(|name| ("name", name)).into_iter().collect();
        let entries = self
            .list_all("search_teams", "/v2/teams", &query, |message| {
                VendorError::Protocol {
                    vendor: VENDOR,
                    operation: "search_teams",
                    message,
                }
            })
            .await?;
        read_entries(VENDOR, "search_teams", entries, |t: &TeamEntry| {
            not_empty("teamId", &t.team_id)
        })
    }
}

/// Percent-encodes one path segment.
fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Whether a Sigma call may be sent again when its outcome is unknown.
///
/// Sigma documents no idempotency for `create_grants`: repeated after a timeout
/// that did land, it could create a second grant or fail one that now exists, so
/// it is never repeated blind (the sync reads the grants back). A revocation by
/// grant id is the same when repeated (404 counts as revoked). Reads, and the
/// token request, are read-like: a late answer harms nothing.
fn repeat_of(operation: &str) -> Repeat {
    match operation {
        "create_grants" => Repeat::OnlyIfNotCarriedOut,
        "revoke_grant" => Repeat::Idempotent,
        _ => Repeat::Read,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn look_up_entries_that_cannot_be_compared_are_unreadable() {
        let members = vec![
            json!({"memberId": "m1", "email": "jane@example.com"}),
            json!({"memberId": "m2"}),
        ];
        let error = read_entries(VENDOR, "search_members", members, |m: &MemberEntry| {
            not_empty("memberId", &m.member_id)
        })
        .unwrap_err();
        assert!(
            error.to_string().contains("missing field `email`"),
            "{error}"
        );
        assert!(error.to_string().contains("\"m2\""), "{error}");

        let teams = vec![json!({"teamId": "", "name": "Finance"})];
        let error = read_entries(VENDOR, "search_teams", teams, |t: &TeamEntry| {
            not_empty("teamId", &t.team_id)
        })
        .unwrap_err();
        assert!(error.to_string().contains("its teamId is empty"), "{error}");
        assert_eq!(error.reason().to_string(), "VendorUnavailable");
    }

    #[test]
    fn a_grant_names_exactly_one_grantee() {
        let entry = |member: Option<&str>, team: Option<&str>| GrantEntry {
            grant_id: "g".into(),
            member_id: member.map(String::from),
            team_id: team.map(String::from),
            permission: "usage".into(),
        };
        assert_eq!(
            entry(Some("m"), None).grantee(),
            Ok(GranteeId::Member("m".into()))
        );
        assert_eq!(
            entry(Some(""), Some("t")).grantee(),
            Ok(GranteeId::Team("t".into()))
        );
        assert!(entry(None, None).check().is_err());
        assert!(entry(Some("m"), Some("t")).check().is_err());
        assert!(
            GrantEntry {
                grant_id: String::new(),
                ..entry(Some("m"), None)
            }
            .check()
            .is_err()
        );
    }
}
