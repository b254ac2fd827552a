//! Targeted runs: one deterministic run each of an interleaving the random
//! runs find rarely (a write held by the vendor past a kill or a timeout, a
//! cleanup handed an object older than its rows), checked like every run.

use std::time::{Duration, Instant};

use crate::model::*;
use crate::outcome::{Run, conclude, converge_and_check};
use crate::report::report;
use crate::support::emulator::{Call, FaultKind};
use crate::support::{self, fault};
use crate::world::*;
use crate::{CONVERGE, declare};

/// Ends a targeted run: lets the operator converge, checks the invariants
/// and, if one broke, prints the report (`title`, replayed by the test
/// filter `replay`) and panics, naming the run `name`.
async fn finish(
    mut world: World,
    started: Instant,
    killed: bool,
    name: &str,
    title: &str,
    replay: &str,
) {
    let violations = converge_and_check(&mut world, None, "did not converge").await;
    let run = Run {
        steps: Vec::new(),
        killed,
        failure: (!violations.is_empty()).then(|| {
            report(
                title,
                &format!("cargo test --test crash {replay} -- --nocapture"),
                &world,
                &[],
                &violations,
            )
        }),
        violations,
        took: started.elapsed(),
    };
    conclude(name, &[run], started);
}

/// The status of the first of `calls` that `matches`, if any (0 while
/// it is held).
fn first_status(calls: Vec<Call>, matches: impl Fn(&Call) -> bool) -> Option<u16> {
    calls
        .into_iter()
        .find(|call| matches(call))
        .map(|call| call.status)
}

/// Waits until every provider is Ready.
async fn ready(world: &World) {
    let ready = world.providers_ready(CONVERGE).await;
    assert!(matches!(ready, Waited::Done), "{ready:?}");
}

/// A resource deleted while its first sync is writing its grant, with the
/// watch cache lagging: the deletion's reconcile is handed the object as the
/// cache holds it, without the status row that sync is about to write. The
/// sync that follows sees the row and tries to revoke, and the vendor refuses
/// the revoke for a while. The finalizer must stay until the grant is revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanup_handed_an_object_without_rows_still_revokes_what_a_sync_recorded() {
    let started = Instant::now();
    let mut world = World::new(Options::single(Vendor::Sigma)).await;
    world.kube.set_watch_lag(Duration::from_millis(300));
    let sigma = world.sigma.clone().expect("sigma");
    let grants = format!("/v2/connections/{}/grants", support::CONNECTION);
    sigma.inject(fault(
        "POST",
        &grants,
        1,
        FaultKind::Delay(Duration::from_millis(800)),
    ));
    sigma.inject(fault("DELETE", &grants, usize::MAX, FaultKind::Status(500)));
    world.start();
    ready(&world).await;
    let steps = [
        vec![declare(Vendor::Sigma, "a", &[(0, level(0))])],
        vec![Action::Delete(Vendor::Sigma, "a".into())],
    ];
    world.apply(&steps[0]);
    support::eventually("the grant write arrives", || {
        sigma.count("POST", &grants) > 0
    })
    .await;
    world.apply(&steps[1]);
    // Revokes fail for a while: a cleanup that lets go now forgets the grant.
    tokio::time::sleep(Duration::from_secs(3)).await;
    sigma.clear_faults();
    finish(
        world,
        started,
        false,
        "a_cleanup_handed_an_object_without_rows",
        "sigma: a deletion handed to cleanup before the rows of its first sync",
        "a_cleanup_handed_an_object_without_rows",
    )
    .await;
}

/// A grant write sent by an operator that is killed while the vendor holds it,
/// and that lands after the restarted operator's first read, is still revoked
/// when its declaration goes away (the restarted operator watches the intent
/// rows of writes it cannot know the fate of): removed from the spec, or with the
/// resource, while the operator is down.
async fn a_held_write_lands_after_a_kill(vendor: Vendor, delete: bool) {
    let started = Instant::now();
    let mut world = World::new(Options::single(vendor)).await;
    // The grant write is carried out 1.5 s after it arrives, whatever happens to
    // the operator that sent it.
    let (method, prefix) = match vendor {
        Vendor::Sigma => (
            "POST",
            format!("/v2/connections/{}/grants", support::CONNECTION),
        ),
        Vendor::Snowflake => ("POST", "/api/v2/roles/".to_string()),
        other => panic!("no held write for {other:?} here"),
    };
    let held = fault(
        method,
        &prefix,
        1,
        FaultKind::Delay(Duration::from_millis(1500)),
    );
    match vendor {
        Vendor::Sigma => world.sigma.as_ref().expect("sigma").inject(held),
        _ => world.snowflake.as_ref().expect("snowflake").inject(held),
    }
    world.start();
    ready(&world).await;
    let first = match vendor {
        Vendor::Sigma => vec![declare(vendor, "a", &[(0, level(0)), (1, level(0))])],
        _ => vec![declare(
            vendor,
            "a",
            &[(2, privileges(&["SELECT", "INSERT"], false))],
        )],
    };
    let second = match (vendor, delete) {
        (_, true) => vec![Action::Delete(vendor, "a".into())],
        (Vendor::Sigma, false) => vec![declare(vendor, "a", &[(1, level(0))])],
        (_, false) => vec![declare(vendor, "a", &[(2, privileges(&["SELECT"], false))])],
    };
    let (sigma, snowflake) = (world.sigma.clone(), world.snowflake.clone());
    let the_write = move || {
        let calls = match vendor {
            Vendor::Sigma => sigma.as_ref().expect("sigma").calls(),
            _ => snowflake.as_ref().expect("snowflake").calls(),
        };
        first_status(calls, |call| {
            call.method == method
                && call.path.starts_with(&prefix)
                && !call.path.ends_with(":revoke")
        })
    };
    world.apply(&first);
    support::eventually("the grant write arrives", || the_write().is_some()).await;
    world.kill().await;
    assert_eq!(
        the_write(),
        Some(0),
        "the write is held when the operator dies"
    );
    // While it is down, the grant is declared no more; then a new operator starts
    // and reads the target before the held write lands...
    world.apply(&second);
    world.start();
    support::eventually("the held write lands", || {
        the_write().is_some_and(|status| status != 0)
    })
    .await;
    // ...and, the grant being declared by nobody, revokes it.
    let name = format!(
        "a_held_write_lands_after_a_kill ({vendor:?}, {})",
        if delete {
            "deleted"
        } else {
            "removed from the spec"
        }
    );
    finish(
        world,
        started,
        true,
        &name,
        &format!("{vendor:?}: a write held by the vendor lands after a kill and a restart"),
        "a_held_write",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_write_removed_from_the_spec_is_revoked_sigma() {
    a_held_write_lands_after_a_kill(Vendor::Sigma, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_write_of_a_deleted_resource_is_revoked_sigma() {
    a_held_write_lands_after_a_kill(Vendor::Sigma, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_write_removed_from_the_spec_is_revoked_snowflake() {
    a_held_write_lands_after_a_kill(Vendor::Snowflake, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_write_of_a_deleted_resource_is_revoked_snowflake() {
    a_held_write_lands_after_a_kill(Vendor::Snowflake, true).await;
}

/// A grant write the vendor holds past the request timeout, for a resource
/// deleted while it is held: the operator that sent it sees no answer, records
/// the grant as in doubt, and is killed; the write lands after the restart. The
/// grant must be revoked and the finalizer must wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_held_past_the_timeout_of_a_resource_deleted_meanwhile_is_revoked() {
    let started = Instant::now();
    let mut world = World::new(Options {
        request_timeout: 1,
        ..Options::single(Vendor::Snowflake)
    })
    .await;
    let snowflake = world.snowflake.clone().expect("snowflake");
    let the_post = {
        let snowflake = snowflake.clone();
        move || {
            first_status(snowflake.calls(), |call| {
                call.method == "POST" && call.path.starts_with("/api/v2/roles/")
            })
        }
    };
    snowflake.inject(fault(
        "POST",
        "/api/v2/roles/",
        1,
        FaultKind::Delay(Duration::from_millis(1300)),
    ));
    world.start();
    ready(&world).await;
    world.apply(&[declare(
        Vendor::Snowflake,
        "a",
        &[(1, privileges(&["USAGE"], true))],
    )]);
    support::eventually("the grant write arrives", || the_post().is_some()).await;
    let sent = Instant::now();
    world.apply(&[Action::Delete(Vendor::Snowflake, "a".into())]);
    // The operator gives up on the write after its 1 s timeout and records it.
    tokio::time::sleep(Duration::from_millis(1100).saturating_sub(sent.elapsed())).await;
    world.kill().await;
    world.start();
    finish(
        world,
        started,
        true,
        "a_write_held_past_the_timeout",
        "snowflake: a held write of a resource deleted meanwhile, past the timeout, then a kill",
        "a_write_held_past_the_timeout",
    )
    .await;
}

/// A whole-list write (Dremio's PUT) sent by an operator that is killed while
/// the vendor holds it, and that lands after the restarted operator could have
/// written: it replaces the whole list with the one the dead operator computed.
/// So while a dead operator's write may still land on a target where it had
/// work in progress (here the intent rows of the deleted resource), the
/// restarted operator writes nothing there; what is declared meanwhile is
/// granted after, and never revoked by the late write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_whole_list_write_of_a_dead_operator_is_never_overtaken() {
    let started = Instant::now();
    let mut world = World::new(Options::single(Vendor::Dremio)).await;
    let dremio = world.dremio.clone().expect("dremio");
    let the_put = {
        let dremio = dremio.clone();
        move || {
            first_status(dremio.calls(), |call| {
                call.method == "PUT" && call.path.starts_with("/api/v3/catalog/")
            })
        }
    };
    // Carried out 1.5 s after it arrives, whatever happens to its sender.
    dremio.inject(fault(
        "PUT",
        "/api/v3/catalog/",
        1,
        FaultKind::Delay(Duration::from_millis(1500)),
    ));
    world.start();
    ready(&world).await;
    world.apply(&[declare(
        Vendor::Dremio,
        "a",
        &[(0, privileges(&["SELECT"], false))],
    )]);
    support::eventually("the grant list write arrives", || the_put().is_some()).await;
    world.kill().await;
    assert_eq!(
        the_put(),
        Some(0),
        "the write is held when the operator dies"
    );
    // While it is down, the first resource goes and another grantee is declared
    // on the same object; the restarted operator must not write that grant
    // before the held list (which does not have it) lands.
    world.apply(&[
        Action::Delete(Vendor::Dremio, "a".into()),
        declare(Vendor::Dremio, "b", &[(1, privileges(&["INSERT"], false))]),
    ]);
    world.start();
    finish(
        world,
        started,
        true,
        "a_held_whole_list_write_of_a_dead_operator",
        "dremio: a whole-list write held by the vendor lands after a kill and a restart",
        "a_held_whole_list_write",
    )
    .await;
}
