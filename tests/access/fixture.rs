//! The fixture: resources and live grants on every vendor covering every
//! state, and a folder of manifests for them.

use super::*;

/// Ids the fixture made.
pub(crate) struct Fixture {
    pub(crate) dir: PathBuf,
    pub(crate) jane: String,
    pub(crate) ann: String,
    pub(crate) bob: String,
    pub(crate) dave: String,
    pub(crate) old: String,
    pub(crate) carl: String,
    pub(crate) joe: String,
    pub(crate) finance: String,
    pub(crate) grafana_jane: i64,
    pub(crate) grafana_joe: i64,
    pub(crate) grafana_bob: i64,
    pub(crate) grafana_kim: i64,
    pub(crate) sre: i64,
    pub(crate) jean: String,
    pub(crate) mike: String,
    pub(crate) rita: String,
    pub(crate) analysts: String,
    pub(crate) auditors: String,
}

/// Resources and live grants on every vendor, covering every state (see each
/// vendor's block), and a folder of manifests for them.
pub(crate) fn fixture(h: &Harness, name: &str) -> Fixture {
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
