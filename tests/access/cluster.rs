//! `--from-cluster`: the in-memory API server served over HTTP is read and
//! nothing is written.

use super::*;

/// The in-memory API server over HTTP, a kubeconfig pointing at it, and the
/// log of the requests served over it (the binary's).
async fn serve_kube(h: &Harness) -> (PathBuf, Served) {
    let served = Served::default();
    let kubeconfig = serve_kube_logged(&h.kube, Some(served.clone())).await;
    (kubeconfig, served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_cluster_reads_the_cluster_and_writes_nothing() {
    let h = Harness::new().await;
    let jane = h.sigma.add_member("jane@example.com");
    h.sigma
        .seed_grant(CONNECTION, sigma::Grantee::Member(jane.clone()), "annotate");
    h.snowflake
        .grant_direct("ROLE", "ANALYST", "SCHEMA", "SALES.PUBLIC", "USAGE", false);
    h.sigma_api_secret();
    h.secret(NS, "snowflake-pat", &[("token", SNOWFLAKE_PAT)]);
    let providers = providers(&h);
    h.put(&providers[0]);
    h.put(&providers[3]);
    h.put(&sigma_grant(
        "readers",
        vec![member("jane@example.com", SigmaPermission::Annotate)],
    ));
    h.put(&snowflake_grant(
        "analyst-schema",
        (SnowflakeGranteeType::Role, "ANALYST"),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    ));
    let (kubeconfig, served) = serve_kube(&h).await;
    let run = cli(&[
        "access",
        "--from-cluster",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "-o",
        "json",
    ])
    .await;
    let report = run.json();
    no_secret_in(&run);
    let rows = rows_of(&report);
    check(
        find(
            &rows,
            "sigma",
            CONNECTION,
            &format!("member:{jane}"),
            "annotate",
        ),
        "managed",
        &["readers"],
    );
    check(
        find(
            &rows,
            "snowflake",
            "SCHEMA SALES.PUBLIC",
            "ROLE:ANALYST",
            "USAGE",
        ),
        "managed",
        &["analyst-schema"],
    );
    assert_eq!(rows.len(), 2, "{report:#}");
    // Read-only: lists of the kinds, and the Secrets the providers need, one by one.
    let calls = served.lock().unwrap().clone();
    assert!(
        calls.iter().all(|call| call.0 == "GET"),
        "only reads: {:?}",
        calls
            .iter()
            .map(|c| format!("{} {}", c.0, c.1))
            .collect::<Vec<_>>()
    );
    for path in [
        "/apis/grantoperator.dev/v1alpha1/grantproviders",
        "/apis/grantoperator.dev/v1alpha1/sigmagrants",
        "/apis/grantoperator.dev/v1alpha1/snowflakegrants",
        &format!("/api/v1/namespaces/{NS}/secrets/sigma-api"),
        &format!("/api/v1/namespaces/{NS}/secrets/snowflake-pat"),
    ] {
        assert!(
            calls.iter().any(|call| call.1 == path),
            "{path} read: {:?}",
            calls.iter().map(|c| &c.1).collect::<Vec<_>>()
        );
    }
    assert!(
        !calls.iter().any(|call| call.1.ends_with("/secrets")),
        "Secrets are never listed: {:?}",
        calls.iter().map(|c| &c.1).collect::<Vec<_>>()
    );

    // -f and --from-cluster are one or the other.
    let both = cli(&["access", "--from-cluster", "-f", "x"]).await;
    assert_eq!(both.code, 2, "a usage error: {}", both.stderr);
}
