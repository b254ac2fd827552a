//! Every state for every vendor, each object read with one listing, the
//! `--fail-on` exit code, and what cannot be read reported with exit 1.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_vendor_reports_every_state_reading_each_object_once() {
    let h = Harness::new().await;
    let f = fixture(&h, "states");
    let dir = f.dir.to_str().unwrap();
    let run = access(dir, &["-o", "json"]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    no_secret_in(&run);
    assert!(
        run.stderr.is_empty(),
        "no progress unless asked: {}",
        run.stderr
    );
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let rows = rows_of(&report);
    assert_eq!(report["errors"], json!([]), "{report:#}");

    // Sigma.
    let sigma = |grantee: &str, permission: &str| {
        find(&rows, "sigma", CONNECTION, grantee, permission).clone()
    };
    let jane = sigma(&format!("member:{}", f.jane), "annotate");
    check(&jane, "managed", &["bi", "readers"]);
    assert_eq!(jane["grantee"]["name"], "jane@example.com");
    assert_eq!(jane["provider"], format!("GrantProvider {NS}/sigma-prod"));
    let ann = sigma(&format!("member:{}", f.ann), "annotate");
    check(&ann, "drifted", &["readers"]);
    assert_eq!(
        ann["detail"],
        "live at a higher level than declared (usage)"
    );
    let carl = sigma(&format!("member:{}", f.carl), "usage");
    check(&carl, "drifted", &["lower"]);
    assert_eq!(
        carl["detail"],
        "live at a lower level than declared (annotate)"
    );
    let joe = sigma(&format!("member:{}", f.joe), "usage");
    check(&joe, "expiring", &["temp"]);
    assert_eq!(joe["expiresAt"], LATER);
    let finance = sigma(&format!("team:{}", f.finance), "usage");
    check(&finance, "drifted", &["readers"]);
    assert_eq!(finance["detail"], "declared, not live");
    assert_eq!(finance["grantee"]["name"], "Finance");
    let nobody = sigma("nobody@example.com", "usage");
    check(&nobody, "drifted", &["readers"]);
    assert!(
        nobody["detail"]
            .as_str()
            .unwrap()
            .contains("nobody@example.com is not found on sigma"),
        "{nobody:#}"
    );
    check(
        &sigma(&format!("member:{}", f.bob), "usage"),
        "unmanaged",
        &[],
    );
    check(&sigma(&format!("member:{}", f.dave), "admin"), "fixed", &[]);
    let old = sigma(&format!("member:{}", f.old), "usage");
    check(&old, "drifted", &["gone"]);
    assert_eq!(old["expiresAt"], EARLIER);
    assert!(
        old["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("{NS}/gone expired at {EARLIER}")),
        "{old:#}"
    );

    // Grafana (AccessControl, detected).
    let grafana = |grantee: &str, permission: &str| {
        find(&rows, "grafana", DATASOURCE_UID, grantee, permission).clone()
    };
    let sre = grafana(&format!("team:{}", f.sre), "Query");
    check(&sre, "managed", &["sre", "sre-2"]);
    assert_eq!(sre["grantee"]["name"], "SRE");
    assert_eq!(sre["target"]["name"], DATASOURCE_NAME);
    let jane = grafana(&format!("user:{}", f.grafana_jane), "Query");
    check(&jane, "drifted", &["sre"]);
    assert_eq!(jane["detail"], "live at a lower level than declared (Edit)");
    check(
        &grafana(&format!("user:{}", f.grafana_joe), "Query"),
        "expiring",
        &["temp"],
    );
    let bob = grafana(&format!("user:{}", f.grafana_bob), "Admin");
    check(&bob, "unmanaged", &[]);
    assert_eq!(bob["grantee"]["name"], "bob", "the name Grafana lists");
    let inherited = grafana("role:Admin", "Admin");
    check(&inherited, "inherited", &[]);
    let viewer = grafana("role:Viewer", "Query");
    check(&viewer, "fixed", &[]);
    assert!(
        viewer["detail"].as_str().unwrap().contains("basic:viewer"),
        "{viewer:#}"
    );
    let kim = grafana(&format!("user:{}", f.grafana_kim), "Query");
    check(&kim, "drifted", &["sre-2"]);
    assert_eq!(kim["detail"], "declared, not live");
    assert_eq!(kim["grantee"]["name"], "kim");
    let fixed_joe = grafana(&format!("user:{}", f.grafana_joe), "Edit");
    check(&fixed_joe, "fixed", &[]);
    assert_eq!(fixed_joe["grantee"]["name"], "joe");

    // Dremio (no entries the operator leaves alone: it lists users and roles).
    let object = h.dremio_object.clone();
    let dremio = |grantee: &str, permission: &str| {
        find(&rows, "dremio", &object, grantee, permission).clone()
    };
    let jean = dremio(&format!("user:{}", f.jean), "SELECT");
    check(&jean, "managed", &["zips", "zips-2"]);
    assert_eq!(jean["grantee"]["name"], "jeansmith");
    assert_eq!(jean["target"]["name"], DREMIO_PATH.join("/"));
    check(
        &dremio(&format!("user:{}", f.jean), "ALTER"),
        "unmanaged",
        &[],
    );
    check(
        &dremio(&format!("role:{}", f.analysts), "SELECT"),
        "drifted",
        &["zips"],
    );
    check(
        &dremio(&format!("user:{}", f.mike), "SELECT"),
        "expiring",
        &["temp"],
    );
    let rita = dremio(&format!("user:{}", f.rita), "SELECT");
    check(&rita, "unmanaged", &[]);
    assert_eq!(rita["grantee"]["name"], "rita", "the name Dremio lists");
    let auditors = dremio(&format!("role:{}", f.auditors), "SELECT");
    check(&auditors, "unmanaged", &[]);
    assert_eq!(auditors["grantee"]["name"], "auditors");
    let group = dremio("group:g-1", "SELECT");
    check(&group, "fixed", &[]);
    assert_eq!(group["grantee"]["name"], "contractors");
    assert!(
        group["detail"]
            .as_str()
            .unwrap()
            .contains("granteeType GROUP"),
        "{group:#}"
    );

    // Snowflake: the grantee is the object read; the securable is the target.
    let snowflake = |securable: &str, permission: &str| {
        find(&rows, "snowflake", securable, "ROLE:ANALYST", permission).clone()
    };
    check(
        &snowflake("SCHEMA SALES.PUBLIC", "USAGE"),
        "managed",
        &["analyst-schema", "analyst-schema-2"],
    );
    let orders = snowflake("TABLE SALES.PUBLIC.ORDERS", "SELECT");
    check(&orders, "drifted", &["analyst-orders"]);
    assert_eq!(
        orders["detail"],
        "live at a lower level than declared (SELECT WITH GRANT OPTION)"
    );
    check(
        &snowflake("TABLE SALES.PUBLIC.ORDERS", "INSERT"),
        "unmanaged",
        &[],
    );
    check(
        &snowflake("TABLE SALES.PUBLIC.CUSTOMERS", "SELECT"),
        "drifted",
        &["analyst-customers"],
    );
    check(
        &snowflake("WAREHOUSE COMPUTE_WH", "USAGE"),
        "expiring",
        &["analyst-wh"],
    );
    check(
        &snowflake("VIEW SALES.PUBLIC.ORDERS_V", "OWNERSHIP"),
        "fixed",
        &[],
    );
    check(
        &snowflake("FUTURE TABLES IN SCHEMA SALES.PUBLIC", "SELECT"),
        "unmanaged",
        &[],
    );

    // Nothing else, and the counts agree.
    assert_eq!(rows.len(), 9 + 8 + 7 + 7, "{report:#}");
    assert_eq!(
        report["summary"],
        json!({"objects": 4, "rows": 31, "managed": 4, "expiring": 4, "unmanaged": 7,
               "drifted": 10, "inherited": 1, "fixed": 5, "errors": 0})
    );

    // One listing per vendor object, shared by every resource on it; nothing written.
    assert_eq!(
        h.sigma
            .count("GET", &format!("/v2/connections/{CONNECTION}/grants")),
        1
    );
    assert_eq!(
        h.grafana.count(
            "GET",
            &format!("/api/access-control/datasources/{DATASOURCE_UID}")
        ),
        1
    );
    assert_eq!(h.dremio.grant_reads(&h.dremio_object), 1);
    assert_eq!(h.snowflake.count("GET", "/api/v2/roles/ANALYST/grants"), 1);
    assert_eq!(
        h.snowflake
            .count("GET", "/api/v2/roles/ANALYST/future-grants"),
        1
    );
    for calls in [
        h.sigma.calls(),
        h.grafana.calls(),
        h.dremio.calls(),
        h.snowflake.calls(),
    ] {
        for call in calls {
            assert!(
                call.method == "GET" || call.path.ends_with("/auth/token"),
                "a review writes nothing: {} {}",
                call.method,
                call.path
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_on_gates_with_exit_code_3() {
    let h = Harness::new().await;
    let f = fixture(&h, "fail-on");
    let dir = f.dir.to_str().unwrap();
    for (flags, code) in [
        (vec![], 0),
        (vec!["--fail-on", "unmanaged"], 3),
        (vec!["--fail-on", "drifted"], 3),
        (vec!["--fail-on", "unmanaged", "--fail-on", "drifted"], 3),
    ] {
        let mut args = vec![
            "access",
            "-f",
            dir,
            "--secret",
            GRAFANA_SECRET,
            "-o",
            "json",
        ];
        args.extend(flags.iter().copied());
        let run = cli(&args).await;
        assert_eq!(run.code, code, "{flags:?}: {}", run.stderr);
    }
    // Narrowed to a grant that is as declared: nothing to fail on.
    h.grafana.clear_calls();
    h.snowflake.clear_calls();
    let run = cli(&[
        "access",
        "-f",
        dir,
        "--provider",
        &format!("{NS}/sigma-prod"),
        "--grantee",
        "jane@example.com",
        "--fail-on",
        "unmanaged",
        "--fail-on",
        "drifted",
        "-o",
        "json",
    ])
    .await;
    let report = run.json();
    assert_eq!(report["summary"]["rows"], 1, "{report:#}");
    assert_eq!(report["rows"][0]["state"], "managed");
    // Only the Sigma provider was used: no other vendor was called.
    assert!(h.grafana.calls().is_empty() && h.snowflake.calls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_read_is_reported_with_exit_1() {
    let h = Harness::new().await;
    let f = fixture(&h, "unreadable");
    let dir = f.dir.to_str().unwrap();
    // A Sigma provider nothing answers at, with a resource on it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut down = sigma_provider(NS, "sigma-down", &url, "sigma-api");
    down.spec.request_timeout_seconds = Some(2);
    let mut stranded = sigma_grant(
        "stranded",
        vec![member("jane@example.com", SigmaPermission::Usage)],
    );
    stranded.spec.policy.provider_ref.name = "sigma-down".into();
    std::fs::write(
        f.dir.join("down.yaml"),
        [yaml(&[down]), yaml(&[stranded])].join("---\n"),
    )
    .unwrap();
    // A Dremio entry without an id: unreadable, and unknown is not absent.
    h.dremio.inject_raw_grant(
        &h.dremio_object,
        json!({"granteeType": "USER", "id": "", "privileges": ["SELECT"]}),
    );

    // And Grafana's token is in no named place.
    let run = cli(&["access", "-f", dir, "-o", "json"]).await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    no_secret_in(&run);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let errors = report["errors"].as_array().unwrap();
    let error = |vendor: &str| {
        errors
            .iter()
            .find(|e| e["vendor"] == vendor)
            .unwrap_or_else(|| panic!("no {vendor} error in {report:#}"))
    };
    let down = error("sigma");
    assert_eq!(down["provider"], format!("GrantProvider {NS}/sigma-down"));
    assert_eq!(down["target"], CONNECTION);
    assert_eq!(down["resources"], json!([format!("{NS}/stranded")]));
    assert_eq!(down["reason"], "VendorUnavailable", "{down:#}");
    let grafana = error("grafana");
    assert_eq!(grafana["reason"], "CredentialsMissing");
    assert_eq!(
        grafana["resources"],
        json!([
            format!("{NS}/sre"),
            format!("{NS}/sre-2"),
            format!("{NS}/temp")
        ])
    );
    let dremio = error("dremio");
    assert_eq!(dremio["reason"], "VendorUnavailable");
    assert!(
        dremio["message"]
            .as_str()
            .unwrap()
            .contains("its id is empty"),
        "{dremio:#}"
    );
    assert_eq!(errors.len(), 3, "{report:#}");
    // What could be read still is: the reachable Sigma connection and Snowflake.
    let rows = rows_of(&report);
    assert_eq!(
        rows.iter()
            .filter(|row| row["provider"] == format!("GrantProvider {NS}/sigma-prod"))
            .count(),
        9
    );
    assert_eq!(
        rows.iter()
            .filter(|row| row["vendor"] == "snowflake")
            .count(),
        7
    );

    // The table says what could not be read, and why; CSV has a line for each.
    let table = cli(&["access", "-f", dir]).await;
    assert_eq!(table.code, 1);
    assert!(
        table.stdout.contains(&format!(
            "! grafana GrantProvider {NS}/grafana: CredentialsMissing: Secret {NS}/grafana-sa not found"
        )),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("3 could not be read."),
        "{}",
        table.stdout
    );
    let csv = cli(&["access", "-f", dir, "-o", "csv"]).await;
    assert_eq!(csv.code, 1);
    let mut reader = csv::Reader::from_reader(csv.stdout.as_bytes());
    let failed = reader
        .records()
        .map(Result::unwrap)
        .filter(|record| &record[7] == "error")
        .count();
    assert_eq!(failed, 3);
    // --fail-on never hides a problem.
    let run = cli(&["access", "-f", dir, "--fail-on", "unmanaged"]).await;
    assert_eq!(run.code, 1);
}
