//! The members of a unit as one sync sees them: which resources on the target
//! take part and in which phase, their status rows caught up with the last
//! sync's writes, and the grants held by resources that reach the same vendor
//! object through another provider or another spelling of the target.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use tracing::debug;

use crate::api::{DeletionPolicy, FINALIZER, GrantRow, ManagementPolicy};
use crate::controller::clients::{Provider, ProviderId};
use crate::controller::units::{SyncOutcome, UnitKey, Watched, rows_hash};
use crate::controller::{Context, Failure};
use crate::plan::{Key, Phase};
use crate::sync;
use crate::sync::PermOf;
use crate::vendor_api::{GrantKind, ResolvedTarget};

use super::{GrantContext, deleting, expired, fingerprint, unit_of};

/// A member of the unit being synced.
pub(super) struct Member<K: GrantKind> {
    pub(super) object: Arc<K>,
    pub(super) oref: ObjectRef<K>,
    pub(super) phase: Phase,
    pub(super) fingerprint: u64,
    /// Rows of the previous sync (this process's last write when newer than the store).
    pub(super) previous_rows: Vec<GrantRow>,
    /// Scoping refusal.
    pub(super) refused: Option<Failure>,
}

/// Whether the member shows work a process that led before `since` may have
/// had in flight when it stopped: rows of writes whose result it did not read
/// (intents, revocations), or a deletion or expiry from before `since` whose
/// grants are not all revoked. (A spec lowered just before a restart leaves no
/// such trace; see the README.)
pub(super) fn work_in_progress<K: GrantKind>(member: &Member<K>, since: Timestamp) -> bool {
    let rows = sync::previous_rows::<K>(&member.previous_rows);
    if rows.iter().any(|row| row.intent || row.revocation) {
        return true;
    }
    let began = match member.phase {
        Phase::Deleting => member
            .object
            .meta()
            .deletion_timestamp
            .as_ref()
            .map(|at| at.0),
        Phase::Expired => member.object.policy().expires_at.as_ref().map(|at| at.0),
        _ => None,
    };
    began.is_some_and(|began| began < since) && rows.iter().any(|row| row.owned())
}

/// The status rows of a resource.
pub(super) fn status_rows<K: GrantKind>(object: &K) -> Vec<GrantRow> {
    object
        .status()
        .map(|status| status.grants.clone())
        .unwrap_or_default()
}

/// The resource with the status rows the last sync wrote (hash `hash`): from the
/// watch cache once it caught up (a few milliseconds, normally), else read from the
/// API server. Rows are the memory of what a resource owns, so a sync never plans
/// from older ones.
pub(super) async fn caught_up<K: GrantKind>(
    cx: &GrantContext<K>,
    oref: &ObjectRef<K>,
    hash: u64,
) -> Result<Option<Arc<K>>, kube::Error> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
    loop {
        let Some(Ok(object)) = cx.lookup(oref) else {
            return Ok(None);
        };
        if rows_hash(&status_rows(object.as_ref())) == hash {
            return Ok(Some(object));
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let api: Api<Watched<K>> = Api::namespaced(
        cx.shared.client.clone(),
        oref.namespace.as_deref().unwrap_or_default(),
    );
    debug!(kind = K::KIND, name = %oref.name, "status rows differ from the last write in the cache; reading the resource");
    Ok(match api.get_opt(&oref.name).await? {
        Some(Watched {
            object: Ok(mut fresh),
        }) => {
            crate::controller::run::slim(Arc::make_mut(&mut fresh));
            Some(fresh)
        }
        _ => None,
    })
}

/// The unit's members, and what else the sync must know of the resources on its target.
pub(super) struct Gathered<K: GrantKind> {
    /// The resources of the unit that take part in the sync.
    pub(super) members: Vec<Member<K>>,
    /// The resources of other providers on the same target.
    pub(super) neighbours: Vec<Arc<K>>,
    /// Resources on the target this version cannot read (`namespace/name (error)`).
    pub(super) unreadable: Vec<String>,
    /// Members whose current status rows could not be read (`namespace/name (error)`).
    pub(super) stale: Vec<String>,
    /// The providers of the readable resources on the target.
    pub(super) providers: HashSet<ProviderId>,
}

/// Gathers the members of `unit` as the sync that started at `started` sees them,
/// each with its phase and the status rows it plans from (waiting for the watch
/// cache to catch up with the `previous` sync's writes), and the resources of
/// other providers on the same target.
pub(super) async fn gather<K: GrantKind>(
    cx: &GrantContext<K>,
    unit: &UnitKey,
    previous: Option<&SyncOutcome<K>>,
    started: Timestamp,
) -> Gathered<K> {
    let mut members: Vec<Member<K>> = Vec::new();
    let mut neighbours: Vec<Arc<K>> = Vec::new();
    let mut unreadable: Vec<String> = Vec::new();
    let mut stale: Vec<String> = Vec::new();
    let mut providers = HashSet::new();
    for oref in cx.index.refs(&unit.target) {
        let object = match cx.lookup(&oref) {
            None => continue,
            Some(Ok(object)) => object,
            Some(Err(error)) => {
                unreadable.push(format!(
                    "{}/{} ({})",
                    oref.namespace.as_deref().unwrap_or_default(),
                    oref.name,
                    error.error
                ));
                continue;
            }
        };
        if object.unit_key() != unit.target {
            continue;
        }
        providers.insert(unit_of(object.as_ref()).provider);
        if unit_of(object.as_ref()).provider != unit.provider {
            neighbours.push(object);
            continue;
        }
        // The status rows are the memory of what the resource holds: if the watch cache
        // has not caught up with the last sync's write yet, wait for it.
        let written = previous
            .and_then(|last| last.member(&oref))
            .map(|member| member.rows_hash);
        let object = match written {
            Some(hash) if rows_hash(&status_rows(object.as_ref())) != hash => {
                match caught_up(cx, &oref, hash).await {
                    Ok(Some(object)) => object,
                    // Gone meanwhile, or no longer readable: the next sync sees it as it is.
                    Ok(None) => continue,
                    Err(error) => {
                        stale.push(format!(
                            "{}/{} ({error})",
                            oref.namespace.as_deref().unwrap_or_default(),
                            oref.name
                        ));
                        continue;
                    }
                }
            }
            _ => object,
        };
        let policy = object.policy();
        let phase = if deleting(object.as_ref()) {
            let ours = object
                .finalizers()
                .iter()
                .any(|finalizer| finalizer == FINALIZER);
            if !ours
                || policy.deletion_policy == DeletionPolicy::Orphan
                || policy.management_policy == ManagementPolicy::Observe
            {
                continue;
            }
            if policy.suspend {
                Phase::Suspended
            } else {
                Phase::Deleting
            }
        } else if !object
            .finalizers()
            .iter()
            .any(|finalizer| finalizer == FINALIZER)
        {
            // Its reconcile adds the finalizer first; until then a grant made for
            // it could outlive a deletion that nothing would hold up.
            Phase::Joining
        } else if policy.suspend {
            Phase::Suspended
        } else if expired(policy, started) {
            Phase::Expired
        } else {
            Phase::Active
        };
        let previous_rows = status_rows(object.as_ref());
        members.push(Member {
            fingerprint: fingerprint(object.as_ref(), &cx.shared, &unit.provider, started),
            oref,
            phase,
            previous_rows,
            refused: None,
            object,
        });
    }
    Gathered {
        members,
        neighbours,
        unreadable,
        stale,
        providers,
    }
}

/// `neighbours`, plus the resources of units that name the same vendor object
/// another way (their holdings are protected like those of other providers).
pub(super) fn with_aliases<K: GrantKind>(
    cx: &GrantContext<K>,
    unit: &UnitKey,
    provider: &Provider,
    target: &ResolvedTarget,
    neighbours: &[Arc<K>],
) -> Vec<Arc<K>> {
    let mut all = neighbours.to_vec();
    // A target written as the vendor's own id has no other spelling.
    if target.id == unit.target {
        return all;
    }
    let Some(endpoint) = provider.endpoint::<K>() else {
        return all;
    };
    for other in cx.aliases.record(&endpoint, &target.id, &unit.target) {
        for oref in cx.index.refs(&other) {
            if let Some(Ok(object)) = cx.lookup(&oref)
                && object.unit_key() == other
            {
                all.push(object);
            }
        }
    }
    all
}

/// Grants held by resources that reach the same vendor object through another
/// provider or another spelling of the target.
pub(super) fn foreign_holdings<K: GrantKind>(
    context: &Context,
    provider: &Provider,
    neighbours: &[Arc<K>],
) -> Vec<(Key, PermOf<K>)> {
    let Some(endpoint) = provider.endpoint::<K>() else {
        return Vec::new();
    };
    neighbours
        .iter()
        .filter(|neighbour| {
            let namespace = neighbour.namespace().unwrap_or_default();
            let id = ProviderId::of_ref(&neighbour.policy().provider_ref, &namespace);
            Provider::find(context, &id)
                .is_ok_and(|theirs| theirs.endpoint::<K>().as_ref() == Some(&endpoint))
        })
        .flat_map(|neighbour| sync::owned_rows::<K>(neighbour.as_ref(), None))
        .collect()
}
