//! Dremio REST calls and wire types for Software (`{url}/api/v3`) and Cloud
//! (catalog under `{url}/v0/projects/{projectId}`, users and roles at
//! organisation level under `{url}/v1`), behind one base-path abstraction.
//!
//! Users and roles are looked up by name the way Dremio's own tools do: on
//! Software `/api/v3/user/by-name/{name}` and `/api/v3/role/by-name/{name}`
//! (Dremio's REST API docs), on Cloud `/v1/users/name/{name}` and
//! `/v1/roles/name/{name}` (Dremio's official CLI, `dremio-cli` 2.1.2 on PyPI,
//! `drs/client.py`: `get_user_by_name`, `get_role_by_name`); 404 when absent.

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::api::VendorKind;
use crate::vendor_api::http::{ApiRoot, CallError, HttpClient, HttpResponse, Repeat};
use crate::vendor_api::{VendorError, read_entries};

const VENDOR: VendorKind = VendorKind::Dremio;

/// Where the deployment's paths are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployment {
    /// Dremio Software: `/api/v3`.
    Software,
    /// Dremio Cloud: the catalog of one project.
    Cloud {
        /// The project id.
        project_id: String,
    },
}

/// Who a grant entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GranteeType {
    /// A user.
    User,
    /// A role.
    Role,
}

impl GranteeType {
    /// The key prefix (`user`, `role`).
    pub fn prefix(self) -> &'static str {
        match self {
            GranteeType::User => "user",
            GranteeType::Role => "role",
        }
    }

    /// The wire name (`USER`, `ROLE`).
    pub fn wire(self) -> &'static str {
        match self {
            GranteeType::User => "USER",
            GranteeType::Role => "ROLE",
        }
    }

    /// From the wire name; `None` for a type this version does not know.
    pub fn from_wire(text: &str) -> Option<GranteeType> {
        match text {
            "USER" => Some(GranteeType::User),
            "ROLE" => Some(GranteeType::Role),
            _ => None,
        }
    }
}

/// One grant entry as listed (the name is for people: never compared, never
/// written back). An entry of a grantee type other than `USER` and `ROLE`
/// (except to a review, which only shows it), without an id, or without its
/// privileges is unreadable.
#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ListedEntry {
    /// Privileges.
    pub privileges: Vec<String>,
    /// `USER` or `ROLE`.
    pub grantee_type: String,
    /// Grantee id.
    pub id: String,
    /// The user's or role's name, when the listing shows it.
    #[serde(default)]
    pub name: Option<String>,
}

impl ListedEntry {
    fn check(&self) -> Result<(), String> {
        if GranteeType::from_wire(&self.grantee_type).is_none() {
            return Err(format!(
                "its granteeType {:?} is not USER or ROLE",
                self.grantee_type
            ));
        }
        self.check_shown()
    }

    /// What a review needs of an entry it only shows: an entry of another
    /// grantee type is shown as it is, never written back.
    fn check_shown(&self) -> Result<(), String> {
        if self.grantee_type.is_empty() {
            return Err("its granteeType is empty".into());
        }
        if self.id.is_empty() {
            return Err("its id is empty".into());
        }
        if self.privileges.iter().any(String::is_empty) {
            return Err("it lists an empty privilege".into());
        }
        Ok(())
    }
}

/// The grants of a catalog object.
#[derive(Debug, Clone)]
pub struct ObjectGrants {
    /// Privileges the object accepts.
    pub available_privileges: Vec<String>,
    /// Every grant entry.
    pub grants: Vec<ListedEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawObjectGrants {
    #[serde(default)]
    available_privileges: Vec<String>,
    grants: Vec<serde_json::Value>,
}

/// One grant entry as written (every other entry is written back as listed).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Privileges.
    pub privileges: Vec<String>,
    /// `USER`, `ROLE`, or as listed.
    pub grantee_type: String,
    /// Grantee id.
    pub id: String,
}

#[derive(Serialize)]
struct PutBody<'a> {
    grants: &'a [Entry],
}

#[derive(Deserialize)]
struct WithId {
    id: String,
}

/// The Dremio API of one provider.
pub struct DremioApi {
    root: ApiRoot,
    deployment: Deployment,
    token: SecretString,
}

impl std::fmt::Debug for DremioApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DremioApi")
            .field("base", &self.root.base())
            .field("deployment", &self.deployment)
            .finish_non_exhaustive()
    }
}

impl DremioApi {
    /// A client for the Dremio at `url`.
    pub fn new(
        http: HttpClient,
        url: &str,
        deployment: Deployment,
        token: SecretString,
    ) -> DremioApi {
        DremioApi {
            root: ApiRoot::new(http, url),
            deployment,
            token,
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        self.root.base()
    }

    /// The deployment.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The catalog's path prefix.
    fn catalog(&self) -> String {
        match &self.deployment {
            Deployment::Software => "/api/v3/catalog".to_string(),
            Deployment::Cloud { project_id } => {
                format!("/v0/projects/{}/catalog", encode(project_id))
            }
        }
    }

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
                let mut request = client
                    .request(method.clone(), &url)
                    .bearer_auth(self.token.expose_secret());
                if !query.is_empty() {
                    request = request.query(query);
                }
                match &body {
                    Some(body) => request.json(body),
                    None => request,
                }
            })
            .await
    }

    async fn get_opt<T: for<'de> Deserialize<'de>>(
        &self,
        operation: &'static str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<T>, VendorError> {
        match self.call(operation, Method::GET, path, query, None).await {
            Ok(response) => response.json(VENDOR, operation).map(Some),
            Err(error) if error.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(error) => {
                Err(
                    error.into_vendor_error(VENDOR, operation, |message| VendorError::Protocol {
                        vendor: VENDOR,
                        operation,
                        message: format!("404: {message}"),
                    }),
                )
            }
        }
    }

    /// Proves the token works: the catalog root (Software) or the project (Cloud).
    pub async fn probe(&self) -> Result<String, VendorError> {
        let operation = "probe";
        let path = match &self.deployment {
            Deployment::Software => "/api/v3/catalog".to_string(),
            Deployment::Cloud { project_id } => format!("/v0/projects/{}", encode(project_id)),
        };
        match self
            .get_opt::<serde_json::Value>(operation, &path, &[])
            .await?
        {
            Some(_) => Ok(match &self.deployment {
                Deployment::Software => format!("Dremio Software at {}", self.root.base()),
                Deployment::Cloud { project_id } => {
                    format!("Dremio Cloud project {project_id} at {}", self.root.base())
                }
            }),
            None => Err(VendorError::Config {
                vendor: VENDOR,
                message: match &self.deployment {
                    Deployment::Software => {
                        format!("no Dremio catalog at {}{path}", self.root.base())
                    }
                    Deployment::Cloud { project_id } => {
                        format!(
                            "Dremio Cloud has no project {project_id} at {}",
                            self.root.base()
                        )
                    }
                },
            }),
        }
    }

    /// The id of the catalog object at `path`, or `None`.
    pub async fn object_by_path(&self, path: &[String]) -> Result<Option<String>, VendorError> {
        let escaped: Vec<String> = path.iter().map(|part| encode(part)).collect();
        let found: Option<WithId> = self
            .get_opt(
                "get_catalog_object",
                &format!("{}/by-path/{}", self.catalog(), escaped.join("/")),
                &[],
            )
            .await?;
        Ok(found.map(|object| object.id))
    }

    /// The grants of a catalog object (`CallError` so callers map 404
    /// themselves; `Ok(Err(_))` for an entry that cannot be read).
    pub async fn grants(
        &self,
        object_id: &str,
    ) -> Result<Result<ObjectGrants, VendorError>, CallError> {
        self.grants_checked(object_id, ListedEntry::check).await
    }

    /// [`DremioApi::grants`] for a review (`access`): entries of grantee types
    /// other than `USER` and `ROLE` are kept, to be shown; nothing read this way
    /// is ever written back.
    pub async fn grants_for_review(
        &self,
        object_id: &str,
    ) -> Result<Result<ObjectGrants, VendorError>, CallError> {
        self.grants_checked(object_id, ListedEntry::check_shown)
            .await
    }

    async fn grants_checked(
        &self,
        object_id: &str,
        check: fn(&ListedEntry) -> Result<(), String>,
    ) -> Result<Result<ObjectGrants, VendorError>, CallError> {
        let response = self
            .call(
                "list_grants",
                Method::GET,
                &format!("{}/{}/grants", self.catalog(), encode(object_id)),
                &[],
                None,
            )
            .await?;
        let raw: RawObjectGrants =
            serde_json::from_slice(&response.body).map_err(|error| CallError::Unreadable {
                message: format!("unexpected grants listing: {error}"),
            })?;
        Ok(
            read_entries(VENDOR, "list_grants", raw.grants, check).map(|grants| ObjectGrants {
                available_privileges: raw.available_privileges,
                grants,
            }),
        )
    }

    /// Replaces the whole grant list of a catalog object.
    pub async fn put_grants(&self, object_id: &str, grants: &[Entry]) -> Result<(), CallError> {
        let body = serde_json::to_value(PutBody { grants }).unwrap_or_default();
        self.call(
            "put_grants",
            Method::PUT,
            &format!("{}/{}/grants", self.catalog(), encode(object_id)),
            &[],
            Some(body),
        )
        .await
        .map(|_| ())
    }

    /// The id of the user or role named exactly `name`, or `None`.
    pub async fn principal_by_name(
        &self,
        kind: GranteeType,
        name: &str,
    ) -> Result<Option<String>, VendorError> {
        let (operation, path) = match (&self.deployment, kind) {
            (Deployment::Software, GranteeType::User) => ("get_user", "/api/v3/user/by-name"),
            (Deployment::Software, GranteeType::Role) => ("get_role", "/api/v3/role/by-name"),
            // Organisation level, not under the project.
            (Deployment::Cloud { .. }, GranteeType::User) => ("get_user", "/v1/users/name"),
            (Deployment::Cloud { .. }, GranteeType::Role) => ("get_role", "/v1/roles/name"),
        };
        let found: Option<WithId> = self
            .get_opt(operation, &format!("{path}/{}", encode(name)), &[])
            .await?;
        Ok(found.map(|principal| principal.id))
    }
}

/// Percent-encodes one path segment (a `/` inside a catalog path part included).
pub fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Whether a Dremio call may be sent again when its outcome is unknown.
///
/// `put_grants` replaces an object's whole grant list with one merged from a read
/// made just before: sent again, it could land after another writer's change and
/// drop it, so it is never repeated blind; the sync reads the list again and
/// merges anew instead. Every other call is a read.
fn repeat_of(operation: &str) -> Repeat {
    match operation {
        "put_grants" => Repeat::OnlyIfNotCarriedOut,
        _ => Repeat::Read,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_written_without_names() {
        let entry = Entry {
            privileges: vec!["SELECT".into()],
            grantee_type: "ROLE".into(),
            id: "r-1".into(),
        };
        assert_eq!(
            serde_json::to_value(PutBody { grants: &[entry] }).unwrap_or_default(),
            serde_json::json!({"grants": [{"privileges": ["SELECT"], "granteeType": "ROLE", "id": "r-1"}]})
        );
    }

    #[test]
    fn path_parts_are_escaped_one_by_one() {
        assert_eq!(encode("samples.dremio.com"), "samples.dremio.com");
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
        assert_eq!(encode("zips.json"), "zips.json");
    }
}
