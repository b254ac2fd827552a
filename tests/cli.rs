//! `grant-operator plan` and `apply` as a user runs them: the real binary, on
//! manifests in a folder, against the strict emulators of every implemented
//! vendor. Checks the exit codes, the JSON shape, that a second plan after
//! `apply` is empty, and that no Secret value is ever printed.

mod support;

use std::path::{Path, PathBuf};

use grant_operator::api::{GrafanaPermission, SigmaPermission, SnowflakeGranteeType};
use serde_json::Value;
use support::binary::*;
use support::*;

/// A folder of manifests for all three vendors of the harness; Grafana's token
/// is left out of the manifests (it comes from `--secret ...=env:`).
fn manifests(h: &Harness, dir: &Path, jane_permission: SigmaPermission) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("providers.yaml"),
        [
            yaml(&manifest_providers(
                h,
                "snowflake-key",
                SnowflakeLogin::EncryptedKeyPair,
            )),
            yaml(&[
                secret(
                    "sigma-api",
                    &[("client-id", CLIENT_ID), ("client-secret", CLIENT_SECRET)],
                ),
                secret("dremio-pat", &[("token", DREMIO_TOKEN)]),
                secret(
                    "snowflake-key",
                    &[
                        ("private-key", SNOWFLAKE_ENCRYPTED_KEY),
                        ("passphrase", SNOWFLAKE_PASSPHRASE.trim()),
                    ],
                ),
            ]),
        ]
        .join("---\n"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("grants")).unwrap();
    std::fs::write(
        dir.join("grants/sigma.yaml"),
        yaml(&[sigma_grant(
            "readers",
            vec![member("jane@example.com", jane_permission)],
        )]),
    )
    .unwrap();
    std::fs::write(
        dir.join("grants/grafana.yaml"),
        yaml(&[grafana_grant(
            "sre",
            vec![user_login("jane", GrafanaPermission::Query)],
        )]),
    )
    .unwrap();
    std::fs::write(
        dir.join("grants/snowflake.yaml"),
        yaml(&[snowflake_grant(
            "analyst-schema",
            (SnowflakeGranteeType::Role, "ANALYST"),
            target_securable("SCHEMA", "SALES.PUBLIC"),
            &["USAGE"],
            false,
        )]),
    )
    .unwrap();
    std::fs::write(
        dir.join("grants/dremio.yml"),
        yaml(&[dremio_grant(
            "zips",
            vec![dremio_user("jeansmith", &["SELECT"])],
        )]),
    )
    .unwrap();
    dir.to_path_buf()
}

fn no_secret_in(run: &Run) {
    let key_line = SNOWFLAKE_ENCRYPTED_KEY.lines().nth(1).unwrap();
    for secret in [
        CLIENT_SECRET,
        GRAFANA_TOKEN,
        DREMIO_TOKEN,
        SNOWFLAKE_PASSPHRASE.trim(),
        key_line,
    ] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a Secret value was printed"
        );
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("grant-operator-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_apply_plan_round_trip_with_exit_codes() {
    let h = Harness::new().await;
    let jane = h.sigma.add_member("jane@example.com");
    let grafana_jane = h.grafana.add_user(1, "jane", "jane@example.com");
    let jean = h.dremio.add_user("jeansmith", "jean@example.com");
    let dir = manifests(&h, &temp_dir("round-trip"), SigmaPermission::Annotate);
    let dir = dir.to_str().unwrap();
    let grafana_secret = format!("{NS}/grafana-sa/token=env:GRAFANA_TOKEN_FROM_ENV");

    // plan: changes -> exit 2, nothing written.
    let plan = cli(&["plan", "-f", dir, "--secret", &grafana_secret, "-o", "json"]).await;
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    no_secret_in(&plan);
    let report: Value = serde_json::from_str(&plan.stdout).unwrap();
    let units = report["units"].as_array().unwrap();
    assert_eq!(units.len(), 4, "{report:#}");
    let snowflake = units
        .iter()
        .find(|u| u["kind"] == "SnowflakeGrant")
        .unwrap();
    assert_eq!(
        snowflake["changes"],
        serde_json::json!([{"action": "grant", "grantee": "SCHEMA SALES.PUBLIC", "from": [], "to": ["USAGE"]}])
    );
    let sigma = units.iter().find(|u| u["kind"] == "SigmaGrant").unwrap();
    assert_eq!(sigma["provider"], format!("GrantProvider {NS}/sigma-prod"));
    assert_eq!(
        sigma["resources"],
        serde_json::json!([format!("{NS}/readers")])
    );
    assert_eq!(
        sigma["changes"],
        serde_json::json!([{"action": "grant", "grantee": format!("member:{jane}"), "name": "jane@example.com", "from": [], "to": ["annotate"]}])
    );
    // The table names people as the manifests do, beside the ids.
    let table = cli(&["plan", "-f", dir, "--secret", &grafana_secret]).await;
    assert!(
        table.stdout.contains(&format!(
            "+ grant   jane@example.com (member {jane}) annotate"
        )),
        "{}",
        table.stdout
    );
    assert!(
        table
            .stdout
            .contains(&format!("jane (user {grafana_jane})")),
        "{}",
        table.stdout
    );
    assert_eq!(sigma["resolved"]["connectionId"], CONNECTION);
    assert!(h.live().is_empty(), "plan writes nothing");
    assert!(h.grafana_live(DATASOURCE_UID).is_empty());
    assert!(h.dremio_live(&h.dremio_object).is_empty());

    // apply: writes, and prints each resource in the shape of its status.
    let apply = cli(&[
        "apply",
        "-f",
        dir,
        "--secret",
        &grafana_secret,
        "-o",
        "json",
    ])
    .await;
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    no_secret_in(&apply);
    let report: Value = serde_json::from_str(&apply.stdout).unwrap();
    for unit in report["units"].as_array().unwrap() {
        let status = &unit["results"][0]["status"];
        assert_eq!(status["conditions"][0]["reason"], "Synced", "{unit:#}");
        assert_eq!(status["grants"][0]["state"], "Applied", "{unit:#}");
        if unit["kind"] != "SnowflakeGrant" {
            assert!(status["grants"][0]["name"].is_string(), "{unit:#}");
        }
    }
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "annotate".to_string())]
    );
    assert_eq!(
        h.grafana_live(DATASOURCE_UID),
        vec![(format!("user:{grafana_jane}"), "Query".to_string())]
    );
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        vec![(format!("user:{jean}"), vec!["SELECT".to_string()])]
    );

    // plan again: nothing to do -> exit 0, and the table says so.
    let again = cli(&["plan", "-f", dir, "--secret", &grafana_secret]).await;
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(again.stdout.contains("0 to grant"), "{}", again.stdout);
    assert_eq!(
        again.stdout.matches("no change").count(),
        4,
        "{}",
        again.stdout
    );

    // A lower level in the files changes nothing in Additive mode (the files do
    // not say who holds the higher one); Authoritative makes it exact.
    manifests(&h, Path::new(dir), SigmaPermission::Usage);
    let additive = cli(&["plan", "-f", dir, "--secret", &grafana_secret]).await;
    assert_eq!(additive.code, 0, "{}", additive.stdout);
    let mut exact = sigma_grant(
        "readers",
        vec![member("jane@example.com", SigmaPermission::Usage)],
    );
    exact.spec.policy.mode = grant_operator::api::Mode::Authoritative;
    std::fs::write(Path::new(dir).join("grants/sigma.yaml"), yaml(&[exact])).unwrap();
    let lower = cli(&["plan", "-f", dir, "--secret", &grafana_secret]).await;
    assert_eq!(lower.code, 2);
    assert!(lower.stdout.contains("v lower"), "{}", lower.stdout);
    assert!(
        lower.stdout.contains("annotate -> usage"),
        "{}",
        lower.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problems_exit_1_and_name_their_cause() {
    let h = Harness::new().await;
    h.sigma.add_member("jane@example.com");
    h.grafana.add_user(1, "jane", "jane@example.com");
    h.dremio.add_user("jeansmith", "jean@example.com");
    let dir = manifests(&h, &temp_dir("problems"), SigmaPermission::Usage);
    let dir = dir.to_str().unwrap();

    // Grafana's Secret is in no named place: CredentialsMissing, the others still planned.
    let plan = cli(&["plan", "-f", dir]).await;
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains(&format!(
            "! CredentialsMissing: Secret {NS}/grafana-sa not found"
        )),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("+ grant"), "{}", plan.stdout);
    no_secret_in(&plan);

    // An unknown user is reported by name.
    std::fs::write(
        Path::new(dir).join("grants/sigma.yaml"),
        yaml(&[sigma_grant(
            "readers",
            vec![member("nobody@example.com", SigmaPermission::Usage)],
        )]),
    )
    .unwrap();
    let grafana_secret = format!("{NS}/grafana-sa/token=env:GRAFANA_TOKEN_FROM_ENV");
    let plan = cli(&["plan", "-f", dir, "--secret", &grafana_secret]).await;
    assert_eq!(plan.code, 1);
    assert!(
        plan.stdout
            .contains("? not found: member:nobody@example.com"),
        "{}",
        plan.stdout
    );

    // A broken manifest stops everything with its place.
    std::fs::write(Path::new(dir).join("broken.yaml"), "kind: [").unwrap();
    let plan = cli(&["plan", "-f", dir]).await;
    assert_eq!(plan.code, 1);
    assert!(plan.stderr.contains("broken.yaml"), "{}", plan.stderr);
}

#[tokio::test]
async fn the_demo_runs_to_completion_with_every_step() {
    let demo = cli(&["demo"]).await;
    assert_eq!(demo.code, 0, "{}{}", demo.stdout, demo.stderr);
    let out = &demo.stdout;
    for expected in [
        "=== 1. plan",
        "=== 2. apply",
        "=== 3. drift",
        "=== 4. delete a resource",
        "=== 5. an unknown user",
        "Plan: 8 to grant",
        "analytics/finance-readers: Deleting",
        "v lower",
        "- revoke",
        "? not found: member:jane.doe@exmaple.com",
        "To run the real operator",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // Step 3 repairs exactly the two grants removed behind the operator's back.
    let drift = out
        .split("=== 3. drift")
        .nth(1)
        .and_then(|rest| rest.split("=== 4.").next())
        .unwrap_or_default();
    assert!(drift.contains("Applied: 2 to grant"), "{drift}");
    // Nothing secret is shown, not even the sandboxes' own credentials.
    for secret in [
        "demo-client-secret",
        "glsa_demo_token",
        "dremio-demo-pat",
        "snowflake-demo-pat",
    ] {
        assert!(!out.contains(secret) && !demo.stderr.contains(secret));
    }
}

#[test]
fn the_demo_manifests_are_valid_manifests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo");
    let manifests = grant_operator::cli::manifests::Manifests::load(&[dir]).unwrap();
    assert_eq!(manifests.providers.len(), 4);
    assert_eq!(manifests.secrets.len(), 4);
    assert_eq!(
        manifests.sigma.len()
            + manifests.grafana.len()
            + manifests.dremio.len()
            + manifests.snowflake.len(),
        6
    );
    assert!(manifests.skipped.is_empty() && manifests.unsupported.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_plan_shows_no_change() {
    let h = Harness::new().await;
    // Live grants nobody declared yet, on every vendor.
    let jane = h.sigma.add_member("jane@example.com");
    let finance = h.sigma.add_team("Finance");
    h.sigma
        .seed_grant(CONNECTION, sigma::Grantee::Member(jane.clone()), "annotate");
    h.sigma
        .seed_grant(CONNECTION, sigma::Grantee::Team(finance.clone()), "usage");
    let gjane = h.grafana.add_user(1, "jane", "jane@example.com");
    h.grafana.seed_permission(
        DATASOURCE_UID,
        grafana::Grantee::User(gjane),
        grafana::Level::Edit,
        true,
        false,
    );
    h.grafana.seed_permission(
        DATASOURCE_UID,
        grafana::Grantee::BuiltIn("Viewer".into()),
        grafana::Level::Query,
        true,
        false,
    );
    let jean = h.dremio.add_user("jeansmith", "jean@example.com");
    h.dremio.set_grants_directly(
        &h.dremio_object,
        vec![dremio::GrantRecord {
            grantee_type: dremio::GranteeType::User,
            id: jean.clone(),
            privileges: vec!["SELECT".into(), "ALTER".into()],
        }],
    );
    h.snowflake
        .grant_direct("ROLE", "LOADER", "SCHEMA", "SALES.PUBLIC", "USAGE", true);
    h.snowflake.grant_direct(
        "ROLE",
        "LOADER",
        "TABLE",
        "SALES.PUBLIC.ORDERS",
        "SELECT",
        false,
    );
    let dir = temp_dir("export");
    manifests(&h, &dir, SigmaPermission::Usage);
    std::fs::remove_dir_all(dir.join("grants")).unwrap();
    let providers = dir.join("providers.yaml");
    let providers = providers.to_str().unwrap();
    let grafana_secret = format!("{NS}/grafana-sa/token=env:GRAFANA_TOKEN_FROM_ENV");

    let mut exported = String::new();
    for (provider, target) in [
        ("sigma-prod", CONNECTION.to_string()),
        ("grafana", DATASOURCE_UID.to_string()),
        ("dremio", h.dremio_object.clone()),
        ("snowflake", "ROLE:LOADER".to_string()),
    ] {
        let provider = format!("{NS}/{provider}");
        let run = cli(&[
            "export",
            "-f",
            providers,
            "--provider",
            &provider,
            "--target",
            &target,
            "--secret",
            &grafana_secret,
        ])
        .await;
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        no_secret_in(&run);
        exported.push_str(&run.stdout);
    }
    assert!(exported.contains(&format!("id: {jane}")), "{exported}");
    assert!(exported.contains("role: Viewer"), "{exported}");
    assert!(exported.contains("permission: annotate"), "{exported}");
    assert!(exported.contains("withGrantOption: true"), "{exported}");
    assert!(!exported.contains("status"), "{exported}");
    // Ids come with the names the vendors list for them, as comments.
    for comment in [
        "# grantees as grafana lists them:".to_string(),
        format!("#   jane (user {gjane})"),
        "# grantees as dremio lists them:".to_string(),
        format!("#   jeansmith (user {jean})"),
    ] {
        assert!(exported.contains(&comment), "{comment} in {exported}");
    }
    std::fs::write(dir.join("exported.yaml"), &exported).unwrap();

    // The exported resources are valid and declare exactly what is live.
    let plan = cli(&[
        "plan",
        "-f",
        dir.to_str().unwrap(),
        "--secret",
        &grafana_secret,
        "-o",
        "json",
    ])
    .await;
    let report = plan.json();
    let units = report["units"].as_array().unwrap();
    assert_eq!(units.len(), 4, "{report:#}");
    for unit in units {
        assert_eq!(unit["changes"], serde_json::json!([]), "{unit:#}");
        assert!(unit["error"].is_null(), "{unit:#}");
    }
    let _ = (finance, jean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_without_targets_lists_what_the_vendor_can_list() {
    let h = Harness::new().await;
    let jane = h.sigma.add_member("jane@example.com");
    h.sigma.add_connection("second-connection");
    h.sigma.seed_grant(
        "second-connection",
        sigma::Grantee::Member(jane.clone()),
        "usage",
    );
    h.grafana.add_datasource(1, "loki-uid", "Loki");
    let dir = temp_dir("export-all");
    manifests(&h, &dir, SigmaPermission::Usage);
    let providers = dir.join("providers.yaml");
    let providers = providers.to_str().unwrap();
    let grafana_secret = format!("{NS}/grafana-sa/token=env:GRAFANA_TOKEN_FROM_ENV");

    let sigma = cli(&[
        "export",
        "-f",
        providers,
        "--provider",
        &format!("{NS}/sigma-prod"),
        "-o",
        "json",
    ])
    .await;
    let resources = sigma.json();
    let connections: Vec<&str> = resources
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["spec"]["connectionId"].as_str().unwrap())
        .collect();
    assert_eq!(connections, vec![CONNECTION, "second-connection"]);
    assert_eq!(resources[1]["spec"]["grants"][0]["member"]["id"], jane);

    let grafana = cli(&[
        "export",
        "-f",
        providers,
        "--provider",
        &format!("{NS}/grafana"),
        "--secret",
        &grafana_secret,
        "-o",
        "json",
    ])
    .await;
    let resources = grafana.json();
    assert_eq!(resources.as_array().unwrap().len(), 2, "{resources:#}");

    let dremio = cli(&[
        "export",
        "-f",
        providers,
        "--provider",
        &format!("{NS}/dremio"),
    ])
    .await;
    assert_eq!(dremio.code, 1);
    assert!(
        dremio
            .stderr
            .contains("name the objects to export with --target"),
        "{}",
        dremio.stderr
    );
}
