//! The Kubernetes side of the grant reconciler against kube's `tower_test`
//! mock service: each API call is checked as it arrives, in order.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use grant_operator::api::*;
use grant_operator::controller::grant::{self, GrantContext};
use grant_operator::controller::units::{Index, Watched};
use grant_operator::controller::{Config, Context, Stores};
use grant_operator::metrics::Metrics;
use http::{Request, Response};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::PartialObjectMeta;
use kube::client::Body;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use serde_json::{Value, json};
use support::sigma::SigmaEmulator;
use support::*;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A resource as the grant watch holds it.
fn readable(grant: SigmaGrant) -> Watched<SigmaGrant> {
    Watched {
        object: Ok(Arc::new(grant)),
    }
}

fn writer_with<K>(objects: Vec<K>) -> (reflector::Store<K>, Writer<K>)
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let (store, mut writer) = reflector::store::<K>();
    for object in objects {
        writer.apply_watcher_event(&watcher::Event::Apply(object));
    }
    (store, writer)
}

struct Setup {
    sigma: SigmaEmulator,
    grants: Arc<GrantContext<SigmaGrant>>,
    _writers: (
        Writer<GrantProvider>,
        Writer<PartialObjectMeta<Secret>>,
        Writer<Watched<SigmaGrant>>,
    ),
}

/// Like the harness, the setup checks its Sigma requests against Sigma's own
/// definition when a test ends.
impl Drop for Setup {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            support::conformance::assert_conform(
                &support::conformance::scenario(),
                &self.sigma.journal(),
                &[],
            );
        }
    }
}

async fn setup(grant: &SigmaGrant, client: kube::Client) -> Setup {
    grant_operator::install_crypto_provider();
    let sigma = SigmaEmulator::start().await;
    sigma.add_client(CLIENT_ID, CLIENT_SECRET);
    sigma.add_connection(CONNECTION);

    let mut provider = support::sigma_provider(NS, "sigma-prod", &sigma.url(), "sigma-api");
    provider.metadata.generation = Some(1);
    provider.status = Some(ProviderStatus {
        observed_generation: Some(1),
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: "Authenticated".into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: Time(Timestamp::now()),
        }],
    });
    let secret_meta = PartialObjectMeta::<Secret> {
        metadata: ObjectMeta {
            name: Some("sigma-api".into()),
            namespace: Some(NS.into()),
            resource_version: Some("1".into()),
            ..ObjectMeta::default()
        },
        ..Default::default()
    };
    let (providers, provider_writer) = writer_with(vec![provider]);
    let (secrets, secret_writer) = writer_with(vec![secret_meta]);
    let (grants, grant_writer) = writer_with(vec![readable(grant.clone())]);
    let index = Arc::new(Index::<SigmaGrant>::default());
    index.apply(&watcher::Event::Apply(readable(grant.clone())));
    let stores = Stores {
        providers,
        cluster_providers: reflector::store::<ClusterGrantProvider>().0,
        secrets,
        namespaces: reflector::store::<PartialObjectMeta<Namespace>>().0,
    };
    let config = Config {
        vendor_retry: fast_retries(),
        ..Config::default()
    };
    let (context, _rechecks) = Context::new(
        client,
        config,
        stores,
        Arc::new(Metrics::new()),
        Arc::new(ManualClock::new()),
    );
    let (wake, _) = tokio::sync::mpsc::unbounded_channel();
    let grants = Arc::new(GrantContext::new(Arc::new(context), grants, index, wake));
    Setup {
        sigma,
        grants,
        _writers: (provider_writer, secret_writer, grant_writer),
    }
}

impl Setup {
    /// The same context, with a watch cache that holds `grant` as it is now.
    fn holding(&self, grant: &SigmaGrant) -> Arc<GrantContext<SigmaGrant>> {
        let (store, mut writer) = reflector::store::<Watched<SigmaGrant>>();
        writer.apply_watcher_event(&watcher::Event::Apply(readable(grant.clone())));
        // The store reads stay valid after the writer is dropped.
        drop(writer);
        let (wake, _) = tokio::sync::mpsc::unbounded_channel();
        Arc::new(GrantContext::new(
            self.grants.shared.clone(),
            store,
            self.grants.index.clone(),
            wake,
        ))
    }
}

/// Reconciles as the controller would: a reconcile that queues a sync of its
/// target is run again once the sync (a task of its own) is done.
async fn reconcile(
    object: Arc<Watched<SigmaGrant>>,
    cx: Arc<GrantContext<SigmaGrant>>,
) -> Result<kube::runtime::controller::Action, grant_operator::controller::Error> {
    loop {
        match grant::reconcile(object.clone(), cx.clone()).await {
            Err(grant_operator::controller::Error::Queued) => cx.syncs.idle().await,
            other => return other,
        }
    }
}

fn respond(send: tower_test::mock::SendResponse<Response<Body>>, status: u16, body: &Value) {
    send.send_response(
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    );
}

async fn body_json(request: Request<Body>) -> Value {
    let bytes = http_body_util::BodyExt::collect(request.into_body())
        .await
        .unwrap()
        .to_bytes();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

fn secret() -> Value {
    let encode =
        |text: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text);
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sigma-api", "namespace": NS, "resourceVersion": "1"},
           "data": {"client-id": encode(CLIENT_ID), "client-secret": encode(CLIENT_SECRET)}})
}

async fn next(
    handle: &mut Handle,
) -> (
    Request<Body>,
    tower_test::mock::SendResponse<Response<Body>>,
) {
    tokio::time::timeout(Duration::from_secs(10), handle.next_request())
        .await
        .expect("an API call")
        .expect("the client is alive")
}

#[tokio::test]
async fn the_first_reconcile_only_adds_the_finalizer() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let mut grant = sigma_grant("readers", vec![member_id("m1", SigmaPermission::Usage)]);
    grant.metadata.uid = Some("uid-1".into());
    grant.metadata.resource_version = Some("5".into());
    let setup = setup(&grant, client).await;
    let object = Arc::new(readable(grant.clone()));

    let reconcile = tokio::spawn(grant::reconcile(object, setup.grants.clone()));
    let (request, send) = next(&mut handle).await;
    assert_eq!(request.method(), "PATCH");
    assert_eq!(
        request.uri().path(),
        "/apis/grantoperator.dev/v1alpha1/namespaces/analytics/sigmagrants/readers"
    );
    assert_eq!(
        request.headers()["content-type"],
        "application/json-patch+json"
    );
    let patch = body_json(request).await;
    assert!(
        patch.to_string().contains("grantoperator.dev/revoke"),
        "{patch}"
    );
    let mut with_finalizer = serde_json::to_value(&grant).unwrap();
    with_finalizer["metadata"]["finalizers"] = json!(["grantoperator.dev/revoke"]);
    respond(send, 200, &with_finalizer);

    reconcile.await.unwrap().unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), handle.next_request())
            .await
            .is_err(),
        "no other API call"
    );
    assert!(
        setup.sigma.calls().is_empty(),
        "no vendor call before the finalizer is in place"
    );
}

#[tokio::test]
async fn apply_writes_status_by_server_side_apply_with_only_status() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let mut grant = sigma_grant("readers", vec![member_id("m1", SigmaPermission::Usage)]);
    grant.metadata.finalizers = Some(vec![FINALIZER.into()]);
    grant.metadata.generation = Some(3);
    grant.metadata.resource_version = Some("5".into());
    let setup = setup(&grant, client).await;
    let member = setup.sigma.add_member("jane@example.com");
    grant.spec.grants = vec![member_id(&member, SigmaPermission::Usage)];
    let grants = setup.holding(&grant);
    let mut reconcile = tokio::spawn(reconcile(Arc::new(readable(grant.clone())), grants));

    let mut statuses = Vec::new();
    let mut vendor_grants = Vec::new();
    let mut events = 0;
    let result = loop {
        let (request, send) = tokio::select! {
            result = &mut reconcile => break result,
            request = next(&mut handle) => request,
        };
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or_default().to_string();
        match (request.method().as_str(), path.as_str()) {
            (
                "PATCH",
                "/apis/grantoperator.dev/v1alpha1/namespaces/analytics/sigmagrants/readers/status",
            ) => {
                assert!(query.contains("fieldManager=grant-operator"), "{query}");
                if request.headers()["content-type"] == "application/merge-patch+json" {
                    // A condition alone (a reconcile's Progressing): never the rows,
                    // and only over the status its copy was made from.
                    let body = body_json(request).await;
                    assert_eq!(body["metadata"]["resourceVersion"], "5", "{body}");
                    assert!(body["status"].get("grants").is_none(), "{body}");
                    vendor_grants.push(setup.sigma.grants(CONNECTION).len());
                    statuses.push(body["status"].clone());
                    let mut answer = serde_json::to_value(&grant).unwrap();
                    answer["status"] = body["status"].clone();
                    respond(send, 200, &answer);
                    continue;
                }
                assert_eq!(
                    request.headers()["content-type"],
                    "application/apply-patch+yaml"
                );
                assert!(query.contains("force=true"), "{query}");
                let body = body_json(request).await;
                // What the vendor held when this status write arrived.
                vendor_grants.push(setup.sigma.grants(CONNECTION).len());
                let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
                assert_eq!(
                    keys,
                    ["apiVersion", "kind", "status"],
                    "only status is applied"
                );
                assert_eq!(body["apiVersion"], "grantoperator.dev/v1alpha1");
                assert_eq!(body["kind"], "SigmaGrant");
                let mut answer = serde_json::to_value(&grant).unwrap();
                answer["status"] = body["status"].clone();
                statuses.push(body["status"].clone());
                respond(send, 200, &answer);
            }
            ("GET", "/api/v1/namespaces/analytics/secrets/sigma-api") => {
                respond(send, 200, &secret())
            }
            ("POST", "/apis/events.k8s.io/v1/namespaces/analytics/events") => {
                events += 1;
                let body = body_json(request).await;
                respond(send, 201, &body);
            }
            other => panic!("unexpected call {other:?}"),
        }
    };
    result.unwrap().unwrap();
    assert_eq!(
        statuses.len(),
        3,
        "Progressing, the intent, then the sync result: {statuses:?}"
    );
    assert_eq!(statuses[0]["conditions"][0]["reason"], "Progressing");
    assert_eq!(statuses[0]["conditions"][0]["status"], "Unknown");
    // Write-ahead: the grant is recorded as the resource's before it is made.
    let intent = &statuses[1];
    assert_eq!(intent["grants"][0]["grantee"], format!("member:{member}"));
    assert_eq!(intent["grants"][0]["state"], "Pending");
    assert!(
        intent["grants"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("granting"),
        "{intent}"
    );
    assert_eq!(
        vendor_grants,
        [0, 0, 1],
        "the intent is written before the vendor write, the result after"
    );
    let done = &statuses[2];
    assert_eq!(done["observedGeneration"], 3);
    assert_eq!(done["conditions"][0]["reason"], "Synced");
    assert_eq!(done["conditions"][0]["observedGeneration"], 3);
    assert_eq!(done["grants"][0]["grantee"], format!("member:{member}"));
    assert_eq!(done["grants"][0]["state"], "Applied");
    assert_eq!(done["target"]["connectionId"], CONNECTION);
    assert!(done["lastSyncTime"].is_string());
    assert!(events >= 1, "a Granted event");
    assert_eq!(setup.sigma.grants(CONNECTION).len(), 1);
}

#[tokio::test]
async fn deletion_revokes_at_the_vendor_before_the_finalizer_goes() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let grant = sigma_grant("readers", vec![]);
    let setup = setup(&grant, client).await;
    let member = setup.sigma.add_member("jane@example.com");
    let grant_id = setup.sigma.seed_grant(
        CONNECTION,
        support::sigma::Grantee::Member(member.clone()),
        "usage",
    );
    let mut grant = grant;
    grant.spec.grants = vec![member_id(&member, SigmaPermission::Usage)];
    grant.metadata.finalizers = Some(vec![FINALIZER.into()]);
    grant.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    grant.status = Some(GrantStatus {
        grants: vec![GrantRow {
            grantee: format!("member:{member}"),
            name: None,
            permission: "usage".into(),
            vendor_id: Some(grant_id),
            state: GrantState::Applied,
            message: String::new(),
        }],
        ..GrantStatus::default()
    });
    // The store sees the deleting object (as the watch would).
    let grants = setup.holding(&grant);

    let order = Arc::new(Mutex::new(Vec::<String>::new()));
    let reconcile = tokio::spawn(reconcile(Arc::new(readable(grant.clone())), grants));
    loop {
        let (request, send) = next(&mut handle).await;
        let path = request.uri().path().to_string();
        match (request.method().as_str(), path.as_str()) {
            ("GET", "/api/v1/namespaces/analytics/secrets/sigma-api") => {
                respond(send, 200, &secret())
            }
            (
                "PATCH",
                "/apis/grantoperator.dev/v1alpha1/namespaces/analytics/sigmagrants/readers/status",
            ) => {
                let body = body_json(request).await;
                assert_eq!(body["status"]["conditions"][0]["reason"], "Deleting");
                assert!(
                    body["status"].get("grants").is_none(),
                    "no grant left: {body}"
                );
                order.lock().unwrap().push("status".into());
                respond(send, 200, &serde_json::to_value(&grant).unwrap());
            }
            ("POST", "/apis/events.k8s.io/v1/namespaces/analytics/events") => {
                let body = body_json(request).await;
                respond(send, 201, &body);
            }
            (
                "PATCH",
                "/apis/grantoperator.dev/v1alpha1/namespaces/analytics/sigmagrants/readers",
            ) => {
                let patch = body_json(request).await;
                assert!(
                    patch.to_string().contains("remove"),
                    "finalizer removal: {patch}"
                );
                let revoked = setup.sigma.count("DELETE", "/v2/connections");
                order
                    .lock()
                    .unwrap()
                    .push(format!("finalizer removed after {revoked} revocations"));
                let mut released = serde_json::to_value(&grant).unwrap();
                released["metadata"]["finalizers"] = json!([]);
                respond(send, 200, &released);
                break;
            }
            other => panic!("unexpected call {other:?}"),
        }
    }
    reconcile.await.unwrap().unwrap();
    assert_eq!(
        *order.lock().unwrap(),
        vec![
            "status".to_string(),
            "finalizer removed after 1 revocations".to_string()
        ]
    );
    assert!(setup.sigma.grants(CONNECTION).is_empty());
}
