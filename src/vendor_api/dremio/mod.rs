//! Dremio catalog grants, Software and Cloud.
//!
//! - Keys are `user:<id>` and `role:<id>`; permissions are privileges (sets,
//!   no privilege includes another).
//! - The write call replaces the object's whole grant list, so every write
//!   reads the current list, merges the planned changes into it (only the
//!   privileges planned to go are removed, only those planned to come are
//!   added), keeps every other entry exactly as it was, reads again, and writes
//!   only if nothing changed in between; otherwise it merges again on the newer
//!   list. The controller's read after the write verifies it.
//! - A write is never sent again blind: repeated after its answer was lost, it
//!   could land after another writer's change and drop it. A write whose answer
//!   never came may still land later; the controller then holds every write to
//!   the object for a while (see `controller::grant`, "unanswered writes"), so a
//!   newer list is not overwritten by the late one. Dremio offers no conditional
//!   write, so a request the server holds longer than that cannot be ruled out.
//! - Requested privileges are checked against the object's
//!   `availablePrivileges`: one that is not available is refused as
//!   `InvalidGrant` naming it, and the others are still applied.
//! - Catalog objects are resolved by path (each part escaped) or taken by id;
//!   users and roles by name (the by-name look-ups: Software's under
//!   `/api/v3`, Cloud's at organisation level under `/v1`) or taken by id.
//!   Answers are cached.

pub mod client;
pub mod connect;
pub mod review;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, stream};
use reqwest::StatusCode;
use tracing::debug;

use crate::api::{
    DremioCatalogObjectRef, DremioGrant, GrantPolicy, GrantStatus, GrantTarget, ProviderConfig,
    VendorKind,
};
use crate::cache::TtlCache;
use crate::plan::{Key, LiveGrant, Permission, Plan};

use self::client::{DremioApi, Entry, GranteeType, ListedEntry, ObjectGrants};
use super::http::CallError;
use super::{
    GrantKind, Live, OtherEntry, OtherKind, ResolvedTarget, Vendor, VendorClient, VendorError,
    normalize_url,
};

const VENDOR: VendorKind = VendorKind::Dremio;
/// How long a resolved name or path is trusted.
const NAME_TTL: Duration = Duration::from_secs(3600);
/// Resolved names and paths kept per provider.
const NAME_CACHE: usize = 20_000;
/// Read-merge-write rounds before giving up on a list that keeps changing.
const MERGE_ATTEMPTS: usize = 5;

/// A Dremio privilege (`SELECT`, `ALTER`, `MANAGE_GRANTS`, ...).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Privilege(pub String);

impl Permission for Privilege {
    fn closure(&self) -> Vec<Self> {
        vec![self.clone()]
    }
}

impl std::fmt::Display for Privilege {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Privilege {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        if !text.is_empty() && text.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            Ok(Privilege(text.to_string()))
        } else {
            Err(())
        }
    }
}

/// A grantee as declared in a `DremioGrant`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DremioGrantee {
    /// `user: { id }`.
    UserId(String),
    /// `user: { name }`.
    UserName(String),
    /// `role: { id }`.
    RoleId(String),
    /// `role: { name }`.
    RoleName(String),
}

/// One grantee's planned change, for a merge.
#[derive(Clone, Debug)]
struct Change {
    key: Key,
    grantee_type: GranteeType,
    id: String,
    removed: BTreeSet<String>,
    added: BTreeSet<String>,
}

/// Why a write did not happen.
enum WriteError {
    /// The vendor refused the written list as invalid (400).
    Refused(VendorError),
    /// Anything else.
    Other(VendorError),
}

/// The Dremio client of one provider.
pub struct DremioClient {
    api: DremioApi,
    names: TtlCache<DremioGrantee, Key>,
    paths: TtlCache<Vec<String>, String>,
}

impl std::fmt::Debug for DremioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DremioClient")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl DremioClient {
    /// A client over `api`.
    pub fn new(api: DremioApi) -> DremioClient {
        DremioClient {
            api,
            names: TtlCache::new(NAME_CACHE, NAME_TTL),
            paths: TtlCache::new(NAME_CACHE, NAME_TTL),
        }
    }

    fn target_error(&self, error: CallError, operation: &'static str, object: &str) -> VendorError {
        error.into_vendor_error(VENDOR, operation, |_| {
            // The object may have been recreated under a new id: look paths up again.
            self.paths.clear();
            VendorError::TargetNotFound {
                vendor: VENDOR,
                what: format!("catalog object {object}"),
            }
        })
    }

    /// The object's grant list; an entry that cannot be read fails it (every
    /// read, the read-merge-write's included, so nothing is written from it).
    async fn current(&self, object: &str) -> Result<ObjectGrants, VendorError> {
        self.api
            .grants(object)
            .await
            .map_err(|error| self.target_error(error, "list_grants", object))?
    }

    /// One read-merge-write of `changes`; returns the privileges refused as unavailable.
    async fn write(
        &self,
        object: &str,
        changes: &[Change],
    ) -> Result<BTreeMap<Key, VendorError>, WriteError> {
        for attempt in 1..=MERGE_ATTEMPTS {
            let current = self.current(object).await.map_err(WriteError::Other)?;
            let (merged, refused) = merge(object, &current, changes);
            if same(&merged, &current.grants) {
                return Ok(refused);
            }
            // Read again just before writing: a list that changed since is merged again,
            // so another writer's entry is never dropped.
            let check = self.current(object).await.map_err(WriteError::Other)?;
            if !same(&as_entries(&check.grants), &current.grants) {
                debug!(
                    object,
                    attempt, "the grant list changed while merging; merging again"
                );
                continue;
            }
            return match self.api.put_grants(object, &merged).await {
                Ok(()) => Ok(refused),
                Err(error) if error.status() == Some(StatusCode::BAD_REQUEST) => Err(
                    WriteError::Refused(self.target_error(error, "put_grants", object)),
                ),
                Err(error) => Err(WriteError::Other(self.target_error(
                    error,
                    "put_grants",
                    object,
                ))),
            };
        }
        Err(WriteError::Other(VendorError::Conflict {
            vendor: VENDOR,
            operation: "put_grants",
            message: format!(
                "the grant list of catalog object {object} kept changing while it was being written ({MERGE_ATTEMPTS} attempts)"
            ),
        }))
    }

    async fn lookup(&self, grantee: &DremioGrantee) -> Result<Option<Key>, VendorError> {
        let (kind, name) = match grantee {
            DremioGrantee::UserName(name) => (GranteeType::User, name),
            DremioGrantee::RoleName(name) => (GranteeType::Role, name),
            DremioGrantee::UserId(id) => return Ok(Some(format!("user:{id}"))),
            DremioGrantee::RoleId(id) => return Ok(Some(format!("role:{id}"))),
        };
        if let Some(key) = self.names.get(grantee) {
            return Ok(Some(key));
        }
        let key = self
            .api
            .principal_by_name(kind, name)
            .await?
            .map(|id| format!("{}:{id}", kind.prefix()));
        if let Some(key) = &key {
            self.names.put(grantee.clone(), key.clone());
        }
        Ok(key)
    }
}

/// The key's grantee.
fn parse_key(key: &str) -> Option<(GranteeType, String)> {
    let (kind, id) = key.split_once(':')?;
    let kind = match kind {
        "user" => GranteeType::User,
        "role" => GranteeType::Role,
        _ => return None,
    };
    (!id.is_empty()).then(|| (kind, id.to_string()))
}

fn as_entries(listed: &[ListedEntry]) -> Vec<Entry> {
    listed
        .iter()
        .map(|entry| Entry {
            privileges: entry.privileges.clone(),
            grantee_type: entry.grantee_type.clone(),
            id: entry.id.clone(),
        })
        .collect()
}

/// Whether two lists grant the same (order aside).
fn same(written: &[Entry], listed: &[ListedEntry]) -> bool {
    let normal = |entries: Vec<(String, String, BTreeSet<String>)>| {
        let mut entries = entries;
        entries.sort();
        entries
    };
    normal(
        written
            .iter()
            .map(|e| {
                (
                    e.grantee_type.clone(),
                    e.id.clone(),
                    e.privileges.iter().cloned().collect(),
                )
            })
            .collect(),
    ) == normal(
        listed
            .iter()
            .map(|e| {
                (
                    e.grantee_type.clone(),
                    e.id.clone(),
                    e.privileges.iter().cloned().collect(),
                )
            })
            .collect(),
    )
}

/// Merges `changes` into the current list: every other entry is kept exactly as
/// it was, a changed grantee loses only the privileges planned to go and gains
/// the ones planned to come that the object offers. Returns the list to write
/// and the privileges refused as unavailable, by key.
fn merge(
    object: &str,
    current: &ObjectGrants,
    changes: &[Change],
) -> (Vec<Entry>, BTreeMap<Key, VendorError>) {
    let available: BTreeSet<&str> = current
        .available_privileges
        .iter()
        .map(String::as_str)
        .collect();
    let mut refused = BTreeMap::new();
    let mut entries = as_entries(&current.grants);
    for change in changes {
        let unavailable: Vec<&str> = change
            .added
            .iter()
            .map(String::as_str)
            .filter(|privilege| !available.contains(privilege))
            .collect();
        if !unavailable.is_empty() {
            let offered: Vec<&str> = available.iter().copied().collect();
            refused.insert(
                change.key.clone(),
                VendorError::Invalid {
                    vendor: VENDOR,
                    operation: "put_grants",
                    message: format!(
                        "{} not available on catalog object {object} (available: {})",
                        unavailable.join(", "),
                        if offered.is_empty() {
                            "none".to_string()
                        } else {
                            offered.join(", ")
                        }
                    ),
                },
            );
        }
        let wire = change.grantee_type.wire();
        let position = entries
            .iter()
            .position(|entry| entry.grantee_type == wire && entry.id == change.id);
        let mut privileges = position
            .map(|index| entries[index].privileges.clone())
            .unwrap_or_default();
        privileges.retain(|privilege| !change.removed.contains(privilege));
        for privilege in &change.added {
            if available.contains(privilege.as_str()) && !privileges.contains(privilege) {
                privileges.push(privilege.clone());
            }
        }
        match (position, privileges.is_empty()) {
            (Some(index), true) => {
                entries.remove(index);
            }
            (Some(index), false) => entries[index].privileges = privileges,
            (None, true) => {}
            (None, false) => entries.push(Entry {
                privileges,
                grantee_type: wire.to_string(),
                id: change.id.clone(),
            }),
        }
    }
    (entries, refused)
}

/// The live grants of a listing. An entry of a grantee type other than `USER`
/// and `ROLE` (only a review reads one: the client refuses it otherwise) is a
/// `fixed` entry: the operator grants to users and roles only, and cannot
/// sync an object while such an entry is listed.
fn live_of(entries: Vec<ListedEntry>) -> Live<Privilege> {
    let mut live = Live::default();
    for entry in entries {
        let Some(kind) = GranteeType::from_wire(&entry.grantee_type) else {
            let key = format!("{}:{}", entry.grantee_type.to_ascii_lowercase(), entry.id);
            for privilege in entry.privileges {
                live.others.push(OtherEntry {
                    key: key.clone(),
                    name: entry.name.clone().filter(|name| !name.is_empty()),
                    permission: privilege,
                    kind: OtherKind::Fixed,
                    detail: Some(format!(
                        "granteeType {}: the operator grants to users and roles only, and cannot sync an object listing it",
                        entry.grantee_type
                    )),
                });
            }
            continue;
        };
        let key = format!("{}:{}", kind.prefix(), entry.id);
        if let Some(name) = entry.name.filter(|name| !name.is_empty()) {
            live.names.insert(key.clone(), name);
        }
        for privilege in entry.privileges {
            live.grants.push(LiveGrant {
                key: key.clone(),
                perm: Privilege(privilege),
                vendor_id: None,
            });
        }
    }
    live.unmanaged = live.others.len();
    live
}

impl Vendor for DremioClient {
    type Perm = Privilege;
    type Target = DremioCatalogObjectRef;
    type Grantee = DremioGrantee;

    async fn resolve(&self, grantees: &[DremioGrantee]) -> Result<Vec<Option<Key>>, VendorError> {
        let found = stream::iter(
            grantees
                .iter()
                .cloned()
                .enumerate()
                .map(|(index, grantee)| async move { (index, self.lookup(&grantee).await) }),
        )
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
        let mut resolved = vec![None; grantees.len()];
        for (index, key) in found {
            resolved[index] = key?;
        }
        Ok(resolved)
    }

    async fn resolve_target(
        &self,
        reference: &DremioCatalogObjectRef,
    ) -> Result<ResolvedTarget, VendorError> {
        let name = reference.path.as_ref().map(|path| path.join("/"));
        let id = match (&reference.id, &reference.path) {
            (Some(id), _) => id.clone(),
            (None, Some(path)) => match self.paths.get(path) {
                Some(id) => id,
                None => {
                    let id = self.api.object_by_path(path).await?.ok_or_else(|| {
                        VendorError::TargetNotFound {
                            vendor: VENDOR,
                            what: format!("catalog object at path {}", path.join("/")),
                        }
                    })?;
                    self.paths.put(path.clone(), id.clone());
                    id
                }
            },
            (None, None) => {
                return Err(VendorError::Config {
                    vendor: VENDOR,
                    message: "the catalogObject names neither path nor id".into(),
                });
            }
        };
        Ok(ResolvedTarget {
            status: GrantTarget {
                catalog_object_id: Some(id.clone()),
                ..GrantTarget::default()
            },
            id,
            name,
        })
    }

    async fn read(
        &self,
        target: &ResolvedTarget,
        _known: &[Key],
    ) -> Result<Live<Privilege>, VendorError> {
        // The client has refused every entry of another grantee type.
        Ok(live_of(self.current(&target.id).await?.grants))
    }

    async fn read_for_review(
        &self,
        target: &ResolvedTarget,
        _known: &[Key],
    ) -> Result<Live<Privilege>, VendorError> {
        let current = self
            .api
            .grants_for_review(&target.id)
            .await
            .map_err(|error| self.target_error(error, "list_grants", &target.id))??;
        Ok(live_of(current.grants))
    }

    async fn apply(
        &self,
        target: &ResolvedTarget,
        plan: &Plan<Privilege>,
    ) -> BTreeMap<Key, VendorError> {
        let actions = plan.actions.as_slice();
        let mut failures = BTreeMap::new();
        let mut changes = Vec::new();
        for action in actions {
            match parse_key(&action.key) {
                Some((grantee_type, id)) => changes.push(Change {
                    key: action.key.clone(),
                    grantee_type,
                    id,
                    removed: action.removed().into_iter().map(|p| p.0).collect(),
                    added: action.added().into_iter().map(|p| p.0).collect(),
                }),
                None => {
                    failures.insert(
                        action.key.clone(),
                        VendorError::Invalid {
                            vendor: VENDOR,
                            operation: "put_grants",
                            message: format!("{} is not a Dremio grantee", action.key),
                        },
                    );
                }
            }
        }
        match self.write(&target.id, &changes).await {
            Ok(refused) => failures.extend(refused),
            // One refused grantee fails the whole list: write each change on its own to
            // find it, so the others still apply.
            Err(WriteError::Refused(_)) if changes.len() > 1 => {
                for change in &changes {
                    match self.write(&target.id, std::slice::from_ref(change)).await {
                        Ok(refused) => failures.extend(refused),
                        Err(WriteError::Refused(error) | WriteError::Other(error)) => {
                            failures.insert(change.key.clone(), error);
                        }
                    }
                }
            }
            Err(WriteError::Refused(error) | WriteError::Other(error)) => {
                for change in &changes {
                    failures.insert(change.key.clone(), error.clone());
                }
            }
        }
        failures
    }

    async fn check(&self) -> Result<String, VendorError> {
        let reached = self.api.probe().await?;
        Ok(format!(
            "authenticated with a personal access token to {reached}"
        ))
    }
}

impl GrantKind for DremioGrant {
    type Vendor = DremioClient;
    const VENDOR: VendorKind = VendorKind::Dremio;
    const KIND: &'static str = "DremioGrant";

    fn policy(&self) -> &GrantPolicy {
        &self.spec.policy
    }

    fn status(&self) -> Option<&GrantStatus> {
        self.status.as_ref()
    }

    fn unit_key(&self) -> String {
        object_key(&self.spec.catalog_object)
    }

    fn unit_key_of(object: &serde_json::Value) -> Option<String> {
        let reference: DremioCatalogObjectRef =
            serde_json::from_value(object["spec"]["catalogObject"].clone()).ok()?;
        Some(object_key(&reference))
    }

    fn target(&self) -> DremioCatalogObjectRef {
        self.spec.catalog_object.clone()
    }

    fn declarations(&self) -> Vec<crate::vendor_api::Declared<Self>> {
        let mut declared = Vec::new();
        for entry in &self.spec.grants {
            let grantee = match (&entry.user, &entry.role) {
                (Some(user), None) => match (&user.id, &user.name) {
                    (Some(id), _) => DremioGrantee::UserId(id.clone()),
                    (None, Some(name)) => DremioGrantee::UserName(name.clone()),
                    (None, None) => continue,
                },
                (None, Some(role)) => match (&role.id, &role.name) {
                    (Some(id), _) => DremioGrantee::RoleId(id.clone()),
                    (None, Some(name)) => DremioGrantee::RoleName(name.clone()),
                    (None, None) => continue,
                },
                // The schema refuses these; never guess.
                _ => continue,
            };
            for privilege in &entry.privileges {
                declared.push((grantee.clone(), Privilege(privilege.clone())));
            }
        }
        declared
    }

    fn grantee_label(grantee: &DremioGrantee) -> String {
        match grantee {
            DremioGrantee::UserId(id) | DremioGrantee::UserName(id) => format!("user:{id}"),
            DremioGrantee::RoleId(id) | DremioGrantee::RoleName(id) => format!("role:{id}"),
        }
    }

    fn endpoint<P: ProviderConfig>(provider: &P) -> Option<String> {
        provider.dremio().map(|dremio| {
            let project = dremio.project_id.as_deref().unwrap_or("software");
            format!("{}#project={project}", normalize_url(&dremio.url))
        })
    }

    fn client(client: &VendorClient) -> Option<Arc<DremioClient>> {
        match client {
            VendorClient::Dremio(client) => Some(client.clone()),
            _ => None,
        }
    }

    fn target_named(id: &str) -> DremioCatalogObjectRef {
        DremioCatalogObjectRef {
            path: None,
            id: Some(id.to_string()),
        }
    }

    fn declaring(policy: GrantPolicy, id: &str, live: &[LiveGrant<Privilege>]) -> Vec<DremioGrant> {
        let mut by_grantee: BTreeMap<Key, Vec<String>> = BTreeMap::new();
        for grant in live {
            let privileges = by_grantee.entry(grant.key.clone()).or_default();
            if !privileges.contains(&grant.perm.0) {
                privileges.push(grant.perm.0.clone());
            }
        }
        let grants = by_grantee
            .into_iter()
            .filter_map(|(key, mut privileges)| {
                privileges.sort();
                let (kind, id) = parse_key(&key)?;
                let principal = Some(crate::api::DremioPrincipalRef {
                    name: None,
                    id: Some(id),
                });
                Some(match kind {
                    GranteeType::User => crate::api::DremioGrantEntry {
                        user: principal,
                        role: None,
                        privileges,
                    },
                    GranteeType::Role => crate::api::DremioGrantEntry {
                        user: None,
                        role: principal,
                        privileges,
                    },
                })
            })
            .collect();
        vec![DremioGrant::new(
            "",
            crate::api::DremioGrantSpec {
                policy,
                catalog_object: Self::target_named(id),
                grants,
            },
        )]
    }
}

/// The unit of a catalog object reference, as written.
fn object_key(reference: &DremioCatalogObjectRef) -> String {
    match (&reference.id, &reference.path) {
        (Some(id), _) => format!("id:{id}"),
        (None, Some(path)) => format!("path:{}", serde_json::to_string(path).unwrap_or_default()),
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(grants: &[(&str, &str, &[&str])], available: &[&str]) -> ObjectGrants {
        ObjectGrants {
            available_privileges: available.iter().map(|p| p.to_string()).collect(),
            grants: grants
                .iter()
                .map(|(kind, id, privileges)| ListedEntry {
                    privileges: privileges.iter().map(|p| p.to_string()).collect(),
                    grantee_type: kind.to_string(),
                    id: id.to_string(),
                    name: None,
                })
                .collect(),
        }
    }

    fn change(key: &str, removed: &[&str], added: &[&str]) -> Change {
        let (grantee_type, id) = parse_key(key).unwrap_or((GranteeType::User, String::new()));
        Change {
            key: key.into(),
            grantee_type,
            id,
            removed: removed.iter().map(|p| p.to_string()).collect(),
            added: added.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn entries(list: &[Entry]) -> Vec<(String, String, Vec<String>)> {
        list.iter()
            .map(|e| (e.grantee_type.clone(), e.id.clone(), e.privileges.clone()))
            .collect()
    }

    const ALL: &[&str] = &["ALTER", "MANAGE_GRANTS", "SELECT"];

    #[test]
    fn merge_keeps_every_other_entry_exactly() {
        let current = listed(
            &[
                ("USER", "someone", &["SELECT", "MANAGE_GRANTS"]),
                ("GROUP", "future-type", &["SELECT"]),
                ("ROLE", "r1", &["SELECT"]),
            ],
            ALL,
        );
        let (merged, refused) = merge(
            "obj",
            &current,
            &[
                change("role:r1", &[], &["ALTER"]),
                change("user:new", &[], &["SELECT"]),
            ],
        );
        assert!(refused.is_empty());
        assert_eq!(
            entries(&merged),
            vec![
                (
                    "USER".into(),
                    "someone".into(),
                    vec!["SELECT".into(), "MANAGE_GRANTS".into()]
                ),
                ("GROUP".into(), "future-type".into(), vec!["SELECT".into()]),
                (
                    "ROLE".into(),
                    "r1".into(),
                    vec!["SELECT".into(), "ALTER".into()]
                ),
                ("USER".into(), "new".into(), vec!["SELECT".into()]),
            ]
        );
    }

    #[test]
    fn merge_removes_only_planned_privileges_and_drops_empty_entries() {
        let current = listed(
            &[
                ("USER", "u1", &["SELECT", "ALTER"]),
                ("ROLE", "r1", &["SELECT"]),
            ],
            ALL,
        );
        let (merged, _) = merge(
            "obj",
            &current,
            &[
                change("user:u1", &["ALTER"], &[]),
                change("role:r1", &["SELECT"], &[]),
            ],
        );
        assert_eq!(
            entries(&merged),
            vec![("USER".into(), "u1".into(), vec!["SELECT".into()])]
        );
    }

    #[test]
    fn merge_refuses_unavailable_privileges_and_applies_the_rest() {
        let current = listed(&[], &["SELECT"]);
        let (merged, refused) = merge(
            "obj",
            &current,
            &[change("user:u1", &[], &["SELECT", "ALTER"])],
        );
        assert_eq!(
            entries(&merged),
            vec![("USER".into(), "u1".into(), vec!["SELECT".into()])]
        );
        let message = refused
            .get("user:u1")
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.contains("ALTER not available on catalog object obj (available: SELECT)"),
            "{message}"
        );
        assert_eq!(
            refused["user:u1"].reason(),
            crate::api::Reason::InvalidGrant
        );
    }

    #[test]
    fn same_ignores_order() {
        let current = listed(
            &[
                ("USER", "u1", &["SELECT", "ALTER"]),
                ("ROLE", "r", &["SELECT"]),
            ],
            ALL,
        );
        let reordered = vec![
            Entry {
                privileges: vec!["SELECT".into()],
                grantee_type: "ROLE".into(),
                id: "r".into(),
            },
            Entry {
                privileges: vec!["ALTER".into(), "SELECT".into()],
                grantee_type: "USER".into(),
                id: "u1".into(),
            },
        ];
        assert!(same(&reordered, &current.grants));
        assert!(!same(&reordered[..1], &current.grants));
    }

    #[test]
    fn keys_and_units() {
        assert_eq!(
            parse_key("user:abc"),
            Some((GranteeType::User, "abc".into()))
        );
        assert_eq!(
            parse_key("role:r-1"),
            Some((GranteeType::Role, "r-1".into()))
        );
        assert_eq!(parse_key("team:x"), None);
        assert_eq!(parse_key("user:"), None);
        let by_path = DremioCatalogObjectRef {
            path: Some(vec![
                "Samples".into(),
                "samples.dremio.com".into(),
                "zips.json".into(),
            ]),
            id: None,
        };
        assert_eq!(
            object_key(&by_path),
            r#"path:["Samples","samples.dremio.com","zips.json"]"#
        );
        let object = serde_json::json!({"spec": {"catalogObject": {"id": "7f1c"}}});
        assert_eq!(
            DremioGrant::unit_key_of(&object).as_deref(),
            Some("id:7f1c")
        );
        assert_eq!(
            "SELECT".parse::<Privilege>(),
            Ok(Privilege("SELECT".into()))
        );
        assert!("select".parse::<Privilege>().is_err());
    }
}
