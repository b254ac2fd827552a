//! Scope flags and look-ups: targets named by object, `--all-targets`, and
//! grantees looked up with each vendor's own look-ups.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_name_objects_and_all_targets_lists_them() {
    let h = Harness::new().await;
    let f = fixture(&h, "targets");
    let dir = f.dir.to_str().unwrap();
    // Objects only a listing shows.
    h.sigma.add_connection("second-connection");
    h.sigma.seed_grant(
        "second-connection",
        sigma::Grantee::Member(f.jane.clone()),
        "usage",
    );
    h.grafana.add_datasource(1, "loki-uid", "Loki");
    h.snowflake
        .grant_direct("ROLE", "LOADER", "SCHEMA", "SALES.PUBLIC", "USAGE", false);

    // An id without its vendor, with several vendors in scope: refused.
    let run = cli(&["access", "-f", dir, "--target", "second-connection"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("write VENDOR:ID (for example sigma:second-connection)"),
        "{}",
        run.stderr
    );

    // With the vendor: that object only, through the Sigma provider only.
    let run = cli(&[
        "access",
        "-f",
        dir,
        "--target",
        "sigma:second-connection",
        "--target",
        "snowflake:ROLE:LOADER",
        "-o",
        "json",
    ])
    .await;
    let report = run.json();
    let rows = rows_of(&report);
    assert_eq!(rows.len(), 2, "{report:#}");
    check(
        find(
            &rows,
            "sigma",
            "second-connection",
            &format!("member:{}", f.jane),
            "usage",
        ),
        "unmanaged",
        &[],
    );
    check(
        find(
            &rows,
            "snowflake",
            "SCHEMA SALES.PUBLIC",
            "ROLE:LOADER",
            "USAGE",
        ),
        "unmanaged",
        &[],
    );
    assert_eq!(
        h.sigma
            .count("GET", &format!("/v2/connections/{CONNECTION}/grants")),
        0,
        "the declared connection is not in scope"
    );
    assert!(h.grafana.calls().is_empty(), "Grafana not in scope");

    // A Grafana data source and a Dremio catalog object by id: each read once,
    // the Dremio object with the resources declaring on it.
    h.grafana.clear_calls();
    h.dremio.clear_calls();
    let dremio_target = format!("dremio:{}", h.dremio_object);
    let run = access(
        dir,
        &[
            "--target",
            "grafana:loki-uid",
            "--target",
            &dremio_target,
            "-o",
            "json",
        ],
    )
    .await;
    let report = run.json();
    let rows = rows_of(&report);
    check(
        find(&rows, "grafana", "loki-uid", "role:Admin", "Admin"),
        "inherited",
        &[],
    );
    assert_eq!(
        rows.iter().filter(|row| row["vendor"] == "grafana").count(),
        1,
        "{report:#}"
    );
    check(
        find(
            &rows,
            "dremio",
            &h.dremio_object,
            &format!("user:{}", f.jean),
            "SELECT",
        ),
        "managed",
        &["zips", "zips-2"],
    );
    assert_eq!(
        rows.iter().filter(|row| row["vendor"] == "dremio").count(),
        7,
        "{report:#}"
    );
    assert_eq!(report["summary"]["objects"], 2);
    assert_eq!(
        h.grafana
            .count("GET", "/api/access-control/datasources/loki-uid"),
        1
    );
    assert_eq!(
        h.grafana.count(
            "GET",
            &format!("/api/access-control/datasources/{DATASOURCE_UID}")
        ),
        0,
        "the declared data source is not in scope"
    );
    assert_eq!(h.dremio.grant_reads(&h.dremio_object), 1);

    // Without a vendor, through one provider.
    let run = cli(&[
        "access",
        "-f",
        dir,
        "--provider",
        &format!("{NS}/sigma-prod"),
        "--target",
        "second-connection",
        "-o",
        "json",
    ])
    .await;
    let report = run.json();
    assert_eq!(report["summary"]["rows"], 1, "{report:#}");

    // A target no provider has.
    let run = cli(&["access", "-f", dir, "--target", "sigma:no-such-connection"]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("no-such-connection was not found through any sigma provider in scope"),
        "{}",
        run.stdout
    );

    // Every object each provider lists, each read once; Dremio says it cannot.
    h.sigma.clear_calls();
    h.grafana.clear_calls();
    h.snowflake.clear_calls();
    let run = access(dir, &["--all-targets", "-o", "json"]).await;
    let report = run.json();
    no_secret_in(&run);
    let rows = rows_of(&report);
    let objects = |vendor: &str| -> std::collections::BTreeSet<String> {
        rows.iter()
            .filter(|row| row["vendor"] == vendor)
            .map(|row| {
                let field = if vendor == "snowflake" {
                    "grantee"
                } else {
                    "target"
                };
                row[field]["id"].as_str().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(
        objects("sigma"),
        [CONNECTION, "second-connection"].map(String::from).into()
    );
    assert_eq!(
        objects("grafana"),
        [DATASOURCE_UID, "loki-uid"].map(String::from).into(),
        "Loki shows its inherited Admin entry"
    );
    assert_eq!(
        objects("snowflake"),
        ["ROLE:ANALYST", "ROLE:LOADER"].map(String::from).into(),
        "every role is listed; \"My Role\" holds nothing"
    );
    assert_eq!(
        report["summary"]["objects"],
        2 + 2 + 1 + 3,
        "{:#}",
        report["summary"]
    );
    assert!(
        report["notes"].as_array().unwrap().iter().any(|note| note
            .as_str()
            .unwrap()
            .contains("dremio has no listing of every object")),
        "{report:#}"
    );
    for connection in [CONNECTION, "second-connection"] {
        assert_eq!(
            h.sigma
                .count("GET", &format!("/v2/connections/{connection}/grants")),
            1
        );
    }
    for uid in [DATASOURCE_UID, "loki-uid"] {
        assert_eq!(
            h.grafana
                .count("GET", &format!("/api/access-control/datasources/{uid}")),
            1
        );
    }
    for role in ["ANALYST", "LOADER", "%22My%20Role%22"] {
        assert_eq!(
            h.snowflake
                .count("GET", &format!("/api/v2/roles/{role}/grants")),
            1,
            "{role}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grantees_are_looked_up_with_each_vendors_own_look_ups() {
    let h = Harness::new().await;
    let f = fixture(&h, "grantees");
    let dir = f.dir.to_str().unwrap();
    let run = access(
        dir,
        &[
            "--grantee",
            "jane@example.com",
            "--grantee",
            "SRE",
            "--grantee",
            "jeansmith",
            "--grantee",
            "ROLE:ANALYST",
            "--grantee",
            "nobody-at-all",
            "-o",
            "json",
        ],
    )
    .await;
    let report = run.json();
    no_secret_in(&run);
    let rows = rows_of(&report);
    let mut seen: Vec<(String, String)> = rows
        .iter()
        .map(|row| {
            let grantee = row["grantee"]["id"].as_str().unwrap().to_string();
            (row["vendor"].as_str().unwrap().to_string(), grantee)
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        vec![
            ("dremio".to_string(), format!("user:{}", f.jean)),
            ("grafana".to_string(), format!("team:{}", f.sre)),
            ("grafana".to_string(), format!("user:{}", f.grafana_jane)),
            ("sigma".to_string(), format!("member:{}", f.jane)),
            ("snowflake".to_string(), "ROLE:ANALYST".to_string()),
        ],
        "{report:#}"
    );
    // A Snowflake grantee is its whole listing.
    assert_eq!(
        rows.iter()
            .filter(|row| row["vendor"] == "snowflake")
            .count(),
        7
    );
    let matches = |name: &str| -> Vec<(String, String)> {
        report["grantees"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == name)
            .unwrap()["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["vendor"].as_str().unwrap().to_string(),
                    m["id"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        matches("jane@example.com"),
        vec![
            ("grafana".to_string(), format!("user:{}", f.grafana_jane)),
            ("sigma".to_string(), format!("member:{}", f.jane)),
        ]
    );
    assert_eq!(
        matches("SRE"),
        vec![("grafana".to_string(), format!("team:{}", f.sre))]
    );
    assert_eq!(
        matches("jeansmith"),
        vec![("dremio".to_string(), format!("user:{}", f.jean))]
    );
    assert_eq!(
        matches("ROLE:ANALYST"),
        vec![("snowflake".to_string(), "ROLE:ANALYST".to_string())]
    );
    assert_eq!(matches("nobody-at-all"), vec![]);
    // Only the named grantee's listing was read on Snowflake.
    assert_eq!(
        h.snowflake.count("GET", "/api/v2/roles/"),
        2,
        "grants and future grants of ANALYST"
    );

    // A Grafana login, and Sigma's team by name.
    let run = access(
        dir,
        &["--grantee", "jane", "--grantee", "Finance", "-o", "json"],
    )
    .await;
    let report = run.json();
    let rows = rows_of(&report);
    check(
        find(
            &rows,
            "grafana",
            DATASOURCE_UID,
            &format!("user:{}", f.grafana_jane),
            "Query",
        ),
        "drifted",
        &["sre"],
    );
    check(
        find(
            &rows,
            "sigma",
            CONNECTION,
            &format!("team:{}", f.finance),
            "usage",
        ),
        "drifted",
        &["readers"],
    );
    assert_eq!(rows.len(), 2, "{report:#}");
}
