//! One sync of one unit (a vendor object read with one listing), shared by the
//! controller and the command-line tools (`plan`, `apply`, `demo`), so both do
//! exactly the same thing: resolve names -> read -> plan -> (the caller records
//! what is about to happen) -> apply -> read back -> report ([`run`]).
//!
//! Nothing here touches Kubernetes: members come in as objects with their phase
//! and the status rows that remember what they hold; results go out as the
//! planner's reports.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::api::GrantState;
use crate::api::{GrantRow, Reason};
use crate::names::{self, Names};
use crate::plan::{
    self, Declaration, INTENT_MARK, Key, LiveGrant, Permission, Phase, PreviousRow, REVOCATION_MARK,
};
use crate::vendor_api::{GrantKind, Live, ResolvedTarget, Vendor, VendorError};

/// The permission type of a grant kind.
pub type PermOf<K> = <<K as GrantKind>::Vendor as Vendor>::Perm;

/// One member of a unit.
#[derive(Clone, Debug)]
pub struct MemberInput<K> {
    /// The resource.
    pub object: Arc<K>,
    /// Where it stands.
    pub phase: Phase,
    /// Its status rows (the memory of what it holds).
    pub previous_rows: Vec<GrantRow>,
}

/// What a sync read and planned, before any write.
#[derive(Debug)]
pub struct Observed<P: Permission> {
    /// The planner's input.
    pub input: plan::Unit<P>,
    /// The plan.
    pub plan: plan::Plan<P>,
    /// The live grants as read.
    pub live: Live<P>,
    /// Every key the plan can touch.
    pub known: Vec<Key>,
    /// Names of keys for people: as declared, else as the vendor lists them.
    pub names: Names,
}

/// What carrying out a plan did.
#[derive(Debug)]
pub struct Carried<P: Permission> {
    /// Vendor errors by key.
    pub errors: BTreeMap<Key, VendorError>,
    /// The same, as the planner's failures.
    pub failures: BTreeMap<Key, plan::Failure>,
    /// The live grants after the writes.
    pub live_after: Vec<LiveGrant<P>>,
    /// The read after the writes failed (`live_after` is then projected).
    pub read_back_error: Option<VendorError>,
    /// Keys whose write failed in a way that may still have taken effect (a timeout,
    /// a lost connection, a 5xx): their declared rows that would show `Failed` stay
    /// marked as intents instead, so they stay owned.
    pub uncertain: BTreeSet<Key>,
}

/// The status rows to record before carrying out a plan: `rows` as they are, plus
/// an intent row (state `Pending`, message [`INTENT_MARK`]) for each declared
/// grant the plan is about to create or raise, in place of a row for it that
/// owns nothing.
pub fn with_intents<K: GrantKind>(
    rows: &[GrantRow],
    intents: &[(Key, PermOf<K>)],
    names: &Names,
) -> Vec<GrantRow> {
    let mut out = rows.to_vec();
    for (key, perm) in intents {
        let (grantee, permission) = K::row(key, perm);
        let existing = out
            .iter()
            .position(|row| row.grantee == grantee && row.permission == permission);
        let owned = existing.is_some_and(|index| {
            previous_rows::<K>(std::slice::from_ref(&out[index]))
                .first()
                .is_some_and(PreviousRow::owned)
        });
        if owned {
            continue;
        }
        let row = GrantRow {
            name: names.get(key).cloned(),
            grantee,
            permission,
            vendor_id: None,
            state: GrantState::Pending,
            message: plan::intent_message(K::VENDOR.as_str()),
        };
        match existing {
            Some(index) => out[index] = row,
            None => out.push(row),
        }
    }
    out
}

/// What the caller of [`run`] does once the unit is read and planned, before
/// any vendor write: the controller records the grants about to be made in its
/// members' status (write-ahead intents) and counts the sync; the command line
/// does nothing. An error stops the run before anything is written.
pub trait Observing<P: Permission>: Send {
    /// Called once per run with what was read and planned.
    fn observed(
        &mut self,
        observed: &Observed<P>,
    ) -> impl std::future::Future<Output = Result<(), crate::controller::Failure>> + Send;
}

/// Nothing to do between planning and writing (`plan`, `apply`, `demo`).
pub struct NothingToRecord;

impl<P: Permission + Sync> Observing<P> for NothingToRecord {
    async fn observed(&mut self, _: &Observed<P>) -> Result<(), crate::controller::Failure> {
        Ok(())
    }
}

/// A whole run of one unit.
#[derive(Debug)]
pub struct Ran<P: Permission> {
    /// What was read and planned.
    pub observed: Observed<P>,
    /// What carrying the plan out did (`None` when the run only planned).
    pub carried: Option<Carried<P>>,
    /// Each member's report after the writes (empty when the run only planned).
    pub reports: Vec<plan::Report<P>>,
}

/// The whole run of one unit, for the controller and the command line alike:
/// resolve names, read the target and plan ([`observe`]), let the caller record
/// what is about to happen ([`Observing`]), then, when `write`, carry the plan
/// out and read back ([`carry_out`]), and report on every member
/// ([`plan::report`], with `watch` for writes of unknown outcome).
pub async fn run<K: GrantKind>(
    vendor: &K::Vendor,
    target: &ResolvedTarget,
    members: &[MemberInput<K>],
    foreign: Vec<(Key, PermOf<K>)>,
    write: bool,
    watch: plan::Watch,
    caller: &mut impl Observing<PermOf<K>>,
) -> Result<Ran<PermOf<K>>, crate::controller::Failure> {
    let observed = observe::<K>(vendor, target, members, foreign).await?;
    caller.observed(&observed).await?;
    if !write {
        return Ok(Ran {
            observed,
            carried: None,
            reports: Vec::new(),
        });
    }
    let carried = carry_out::<K>(vendor, target, &observed).await;
    let reports = plan::report(
        &observed.input,
        &observed.plan,
        &carried.live_after,
        &carried.failures,
        watch,
    );
    Ok(Ran {
        observed,
        carried: Some(carried),
        reports,
    })
}

/// Resolves the members' grantees, reads the target and plans. No write.
pub async fn observe<K: GrantKind>(
    vendor: &K::Vendor,
    target: &ResolvedTarget,
    members: &[MemberInput<K>],
    foreign: Vec<(Key, PermOf<K>)>,
) -> Result<Observed<PermOf<K>>, VendorError> {
    // Resolve every declared grantee of active members in one go.
    let mut grantees = Vec::new();
    let mut seen = HashSet::new();
    for member in members
        .iter()
        .filter(|member| matches!(member.phase, Phase::Active | Phase::Joining))
    {
        for (grantee, _) in member.object.declarations() {
            if seen.insert(grantee.clone()) {
                grantees.push(grantee);
            }
        }
    }
    let keys: HashMap<_, _> = grantees
        .iter()
        .cloned()
        .zip(vendor.resolve(&grantees).await?)
        .collect();

    let members_in = members;
    let members: Vec<plan::Member<PermOf<K>>> = members
        .iter()
        .map(|member| plan_member::<K>(member, &keys))
        .collect();
    // Every key the plan can touch: what members declare, hold, or others hold.
    let known: Vec<Key> = members
        .iter()
        .flat_map(|member| {
            member
                .declarations
                .iter()
                .filter_map(|declaration| match declaration {
                    Declaration::Resolved { key, .. } => Some(key.clone()),
                    Declaration::Unresolved { .. } => None,
                })
                .chain(member.previous.iter().map(|row| row.key.clone()))
        })
        .chain(foreign.iter().map(|(key, _)| key.clone()))
        .collect::<BTreeSet<Key>>()
        .into_iter()
        .collect();

    let live = vendor.read(target, &known).await?;
    let mut names = Names::new();
    // In declaration order: the first spelling of a key names it.
    for grantee in &grantees {
        if let Some(Some(key)) = keys.get(grantee)
            && let Some(name) = names::declared_name(&K::grantee_label(grantee), key)
        {
            names.entry(key.clone()).or_insert(name);
        }
    }
    // Then the names status rows remember (grants no longer declared), then the
    // names the vendor lists (grants nobody here declares).
    for member in members_in {
        for row in &member.previous_rows {
            if let (Some(name), Some((key, _))) = (&row.name, K::parse_row(row)) {
                names.entry(key).or_insert_with(|| name.clone());
            }
        }
    }
    for (key, name) in &live.names {
        if !name.is_empty() && name != key {
            names.entry(key.clone()).or_insert_with(|| name.clone());
        }
    }
    let input = plan::Unit {
        members,
        foreign,
        live: live.grants.clone(),
    };
    let plan = plan::plan(&input);
    Ok(Observed {
        input,
        plan,
        live,
        known,
        names,
    })
}

/// Carries out an observed plan and reads the target back.
pub async fn carry_out<K: GrantKind>(
    vendor: &K::Vendor,
    target: &ResolvedTarget,
    observed: &Observed<PermOf<K>>,
) -> Carried<PermOf<K>> {
    let plan = &observed.plan;
    if plan.actions.is_empty() {
        return Carried {
            errors: BTreeMap::new(),
            failures: BTreeMap::new(),
            live_after: observed.live.grants.clone(),
            read_back_error: None,
            uncertain: BTreeSet::new(),
        };
    }
    let errors = vendor.apply(target, plan).await;
    let failures: BTreeMap<Key, plan::Failure> = errors
        .iter()
        .map(|(key, error)| {
            (
                key.clone(),
                plan::Failure {
                    reason: error.reason(),
                    message: error.to_string(),
                    retry_after: error.retry_after(),
                },
            )
        })
        .collect();
    let (live_after, read_back_error) = match vendor.read(target, &observed.known).await {
        Ok(after) => (after.grants, None),
        // The writes happened; without a second listing, assume what succeeded.
        Err(error) => (
            projected(&observed.live.grants, plan, &failures),
            Some(error),
        ),
    };
    // Even a read after the write cannot rule out a write that timed out and lands
    // later: such keys stay owned until a later sync sees them settled.
    let uncertain = errors
        .iter()
        .filter(|(_, error)| error.outcome_unknown())
        .map(|(key, _)| key.clone())
        .collect();
    Carried {
        errors,
        failures,
        live_after,
        read_back_error,
        uncertain,
    }
}

/// The planner's member of a resource: its declarations resolved to keys.
fn plan_member<K: GrantKind>(
    member: &MemberInput<K>,
    keys: &HashMap<<K::Vendor as Vendor>::Grantee, Option<Key>>,
) -> plan::Member<PermOf<K>> {
    let policy = member.object.policy();
    let declarations = if matches!(member.phase, Phase::Active | Phase::Joining) {
        member
            .object
            .declarations()
            .into_iter()
            .map(
                |(grantee, perm)| match keys.get(&grantee).cloned().flatten() {
                    Some(key) => Declaration::Resolved { key, perm },
                    None => {
                        let label = K::grantee_label(&grantee);
                        Declaration::Unresolved {
                            message: format!("{label} not found on {}", K::VENDOR),
                            label,
                            perm,
                        }
                    }
                },
            )
            .collect()
    } else {
        Vec::new()
    };
    let was_synced = member.object.status().is_some_and(|status| {
        status.observed_generation == member.object.meta().generation
            && status
                .conditions
                .iter()
                .find(|condition| condition.type_ == crate::api::READY)
                .is_some_and(|ready| ready.reason == Reason::Synced.as_str())
    });
    plan::Member {
        phase: member.phase,
        mode: policy.mode,
        management: policy.management_policy,
        declarations,
        previous: previous_rows::<K>(&member.previous_rows),
        was_synced,
        authoritative_keys: member.object.authoritative_keys(),
    }
}

/// The planner's view of status rows.
pub fn previous_rows<K: GrantKind>(rows: &[GrantRow]) -> Vec<PreviousRow<PermOf<K>>> {
    rows.iter()
        .filter_map(|row| {
            let (key, perm) = K::parse_row(row)?;
            let revocation = row.message.starts_with(REVOCATION_MARK);
            let intent = row.state == GrantState::Pending && row.message.starts_with(INTENT_MARK);
            Some(PreviousRow {
                key,
                perm,
                state: row.state,
                has_vendor_id: row.vendor_id.is_some(),
                revocation,
                intent,
                until: (revocation || intent)
                    .then(|| plan::watched_until(&row.message))
                    .flatten(),
            })
        })
        .collect()
}

/// The live grants after `plan`, assuming every action without a failure took effect.
fn projected<P: Permission>(
    live: &[LiveGrant<P>],
    plan: &plan::Plan<P>,
    failures: &BTreeMap<Key, plan::Failure>,
) -> Vec<LiveGrant<P>> {
    let changed: HashMap<&Key, &plan::Action<P>> = plan
        .actions
        .iter()
        .filter(|action| !failures.contains_key(&action.key))
        .map(|action| (&action.key, action))
        .collect();
    let mut out: Vec<LiveGrant<P>> = live
        .iter()
        .filter(|grant| !changed.contains_key(&grant.key))
        .cloned()
        .collect();
    for action in changed.values() {
        for perm in plan::maximal(&action.target) {
            out.push(LiveGrant {
                key: action.key.clone(),
                perm,
                vendor_id: None,
            });
        }
    }
    out
}

/// `(key, perm)` the resource applied and answers for (see `plan::Member::owned_by_key`).
pub fn owned_rows<K: GrantKind>(object: &K, rows: Option<&[GrantRow]>) -> Vec<(Key, PermOf<K>)> {
    let rows = rows.unwrap_or_else(|| {
        object
            .status()
            .map(|status| status.grants.as_slice())
            .unwrap_or(&[])
    });
    previous_rows::<K>(rows)
        .into_iter()
        .filter(PreviousRow::owned)
        .map(|row| (row.key, row.perm))
        .collect()
}
