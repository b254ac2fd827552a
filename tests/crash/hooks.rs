//! The hooks the crash tests rely on, tested on their own: the emulators'
//! dropped connections, late answers, seeded random faults, interceptors and
//! observers, and the fake API server's failing and held status writes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use grant_operator::api::SigmaGrant;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use crate::support::dremio::{DremioEmulator, GrantRecord, GranteeType};
use crate::support::emulator::{Fault, FaultKind, Intercept, RandomFaults, Stage};
use crate::support::fake_kube::{FakeKube, Hold, StatusFault};
use crate::support::*;

const TOKEN: &str = "dremio-pat-hooks";

struct Dremio {
    emulator: DremioEmulator,
    object: String,
    user: String,
}

async fn dremio() -> Dremio {
    grant_operator::install_crypto_provider();
    let emulator = DremioEmulator::start().await;
    emulator.add_token(TOKEN);
    let object = emulator.add_object(&["Sales"], &["SELECT", "ALTER"]);
    let user = emulator.add_user("jean", "jean@example.com");
    Dremio {
        emulator,
        object,
        user,
    }
}

impl Dremio {
    fn path(&self) -> String {
        format!(
            "{}/api/v3/catalog/{}/grants",
            self.emulator.url(),
            self.object
        )
    }

    /// PUTs a grant list giving the user SELECT, with a client timeout.
    async fn put(&self, timeout: Duration) -> Result<u16, reqwest::Error> {
        let body =
            json!({"grants": [{"granteeType": "USER", "id": self.user, "privileges": ["SELECT"]}]});
        reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("client")
            .put(self.path())
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .map(|response| response.status().as_u16())
    }

    async fn get(&self) -> u16 {
        reqwest::Client::new()
            .get(self.path())
            .bearer_auth(TOKEN)
            .send()
            .await
            .map(|response| response.status().as_u16())
            .expect("an answer")
    }

    fn granted(&self) -> bool {
        self.emulator.grants(&self.object)
            == vec![GrantRecord {
                grantee_type: GranteeType::User,
                id: self.user.clone(),
                privileges: vec!["SELECT".into()],
            }]
    }

    fn fault(&self, kind: FaultKind) {
        self.emulator.inject(Fault {
            method: Some("PUT".into()),
            path_prefix: "/api/v3/catalog".into(),
            times: 1,
            kind,
        });
    }
}

#[tokio::test]
async fn connections_dropped_before_or_after_the_change_and_late_answers() {
    let d = dremio().await;
    let patient = Duration::from_secs(5);

    d.fault(FaultKind::DropBefore);
    let dropped = d.put(patient).await.expect_err("no answer");
    assert!(!dropped.is_timeout(), "closed, not timed out: {dropped:?}");
    assert!(!d.granted(), "dropped before: not carried out");
    assert_eq!(d.emulator.calls().last().map(|c| c.status), Some(0));

    d.fault(FaultKind::DropAfter);
    let dropped = d.put(patient).await.expect_err("no answer");
    assert!(!dropped.is_timeout(), "closed, not timed out: {dropped:?}");
    assert!(d.granted(), "dropped after: carried out");

    // Answered after the client gave up, but carried out at once.
    d.emulator.set_grants_directly(&d.object, Vec::new());
    d.fault(FaultKind::DelayAnswer(Duration::from_millis(500)));
    let late = d
        .put(Duration::from_millis(100))
        .await
        .expect_err("timed out");
    assert!(late.is_timeout(), "{late:?}");
    assert!(d.granted(), "carried out before the answer");

    // Delay (existing): carried out only after the delay, even if the client gave up.
    d.emulator.set_grants_directly(&d.object, Vec::new());
    d.fault(FaultKind::Delay(Duration::from_millis(400)));
    let late = d
        .put(Duration::from_millis(100))
        .await
        .expect_err("timed out");
    assert!(late.is_timeout(), "{late:?}");
    assert!(!d.granted(), "not yet carried out");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(d.granted(), "carried out late");

    // The server keeps serving.
    assert_eq!(d.put(patient).await.expect("answered"), 204);
}

#[tokio::test]
async fn random_faults_replay_from_their_seed() {
    let statuses = |seed: u64| async move {
        let d = dremio().await;
        d.emulator.inject_random(RandomFaults {
            seed,
            probability: 0.5,
            method: Some("GET".into()),
            path_prefix: "/api/v3/catalog".into(),
            kinds: vec![FaultKind::Status(500), FaultKind::Status(503)],
        });
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(d.get().await);
        }
        // Other methods are not drawn for.
        assert_eq!(d.put(Duration::from_secs(5)).await.expect("answered"), 204);
        d.emulator.clear_random_faults();
        for _ in 0..10 {
            assert_eq!(d.get().await, 200);
        }
        out
    };
    let first = statuses(7).await;
    assert_eq!(first, statuses(7).await, "the same seed, the same faults");
    assert_ne!(first, statuses(8).await, "another seed, other faults");
    let faulted = first.iter().filter(|s| **s != 200).count();
    assert!((8..=32).contains(&faulted), "{faulted} of 40 at p=0.5");
    assert!(
        first.iter().all(|s| [200, 500, 503].contains(s)),
        "{first:?}"
    );
}

#[tokio::test]
async fn an_interceptor_holds_requests_and_an_observer_sees_each_change_alone() {
    let d = Arc::new(dremio().await);
    let seen: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    {
        let weak = Arc::downgrade(&d);
        let seen = seen.clone();
        d.emulator.observe(move |call, stage| {
            if let Some(d) = weak.upgrade() {
                let name = match stage {
                    Stage::Before => format!("before {}", call.method),
                    Stage::After { status } => format!("after {} {status}", call.method),
                };
                seen.lock().unwrap().push((name, d.granted()));
            }
        });
    }
    let (release, released) = tokio::sync::watch::channel(false);
    let hold = move |after: bool| {
        let mut released = released.clone();
        let until = Box::pin(async move {
            let _ = released.wait_for(|r| *r).await;
        });
        if after {
            Intercept::DropAfter(until)
        } else {
            Intercept::DropBefore(until)
        }
    };
    let holding = Arc::new(Mutex::new(Some(false)));
    {
        let holding = holding.clone();
        d.emulator
            .intercept(move |call| match *holding.lock().unwrap() {
                Some(after) if call.method == "PUT" => hold(after),
                _ => Intercept::Pass,
            });
    }

    // Held before: not carried out while held, nor after (the connection is closed).
    let request = tokio::spawn({
        let d = d.clone();
        async move { d.put(Duration::from_secs(5)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!request.is_finished(), "held");
    assert!(!d.granted());
    release.send_replace(true);
    assert!(request.await.unwrap().is_err(), "no answer");
    assert!(!d.granted());

    // Held after: carried out at once, never answered.
    release.send_replace(false);
    *holding.lock().unwrap() = Some(true);
    let request = tokio::spawn({
        let d = d.clone();
        async move { d.put(Duration::from_secs(5)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!request.is_finished(), "held");
    assert!(d.granted(), "carried out while the answer is held");
    release.send_replace(true);
    assert!(request.await.unwrap().is_err(), "no answer");

    *holding.lock().unwrap() = None;
    d.emulator.set_grants_directly(&d.object, Vec::new());
    seen.lock().unwrap().clear();
    assert_eq!(d.put(Duration::from_secs(5)).await.unwrap(), 204);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            ("before PUT".to_string(), false),
            ("after PUT 204".to_string(), true)
        ]
    );
}

fn grant_object(kube: &FakeKube) -> Api<SigmaGrant> {
    kube.register_kind(
        grant_operator::api::GROUP,
        grant_operator::api::VERSION,
        "sigmagrants",
        "SigmaGrant",
        true,
    );
    kube.register_status_subresource(grant_operator::api::GROUP, "sigmagrants");
    kube.put(&sigma_grant("readers", vec![]));
    Api::namespaced(kube.client(), NS)
}

fn stored_corrections(kube: &FakeKube) -> Value {
    let grant: SigmaGrant = kube.get(Some(NS), "readers").expect("stored");
    serde_json::to_value(grant.status.unwrap_or_default()).unwrap()["driftCorrections"].clone()
}

async fn write_status(api: &Api<SigmaGrant>, corrections: i64) -> Result<(), u16> {
    api.patch_status(
        "readers",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"driftCorrections": corrections}})),
    )
    .await
    .map(|_| ())
    .map_err(|error| match error {
        kube::Error::Api(status) => status.code,
        other => panic!("{other}"),
    })
}

#[tokio::test]
async fn the_fake_api_server_fails_status_writes_and_holds_requests() {
    let kube = FakeKube::new();
    let api = grant_object(&kube);
    kube.fail_status_writes(
        1,
        StatusFault {
            code: 500,
            applied: false,
        },
    );
    kube.fail_status_writes(
        1,
        StatusFault {
            code: 409,
            applied: true,
        },
    );
    assert_eq!(write_status(&api, 1).await, Err(500));
    assert_eq!(stored_corrections(&kube), json!(0), "not stored");
    assert_eq!(write_status(&api, 2).await, Err(409));
    assert_eq!(
        stored_corrections(&kube),
        json!(2),
        "stored, the answer an error"
    );
    assert_eq!(write_status(&api, 3).await, Ok(()));

    kube.random_status_faults(
        1,
        1.0,
        vec![StatusFault {
            code: 503,
            applied: false,
        }],
    );
    assert_eq!(write_status(&api, 4).await, Err(503));
    kube.clear_status_faults();
    assert_eq!(write_status(&api, 5).await, Ok(()));

    // Held after handling: stored at once, answered on release.
    let (release, released) = tokio::sync::watch::channel(false);
    kube.intercept(move |call| {
        if call.method != "PATCH" {
            return Hold::Pass;
        }
        let mut released = released.clone();
        Hold::After(Box::pin(async move {
            let _ = released.wait_for(|r| *r).await;
        }))
    });
    let write = tokio::spawn({
        let api = api.clone();
        async move { write_status(&api, 6).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!write.is_finished(), "held");
    assert_eq!(stored_corrections(&kube), json!(6), "stored while held");
    release.send_replace(true);
    assert_eq!(write.await.unwrap(), Ok(()));
}
