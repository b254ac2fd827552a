//! `grant-operator access` as a user runs it: the real binary, on manifests in a
//! folder (or the in-memory API server served over HTTP, for `--from-cluster`),
//! against the strict emulators of every vendor. Checks every state for every
//! vendor, the scope flags, the three formats (the CSV and JSON parsed), the
//! exit codes, that each vendor object is read with one listing, and that no
//! Secret value is ever printed.

mod support;

use std::path::PathBuf;

use grant_operator::api::{
    GrafanaPermission, GrafanaPermissionsApi, GrantProvider, SigmaPermission, SnowflakeGranteeType,
    SnowflakeGrantsApi,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use support::binary::*;
use support::*;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "grant-operator-access-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn no_secret_in(run: &Run) {
    for secret in [CLIENT_SECRET, GRAFANA_TOKEN, DREMIO_TOKEN, SNOWFLAKE_PAT] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a Secret value was printed"
        );
    }
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// Far in the future: a resource that expires then is `expiring`.
const LATER: &str = "2099-01-01T00:00:00Z";
/// In the past: a resource that expired then declares nothing.
const EARLIER: &str = "2020-01-01T00:00:00Z";

/// The four providers, their Secrets (Grafana's token left out: it comes from
/// `--secret ...=env:`), as the objects of a manifest.
fn providers(h: &Harness) -> Vec<GrantProvider> {
    let mut sigma = h.sigma_provider(NS, "sigma-prod", "sigma-api");
    sigma.spec.rate_limit = None;
    vec![
        sigma,
        h.grafana_provider(NS, "grafana", "grafana-sa", GrafanaPermissionsApi::Auto),
        h.dremio_provider(NS, "dremio", "dremio-pat", false),
        h.snowflake_provider(
            NS,
            "snowflake",
            "snowflake-pat",
            SnowflakeLogin::Pat,
            SnowflakeGrantsApi::RoleGrants,
        ),
    ]
}

fn secrets() -> Vec<Secret> {
    vec![
        secret(
            "sigma-api",
            &[("client-id", CLIENT_ID), ("client-secret", CLIENT_SECRET)],
        ),
        secret("dremio-pat", &[("token", DREMIO_TOKEN)]),
        secret("snowflake-pat", &[("token", SNOWFLAKE_PAT)]),
    ]
}

const GRAFANA_SECRET: &str = "analytics/grafana-sa/token=env:GRAFANA_TOKEN_FROM_ENV";

/// Ids the fixture made.
struct Fixture {
    dir: PathBuf,
    jane: String,
    ann: String,
    bob: String,
    dave: String,
    old: String,
    carl: String,
    joe: String,
    finance: String,
    grafana_jane: i64,
    grafana_joe: i64,
    grafana_bob: i64,
    grafana_kim: i64,
    sre: i64,
    jean: String,
    mike: String,
    rita: String,
    analysts: String,
    auditors: String,
}

/// `grant-operator access` over the manifests in `dir`, with the Grafana token's
/// Secret, and `args`.
async fn access(dir: &str, args: &[&str]) -> Run {
    cli(&[&["access", "-f", dir, "--secret", GRAFANA_SECRET], args].concat()).await
}

/// Resources and live grants on every vendor, covering every state (see each
/// vendor's block), and a folder of manifests for them.
fn fixture(h: &Harness, name: &str) -> Fixture {
    let dir = temp_dir(name);
    let later = |mut grant: grant_operator::api::SigmaGrant| {
        grant.spec.policy.expires_at = Some(time(at(LATER)));
        grant
    };

    // Sigma: jane annotate declared twice and live (managed by two); ann usage
    // declared, annotate live (drifted, higher); carl annotate declared, usage
    // live (drifted, lower); joe expiring; Finance declared, not live; an email
    // that resolves to nobody; bob live and undeclared (unmanaged); dave admin
    // (fixed); old live after its resource expired (drifted).
    let jane = h.sigma.add_member("jane@example.com");
    let ann = h.sigma.add_member("ann@example.com");
    let bob = h.sigma.add_member("bob@example.com");
    let dave = h.sigma.add_member("dave@example.com");
    let old = h.sigma.add_member("old@example.com");
    let carl = h.sigma.add_member("carl@example.com");
    let joe = h.sigma.add_member("joe@example.com");
    let finance = h.sigma.add_team("Finance");
    for (member, level) in [
        (&jane, "annotate"),
        (&ann, "annotate"),
        (&carl, "usage"),
        (&joe, "usage"),
        (&bob, "usage"),
        (&dave, "admin"),
        (&old, "usage"),
    ] {
        h.sigma
            .seed_grant(CONNECTION, sigma::Grantee::Member(member.clone()), level);
    }
    let mut gone = sigma_grant(
        "gone",
        vec![member("old@example.com", SigmaPermission::Usage)],
    );
    gone.spec.policy.expires_at = Some(time(at(EARLIER)));
    let sigma_resources = vec![
        sigma_grant(
            "readers",
            vec![
                member("jane@example.com", SigmaPermission::Annotate),
                member("ann@example.com", SigmaPermission::Usage),
                team("Finance", SigmaPermission::Usage),
                member("nobody@example.com", SigmaPermission::Usage),
            ],
        ),
        sigma_grant(
            "bi",
            vec![member("jane@example.com", SigmaPermission::Annotate)],
        ),
        sigma_grant(
            "lower",
            vec![member("carl@example.com", SigmaPermission::Annotate)],
        ),
        later(sigma_grant(
            "temp",
            vec![member("joe@example.com", SigmaPermission::Usage)],
        )),
        gone,
    ];

    // Grafana: SRE Query declared twice and live (managed by two); jane Edit
    // declared, Query live (drifted, lower); kim declared, not live (drifted);
    // joe expiring; bob Admin live and
    // undeclared (unmanaged, named as Grafana lists him); the data source's
    // inherited Admin role entry (inherited); the Viewer basic role and a fixed
    // role entry of joe (fixed).
    let grafana_jane = h.grafana.add_user(1, "jane", "jane@example.com");
    let grafana_joe = h.grafana.add_user(1, "joe", "joe@example.com");
    let grafana_bob = h.grafana.add_user(1, "bob", "bob@example.com");
    let sre = h.grafana.add_team(1, "SRE");
    let grafana_kim = h.grafana.add_user(1, "kim", "kim@example.com");
    for (grantee, level, managed) in [
        (grafana::Grantee::Team(sre), grafana::Level::Query, true),
        (
            grafana::Grantee::User(grafana_jane),
            grafana::Level::Query,
            true,
        ),
        (
            grafana::Grantee::User(grafana_joe),
            grafana::Level::Query,
            true,
        ),
        (
            grafana::Grantee::User(grafana_bob),
            grafana::Level::Admin,
            true,
        ),
        (
            grafana::Grantee::BuiltIn("Viewer".into()),
            grafana::Level::Query,
            false,
        ),
        (
            grafana::Grantee::User(grafana_joe),
            grafana::Level::Edit,
            false,
        ),
    ] {
        h.grafana
            .seed_permission(DATASOURCE_UID, grantee, level, managed, false);
    }
    let mut grafana_temp = grafana_grant("temp", vec![user_login("joe", GrafanaPermission::Query)]);
    grafana_temp.spec.policy.expires_at = Some(time(at(LATER)));
    let grafana_resources = vec![
        grafana_grant(
            "sre",
            vec![
                team_name("SRE", GrafanaPermission::Query),
                user_login("jane", GrafanaPermission::Edit),
            ],
        ),
        grafana_grant(
            "sre-2",
            vec![
                team_name("SRE", GrafanaPermission::Query),
                user_login("kim", GrafanaPermission::Query),
            ],
        ),
        grafana_temp,
    ];

    // Dremio: jeansmith SELECT declared twice and live (managed by two), and
    // ALTER live undeclared (unmanaged); the role analysts declared, not live
    // (drifted); mike expiring; rita and the role auditors live, undeclared; a
    // group's entry (a grantee type the operator never grants to: fixed).
    // Privileges are a set, compared one by one: a Dremio grant is never "live
    // at another level", only live or not.
    let jean = h.dremio.add_user("jeansmith", "jean@example.com");
    let mike = h.dremio.add_user("mike", "mike@example.com");
    let rita = h.dremio.add_user("rita", "rita@example.com");
    let analysts = h.dremio.add_role("analysts");
    let auditors = h.dremio.add_role("auditors");
    let record = |kind, id: &String, privileges: &[&str]| dremio::GrantRecord {
        grantee_type: kind,
        id: id.clone(),
        privileges: privileges.iter().map(|p| p.to_string()).collect(),
    };
    h.dremio.set_grants_directly(
        &h.dremio_object,
        vec![
            record(dremio::GranteeType::User, &jean, &["SELECT", "ALTER"]),
            record(dremio::GranteeType::User, &mike, &["SELECT"]),
            record(dremio::GranteeType::User, &rita, &["SELECT"]),
            record(dremio::GranteeType::Role, &auditors, &["SELECT"]),
        ],
    );
    h.dremio.inject_raw_grant(
        &h.dremio_object,
        json!({"granteeType": "GROUP", "id": "g-1", "name": "contractors", "privileges": ["SELECT"]}),
    );
    let mut dremio_temp = dremio_grant("temp", vec![dremio_user("mike", &["SELECT"])]);
    dremio_temp.spec.policy.expires_at = Some(time(at(LATER)));
    let dremio_resources = vec![
        dremio_grant(
            "zips",
            vec![
                dremio_user("jeansmith", &["SELECT"]),
                dremio_role("analysts", &["SELECT"]),
            ],
        ),
        dremio_grant("zips-2", vec![dremio_user("jeansmith", &["SELECT"])]),
        dremio_temp,
    ];

    // Snowflake, role ANALYST: USAGE on the schema declared twice and live
    // (managed by two); SELECT on ORDERS declared with the grant option, live
    // without (drifted, lower); INSERT on ORDERS live undeclared (unmanaged);
    // SELECT on CUSTOMERS declared, not live (drifted); the warehouse expiring;
    // OWNERSHIP of a view (fixed); a future grant nobody declares (unmanaged:
    // read although no resource declares a future grant).
    let role = (SnowflakeGranteeType::Role, "ANALYST");
    for (type_, securable, privilege, option) in [
        ("SCHEMA", "SALES.PUBLIC", "USAGE", false),
        ("TABLE", "SALES.PUBLIC.ORDERS", "SELECT", false),
        ("TABLE", "SALES.PUBLIC.ORDERS", "INSERT", false),
        ("WAREHOUSE", "COMPUTE_WH", "USAGE", false),
    ] {
        h.snowflake
            .grant_direct("ROLE", "ANALYST", type_, securable, privilege, option);
    }
    h.snowflake.add_raw_row(
        "ROLE",
        "ANALYST",
        false,
        json!({"securable_type": "VIEW", "securable": {"database": "SALES", "schema": "PUBLIC", "name": "ORDERS_V"}, "privileges": ["OWNERSHIP"], "grant_option": false}),
    );
    h.snowflake.add_raw_row(
        "ROLE",
        "ANALYST",
        true,
        json!({"securable_type": "TABLE", "containing_scope": {"database": "SALES", "schema": "PUBLIC"}, "privileges": ["SELECT"], "grant_option": false}),
    );
    let mut warehouse = snowflake_grant(
        "analyst-wh",
        role,
        target_securable("WAREHOUSE", "COMPUTE_WH"),
        &["USAGE"],
        false,
    );
    warehouse.spec.policy.expires_at = Some(time(at(LATER)));
    let snowflake_resources = vec![
        snowflake_grant(
            "analyst-schema",
            role,
            target_securable("SCHEMA", "SALES.PUBLIC"),
            &["USAGE"],
            false,
        ),
        snowflake_grant(
            "analyst-schema-2",
            role,
            target_securable("SCHEMA", "SALES.PUBLIC"),
            &["USAGE"],
            false,
        ),
        snowflake_grant(
            "analyst-orders",
            role,
            target_securable("TABLE", "SALES.PUBLIC.ORDERS"),
            &["SELECT"],
            true,
        ),
        snowflake_grant(
            "analyst-customers",
            role,
            target_securable("TABLE", "SALES.PUBLIC.CUSTOMERS"),
            &["SELECT"],
            false,
        ),
        warehouse,
    ];

    std::fs::write(
        dir.join("providers.yaml"),
        [yaml(&providers(h)), yaml(&secrets())].join("---\n"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("grants")).unwrap();
    std::fs::write(dir.join("grants/sigma.yaml"), yaml(&sigma_resources)).unwrap();
    std::fs::write(dir.join("grants/grafana.yaml"), yaml(&grafana_resources)).unwrap();
    std::fs::write(dir.join("grants/dremio.yaml"), yaml(&dremio_resources)).unwrap();
    std::fs::write(
        dir.join("grants/snowflake.yaml"),
        yaml(&snowflake_resources),
    )
    .unwrap();
    h.sigma.clear_calls();
    h.grafana.clear_calls();
    h.dremio.clear_calls();
    h.snowflake.clear_calls();
    Fixture {
        dir,
        jane,
        ann,
        bob,
        dave,
        old,
        carl,
        joe,
        finance,
        grafana_jane,
        grafana_joe,
        grafana_bob,
        grafana_kim,
        sre,
        jean,
        mike,
        rita,
        analysts,
        auditors,
    }
}

/// The rows of a JSON report.
fn rows_of(report: &Value) -> Vec<Value> {
    report["rows"].as_array().cloned().unwrap_or_default()
}

fn find<'a>(
    rows: &'a [Value],
    vendor: &str,
    target: &str,
    grantee: &str,
    permission: &str,
) -> &'a Value {
    rows.iter()
        .find(|row| {
            row["vendor"] == vendor
                && row["target"]["id"] == target
                && (row["grantee"]["id"] == grantee
                    || (row["grantee"]["id"].is_null() && row["grantee"]["name"] == grantee))
                && row["permission"] == permission
        })
        .unwrap_or_else(|| {
            panic!(
                "no row {vendor} {target} {grantee} {permission} in {:#}",
                Value::from(rows.to_vec())
            )
        })
}

fn check(row: &Value, state: &str, resources: &[&str]) {
    assert_eq!(row["state"], state, "{row:#}");
    let expected: Vec<String> = resources.iter().map(|r| format!("{NS}/{r}")).collect();
    assert_eq!(row["resources"], json!(expected), "{row:#}");
}

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
async fn table_csv_and_json_report_the_same_rows() {
    let h = Harness::new().await;
    let f = fixture(&h, "formats");
    let dir = f.dir.to_str().unwrap();
    let json_run = access(dir, &["-o", "json"]).await;
    assert_eq!(json_run.code, 0, "{}", json_run.stderr);
    let report: Value = serde_json::from_str(&json_run.stdout).unwrap();
    let rows = rows_of(&report);

    // CSV: RFC 4180 with a header row, read by a CSV reader of its own.
    let csv_run = access(dir, &["-o", "csv", "--progress"]).await;
    assert_eq!(csv_run.code, 0, "{}", csv_run.stderr);
    no_secret_in(&csv_run);
    assert!(csv_run.stdout.contains("\r\n"), "CRLF line ends");
    assert!(
        csv_run.stderr.contains("read 4 of 4 vendor objects"),
        "--progress reports on stderr: {}",
        csv_run.stderr
    );
    let mut reader = csv::Reader::from_reader(csv_run.stdout.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        vec![
            "vendor",
            "provider",
            "target_id",
            "target_name",
            "grantee_id",
            "grantee_name",
            "permission",
            "state",
            "resources",
            "expires_at",
            "detail"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), rows.len());
    for (record, row) in records.iter().zip(&rows) {
        let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
        let resources: Vec<String> = row["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(text)
            .collect();
        let expected = vec![
            text(&row["vendor"]),
            text(&row["provider"]),
            text(&row["target"]["id"]),
            text(&row["target"]["name"]),
            text(&row["grantee"]["id"]),
            text(&row["grantee"]["name"]),
            text(&row["permission"]),
            text(&row["state"]),
            resources.join(" "),
            text(&row["expiresAt"]),
            text(&row["detail"]),
        ];
        assert_eq!(record.iter().collect::<Vec<_>>(), expected);
    }

    // The table: one line per row under a header, and the summary.
    let table = cli(&["access", "-f", dir, "--secret", GRAFANA_SECRET]).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    no_secret_in(&table);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("VENDOR") && lines[0].contains("GRANTEE"),
        "{}",
        table.stdout
    );
    let jane = lines
        .iter()
        .find(|line| line.contains(&format!("jane@example.com (member:{})", f.jane)))
        .unwrap_or_else(|| panic!("{}", table.stdout));
    assert!(
        jane.contains("annotate") && jane.contains("managed"),
        "{jane}"
    );
    assert!(jane.contains(&format!("{NS}/bi, {NS}/readers")), "{jane}");
    let joe = lines
        .iter()
        .find(|line| line.starts_with("sigma ") && line.contains("joe@example.com"))
        .unwrap_or_else(|| panic!("{}", table.stdout));
    assert!(
        joe.contains("expiring") && joe.contains(&format!("{NS}/temp")),
        "{joe}"
    );
    assert!(joe.ends_with(&format!("expires {LATER}")), "{joe}");
    assert!(
        table.stdout.contains(
            "31 grant(s) on 4 vendor object(s): 4 managed, 4 expiring, 7 unmanaged, 10 drifted, 1 inherited, 5 fixed; 0 could not be read."
        ),
        "{}",
        table.stdout
    );
    assert_eq!(lines.iter().filter(|l| l.starts_with("sigma ")).count(), 9);
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
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["summary"]["rows"], 1, "{report:#}");
    assert_eq!(report["rows"][0]["state"], "managed");
    // Only the Sigma provider was used: no other vendor was called.
    assert!(h.grafana.calls().is_empty() && h.snowflake.calls().is_empty());
}

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
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
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
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
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
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
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
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    no_secret_in(&run);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
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
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    no_secret_in(&run);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
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
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
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
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    no_secret_in(&run);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
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

#[test]
fn readme_documents_every_access_flag() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Access review")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has an Access review section");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_grant-operator"))
        .args(["access", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for line in help.lines() {
        if let Some(flag) = line
            .split_whitespace()
            .find(|word| word.starts_with("--") && *word != "--help")
        {
            let flag = flag.trim_end_matches(',');
            assert!(
                section.contains(&format!("`{flag}")),
                "the Access review section does not document {flag}"
            );
        }
    }
}
