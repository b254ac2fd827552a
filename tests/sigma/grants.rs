//! Grants applied and changed: creation with ids in status and the finalizer
//! first, grantees declared by id, raised and lowered permissions, grants
//! removed from the spec, grantees shared by two resources, `Authoritative`.

use super::*;

#[tokio::test]
async fn create_applies_grants_with_ids_in_status_and_finalizer_first() {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    let finance = h.sigma.add_team("Finance");
    h.put(&sigma_grant(
        "readers",
        vec![member("jane@example.com", Annotate), team("Finance", Usage)],
    ));

    // First reconcile: only the finalizer, no vendor call at all.
    h.reconcile("readers").await.unwrap();
    assert_eq!(
        h.sigma.calls().len(),
        0,
        "no vendor call before the finalizer is in place"
    );
    let grant = h.get("readers").unwrap();
    assert_eq!(
        grant.metadata.finalizers,
        Some(vec!["grantoperator.dev/revoke".to_string()])
    );

    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        sorted(vec![
            (format!("member:{jane}"), "annotate".to_string()),
            (format!("team:{finance}"), "usage".to_string())
        ])
    );
    let status = h.status("readers");
    let ready = h.ready_condition("readers");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Synced")
    );
    assert_eq!(ready.message, "2 of 2 grants applied");
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(
        status.target.unwrap().connection_id.as_deref(),
        Some(CONNECTION)
    );
    assert_eq!(status.grants.len(), 2);
    let ids: Vec<String> = h
        .sigma
        .grants(CONNECTION)
        .into_iter()
        .map(|g| g.grant_id)
        .collect();
    for row in &status.grants {
        assert_eq!(row.state, GrantState::Applied);
        assert!(
            ids.contains(row.vendor_id.as_ref().unwrap()),
            "row {row:?} carries a live grant id"
        );
    }
    assert_eq!(status.grants[0].grantee, format!("member:{jane}"));
    assert_eq!(status.grants[0].permission, "annotate");
    // Names beside ids: the row says who it is, as the manifest wrote it.
    assert_eq!(status.grants[0].name.as_deref(), Some("jane@example.com"));
    assert_eq!(status.grants[1].name.as_deref(), Some("Finance"));
    assert!(status.last_sync_time.is_some());
    assert_eq!(status.drift_corrections, 0);
    let events = h.events("readers");
    assert!(
        events.iter().any(|(kind, reason, note)| kind == "Normal"
            && reason == "Granted"
            && note.contains(&format!("jane@example.com (member {jane}) annotate"))
            && note.contains(&format!("Finance (team {finance}) usage"))),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_grantee_declared_by_id_is_named_where_a_manifest_names_it_and_revocations_keep_the_name()
{
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    // Declared by id only: nothing more to say than the id.
    h.put_settled(&sigma_grant("by-id", vec![member_id(&jane, Usage)]))
        .await;
    let rows = h.status("by-id").grants;
    assert_eq!(rows[0].name, None, "{rows:?}");

    // Another resource on the object names the same member by email: every
    // row of that key shows the name.
    h.put_settled(&sigma_grant(
        "readers",
        vec![member("jane@example.com", Annotate)],
    ))
    .await;
    h.settle("by-id").await.unwrap();
    let rows = h.status("readers").grants;
    assert_eq!(rows[0].name.as_deref(), Some("jane@example.com"));
    let rows = h.status("by-id").grants;
    assert_eq!(
        rows[0].name.as_deref(),
        Some("jane@example.com"),
        "{rows:?}"
    );

    // Declared nowhere any more: the revoke's Event names whom it was, from the
    // name its status row remembers.
    h.delete("by-id");
    h.settle("by-id").await.ok();
    h.edit("readers", |spec| spec.grants.clear());
    h.settle("readers").await.unwrap();
    assert!(h.live().is_empty(), "{:?}", h.live());
    let events = h.events("readers");
    assert!(
        events.iter().any(|(_, reason, note)| reason == "Revoked"
            && note.contains(&format!("jane@example.com (member {jane})"))),
        "{events:?}"
    );
}

#[tokio::test]
async fn raise_and_lower_a_permission() {
    let (h, jane) = jane_reads().await;
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())]
    );

    h.edit("readers", |spec| spec.grants[0].permission = Annotate);
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "annotate".to_string())]
    );
    assert_eq!(h.status("readers").observed_generation, Some(2));

    h.sigma.clear_calls();
    h.edit("readers", |spec| spec.grants[0].permission = Usage);
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())]
    );
    // Lowering is a revoke, then a grant.
    let writes: Vec<String> = h
        .sigma
        .calls()
        .into_iter()
        .filter(|call| call.method != "GET" && !call.path.ends_with("/auth/token"))
        .map(|call| call.method)
        .collect();
    assert_eq!(writes, vec!["DELETE", "POST"]);
    let row = &h.status("readers").grants[0];
    assert_eq!(
        (row.permission.as_str(), row.state),
        ("usage", GrantState::Applied)
    );
}

#[tokio::test]
async fn removing_a_grant_from_the_spec_revokes_it() {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    h.sigma.add_member("joe@example.com");
    h.put_settled(&sigma_grant(
        "readers",
        vec![
            member("jane@example.com", Usage),
            member("joe@example.com", Usage),
        ],
    ))
    .await;
    assert_eq!(h.live().len(), 2);

    h.edit("readers", |spec| spec.grants.truncate(1));
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())]
    );
    assert_eq!(h.status("readers").grants.len(), 1);
    assert!(
        h.events("readers")
            .iter()
            .any(|(_, reason, _)| reason == "Revoked")
    );
}

#[tokio::test]
async fn shared_grantee_survives_deletion_of_one_resource_and_is_lowered() {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    let joe = h.sigma.add_member("joe@example.com");
    h.put(&sigma_grant(
        "editors",
        vec![
            member("jane@example.com", Annotate),
            member("joe@example.com", Usage),
        ],
    ));
    h.put(&sigma_grant(
        "readers",
        vec![
            member("jane@example.com", Usage),
            member("joe@example.com", Usage),
        ],
    ));
    h.settle("editors").await.unwrap();
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        sorted(vec![
            (format!("member:{jane}"), "annotate".to_string()),
            (format!("member:{joe}"), "usage".to_string())
        ])
    );
    // Both resources report the same live grant ids.
    assert_eq!(
        h.status("editors").grants[1].vendor_id,
        h.status("readers").grants[1].vendor_id
    );

    // Deleting the annotate declaration lowers jane to what readers still declares, keeps joe.
    h.delete("editors");
    h.settle("editors").await.unwrap();
    assert!(h.get("editors").is_none());
    assert_eq!(
        h.live(),
        sorted(vec![
            (format!("member:{jane}"), "usage".to_string()),
            (format!("member:{joe}"), "usage".to_string())
        ])
    );
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.grants.units.len(),
        1,
        "the unit stays while readers is on it"
    );
    let ready = h.ready_condition("readers");
    assert_eq!(ready.reason, "Synced", "{ready:?}");
    // The lowered grant got a new id; readers' status follows it.
    let ids: Vec<String> = h
        .sigma
        .grants(CONNECTION)
        .into_iter()
        .map(|g| g.grant_id)
        .collect();
    for row in h.status("readers").grants {
        assert!(ids.contains(row.vendor_id.as_ref().unwrap()));
    }

    // Deleting the last resource revokes everything.
    h.delete("readers");
    h.settle("readers").await.unwrap();
    assert!(h.live().is_empty());
}

#[tokio::test]
async fn authoritative_prunes_undeclared_grants_but_not_unmanaged_permissions() {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    let stranger = h.sigma.add_member("stranger@example.com");
    let admin = h.sigma.add_member("admin@example.com");
    h.sigma.seed_grant(
        CONNECTION,
        sigma::Grantee::Member(stranger.clone()),
        "annotate",
    );
    h.sigma
        .seed_grant(CONNECTION, sigma::Grantee::Member(admin.clone()), "admin");

    // Additive first: the stranger's grant is left alone.
    h.put_settled(&jane_readers()).await;
    assert_eq!(h.live().len(), 3);

    h.edit("readers", |spec| {
        spec.policy.mode = grant_operator::api::Mode::Authoritative
    });
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        sorted(vec![
            (format!("member:{admin}"), "admin".to_string()),
            (format!("member:{jane}"), "usage".to_string()),
        ]),
        "undeclared grant pruned; a permission the operator does not manage is never touched"
    );
    assert_eq!(h.ready_condition("readers").reason, "Synced");
}
