//! DremioGrant end to end over real HTTP: the real reconcilers against the
//! strict Dremio emulator, on the Software paths (`/api/v3`) and the Cloud
//! paths (`/v0/projects/{id}`, users and roles at organisation level), with the
//! Kubernetes side on an in-memory API.
//!
//! Every scenario runs twice (`support::each_setup!` below).

mod support;

use std::time::Duration;

use grant_operator::api::{
    DeletionPolicy, DremioCatalogObjectRef, DremioGrant, GrantState, ManagementPolicy, Mode,
};
use support::dremio::{Fault, FaultKind, GrantRecord, GranteeType};
use support::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deployment {
    Software,
    Cloud,
}

/// A harness with a Ready provider `dremio` for `deployment`.
async fn ready(deployment: Deployment) -> Harness {
    let h = Harness::new().await;
    h.secret(NS, "dremio-pat", &[("token", DREMIO_TOKEN)]);
    h.put(&h.dremio_provider(NS, "dremio", "dremio-pat", deployment == Deployment::Cloud));
    h.reconcile_provider(NS, "dremio")
        .await
        .expect("provider becomes ready");
    h.dremio.clear_calls();
    h.kube.clear_calls();
    h
}

/// The grants path of the harness's catalog object.
fn grants_path(h: &Harness, deployment: Deployment) -> String {
    match deployment {
        Deployment::Software => format!("/api/v3/catalog/{}/grants", h.dremio_object),
        Deployment::Cloud => format!(
            "/v0/projects/{DREMIO_PROJECT}/catalog/{}/grants",
            h.dremio_object
        ),
    }
}

fn live(key: String, privileges: &[&str]) -> (String, Vec<String>) {
    let mut privileges: Vec<String> = privileges.iter().map(|p| p.to_string()).collect();
    privileges.sort();
    (key, privileges)
}

async fn settle(h: &Harness, name: &str) -> Result<(), String> {
    h.settle_of::<DremioGrant>(name)
        .await
        .map(|_| ())
        .map_err(|error| error.reason().to_string())
}

fn ready_of(h: &Harness, name: &str) -> (String, String, String) {
    let ready = h.ready_of::<DremioGrant>(name);
    (ready.status, ready.reason, ready.message)
}

support::each_setup!(
    [
        create_change_remove_and_delete,
        orphan_leaves_grants_in_place,
        shared_grantee_keeps_what_the_other_resource_declares,
        authoritative_prunes_undeclared_grants,
        observe_writes_nothing_and_reports_drift,
        drift_is_repaired_at_the_next_sync,
        an_unmanaged_entry_survives_every_write,
        another_writer_between_our_read_and_write_is_never_overwritten,
        an_unavailable_privilege_is_refused_and_the_rest_applies,
        unknown_path_user_and_role_are_reported,
        users_and_roles_are_found_with_one_by_name_call_each,
        an_unreadable_grant_entry_stops_the_sync,
        refused_credentials_are_unauthorized_and_missing_rights_forbidden,
        rate_limits_and_server_errors_converge,
        steady_state_is_one_read_per_object_and_no_writes,
        a_write_that_got_no_answer_is_never_overtaken,
    ];
    software => (super::Deployment::Software),
    cloud => (super::Deployment::Cloud),
);

async fn create_change_remove_and_delete(deployment: Deployment) {
    let h = ready(deployment).await;
    let jean = h.dremio.add_user("jeansmith", "jean@example.com");
    let analysts = h.dremio.add_role("analysts");
    h.put(&dremio_grant(
        "zips",
        vec![
            dremio_user("jeansmith", &["SELECT"]),
            dremio_role("analysts", &["SELECT", "ALTER"]),
        ],
    ));
    h.reconcile_of::<DremioGrant>("zips").await.unwrap();
    assert!(h.dremio.calls().is_empty(), "no call before the finalizer");

    settle(&h, "zips").await.unwrap();
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        sorted(vec![
            live(format!("user:{jean}"), &["SELECT"]),
            live(format!("role:{analysts}"), &["ALTER", "SELECT"]),
        ])
    );
    let (status, reason, message) = ready_of(&h, "zips");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Synced"));
    assert_eq!(message, "3 of 3 grants applied");
    let grant_status = h.status_of::<DremioGrant>("zips");
    assert_eq!(
        grant_status.target.unwrap().catalog_object_id.as_deref(),
        Some(h.dremio_object.as_str())
    );
    assert_eq!(grant_status.grants.len(), 3, "one row per privilege");
    assert!(
        grant_status
            .grants
            .iter()
            .all(|row| row.state == GrantState::Applied)
    );

    // Change privileges: add one, take one away.
    h.edit_of::<DremioGrant>("zips", |grant| {
        grant.spec.grants[0].privileges = vec!["SELECT".into(), "UPDATE".into()];
        grant.spec.grants[1].privileges = vec!["SELECT".into()];
    });
    settle(&h, "zips").await.unwrap();
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        sorted(vec![
            live(format!("user:{jean}"), &["SELECT", "UPDATE"]),
            live(format!("role:{analysts}"), &["SELECT"]),
        ])
    );

    // Removal from the spec.
    h.edit_of::<DremioGrant>("zips", |grant| {
        grant.spec.grants.remove(1);
    });
    settle(&h, "zips").await.unwrap();
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        vec![live(format!("user:{jean}"), &["SELECT", "UPDATE"])]
    );

    // Deletion revokes the rest.
    h.delete_of::<DremioGrant>("zips");
    settle(&h, "zips").await.unwrap();
    assert!(h.dremio_live(&h.dremio_object).is_empty());
    assert!(h.get_of::<DremioGrant>("zips").is_none());
}

async fn orphan_leaves_grants_in_place(deployment: Deployment) {
    let h = ready(deployment).await;
    h.dremio.add_user("jeansmith", "jean@example.com");
    let mut grant = dremio_grant("zips", vec![dremio_user("jeansmith", &["SELECT"])]);
    grant.spec.policy.deletion_policy = DeletionPolicy::Orphan;
    h.put(&grant);
    settle(&h, "zips").await.unwrap();
    let puts = h.dremio.puts(&h.dremio_object);
    h.delete_of::<DremioGrant>("zips");
    settle(&h, "zips").await.unwrap();
    assert!(h.get_of::<DremioGrant>("zips").is_none());
    assert_eq!(h.dremio_live(&h.dremio_object).len(), 1);
    assert_eq!(h.dremio.puts(&h.dremio_object), puts, "no write");
}

async fn shared_grantee_keeps_what_the_other_resource_declares(deployment: Deployment) {
    let h = ready(deployment).await;
    let analysts = h.dremio.add_role("analysts");
    h.put(&dremio_grant(
        "readers",
        vec![dremio_role("analysts", &["SELECT"])],
    ));
    h.put(&dremio_grant(
        "editors",
        vec![dremio_role("analysts", &["SELECT", "ALTER"])],
    ));
    settle(&h, "readers").await.unwrap();
    settle(&h, "editors").await.unwrap();
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        vec![live(format!("role:{analysts}"), &["ALTER", "SELECT"])],
        "the union"
    );
    h.delete_of::<DremioGrant>("editors");
    settle(&h, "editors").await.unwrap();
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        vec![live(format!("role:{analysts}"), &["SELECT"])],
        "only what no other resource declares is revoked"
    );
    h.delete_of::<DremioGrant>("readers");
    settle(&h, "readers").await.unwrap();
    assert!(h.dremio_live(&h.dremio_object).is_empty());
}

async fn authoritative_prunes_undeclared_grants(deployment: Deployment) {
    let h = ready(deployment).await;
    let jean = h.dremio.add_user("jeansmith", "jean@example.com");
    let other = h.dremio.add_user("other", "other@example.com");
    h.dremio.set_grants_directly(
        &h.dremio_object,
        vec![GrantRecord {
            grantee_type: GranteeType::User,
            id: other.clone(),
            privileges: vec!["SELECT".into(), "ALTER".into()],
        }],
    );
    let mut grant = dremio_grant("zips", vec![dremio_user("jeansmith", &["SELECT"])]);
    h.put(&grant);
    settle(&h, "zips").await.unwrap();
    assert_eq!(
        h.dremio_live(&h.dremio_object).len(),
        2,
        "Additive keeps it"
    );

    grant.spec.policy.mode = Mode::Authoritative;
    h.edit_of::<DremioGrant>("zips", |g| g.spec.policy.mode = Mode::Authoritative);
    settle(&h, "zips").await.unwrap();
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        vec![live(format!("user:{jean}"), &["SELECT"])]
    );
    assert_eq!(ready_of(&h, "zips").1, "Synced");
}

async fn observe_writes_nothing_and_reports_drift(deployment: Deployment) {
    let h = ready(deployment).await;
    let jean = h.dremio.add_user("jeansmith", "jean@example.com");
    h.dremio.set_grants_directly(
        &h.dremio_object,
        vec![GrantRecord {
            grantee_type: GranteeType::User,
            id: jean.clone(),
            privileges: vec!["SELECT".into()],
        }],
    );
    let mut grant = dremio_grant("zips", vec![dremio_user("jeansmith", &["SELECT", "ALTER"])]);
    grant.spec.policy.management_policy = ManagementPolicy::Observe;
    h.put(&grant);
    settle(&h, "zips").await.unwrap();
    assert_eq!(h.dremio.puts(&h.dremio_object), 0);
    let (status, reason, message) = ready_of(&h, "zips");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "DriftDetected")
    );
    assert!(message.contains("1 of 2 grants differ"), "{message}");
    let rows = h.status_of::<DremioGrant>("zips").grants;
    assert_eq!(
        rows.iter().map(|row| row.state).collect::<Vec<_>>(),
        vec![GrantState::Applied, GrantState::Drifted]
    );
}

async fn drift_is_repaired_at_the_next_sync(deployment: Deployment) {
    let h = ready(deployment).await;
    let jean = h.dremio.add_user("jeansmith", "jean@example.com");
    h.put_settled(&dremio_grant(
        "zips",
        vec![dremio_user("jeansmith", &["SELECT", "ALTER"])],
    ))
    .await;
    h.dremio.set_grants_directly(
        &h.dremio_object,
        vec![GrantRecord {
            grantee_type: GranteeType::User,
            id: jean.clone(),
            privileges: vec!["SELECT".into()],
        }],
    );
    h.dremio.clear_calls();
    h.reconcile_of::<DremioGrant>("zips").await.unwrap();
    assert!(h.dremio.calls().is_empty(), "not due yet");
    h.advance(Duration::from_secs(61));
    settle(&h, "zips").await.unwrap();
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        vec![live(format!("user:{jean}"), &["ALTER", "SELECT"])]
    );
    assert_eq!(h.status_of::<DremioGrant>("zips").drift_corrections, 1);
}

async fn an_unmanaged_entry_survives_every_write(deployment: Deployment) {
    let h = ready(deployment).await;
    let jean = h.dremio.add_user("jeansmith", "jean@example.com");
    let owner = h.dremio.add_user("owner", "owner@example.com");
    let theirs = GrantRecord {
        grantee_type: GranteeType::User,
        id: owner.clone(),
        privileges: vec!["MANAGE_GRANTS".into(), "SELECT".into(), "ALTER".into()],
    };
    h.dremio
        .set_grants_directly(&h.dremio_object, vec![theirs.clone()]);
    let kept = || {
        h.dremio
            .grants(&h.dremio_object)
            .into_iter()
            .find(|entry| entry.id == owner)
            .map(|entry| entry.privileges)
    };
    h.put_settled(&dremio_grant(
        "zips",
        vec![dremio_user("jeansmith", &["SELECT"])],
    ))
    .await;
    assert_eq!(kept(), Some(theirs.privileges.clone()), "after a grant");
    h.edit_of::<DremioGrant>("zips", |g| {
        g.spec.grants[0].privileges = vec!["SELECT".into(), "ALTER".into()];
    });
    settle(&h, "zips").await.unwrap();
    assert_eq!(kept(), Some(theirs.privileges.clone()), "after a change");
    h.delete_of::<DremioGrant>("zips");
    settle(&h, "zips").await.unwrap();
    assert_eq!(
        kept(),
        Some(theirs.privileges.clone()),
        "after a revocation"
    );
    assert!(
        !h.dremio_live(&h.dremio_object)
            .iter()
            .any(|(key, _)| key == &format!("user:{jean}"))
    );
    assert_eq!(h.dremio.puts(&h.dremio_object), 3);
}

async fn another_writer_between_our_read_and_write_is_never_overwritten(deployment: Deployment) {
    let h = ready(deployment).await;
    let jean = h.dremio.add_user("jeansmith", "jean@example.com");
    let someone = h.dremio.add_user("someone", "someone@example.com");
    // The sync reads (1), the write reads (2) and, before the write, another
    // client changes the list; our check read (3) sees it and merges again.
    h.dremio.interfere_after_reads(
        &h.dremio_object,
        2,
        GrantRecord {
            grantee_type: GranteeType::User,
            id: someone.clone(),
            privileges: vec!["SELECT".into()],
        },
    );
    h.put_settled(&dremio_grant(
        "zips",
        vec![dremio_user("jeansmith", &["SELECT"])],
    ))
    .await;
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        sorted(vec![
            live(format!("user:{jean}"), &["SELECT"]),
            live(format!("user:{someone}"), &["SELECT"]),
        ]),
        "the other writer's entry is kept"
    );
    assert_eq!(h.dremio.puts(&h.dremio_object), 1);
    assert_eq!(ready_of(&h, "zips").1, "Synced");
}

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

/// Unknown is not absent: a grant entry the client cannot read (here of a
/// grantee type it does not know) stops the sync with a message naming it;
/// nothing is written, and a deleted resource keeps its finalizer.
async fn an_unreadable_grant_entry_stops_the_sync(deployment: Deployment) {
    let h = ready(deployment).await;
    let jean = h.dremio.add_user("jeansmith", "jean@example.com");
    h.dremio.add_role("analysts");
    h.put_settled(&dremio_grant(
        "zips",
        vec![dremio_user("jeansmith", &["SELECT"])],
    ))
    .await;
    let puts = h.dremio.puts(&h.dremio_object);

    h.dremio.inject_raw_grant(
        &h.dremio_object,
        serde_json::json!({"privileges": ["SELECT"], "granteeType": "GROUP", "id": "g-unreadable", "name": "everyone"}),
    );
    h.edit_of::<DremioGrant>("zips", |grant| {
        grant.spec.grants.push(dremio_role("analysts", &["SELECT"]));
        grant.spec.policy.mode = Mode::Authoritative;
    });
    assert_eq!(settle(&h, "zips").await.unwrap_err(), "VendorUnavailable");
    let (status, reason, message) = ready_of(&h, "zips");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "VendorUnavailable")
    );
    assert!(message.contains("cannot read an entry"), "{message}");
    assert!(
        message.contains("\"GROUP\" is not USER or ROLE"),
        "{message}"
    );
    assert!(message.contains("g-unreadable"), "{message}");
    assert_eq!(h.dremio.puts(&h.dremio_object), puts, "nothing written");

    h.delete_of::<DremioGrant>("zips");
    assert!(settle(&h, "zips").await.is_err());
    let grant = h.get_of::<DremioGrant>("zips").expect("the resource stays");
    assert_eq!(
        grant.metadata.finalizers,
        Some(vec!["grantoperator.dev/revoke".to_string()])
    );
    assert_eq!(ready_of(&h, "zips").1, "Deleting");
    assert_eq!(h.dremio.puts(&h.dremio_object), puts, "nothing revoked");
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        vec![live(format!("user:{jean}"), &["SELECT"])]
    );

    // Once the entry can be read, the deletion completes (after the failed
    // sync's own backoff, 10 ms in tests, on real time).
    h.dremio.clear_raw_grants(&h.dremio_object);
    h.advance(Duration::from_secs(61));
    tokio::time::sleep(Duration::from_millis(50)).await;
    settle(&h, "zips").await.unwrap();
    assert!(h.get_of::<DremioGrant>("zips").is_none());
    assert!(h.dremio_live(&h.dremio_object).is_empty());
}

async fn refused_credentials_are_unauthorized_and_missing_rights_forbidden(deployment: Deployment) {
    let h = ready(deployment).await;
    h.dremio.add_user("jeansmith", "jean@example.com");
    h.dremio.set_read_only(DREMIO_TOKEN);
    h.put(&dremio_grant(
        "zips",
        vec![dremio_user("jeansmith", &["SELECT"])],
    ));
    assert_eq!(settle(&h, "zips").await.unwrap_err(), "Forbidden");
    assert!(h.dremio_live(&h.dremio_object).is_empty());

    h.dremio.revoke_token(DREMIO_TOKEN);
    h.advance(Duration::from_secs(61));
    // The failed sync's own backoff runs on real time: 10 ms in tests, and a
    // refusal (Forbidden) starts three doublings along, at most 80 ms.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(settle(&h, "zips").await.unwrap_err(), "Unauthorized");
    assert_eq!(
        h.reconcile_provider(NS, "dremio")
            .await
            .unwrap_err()
            .reason(),
        "Unauthorized"
    );
    assert!(
        !h.provider_ready(NS, "dremio")
            .message
            .contains(DREMIO_TOKEN)
    );
}

async fn rate_limits_and_server_errors_converge(deployment: Deployment) {
    let h = ready(deployment).await;
    let jean = h.dremio.add_user("jeansmith", "jean@example.com");
    let path = grants_path(&h, deployment);
    h.dremio.inject(Fault {
        method: Some("PUT".into()),
        path_prefix: path.clone(),
        times: 1,
        kind: FaultKind::RateLimited {
            retry_after_secs: 1,
        },
    });
    h.dremio.inject(Fault {
        method: Some("PUT".into()),
        path_prefix: path.clone(),
        times: 1,
        kind: FaultKind::Status(502),
    });
    h.dremio.inject(Fault {
        method: Some("GET".into()),
        path_prefix: path.clone(),
        times: 2,
        kind: FaultKind::Status(503),
    });
    h.put(&dremio_grant(
        "zips",
        vec![dremio_user("jeansmith", &["SELECT"])],
    ));
    // A 429 is waited out and sent again; a 502 on the whole-list write is not
    // repeated blind (it may have landed): the sync fails, and the grant stays
    // recorded as the resource's until a read settles it.
    assert_eq!(settle(&h, "zips").await, Err("VendorUnavailable".into()));
    let row = &h.status_of::<DremioGrant>("zips").grants[0];
    assert_eq!(row.state, GrantState::Pending);
    assert!(row.message.starts_with("granting"), "{}", row.message);
    tokio::time::sleep(Duration::from_millis(100)).await;
    settle(&h, "zips").await.unwrap();
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        vec![live(format!("user:{jean}"), &["SELECT"])]
    );
    let puts: Vec<_> = h
        .dremio
        .calls()
        .into_iter()
        .filter(|call| call.method == "PUT")
        .collect();
    assert_eq!(
        puts.iter().map(|call| call.status).collect::<Vec<_>>(),
        [429, 502, 204]
    );
    assert!(puts[1].at.duration_since(puts[0].at) >= Duration::from_millis(950));
}

async fn steady_state_is_one_read_per_object_and_no_writes(deployment: Deployment) {
    let h = ready(deployment).await;
    for i in 0..4 {
        h.dremio
            .add_user(&format!("user{i}"), &format!("user{i}@example.com"));
        h.put(&dremio_grant(
            &format!("g{i}"),
            vec![dremio_user(&format!("user{i}"), &["SELECT"])],
        ));
    }
    for i in 0..4 {
        settle(&h, &format!("g{i}")).await.unwrap();
    }
    h.dremio.clear_calls();
    h.advance(Duration::from_secs(61));
    for i in 0..4 {
        settle(&h, &format!("g{i}")).await.unwrap();
    }
    assert_eq!(
        h.dremio.calls().len(),
        1,
        "one read for four resources, names and path cached: {:?}",
        h.dremio.calls()
    );
    assert_eq!(h.dremio.count("GET", &grants_path(&h, deployment)), 1);
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
    assert_eq!(
        h.reconcile_provider(NS, "dremio")
            .await
            .unwrap_err()
            .reason(),
        "InvalidSpec"
    );
    let ready = h.provider_ready(NS, "dremio");
    assert!(
        ready.message.contains("no project no-such-project"),
        "{}",
        ready.message
    );
}

/// A whole-list write whose answer never came may land later. Until it can no
/// longer land, no newer write goes to the object: a newer list written first
/// would be replaced by the late one, dropping what was declared since.
async fn a_write_that_got_no_answer_is_never_overtaken(deployment: Deployment) {
    let h = Harness::new().await;
    h.secret(NS, "dremio-pat", &[("token", DREMIO_TOKEN)]);
    let mut provider =
        h.dremio_provider(NS, "dremio", "dremio-pat", deployment == Deployment::Cloud);
    provider.spec.request_timeout_seconds = Some(1);
    h.put(&provider);
    h.reconcile_provider(NS, "dremio").await.unwrap();
    let jean = h.dremio.add_user("jeansmith", "jean@example.com");
    let analysts = h.dremio.add_role("analysts");
    let path = grants_path(&h, deployment);
    // The first write is answered after the client gave up (1 s), and lands then.
    h.dremio.inject(Fault {
        method: Some("PUT".into()),
        path_prefix: path.clone(),
        times: 1,
        kind: FaultKind::Delay(Duration::from_millis(1500)),
    });
    h.put(&dremio_grant(
        "jean",
        vec![dremio_user("jeansmith", &["SELECT"])],
    ));
    // (Not repeated blind: the sync fails, its grant recorded as an intent.)
    let first = settle(&h, "jean").await;

    // Another resource declares a grant on the same object meanwhile.
    h.put(&dremio_grant(
        "analysts",
        vec![dremio_role("analysts", &["SELECT"])],
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while settle(&h, "analysts").await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "analysts converges");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Whatever landed late, the newer declaration is live, and stays live.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let live_now = h.dremio_live(&h.dremio_object);
    assert!(
        live_now.contains(&live(format!("role:{analysts}"), &["SELECT"])),
        "a late write dropped a declared grant: {live_now:?}"
    );
    assert_eq!(first, Err("VendorUnavailable".into()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while settle(&h, "jean").await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "jean converges");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        sorted(vec![
            live(format!("user:{jean}"), &["SELECT"]),
            live(format!("role:{analysts}"), &["SELECT"]),
        ])
    );
}
