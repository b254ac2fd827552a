//! Names and objects: unavailable privileges, unknown paths, users and roles,
//! look-ups by name, objects by id, a Cloud project that does not exist.

use super::*;

each_deployment!(
    an_unavailable_privilege_is_refused_and_the_rest_applies,
    unknown_path_user_and_role_are_reported,
    users_and_roles_are_found_with_one_by_name_call_each,
);

async fn an_unavailable_privilege_is_refused_and_the_rest_applies(deployment: Deployment) {
    let h = ready(deployment).await;
    let jean = h.dremio.add_user("jeansmith", "jean@example.com");
    h.put(&dremio_grant(
        "zips",
        vec![dremio_user("jeansmith", &["SELECT", "TRUNCATE"])],
    ));
    assert_eq!(settle(&h, "zips").await.unwrap_err(), "InvalidGrant");
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        vec![live(format!("user:{jean}"), &["SELECT"])]
    );
    let (_, reason, message) = ready_of(&h, "zips");
    assert_eq!(reason, "InvalidGrant");
    assert!(message.contains("TRUNCATE not available"), "{message}");
    let rows = h.status_of::<DremioGrant>("zips").grants;
    let states: Vec<(&str, GrantState)> = rows
        .iter()
        .map(|row| (row.permission.as_str(), row.state))
        .collect();
    assert_eq!(
        states,
        vec![
            ("SELECT", GrantState::Applied),
            ("TRUNCATE", GrantState::Failed)
        ]
    );
    assert!(
        h.dremio.calls().iter().all(|call| call.status != 400),
        "the unavailable privilege was never sent"
    );
}

async fn unknown_path_user_and_role_are_reported(deployment: Deployment) {
    let h = ready(deployment).await;
    let jean = h.dremio.add_user("jeansmith", "jean@example.com");
    h.put(&dremio_grant(
        "zips",
        vec![
            dremio_user("jeansmith", &["SELECT"]),
            dremio_user("nobody", &["SELECT"]),
            dremio_role("no-such-role", &["SELECT"]),
        ],
    ));
    assert_eq!(settle(&h, "zips").await.unwrap_err(), "GranteeNotFound");
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        vec![live(format!("user:{jean}"), &["SELECT"])]
    );
    let (_, _, message) = ready_of(&h, "zips");
    assert!(message.contains("user:nobody"), "{message}");

    let mut missing = dremio_grant("missing", vec![dremio_user("jeansmith", &["SELECT"])]);
    missing.spec.catalog_object = DremioCatalogObjectRef {
        path: Some(vec!["Samples".into(), "no such/thing".into()]),
        id: None,
    };
    h.put(&missing);
    assert_eq!(settle(&h, "missing").await.unwrap_err(), "TargetNotFound");
    assert!(
        ready_of(&h, "missing").2.contains("Samples/no such/thing"),
        "{}",
        ready_of(&h, "missing").2
    );
    assert!(
        h.dremio
            .calls()
            .iter()
            .any(|call| call.path.ends_with("/by-path/Samples/no%20such%2Fthing")),
        "each path part escaped on its own: {:?}",
        h.dremio.calls().iter().map(|c| &c.path).collect::<Vec<_>>()
    );
}

/// Users and roles are looked up by name as Dremio's own tools do: Software's
/// `/api/v3/{user,role}/by-name/{name}`, Cloud's organisation-level
/// `/v1/{users,roles}/name/{name}` (Dremio's CLI; the emulator serves no
/// filtered `/v0/users` listing). Any name works, a quote or a space included.
async fn users_and_roles_are_found_with_one_by_name_call_each(deployment: Deployment) {
    let h = ready(deployment).await;
    let quoted = h
        .dremio
        .add_user("o'brien@example.com", "o'brien@example.com");
    let team = h.dremio.add_role("Data Team");
    h.put_settled(&dremio_grant(
        "zips",
        vec![
            dremio_user("o'brien@example.com", &["SELECT"]),
            dremio_role("Data Team", &["SELECT", "ALTER"]),
        ],
    ))
    .await;
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        sorted(vec![
            live(format!("user:{quoted}"), &["SELECT"]),
            live(format!("role:{team}"), &["ALTER", "SELECT"]),
        ])
    );
    let (user_path, role_path) = match deployment {
        Deployment::Software => (
            "/api/v3/user/by-name/o%27brien%40example.com",
            "/api/v3/role/by-name/Data%20Team",
        ),
        Deployment::Cloud => (
            "/v1/users/name/o%27brien%40example.com",
            "/v1/roles/name/Data%20Team",
        ),
    };
    let lookups: Vec<(String, String)> = h
        .dremio
        .calls()
        .into_iter()
        .filter(|call| !call.path.contains("/catalog"))
        .map(|call| (call.path, call.query))
        .collect();
    assert_eq!(
        sorted(lookups),
        sorted(vec![
            (user_path.to_string(), String::new()),
            (role_path.to_string(), String::new()),
        ])
    );
}

#[tokio::test]
async fn an_object_by_id_needs_no_look_up() {
    let h = ready(Deployment::Software).await;
    let jean = h.dremio.add_user("jeansmith", "jean@example.com");
    let mut grant = dremio_grant("zips", vec![dremio_user("jeansmith", &["SELECT"])]);
    grant.spec.catalog_object = DremioCatalogObjectRef {
        path: None,
        id: Some(h.dremio_object.clone()),
    };
    h.put(&grant);
    settle(&h, "zips").await.unwrap();
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        vec![live(format!("user:{jean}"), &["SELECT"])]
    );
    assert_eq!(h.dremio.count("GET", "/api/v3/catalog/by-path"), 0);
}

#[tokio::test]
async fn a_cloud_provider_of_an_unknown_project_is_not_ready() {
    let h = Harness::new().await;
    h.secret(NS, "dremio-pat", &[("token", DREMIO_TOKEN)]);
    let mut provider = h.dremio_provider(NS, "dremio", "dremio-pat", true);
    if let Some(dremio) = provider.spec.dremio.as_mut() {
        dremio.project_id = Some("no-such-project".into());
    }
    h.put(&provider);
    assert_eq!(h.provider_refusal(NS, "dremio").await, "InvalidSpec");
    let ready = h.provider_ready(NS, "dremio");
    assert!(
        ready.message.contains("no project no-such-project"),
        "{}",
        ready.message
    );
}
