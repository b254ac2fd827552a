//! Unit tests of units, the index, aliases and the parsing of watched objects.

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::controller::clients::ProviderId;

use super::aliases::Aliases;
use super::index::Index;
use super::watched::Watched;
use super::{Freshness, Granted, MemberResult, SyncOutcome, UnitKey, Units};

#[test]
fn aliases_pair_targets_of_one_vendor_object_and_are_forgotten() {
    let aliases = Aliases::default();
    assert!(
        aliases
            .record("https://g#org=1", "P8E", "uid:P8E")
            .is_empty()
    );
    assert_eq!(
        aliases.record("https://g#org=1", "P8E", "name:Prometheus"),
        vec!["uid:P8E".to_string()]
    );
    assert!(
        aliases
            .record("https://other#org=1", "P8E", "id:4")
            .is_empty(),
        "the same id on another vendor account is another object"
    );
    assert_eq!(
        aliases.record("https://g#org=1", "P8E", "uid:P8E"),
        vec!["name:Prometheus".to_string()]
    );
    aliases.forget("name:Prometheus");
    assert!(
        aliases
            .record("https://g#org=1", "P8E", "uid:P8E")
            .is_empty()
    );
    aliases.forget("uid:P8E");
    aliases.forget("id:4");
    assert!(aliases.is_empty());
}
use crate::api::SigmaGrant;

fn key() -> UnitKey {
    UnitKey {
        provider: ProviderId {
            kind: Default::default(),
            namespace: Some("ns".into()),
            name: "p".into(),
        },
        target: "c".into(),
    }
}

fn member(name: &str) -> ObjectRef<SigmaGrant> {
    ObjectRef::new(name).within("ns")
}

/// A successful outcome answering `members`.
fn outcome(seq: u64, members: &[&str]) -> Arc<SyncOutcome<SigmaGrant>> {
    let mut outcome = SyncOutcome::new(seq, Timestamp::now());
    for name in members {
        outcome.insert(
            &member(name),
            MemberResult {
                fingerprint: 0,
                failure: None,
                rows_hash: 0,
            },
        );
    }
    Arc::new(outcome)
}

fn names(mut woken: Vec<ObjectRef<SigmaGrant>>) -> Vec<String> {
    woken.sort_by(|a, b| a.name.cmp(&b.name));
    woken.into_iter().map(|member| member.name).collect()
}

#[test]
fn a_periodic_resync_is_served_by_a_sync_already_running() {
    let units = Units::<SigmaGrant>::default();
    let due = Timestamp::UNIX_EPOCH;
    assert!(matches!(
        units.request(&key(), &member("a"), 0, Freshness::StartedSince(due)),
        Granted::Start(1)
    ));
    units.began(&key(), 1, Timestamp::now());
    // Due before the running sync started: that sync is fresh enough.
    assert!(matches!(
        units.request(&key(), &member("b"), 0, Freshness::StartedSince(due)),
        Granted::Queued
    ));
    let (woken, next) = units.finish(&key(), 1, Some(outcome(1, &["a", "b"])));
    assert_eq!(names(woken), ["a", "b"]);
    assert_eq!(next, None, "one sync served both");
    assert!(matches!(
        units.request(&key(), &member("b"), 0, Freshness::StartedSince(due)),
        Granted::Answer(answer) if answer.seq == 1
    ));
}

#[test]
fn a_changed_resource_waits_for_a_sync_that_starts_after_it_asked() {
    let units = Units::<SigmaGrant>::default();
    assert!(matches!(
        units.request(&key(), &member("a"), 0, Freshness::StartedAfterRequest),
        Granted::Start(1)
    ));
    units.began(&key(), 1, Timestamp::now());
    assert!(matches!(
        units.request(&key(), &member("b"), 0, Freshness::StartedAfterRequest),
        Granted::Queued
    ));
    // Sync 1 gathered its members before b asked: b needs sync 2, started at once.
    let (woken, next) = units.finish(&key(), 1, Some(outcome(1, &["a", "b"])));
    assert_eq!(names(woken), ["a"]);
    assert_eq!(next, Some(2));
    assert!(matches!(
        units.request(&key(), &member("b"), 0, Freshness::StartedAfterRequest),
        Granted::Queued
    ));
    units.began(&key(), 2, Timestamp::now());
    let (woken, next) = units.finish(&key(), 2, Some(outcome(2, &["a", "b"])));
    assert_eq!(names(woken), ["b"]);
    assert_eq!(next, None);
    assert!(matches!(
        units.request(&key(), &member("b"), 0, Freshness::StartedAfterRequest),
        Granted::Answer(answer) if answer.seq == 2
    ));
    // A new request after the answer was read needs a new sync.
    assert!(matches!(
        units.request(&key(), &member("b"), 0, Freshness::StartedAfterRequest),
        Granted::Start(3)
    ));
}

#[test]
fn a_burst_of_requests_costs_at_most_two_syncs() {
    let units = Units::<SigmaGrant>::default();
    let mut starts = 0;
    // Ten ask before the first sync gathers its members: it serves them all.
    for index in 0..10 {
        let name = format!("m{index}");
        if let Granted::Start(_) =
            units.request(&key(), &member(&name), 0, Freshness::StartedAfterRequest)
        {
            starts += 1;
        }
    }
    units.began(&key(), 1, Timestamp::now());
    // Ten more ask while it runs: one more sync serves them.
    for index in 10..20 {
        let name = format!("m{index}");
        if let Granted::Start(_) =
            units.request(&key(), &member(&name), 0, Freshness::StartedAfterRequest)
        {
            starts += 1;
        }
    }
    let all: Vec<String> = (0..20).map(|index| format!("m{index}")).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let (woken, next) = units.finish(&key(), 1, Some(outcome(1, &all)));
    assert_eq!(woken.len(), 10);
    assert_eq!(next, Some(2));
    units.began(&key(), 2, Timestamp::now());
    let (woken, next) = units.finish(&key(), 2, Some(outcome(2, &all)));
    assert_eq!(woken.len(), 10);
    assert_eq!((starts, next), (1, None), "two syncs in all");
}

#[test]
fn a_sync_cut_short_wakes_its_members_to_ask_again() {
    let units = Units::<SigmaGrant>::default();
    assert!(matches!(
        units.request(&key(), &member("a"), 0, Freshness::StartedAfterRequest),
        Granted::Start(1)
    ));
    let (woken, next) = units.finish(&key(), 1, None);
    assert_eq!(names(woken), ["a"]);
    assert_eq!(next, None);
    assert!(matches!(
        units.request(&key(), &member("a"), 0, Freshness::StartedAfterRequest),
        Granted::Start(2)
    ));
}

#[test]
fn units_and_unread_answers_are_forgotten() {
    let units = Units::<SigmaGrant>::default();
    units.request(&key(), &member("a"), 0, Freshness::StartedAfterRequest);
    units.began(&key(), 1, Timestamp::now());
    units.finish(&key(), 1, Some(outcome(1, &["a"])));
    // "a" went away without reading its answer: the next sync drops it, and a
    // sync that finds nobody forgets the unit.
    units.request(&key(), &member("b"), 0, Freshness::StartedAfterRequest);
    units.began(&key(), 2, Timestamp::now());
    units.finish(&key(), 2, Some(outcome(2, &[])));
    assert!(matches!(
        units.request(&key(), &member("b"), 0, Freshness::StartedAfterRequest),
        Granted::Answer(_)
    ));
    units.request(&key(), &member("c"), 0, Freshness::StartedAfterRequest);
    units.began(&key(), 3, Timestamp::now());
    let (woken, _) = units.finish(&key(), 3, Some(outcome(3, &[])));
    assert_eq!(names(woken), ["c"]);
    units.request(&key(), &member("c"), 0, Freshness::StartedAfterRequest);
    units.request(&key(), &member("c"), 0, Freshness::StartedAfterRequest);
    units.began(&key(), 4, Timestamp::now());
    units.finish(&key(), 4, Some(outcome(4, &[])));
    assert!(matches!(
        units.request(&key(), &member("c"), 0, Freshness::StartedAfterRequest),
        Granted::Answer(_)
    ));
    assert!(matches!(
        units.request(&key(), &member("c"), 0, Freshness::StartedAfterRequest),
        Granted::Start(5)
    ));
    assert_eq!(units.len(), 1);
    units.forget(&key());
    assert_eq!(units.len(), 1, "a unit with a sync in flight is kept");
    units.began(&key(), 5, Timestamp::now());
    units.finish(&key(), 5, Some(outcome(5, &[])));
    units.forget(&key());
    assert!(units.is_empty());

    // Units whose provider no member uses any more are forgotten.
    units.request(&key(), &member("d"), 0, Freshness::StartedAfterRequest);
    units.began(&key(), 1, Timestamp::now());
    units.finish(&key(), 1, Some(outcome(1, &["d"])));
    assert_eq!(units.len(), 1);
    units.forget_others("c", &HashSet::from([key().provider]));
    assert_eq!(units.len(), 1);
    units.forget_others("other", &HashSet::new());
    assert_eq!(units.len(), 1);
    units.forget_others("c", &HashSet::new());
    assert!(units.is_empty());
}

fn grant(name: &str, connection: &str) -> SigmaGrant {
    let mut grant: SigmaGrant = serde_json::from_value(serde_json::json!({
        "apiVersion": "grantoperator.dev/v1alpha1",
        "kind": "SigmaGrant",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"providerRef": {"name": "p"}, "connectionId": connection, "grants": []}
    }))
    .unwrap();
    grant.metadata.uid = Some(format!("uid-{name}"));
    grant
}

fn readable(grant: SigmaGrant) -> Watched<SigmaGrant> {
    Watched {
        object: Ok(Arc::new(grant)),
    }
}

#[test]
fn the_index_follows_watch_events_and_forgets_what_a_relist_misses() {
    let index = Index::<SigmaGrant>::default();
    index.apply(&watcher::Event::Apply(readable(grant("a", "c1"))));
    index.apply(&watcher::Event::Apply(readable(grant("b", "c1"))));
    index.apply(&watcher::Event::Apply(readable(grant("c", "c2"))));
    assert_eq!(index.refs("c1").len(), 2);
    index.apply(&watcher::Event::Delete(readable(grant("a", "c1"))));
    assert_eq!(index.refs("c1"), vec![ObjectRef::new("b").within("ns")]);

    // A relist (after the watch lost its place) misses "b": it was deleted meanwhile.
    index.apply(&watcher::Event::Init);
    index.apply(&watcher::Event::InitApply(readable(grant("c", "c2"))));
    index.apply(&watcher::Event::InitApply(readable(grant("d", "c1"))));
    // During the relist, new objects are visible and old ones not yet dropped.
    assert_eq!(index.refs("c1").len(), 2);
    index.apply(&watcher::Event::InitDone);
    assert_eq!(index.refs("c1"), vec![ObjectRef::new("d").within("ns")]);
    assert_eq!(index.refs("c2"), vec![ObjectRef::new("c").within("ns")]);
    assert!(index.refs("c3").is_empty());
}
