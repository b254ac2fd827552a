//! End to end on a real cluster: installs the CRDs into the cluster of
//! `KUBECONFIG`, runs the operator (in this process), and exercises Sigma,
//! Grafana, Dremio and Snowflake through the emulators on the host.
//!
//! Runs only with `GRANT_OPERATOR_E2E=1` (it changes the cluster: CRDs and a
//! throwaway namespace); otherwise it prints why it skipped. On kind:
//! `.ci/e2e` (creates the cluster if needed, then runs this test).

mod support;

use std::sync::Arc;
use std::time::Duration;

use grant_operator::api::{
    DremioGrant, GrafanaGrant, GrafanaPermission, GrafanaPermissionsApi, GrantProvider, SigmaGrant,
    SigmaPermission, SnowflakeGrant, SnowflakeGranteeType, SnowflakeGrantsApi, all_crds,
};
use grant_operator::controller::Config;
use grant_operator::metrics::Metrics;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use support::dremio::{DremioEmulator, GrantRecord, GranteeType};
use support::grafana::{GrafanaEmulator, Grantee, Level};
use support::sigma::SigmaEmulator;
use support::snowflake::SnowflakeEmulator;
use support::*;

async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Creates a Secret holding `data` in `namespace`.
async fn create_secret(client: &kube::Client, namespace: &str, name: &str, data: &[(&str, &str)]) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(key, value)| (key.to_string(), ByteString(value.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

fn reason_of(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> Option<String> {
    conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.reason.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_on_a_real_cluster() {
    if std::env::var("GRANT_OPERATOR_E2E").as_deref() != Ok("1") {
        println!(
            "e2e skipped: set GRANT_OPERATOR_E2E=1 and point KUBECONFIG at a disposable cluster \
             (for example `.ci/e2e`, which uses kind) to run it"
        );
        return;
    }
    grant_operator::install_crypto_provider();
    let client = kube::Client::try_default()
        .await
        .expect("GRANT_OPERATOR_E2E=1 needs a cluster in KUBECONFIG");

    // CRDs, by server-side apply, and wait until they are served.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in all_crds() {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(
            &name,
            &PatchParams::apply("grant-operator-e2e").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|error| panic!("the API server refused CRD {name}: {error}"));
        tokio::time::timeout(
            Duration::from_secs(60),
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .expect("CRD established in time")
        .unwrap();
    }

    // A throwaway namespace.
    let namespace = format!("grant-operator-e2e-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(namespace.clone()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await
        .unwrap();

    // The emulator runs on the host; the operator runs here too, so it reaches it on loopback.
    let sigma = SigmaEmulator::start().await;
    sigma.add_client(CLIENT_ID, CLIENT_SECRET);
    sigma.add_connection(CONNECTION);
    let jane = sigma.add_member("jane@example.com");

    create_secret(
        &client,
        &namespace,
        "sigma-api",
        &[("client-id", CLIENT_ID), ("client-secret", CLIENT_SECRET)],
    )
    .await;
    let providers: Api<GrantProvider> = Api::namespaced(client.clone(), &namespace);
    let provider = support::sigma_provider(&namespace, "sigma-prod", &sigma.url(), "sigma-api");
    providers
        .create(&PostParams::default(), &provider)
        .await
        .unwrap();

    let grants: Api<SigmaGrant> = Api::namespaced(client.clone(), &namespace);
    let mut grant = sigma_grant(
        "readers",
        vec![member("jane@example.com", SigmaPermission::Usage)],
    );
    grant.metadata.namespace = Some(namespace.clone());
    grant.spec.policy.sync_interval = Some("2s".into());
    grants.create(&PostParams::default(), &grant).await.unwrap();

    // The API server refuses an invalid manifest at apply time (CEL one-of).
    let mut invalid = serde_json::to_value(&grant).unwrap();
    invalid["metadata"]["name"] = "invalid".into();
    invalid["spec"]["grants"] = serde_json::json!([{"permission": "usage"}]);
    let refused = grants
        .create(
            &PostParams::default(),
            &serde_json::from_value(invalid).unwrap(),
        )
        .await
        .expect_err("the CEL rule refuses a grant with neither member nor team");
    assert!(
        refused
            .to_string()
            .contains("exactly one of member or team"),
        "{refused}"
    );

    // Run the operator against the cluster, watching only the test namespace.
    let config = Config {
        namespace: Some(namespace.clone()),
        vendor_retry: fast_retries(),
        ..Config::default()
    };
    let operator = RunningOperator::start(client.clone(), config, Arc::new(Metrics::new()));

    eventually("provider Authenticated", async || {
        let provider = providers.get("sigma-prod").await.ok()?;
        (reason_of(&provider.status?.conditions)? == "Authenticated").then_some(())
    })
    .await;
    let status = eventually("grant Synced", async || {
        let grant = grants.get("readers").await.ok()?;
        let status = grant.status?;
        (reason_of(&status.conditions)? == "Synced").then_some(status)
    })
    .await;
    assert_eq!(status.grants[0].grantee, format!("member:{jane}"));
    assert_eq!(sigma.grants(CONNECTION).len(), 1);

    // Drift repaired by the periodic sync.
    let id = sigma.grants(CONNECTION)[0].grant_id.clone();
    sigma.delete_grant_directly(CONNECTION, &id);
    eventually("drift repaired", async || {
        (sigma.grants(CONNECTION).len() == 1).then_some(())
    })
    .await;

    // Deleting the resource revokes through the finalizer.
    grants
        .delete("readers", &DeleteParams::default())
        .await
        .unwrap();
    eventually("revoked and released", async || {
        let gone = grants.get_opt("readers").await.ok()?.is_none();
        (gone && sigma.grants(CONNECTION).is_empty()).then_some(())
    })
    .await;

    // Every Sigma request so far, as Sigma's own definition shapes it.
    support::conformance::assert_conform("e2e sigma", &sigma.journal(), &[]);

    grafana_on_the_cluster(&client, &namespace).await;
    dremio_on_the_cluster(&client, &namespace).await;
    snowflake_on_the_cluster(&client, &namespace).await;

    operator.stop(Duration::from_secs(20)).await.unwrap();
    namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
        .unwrap();
}

/// Grafana through the running operator: a provider on `Auto` against an
/// AccessControl-only server, a grant applied, drift repaired, revoked on delete.
async fn grafana_on_the_cluster(client: &kube::Client, namespace: &str) {
    let grafana = GrafanaEmulator::start().await;
    grafana.set_apis(false, true);
    grafana.add_token(1, GRAFANA_TOKEN);
    grafana.add_datasource(1, DATASOURCE_UID, DATASOURCE_NAME);
    let jane = grafana.add_user(1, "jane", "jane@example.com");
    let managed = |grafana: &GrafanaEmulator| -> Vec<(Grantee, Level)> {
        grafana
            .permissions(DATASOURCE_UID)
            .into_iter()
            .filter(|entry| entry.managed && !entry.inherited)
            .map(|entry| (entry.grantee, entry.permission))
            .collect()
    };

    create_secret(client, namespace, "grafana-sa", &[("token", GRAFANA_TOKEN)]).await;
    let providers: Api<GrantProvider> = Api::namespaced(client.clone(), namespace);
    let provider = grafana_provider(
        namespace,
        "grafana",
        &grafana.url(),
        "grafana-sa",
        GrafanaPermissionsApi::Auto,
    );
    providers
        .create(&PostParams::default(), &provider)
        .await
        .unwrap();

    let grants: Api<GrafanaGrant> = Api::namespaced(client.clone(), namespace);
    let mut grant = grafana_grant("sre", vec![user_login("jane", GrafanaPermission::Query)]);
    grant.metadata.namespace = Some(namespace.to_string());
    grant.spec.policy.sync_interval = Some("2s".into());

    // The API server refuses a permission naming both a user and a team.
    let mut invalid = serde_json::to_value(&grant).unwrap();
    invalid["metadata"]["name"] = "invalid".into();
    invalid["spec"]["permissions"] = serde_json::json!([
        {"user": {"login": "jane"}, "team": {"name": "SRE"}, "permission": "Query"}
    ]);
    let refused = grants
        .create(
            &PostParams::default(),
            &serde_json::from_value(invalid).unwrap(),
        )
        .await
        .expect_err("the CEL rule refuses a permission with both user and team");
    assert!(
        refused
            .to_string()
            .contains("exactly one of user, team or role"),
        "{refused}"
    );

    grants.create(&PostParams::default(), &grant).await.unwrap();
    eventually("Grafana provider Authenticated", async || {
        let provider = providers.get("grafana").await.ok()?;
        (reason_of(&provider.status?.conditions)? == "Authenticated").then_some(())
    })
    .await;
    let status = eventually("GrafanaGrant Synced", async || {
        let grant = grants.get("sre").await.ok()?;
        let status = grant.status?;
        (reason_of(&status.conditions)? == "Synced").then_some(status)
    })
    .await;
    assert_eq!(status.grants[0].grantee, format!("user:{jane}"));
    assert_eq!(
        status.target.unwrap().datasource_uid.as_deref(),
        Some(DATASOURCE_UID)
    );
    assert_eq!(managed(&grafana), vec![(Grantee::User(jane), Level::Query)]);

    grafana.remove_directly(DATASOURCE_UID, &Grantee::User(jane));
    eventually("Grafana drift repaired", async || {
        (managed(&grafana).len() == 1).then_some(())
    })
    .await;

    grants
        .delete("sre", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "Grafana permission revoked and resource released",
        async || {
            let gone = grants.get_opt("sre").await.ok()?.is_none();
            (gone && managed(&grafana).is_empty()).then_some(())
        },
    )
    .await;
}

/// Dremio Cloud through the running operator: a grant applied next to another
/// writer's entry, drift repaired, revoked on delete with the other entry kept.
async fn dremio_on_the_cluster(client: &kube::Client, namespace: &str) {
    let dremio = DremioEmulator::start().await;
    dremio.add_token(DREMIO_TOKEN);
    dremio.add_project(DREMIO_PROJECT);
    let object = dremio.add_object(&DREMIO_PATH, &DREMIO_PRIVILEGES);
    let jean = dremio.add_user("jeansmith", "jean@example.com");
    let owner = dremio.add_user("owner", "owner@example.com");
    let theirs = GrantRecord {
        grantee_type: GranteeType::User,
        id: owner.clone(),
        privileges: vec!["MANAGE_GRANTS".into()],
    };
    dremio.set_grants_directly(&object, vec![theirs.clone()]);
    let privileges_of = |id: &str| {
        dremio
            .grants(&object)
            .into_iter()
            .find(|entry| entry.id == id)
            .map(|entry| entry.privileges)
    };

    create_secret(client, namespace, "dremio-pat", &[("token", DREMIO_TOKEN)]).await;
    let providers: Api<GrantProvider> = Api::namespaced(client.clone(), namespace);
    let provider = dremio_provider(
        namespace,
        "dremio",
        &dremio.url(),
        "dremio-pat",
        Some(DREMIO_PROJECT),
    );
    providers
        .create(&PostParams::default(), &provider)
        .await
        .unwrap();

    let grants: Api<DremioGrant> = Api::namespaced(client.clone(), namespace);
    let mut grant = dremio_grant("zips", vec![dremio_user("jeansmith", &["SELECT"])]);
    grant.metadata.namespace = Some(namespace.to_string());
    grant.spec.policy.sync_interval = Some("2s".into());
    grants.create(&PostParams::default(), &grant).await.unwrap();
    eventually("DremioGrant Synced", async || {
        let grant = grants.get("zips").await.ok()?;
        (reason_of(&grant.status?.conditions)? == "Synced").then_some(())
    })
    .await;
    assert_eq!(privileges_of(&jean), Some(vec!["SELECT".to_string()]));
    assert_eq!(privileges_of(&owner), Some(theirs.privileges.clone()));

    dremio.set_grants_directly(&object, vec![theirs.clone()]);
    eventually("Dremio drift repaired", async || {
        privileges_of(&jean).map(|_| ())
    })
    .await;

    grants
        .delete("zips", &DeleteParams::default())
        .await
        .unwrap();
    eventually("Dremio grant revoked and resource released", async || {
        let gone = grants.get_opt("zips").await.ok()?.is_none();
        (gone && privileges_of(&jean).is_none()).then_some(())
    })
    .await;
    assert_eq!(
        privileges_of(&owner),
        Some(theirs.privileges),
        "the other entry kept"
    );
}

/// Snowflake through the running operator: an encrypted key pair, a privilege
/// with the grant option on a schema, drift repaired, revoked on delete with the
/// role's other grants kept.
async fn snowflake_on_the_cluster(client: &kube::Client, namespace: &str) {
    let snowflake = SnowflakeEmulator::start().await;
    seed_snowflake(&snowflake);
    snowflake.grant_direct("ROLE", "ANALYST", "DATABASE", "SALES", "USAGE", false);
    create_secret(
        client,
        namespace,
        "snowflake-key",
        &[
            ("private-key", SNOWFLAKE_ENCRYPTED_KEY),
            ("passphrase", SNOWFLAKE_PASSPHRASE.trim()),
        ],
    )
    .await;
    let providers: Api<GrantProvider> = Api::namespaced(client.clone(), namespace);
    let provider = snowflake_provider(
        namespace,
        "snowflake",
        &snowflake.url(),
        "snowflake-key",
        SnowflakeLogin::EncryptedKeyPair,
        SnowflakeGrantsApi::RoleGrants,
    );
    providers
        .create(&PostParams::default(), &provider)
        .await
        .unwrap();

    let grants: Api<SnowflakeGrant> = Api::namespaced(client.clone(), namespace);
    let mut grant = snowflake_grant(
        "public",
        (SnowflakeGranteeType::Role, "analyst"),
        target_securable("SCHEMA", "sales.public"),
        &["USAGE"],
        true,
    );
    grant.metadata.namespace = Some(namespace.to_string());
    grant.spec.policy.sync_interval = Some("2s".into());
    grants.create(&PostParams::default(), &grant).await.unwrap();
    eventually("SnowflakeGrant Synced", async || {
        let grant = grants.get("public").await.ok()?;
        (reason_of(&grant.status?.conditions)? == "Synced").then_some(())
    })
    .await;
    let schema_usage = (
        "SCHEMA SALES.PUBLIC".to_string(),
        "USAGE WITH GRANT OPTION".to_string(),
    );
    let database_usage = ("DATABASE SALES".to_string(), "USAGE".to_string());
    assert_eq!(
        snowflake.live("ROLE", "ANALYST"),
        vec![database_usage.clone(), schema_usage.clone()]
    );

    snowflake.revoke_direct("ROLE", "ANALYST", "SCHEMA", "SALES.PUBLIC", "USAGE");
    eventually("Snowflake drift repaired", async || {
        snowflake
            .live("ROLE", "ANALYST")
            .contains(&schema_usage)
            .then_some(())
    })
    .await;

    grants
        .delete("public", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "Snowflake grant revoked and resource released",
        async || {
            let gone = grants.get_opt("public").await.ok()?.is_none();
            (gone && snowflake.live("ROLE", "ANALYST") == vec![database_usage.clone()])
                .then_some(())
        },
    )
    .await;
    // Every Snowflake request, as Snowflake's own definitions shape it.
    support::conformance::assert_conform("e2e snowflake", &[], &snowflake.journal());
}
