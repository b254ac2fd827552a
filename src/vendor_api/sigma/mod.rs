//! Sigma Computing connection grants.
//!
//! - Keys are `member:<memberId>` and `team:<teamId>`; permissions are the
//!   levels `usage` < `annotate`. Listed permissions the operator does not
//!   manage (`admin`, `writeback`, ...) never reach the planner; they are
//!   kept as fixed entries for reviews.
//! - A grant is raised by POST; lowering is revoke then grant again.
//! - Creation goes in batches of at most 100. When the vendor refuses a batch
//!   as invalid, the batch is split in halves until the refused grants are
//!   isolated, so the others still apply.
//! - Members are resolved by email with the member search (exact,
//!   case-insensitive match on the results), teams by exact name; answers are
//!   cached per provider in a bounded cache.

pub mod client;
pub mod connect;
pub mod review;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, stream};

use crate::api::{
    GrantPolicy, GrantStatus, GrantTarget, ProviderConfig, SigmaGrant, SigmaPermission, VendorKind,
};
use crate::cache::TtlCache;
use crate::plan::{ActionKind, Key, LiveGrant, Permission, Plan};

use self::client::{GrantEntry, GranteeId, MAX_BATCH, NewGrant, SigmaApi, UNMANAGED_PERMISSIONS};
use super::http::CallError;
use super::{
    GrantKind, Live, OtherEntry, OtherKind, ResolvedTarget, Vendor, VendorClient, VendorError,
    normalize_url, unreadable,
};

const VENDOR: VendorKind = VendorKind::Sigma;
/// How long a resolved name is trusted.
const NAME_TTL: Duration = Duration::from_secs(3600);
/// Resolved names kept per provider.
const NAME_CACHE: usize = 20_000;
/// Above this many unknown emails, list every member once instead of searching each.
const BULK_LOOKUP: usize = 25;
/// Revocations in flight at once (the provider's rate limit still applies).
const PARALLEL_REVOKES: usize = 8;

impl Permission for SigmaPermission {
    fn closure(&self) -> Vec<Self> {
        match self {
            SigmaPermission::Usage => vec![SigmaPermission::Usage],
            SigmaPermission::Annotate => vec![SigmaPermission::Annotate, SigmaPermission::Usage],
        }
    }
}

impl std::fmt::Display for SigmaPermission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SigmaPermission {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        SigmaPermission::parse(text).ok_or(())
    }
}

/// A grantee as declared in a `SigmaGrant`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SigmaGrantee {
    /// `member: { id }`.
    MemberId(String),
    /// `member: { email }`.
    MemberEmail(String),
    /// `team: { id }`.
    TeamId(String),
    /// `team: { name }`.
    TeamName(String),
}

/// The Sigma client of one provider.
pub struct SigmaClient {
    api: SigmaApi,
    names: TtlCache<SigmaGrantee, Key>,
}

impl std::fmt::Debug for SigmaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigmaClient")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl SigmaClient {
    /// A client over `api`.
    pub fn new(api: SigmaApi) -> SigmaClient {
        SigmaClient {
            api,
            names: TtlCache::new(NAME_CACHE, NAME_TTL),
        }
    }

    async fn lookup_member(&self, email: &str) -> Result<Option<Key>, VendorError> {
        let members = self.api.search_members(Some(email)).await?;
        Ok(members
            .into_iter()
            .find(|member| member.email.eq_ignore_ascii_case(email))
            .map(|member| format!("member:{}", member.member_id)))
    }

    async fn lookup_team(&self, name: &str) -> Result<Option<Key>, VendorError> {
        let teams = self.api.search_teams(Some(name)).await?;
        Ok(teams
            .into_iter()
            .find(|team| team.name == name)
            .map(|team| format!("team:{}", team.team_id)))
    }

    /// Creates grants in batches; a batch refused as invalid is split until the
    /// refused grants are isolated. Returns the failures by key.
    async fn create(
        &self,
        connection: &str,
        grants: Vec<(Key, NewGrant)>,
    ) -> BTreeMap<Key, VendorError> {
        let mut failures = BTreeMap::new();
        let mut queue: Vec<Vec<(Key, NewGrant)>> =
            grants.chunks(MAX_BATCH).map(<[_]>::to_vec).collect();
        queue.reverse();
        while let Some(batch) = queue.pop() {
            let body: Vec<NewGrant> = batch.iter().map(|(_, grant)| grant.clone()).collect();
            match self.api.create_grants(connection, &body).await {
                Ok(()) => {}
                Err(error) if is_refusal(&error) && batch.len() > 1 => {
                    let (left, right) = batch.split_at(batch.len() / 2);
                    queue.push(right.to_vec());
                    queue.push(left.to_vec());
                }
                Err(error) => {
                    let error = error.into_vendor_error(VENDOR, "create_grants", |_| {
                        VendorError::TargetNotFound {
                            vendor: VENDOR,
                            what: format!("connection {connection}"),
                        }
                    });
                    for (key, _) in batch {
                        failures.insert(key, error.clone());
                    }
                }
            }
        }
        failures
    }
}

/// A refusal that concerns the grants of a batch rather than the call as a whole.
fn is_refusal(error: &CallError) -> bool {
    matches!(
        error.status().map(|status| status.as_u16()),
        Some(400 | 422)
    )
}

fn grantee_id(key: &str) -> Option<GranteeId> {
    if let Some(id) = key.strip_prefix("member:") {
        Some(GranteeId::Member(id.to_string()))
    } else {
        key.strip_prefix("team:")
            .map(|id| GranteeId::Team(id.to_string()))
    }
}

impl Vendor for SigmaClient {
    type Perm = SigmaPermission;
    type Target = String;
    type Grantee = SigmaGrantee;

    async fn resolve(&self, grantees: &[SigmaGrantee]) -> Result<Vec<Option<Key>>, VendorError> {
        let mut resolved: BTreeMap<usize, Option<Key>> = BTreeMap::new();
        let mut emails: Vec<(usize, String)> = Vec::new();
        let mut teams: Vec<(usize, String)> = Vec::new();
        for (index, grantee) in grantees.iter().enumerate() {
            match grantee {
                SigmaGrantee::MemberId(id) => {
                    resolved.insert(index, Some(format!("member:{id}")));
                }
                SigmaGrantee::TeamId(id) => {
                    resolved.insert(index, Some(format!("team:{id}")));
                }
                other => match self.names.get(other) {
                    Some(key) => {
                        resolved.insert(index, Some(key));
                    }
                    None => match other {
                        SigmaGrantee::MemberEmail(email) => emails.push((index, email.clone())),
                        SigmaGrantee::TeamName(name) => teams.push((index, name.clone())),
                        _ => {}
                    },
                },
            }
        }

        let mut unique_emails: Vec<String> = emails
            .iter()
            .map(|(_, email)| email.to_ascii_lowercase())
            .collect();
        unique_emails.sort();
        unique_emails.dedup();
        let mut by_email: BTreeMap<String, Option<Key>> = BTreeMap::new();
        if unique_emails.len() > BULK_LOOKUP {
            let members = self.api.search_members(None).await?;
            let index: BTreeMap<String, String> = members
                .into_iter()
                .map(|member| (member.email.to_ascii_lowercase(), member.member_id))
                .collect();
            for email in unique_emails {
                let key = index.get(&email).map(|id| format!("member:{id}"));
                by_email.insert(email, key);
            }
        } else {
            let lookups = stream::iter(unique_emails.into_iter().map(|email| async move {
                let key = self.lookup_member(&email).await;
                (email, key)
            }))
            .buffer_unordered(4)
            .collect::<Vec<_>>()
            .await;
            for (email, key) in lookups {
                by_email.insert(email, key?);
            }
        }
        for (index, email) in emails {
            let key = by_email.get(&email.to_ascii_lowercase()).cloned().flatten();
            if let Some(key) = &key {
                self.names
                    .put(SigmaGrantee::MemberEmail(email), key.clone());
            }
            resolved.insert(index, key);
        }

        for (index, name) in teams {
            let key = self.lookup_team(&name).await?;
            if let Some(key) = &key {
                self.names.put(SigmaGrantee::TeamName(name), key.clone());
            }
            resolved.insert(index, key);
        }
        Ok(resolved.into_values().collect())
    }

    async fn resolve_target(&self, connection: &String) -> Result<ResolvedTarget, VendorError> {
        // The connection id is the vendor's id; a missing connection shows as 404 on listing.
        Ok(ResolvedTarget {
            id: connection.clone(),
            status: GrantTarget {
                connection_id: Some(connection.clone()),
                ..GrantTarget::default()
            },
            name: None,
        })
    }

    async fn read(
        &self,
        target: &ResolvedTarget,
        _known: &[Key],
    ) -> Result<Live<SigmaPermission>, VendorError> {
        let entries = self.api.list_grants(&target.id).await?;
        let mut live = Live {
            grants: Vec::with_capacity(entries.len()),
            ..Live::default()
        };
        for entry in entries {
            // The client has checked that every entry names exactly one grantee.
            let key = match entry.grantee() {
                Ok(GranteeId::Member(member)) => format!("member:{member}"),
                Ok(GranteeId::Team(team)) => format!("team:{team}"),
                Err(why) => return Err(unreadable_grant(&entry, &why)),
            };
            match SigmaPermission::parse(&entry.permission) {
                Some(perm) => live.grants.push(LiveGrant {
                    key,
                    perm,
                    vendor_id: Some(entry.grant_id),
                }),
                None if UNMANAGED_PERMISSIONS.contains(&entry.permission.as_str()) => {
                    live.leave_alone(OtherEntry {
                        key,
                        name: None,
                        permission: entry.permission,
                        kind: OtherKind::Fixed,
                        detail: None,
                    });
                }
                None => {
                    return Err(unreadable_grant(
                        &entry,
                        &format!(
                            "its permission {:?} is not one Sigma's API defines",
                            entry.permission
                        ),
                    ));
                }
            }
        }
        Ok(live)
    }

    async fn apply(
        &self,
        target: &ResolvedTarget,
        plan: &Plan<SigmaPermission>,
    ) -> BTreeMap<Key, VendorError> {
        let actions = plan.actions.as_slice();
        let connection = target.id.as_str();
        let mut failures: BTreeMap<Key, VendorError> = BTreeMap::new();

        // Revocations first: revokes, and the first half of every lowering.
        let revocations: Vec<(Key, String)> = actions
            .iter()
            .filter(|action| !matches!(action.kind(), ActionKind::Grant | ActionKind::Raise))
            .flat_map(|action| {
                action
                    .vendor_ids
                    .iter()
                    .map(move |id| (action.key.clone(), id.clone()))
            })
            .collect();
        let results = stream::iter(revocations.into_iter().map(|(key, id)| async move {
            let result = self.api.revoke_grant(connection, &id).await;
            (key, result)
        }))
        .buffer_unordered(PARALLEL_REVOKES)
        .collect::<Vec<_>>()
        .await;
        for (key, result) in results {
            if let Err(error) = result {
                failures.insert(key, error);
            }
        }

        // Then every grant to (re)create at its target level.
        let mut grants: Vec<(Key, NewGrant)> = Vec::new();
        for action in actions {
            if failures.contains_key(&action.key) {
                continue;
            }
            let Some(level) = action.target.iter().max() else {
                continue;
            };
            let Some(grantee) = grantee_id(&action.key) else {
                failures.insert(
                    action.key.clone(),
                    VendorError::Invalid {
                        vendor: VENDOR,
                        operation: "create_grants",
                        message: format!("{} is not a Sigma grantee", action.key),
                    },
                );
                continue;
            };
            grants.push((
                action.key.clone(),
                NewGrant {
                    grantee,
                    permission: level.as_str(),
                },
            ));
        }
        failures.extend(self.create(connection, grants).await);
        failures
    }

    async fn list_targets(&self) -> Result<Option<Vec<ResolvedTarget>>, VendorError> {
        let connections = self.api.list_connections().await?;
        Ok(Some(
            connections
                .into_iter()
                .map(|connection| ResolvedTarget {
                    status: GrantTarget {
                        connection_id: Some(connection.connection_id.clone()),
                        ..GrantTarget::default()
                    },
                    id: connection.connection_id,
                    name: connection.name.filter(|name| !name.is_empty()),
                })
                .collect(),
        ))
    }

    async fn check(&self) -> Result<String, VendorError> {
        self.api.login().await.map_err(|error| {
            error.into_vendor_error(VENDOR, "token", |message| VendorError::Config {
                vendor: VENDOR,
                message: format!(
                    "no token endpoint at {}/v2/auth/token: {message}",
                    self.api.base()
                ),
            })
        })?;
        Ok(format!("obtained an API token from {}", self.api.base()))
    }
}

impl GrantKind for SigmaGrant {
    type Vendor = SigmaClient;
    const VENDOR: VendorKind = VendorKind::Sigma;
    const KIND: &'static str = "SigmaGrant";

    fn policy(&self) -> &GrantPolicy {
        &self.spec.policy
    }

    fn status(&self) -> Option<&GrantStatus> {
        self.status.as_ref()
    }

    fn unit_key(&self) -> String {
        self.spec.connection_id.clone()
    }

    fn unit_key_of(object: &serde_json::Value) -> Option<String> {
        object["spec"]["connectionId"].as_str().map(String::from)
    }

    fn target(&self) -> String {
        self.spec.connection_id.clone()
    }

    fn declarations(&self) -> Vec<crate::vendor_api::Declared<Self>> {
        self.spec
            .grants
            .iter()
            .filter_map(|entry| {
                let grantee = match (&entry.member, &entry.team) {
                    (Some(member), None) => match (&member.id, &member.email) {
                        (Some(id), _) => SigmaGrantee::MemberId(id.clone()),
                        (None, Some(email)) => SigmaGrantee::MemberEmail(email.clone()),
                        (None, None) => return None,
                    },
                    (None, Some(team)) => match (&team.id, &team.name) {
                        (Some(id), _) => SigmaGrantee::TeamId(id.clone()),
                        (None, Some(name)) => SigmaGrantee::TeamName(name.clone()),
                        (None, None) => return None,
                    },
                    // The schema refuses these; never guess.
                    _ => return None,
                };
                Some((grantee, entry.permission))
            })
            .collect()
    }

    fn grantee_label(grantee: &SigmaGrantee) -> String {
        match grantee {
            SigmaGrantee::MemberId(id) => format!("member:{id}"),
            SigmaGrantee::MemberEmail(email) => format!("member:{email}"),
            SigmaGrantee::TeamId(id) => format!("team:{id}"),
            SigmaGrantee::TeamName(name) => format!("team:{name}"),
        }
    }

    fn endpoint<P: ProviderConfig>(provider: &P) -> Option<String> {
        provider.sigma().map(|sigma| normalize_url(&sigma.api_url))
    }

    fn client(client: &VendorClient) -> Option<Arc<SigmaClient>> {
        match client {
            VendorClient::Sigma(client) => Some(client.clone()),
            _ => None,
        }
    }

    fn target_named(id: &str) -> String {
        id.to_string()
    }

    fn declaring(
        policy: GrantPolicy,
        id: &str,
        live: &[LiveGrant<SigmaPermission>],
    ) -> Vec<SigmaGrant> {
        let grants = super::highest(live)
            .into_iter()
            .filter_map(|(key, permission)| {
                let (member, team) = match grantee_id(&key)? {
                    GranteeId::Member(id) => (
                        Some(crate::api::SigmaMemberRef {
                            id: Some(id),
                            email: None,
                        }),
                        None,
                    ),
                    GranteeId::Team(id) => (
                        None,
                        Some(crate::api::SigmaTeamRef {
                            id: Some(id),
                            name: None,
                        }),
                    ),
                };
                Some(crate::api::SigmaGrantEntry {
                    member,
                    team,
                    permission,
                })
            })
            .collect();
        vec![SigmaGrant::new(
            "",
            crate::api::SigmaGrantSpec {
                policy,
                connection_id: id.to_string(),
                grants,
            },
        )]
    }
}

/// A grant of the listing the operator cannot read (see [`super::unreadable`]).
fn unreadable_grant(entry: &GrantEntry, why: &str) -> VendorError {
    let shown = serde_json::json!({
        "grantId": entry.grant_id,
        "memberId": entry.member_id,
        "teamId": entry.team_id,
        "permission": entry.permission,
    });
    unreadable(VENDOR, "list_grants", &shown, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_include_lower_levels() {
        assert_eq!(
            SigmaPermission::Usage.closure(),
            vec![SigmaPermission::Usage]
        );
        assert_eq!(
            SigmaPermission::Annotate.closure(),
            vec![SigmaPermission::Annotate, SigmaPermission::Usage]
        );
        assert_eq!(
            "annotate".parse::<SigmaPermission>(),
            Ok(SigmaPermission::Annotate)
        );
        assert!("admin".parse::<SigmaPermission>().is_err());
    }

    #[test]
    fn keys_map_to_grantees() {
        assert_eq!(
            grantee_id("member:abc"),
            Some(GranteeId::Member("abc".into()))
        );
        assert_eq!(grantee_id("team:t-1"), Some(GranteeId::Team("t-1".into())));
        assert_eq!(grantee_id("role:x"), None);
    }
}
