//! Grants written and revoked, on both deployments: create, change, remove and
//! delete, `Orphan`, a shared grantee, `Authoritative`, `Observe`, drift repair,
//! unmanaged entries and another writer left alone, steady state.

use super::*;

each_deployment!(
    create_change_remove_and_delete,
    orphan_leaves_grants_in_place,
    shared_grantee_keeps_what_the_other_resource_declares,
    authoritative_prunes_undeclared_grants,
    observe_writes_nothing_and_reports_drift,
    drift_is_repaired_at_the_next_sync,
    an_unmanaged_entry_survives_every_write,
    another_writer_between_our_read_and_write_is_never_overwritten,
    steady_state_is_one_read_per_object_and_no_writes,
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
    let message = assert_ready(&h, "zips", "True", "Synced");
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
    let message = assert_ready(&h, "zips", "False", "DriftDetected");
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
