//! Unit tests of the grant controller: `lastSyncTime` kept in a steady state,
//! and a sync planning from the rows its last write left.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api::{GrantPolicy, GrantRow, GrantState, GrantStatus};
use crate::controller::units::{Index, Watched, rows_hash};
use crate::controller::{Config, Context};

use super::GrantContext;
use super::members::{caught_up, status_rows};
use super::write::keep_last_sync_time;
use crate::api::{ProviderRef, SigmaGrant, SigmaGrantSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::watcher;

fn grant(rows: Vec<GrantRow>) -> SigmaGrant {
    let mut grant = SigmaGrant::new(
        "g",
        SigmaGrantSpec {
            policy: GrantPolicy {
                provider_ref: ProviderRef {
                    kind: Default::default(),
                    name: "p".into(),
                },
                mode: Default::default(),
                deletion_policy: Default::default(),
                management_policy: Default::default(),
                suspend: false,
                sync_interval: None,
                expires_at: None,
            },
            connection_id: "c".into(),
            grants: Vec::new(),
        },
    );
    grant.metadata.namespace = Some("ns".into());
    grant.status = Some(GrantStatus {
        grants: rows,
        ..GrantStatus::default()
    });
    grant
}

fn row(grantee: &str) -> GrantRow {
    GrantRow {
        grantee: grantee.into(),
        name: None,
        permission: "usage".into(),
        vendor_id: Some("id".into()),
        state: GrantState::Applied,
        message: String::new(),
    }
}

#[test]
fn an_unchanged_status_keeps_its_last_sync_time_for_ten_intervals() {
    let at = |seconds: i64| Time(Timestamp::from_second(seconds).unwrap());
    let mut object = grant(vec![row("member:a")]);
    if let Some(status) = object.status.as_mut() {
        status.last_sync_time = Some(at(1_000));
    }
    let interval = Duration::from_secs(600);
    let next = |rows, synced| GrantStatus {
        grants: rows,
        last_sync_time: Some(at(synced)),
        ..GrantStatus::default()
    };

    // Only lastSyncTime would change: nothing to write.
    let mut same = next(vec![row("member:a")], 1_060);
    keep_last_sync_time(&object, &mut same, at(1_060).0, interval);
    assert_eq!(object.status.as_ref(), Some(&same));

    // Ten intervals on, it is refreshed.
    let mut old = next(vec![row("member:a")], 1_600);
    keep_last_sync_time(&object, &mut old, at(1_600).0, interval);
    assert_eq!(old.last_sync_time, Some(at(1_600)));

    // Anything else changed: written, with the new time.
    let mut changed = next(vec![row("member:a"), row("member:b")], 1_060);
    keep_last_sync_time(&object, &mut changed, at(1_060).0, interval);
    assert_eq!(changed.last_sync_time, Some(at(1_060)));
}

type Handle =
    tower_test::mock::Handle<http::Request<kube::client::Body>, http::Response<kube::client::Body>>;

/// A grant context over `store`, with a mock API server behind it.
fn context(store: Store<Watched<SigmaGrant>>) -> (GrantContext<SigmaGrant>, Handle) {
    let (service, handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    let client = kube::Client::new(service, "default");
    let stores = crate::controller::Stores {
        providers: kube::runtime::reflector::store().0,
        cluster_providers: kube::runtime::reflector::store().0,
        secrets: kube::runtime::reflector::store().0,
        namespaces: kube::runtime::reflector::store().0,
    };
    let (context, _) = Context::new(
        client,
        Config::default(),
        stores,
        Arc::new(crate::metrics::Metrics::new()),
        Arc::new(crate::controller::SystemClock),
    );
    let (wake, _) = tokio::sync::mpsc::unbounded_channel();
    (
        GrantContext::new(Arc::new(context), store, Arc::new(Index::default()), wake),
        handle,
    )
}

#[tokio::test(start_paused = true)]
async fn a_sync_plans_from_the_rows_its_last_write_left() {
    let (store, mut writer) = kube::runtime::reflector::store::<Watched<SigmaGrant>>();
    writer.apply_watcher_event(&watcher::Event::Apply(Watched {
        object: Ok(Arc::new(grant(vec![]))),
    }));
    let written = vec![row("member:a")];
    let expected = rows_hash(&written);
    let oref = ObjectRef::new("g").within("ns");
    let late = grant(written);
    let update = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        writer.apply_watcher_event(&watcher::Event::Apply(Watched {
            object: Ok(Arc::new(late)),
        }));
        writer
    });
    // The cache catches up within the short wait: no API call.
    let (cx, _handle) = context(store.clone());
    let seen = caught_up(&cx, &oref, expected).await.unwrap().unwrap();
    assert_eq!(status_rows(seen.as_ref()), vec![row("member:a")]);
    let mut writer = update.await.unwrap();

    // The cache does not catch up: the resource is read from the API server,
    // whose rows win (here someone else's write since).
    writer.apply_watcher_event(&watcher::Event::Apply(Watched {
        object: Ok(Arc::new(grant(vec![row("member:b")]))),
    }));
    let (cx, mut handle) = context(store.clone());
    let server = tokio::spawn(async move {
        let (request, send) = handle.next_request().await.expect("a GET");
        assert_eq!(request.method(), http::Method::GET);
        assert_eq!(
            request.uri().path(),
            "/apis/grantoperator.dev/v1alpha1/namespaces/ns/sigmagrants/g"
        );
        let body = serde_json::to_vec(&grant(vec![row("member:c")])).unwrap();
        send.send_response(
            http::Response::builder()
                .body(kube::client::Body::from(body))
                .unwrap(),
        );
    });
    let seen = caught_up(&cx, &oref, expected).await.unwrap().unwrap();
    assert_eq!(status_rows(seen.as_ref()), vec![row("member:c")]);
    server.await.unwrap();
}
