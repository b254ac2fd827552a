//! Grafana HTTP API calls and wire types: authentication (service account
//! token or Basic), the organisation header, data source, user and team
//! look-ups, and both data source permission APIs.
//!
//! This module owns the transport, authentication and the look-ups;
//! `permissions` the calls and wire types of the two permissions APIs.

mod permissions;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::api::VendorKind;
use crate::vendor_api::http::{ApiRoot, CallError, HttpClient, HttpResponse, Repeat};
use crate::vendor_api::{VendorError, read_entries};

pub use permissions::{AccessEntry, AccessGrantee, LegacyEntry, LegacyGrantee, LegacyListing};

const VENDOR: VendorKind = VendorKind::Grafana;
/// Page size of team searches and user look-ups.
pub const PAGE_SIZE: usize = 1000;
/// A bound on pages of one team search, against a server that never ends it.
const MAX_PAGES: usize = 10_000;
/// The most data sources `GET /api/datasources` answers (Grafana's
/// `datasource_limit`, 5000 by default; the listing has no pages).
pub const DATASOURCE_LISTING_CAP: usize = 5000;

/// How the operator logs in.
pub enum Auth {
    /// `Authorization: Bearer <service account token>`.
    Token(SecretString),
    /// HTTP Basic.
    Basic {
        /// User name.
        username: SecretString,
        /// Password.
        password: SecretString,
    },
}

/// The current organisation (`GET /api/org`).
#[derive(Deserialize, Debug, Clone)]
pub struct Org {
    /// Org id.
    pub id: i64,
    /// Org name.
    #[serde(default)]
    pub name: String,
}

/// A data source.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Datasource {
    /// Numeric id (the Legacy API's key).
    pub id: i64,
    /// Uid (the AccessControl API's key).
    pub uid: String,
    /// Name.
    pub name: String,
}

/// How a data source is looked up.
#[derive(Debug, Clone, Copy)]
pub enum DatasourceLookup<'a> {
    /// `GET /api/datasources/uid/:uid`.
    Uid(&'a str),
    /// `GET /api/datasources/name/:name`.
    Name(&'a str),
    /// The `id` of an entry of `GET /api/datasources` (Grafana 13 serves no
    /// `GET /api/datasources/:id`; it was deprecated before).
    Id(i64),
}

/// A user of the org-scoped look-up (no email in it). Every look-up entry
/// needs the field it is compared on: one without it is unreadable.
#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct LookupUser {
    /// User id.
    pub user_id: i64,
    /// Login.
    pub login: String,
}

/// A user of the organisation's user listing.
#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct OrgUser {
    /// User id.
    pub user_id: i64,
    /// Login.
    pub login: String,
    /// Email.
    pub email: String,
}

/// A team of a team search.
#[derive(Deserialize, Debug, Clone)]
pub struct Team {
    /// Team id.
    pub id: i64,
    /// Name.
    pub name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TeamPage {
    total_count: usize,
    teams: Vec<serde_json::Value>,
}

/// The Grafana API of one provider.
pub struct GrafanaApi {
    root: ApiRoot,
    org_id: Option<i64>,
    auth: Auth,
}

impl std::fmt::Debug for GrafanaApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrafanaApi")
            .field("base", &self.root.base())
            .field("org_id", &self.org_id)
            .finish_non_exhaustive()
    }
}

impl GrafanaApi {
    /// A client for the Grafana at `url`.
    pub fn new(http: HttpClient, url: &str, org_id: Option<i64>, auth: Auth) -> GrafanaApi {
        GrafanaApi {
            root: ApiRoot::new(http, url),
            org_id,
            auth,
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        self.root.base()
    }

    /// The organisation asked for, if any.
    pub fn org_id(&self) -> Option<i64> {
        self.org_id
    }

    /// One authenticated call in the provider's organisation.
    async fn call(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
    ) -> Result<HttpResponse, CallError> {
        let url = self.root.url(path);
        self.root
            .http()
            .send(operation, repeat_of(operation), |client| {
                let mut request = client.request(method.clone(), &url);
                if !query.is_empty() {
                    request = request.query(query);
                }
                request = match &self.auth {
                    Auth::Token(token) => request.bearer_auth(token.expose_secret()),
                    Auth::Basic { username, password } => {
                        request.basic_auth(username.expose_secret(), Some(password.expose_secret()))
                    }
                };
                if let Some(org) = self.org_id {
                    request = request.header("X-Grafana-Org-Id", org.to_string());
                }
                match &body {
                    Some(body) => request.json(body),
                    None => request,
                }
            })
            .await
    }

    async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        operation: &'static str,
        path: &str,
        query: &[(&str, String)],
        not_found: impl FnOnce(String) -> VendorError,
    ) -> Result<T, VendorError> {
        self.call(operation, Method::GET, path, query, None)
            .await
            .map_err(|error| error.into_vendor_error(VENDOR, operation, not_found))?
            .json(VENDOR, operation)
    }

    /// The organisation the credentials reach (proves they work).
    pub async fn current_org(&self) -> Result<Org, VendorError> {
        self.get("current_org", "/api/org", &[], |message| {
            protocol("current_org", message)
        })
        .await
    }

    /// Whether the server serves the AccessControl permissions API: its
    /// description route answers (a 403 also shows the route exists), where a
    /// server without it answers 404.
    pub async fn serves_access_control(&self) -> Result<bool, VendorError> {
        let operation = "detect_permissions_api";
        match self
            .call(
                operation,
                Method::GET,
                "/api/access-control/datasources/description",
                &[],
                None,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(error) => match error.status() {
                Some(StatusCode::NOT_FOUND) => Ok(false),
                Some(StatusCode::FORBIDDEN) => Ok(true),
                _ => Err(error
                    .into_vendor_error(VENDOR, operation, |message| protocol(operation, message))),
            },
        }
    }

    /// A data source, or `None` when it does not exist.
    pub async fn datasource(
        &self,
        lookup: DatasourceLookup<'_>,
    ) -> Result<Option<Datasource>, VendorError> {
        let path = match lookup {
            DatasourceLookup::Uid(uid) => format!("/api/datasources/uid/{}", encode(uid)),
            DatasourceLookup::Name(name) => format!("/api/datasources/name/{}", encode(name)),
            DatasourceLookup::Id(id) => return self.datasource_by_id(id).await,
        };
        let operation = "get_datasource";
        match self.call(operation, Method::GET, &path, &[], None).await {
            Ok(response) => response.json(VENDOR, operation).map(Some),
            Err(error) if error.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(error) => {
                Err(error
                    .into_vendor_error(VENDOR, operation, |message| protocol(operation, message)))
            }
        }
    }

    /// The data source with this numeric id, from the organisation's listing.
    async fn datasource_by_id(&self, id: i64) -> Result<Option<Datasource>, VendorError> {
        let all = self.datasources().await?;
        if let Some(found) = all.iter().find(|datasource| datasource.id == id) {
            return Ok(Some(found.clone()));
        }
        if all.len() >= DATASOURCE_LISTING_CAP {
            // A full listing may have left it out: absent from it is not absent.
            return Err(VendorError::Protocol {
                vendor: VENDOR,
                operation: "list_datasources",
                message: format!(
                    "data source id {id} is not among the {} data sources the listing shows \
                     (Grafana lists at most {DATASOURCE_LISTING_CAP}); refer to it by uid",
                    all.len()
                ),
            });
        }
        Ok(None)
    }

    /// Every data source of the organisation.
    pub async fn datasources(&self) -> Result<Vec<Datasource>, VendorError> {
        let entries = self
            .get("list_datasources", "/api/datasources", &[], |message| {
                protocol("list_datasources", message)
            })
            .await?;
        read_entries(VENDOR, "list_datasources", entries, |d: &Datasource| {
            not_empty("uid", &d.uid)
        })
    }

    /// Users of the organisation whose login, email or name contains `query`.
    pub async fn lookup_users(&self, query: &str) -> Result<Vec<LookupUser>, VendorError> {
        let entries = self
            .get(
                "lookup_users",
                "/api/org/users/lookup",
                &[
                    ("query", query.to_string()),
                    ("limit", PAGE_SIZE.to_string()),
                ],
                |message| protocol("lookup_users", message),
            )
            .await?;
        read_entries(VENDOR, "lookup_users", entries, |u: &LookupUser| {
            not_empty("login", &u.login)
        })
    }

    /// Every user of the organisation, with emails.
    pub async fn org_users(&self) -> Result<Vec<OrgUser>, VendorError> {
        let entries = self
            .get("list_org_users", "/api/org/users", &[], |message| {
                protocol("list_org_users", message)
            })
            .await?;
        read_entries(VENDOR, "list_org_users", entries, |u: &OrgUser| {
            not_empty("login", &u.login)
        })
    }

    /// Teams named exactly `name` (the server's filter; callers match again).
    pub async fn search_teams(&self, name: &str) -> Result<Vec<Team>, VendorError> {
        let operation = "search_teams";
        let mut teams = Vec::new();
        for page in 1..=MAX_PAGES {
            let answer: TeamPage = self
                .get(
                    operation,
                    "/api/teams/search",
                    &[
                        ("name", name.to_string()),
                        ("perpage", PAGE_SIZE.to_string()),
                        ("page", page.to_string()),
                    ],
                    |message| protocol(operation, message),
                )
                .await?;
            let last = answer.teams.len() < PAGE_SIZE;
            teams.extend(read_entries(
                VENDOR,
                operation,
                answer.teams,
                |t: &Team| not_empty("name", &t.name),
            )?);
            if last || teams.len() >= answer.total_count {
                return Ok(teams);
            }
        }
        Err(protocol(
            operation,
            format!("the search did not end after {MAX_PAGES} pages"),
        ))
    }
}

fn not_empty(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        Err(format!("its {what} is empty"))
    } else {
        Ok(())
    }
}

fn protocol(operation: &'static str, message: String) -> VendorError {
    VendorError::Protocol {
        vendor: VENDOR,
        operation,
        message: format!("404: {message}"),
    }
}

/// Percent-encodes one path segment.
pub fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A request body as JSON (these plain structs always serialise).
fn json(body: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(body).unwrap_or_default()
}

/// Whether a Grafana call may be sent again when its outcome is unknown.
///
/// The Legacy API's `add_permission` creates an entry and refuses a second one
/// for the same grantee (400), so a repeat after a timeout that did land would
/// fail a grant that is in fact live: it is never repeated blind (the next read
/// shows whether it landed). Setting a level (the same level again is a no-op),
/// removing by id (404 counts as removed) and turning permissions on (already on
/// is fine) are the same when repeated. Everything else is a read.
fn repeat_of(operation: &str) -> Repeat {
    match operation {
        "add_permission" => Repeat::OnlyIfNotCarriedOut,
        "set_permission" | "remove_permission" | "enable_permissions" => Repeat::Idempotent,
        _ => Repeat::Read,
    }
}
