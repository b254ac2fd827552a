//! Unreadable input: a resource the API cannot decode, and grant entries the
//! client cannot read, stop the sync without losing grants.

use super::*;

#[tokio::test]
async fn an_unreadable_resource_neither_wedges_the_watch_nor_loses_grants() {
    use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    let joe = h.sigma.add_member("joe@example.com");
    h.put_settled(&sigma_grant(
        "future",
        vec![member("joe@example.com", Usage)],
    ))
    .await;
    let mut exact = sigma_grant("exact", vec![member("jane@example.com", Usage)]);
    exact.spec.policy.mode = grant_operator::api::Mode::Authoritative;
    h.put(&exact);
    h.settle("exact").await.unwrap();
    assert_eq!(h.live().len(), 2);

    // A newer CRD lets "future" hold a value this operator cannot read.
    let resource = ApiResource::erase::<grant_operator::api::SigmaGrant>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(h.kube.client(), NS, &resource);
    api.patch(
        "future",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"mode": "SomethingNew"}})),
    )
    .await
    .unwrap();
    // A brand-new resource still syncs: the watch is not wedged.
    h.put(&sigma_grant(
        "new",
        vec![member("jane@example.com", Annotate)],
    ));
    h.settle("future").await.unwrap();
    assert!(
        h.events("future")
            .iter()
            .any(|(kind, reason, note)| kind == "Warning"
                && reason == "Unreadable"
                && note.contains("SomethingNew"))
    );

    // Its target makes no change while a member cannot be read: the Authoritative
    // neighbour must not revoke joe's grant, which "future" still holds.
    let error = h.settle("new").await.unwrap_err();
    assert_eq!(error.reason(), "InvalidSpec");
    assert!(
        h.ready_condition("new").message.contains("future"),
        "{}",
        h.ready_condition("new").message
    );
    assert_eq!(
        h.live(),
        sorted(vec![
            (format!("member:{jane}"), "usage".to_string()),
            (format!("member:{joe}"), "usage".to_string())
        ])
    );

    // Readable again: everything proceeds.
    api.patch(
        "future",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"mode": "Additive"}})),
    )
    .await
    .unwrap();
    h.settle("future").await.unwrap();
    h.settle("new").await.unwrap();
    assert_eq!(
        h.live(),
        sorted(vec![
            (format!("member:{jane}"), "annotate".to_string()),
            (format!("member:{joe}"), "usage".to_string())
        ])
    );
}

/// Unknown is not absent: a grant entry the client cannot read stops the sync
/// with a message naming it; nothing is written, and a deleted resource keeps
/// its finalizer until the entry can be read.
async fn an_unreadable_grant_entry_stops_the_sync(entry: serde_json::Value, why: &str) {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    h.sigma.add_member("joe@example.com");
    // Levels Sigma defines but the operator does not manage are known: counted, not fatal.
    let admin = h.sigma.add_member("admin@example.com");
    h.sigma.seed_grant(
        CONNECTION,
        sigma::Grantee::Member(admin.clone()),
        "writeback",
    );
    h.put_settled(&jane_readers()).await;
    assert_eq!(h.ready_condition("readers").reason, "Synced");

    h.sigma.inject_raw_grant(CONNECTION, entry);
    h.sigma.clear_calls();
    h.edit("readers", |spec| {
        spec.grants.push(member("joe@example.com", Annotate));
        spec.policy.mode = grant_operator::api::Mode::Authoritative;
    });
    let error = h.settle("readers").await.unwrap_err();
    assert_eq!(error.reason().to_string(), "VendorUnavailable");
    let ready = h.ready_condition("readers");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "VendorUnavailable")
    );
    assert!(
        ready.message.contains("cannot read an entry"),
        "{}",
        ready.message
    );
    assert!(ready.message.contains(why), "{}", ready.message);
    assert!(ready.message.contains("g-unreadable"), "{}", ready.message);
    assert_eq!(
        h.sigma.count("POST", "/v2/connections"),
        0,
        "nothing granted"
    );
    assert_eq!(
        h.sigma.count("DELETE", "/v2/connections"),
        0,
        "nothing revoked"
    );

    h.delete("readers");
    assert!(h.settle("readers").await.is_err());
    let grant = h.get("readers").expect("the resource stays");
    assert_eq!(
        grant.metadata.finalizers,
        Some(vec!["grantoperator.dev/revoke".to_string()])
    );
    let ready = h.ready_condition("readers");
    assert_eq!(ready.reason, "Deleting");
    assert!(ready.message.contains(why), "{}", ready.message);
    assert_eq!(h.sigma.count("DELETE", "/v2/connections"), 0);
    assert_eq!(
        h.live(),
        sorted(vec![
            (format!("member:{admin}"), "writeback".to_string()),
            (format!("member:{jane}"), "usage".to_string()),
        ])
    );

    // Once the entry can be read, the deletion completes (after the failed
    // sync's own backoff, 10 ms in tests, on real time).
    h.sigma.clear_raw_grants(CONNECTION);
    h.advance(Duration::from_secs(61));
    tokio::time::sleep(Duration::from_millis(50)).await;
    h.settle("readers").await.unwrap();
    assert!(h.get("readers").is_none());
    assert_eq!(
        h.live(),
        vec![(format!("member:{admin}"), "writeback".to_string())]
    );
}

#[tokio::test]
async fn a_grant_entry_without_a_grantee_stops_the_sync() {
    an_unreadable_grant_entry_stops_the_sync(
        serde_json::json!({
            "grantId": "g-unreadable", "organizationId": "o", "inodeId": CONNECTION,
            "memberId": null, "teamId": null, "permission": "usage",
        }),
        "names no member and no team",
    )
    .await;
}

#[tokio::test]
async fn a_grant_entry_with_a_permission_sigma_does_not_define_stops_the_sync() {
    an_unreadable_grant_entry_stops_the_sync(
        serde_json::json!({
            "grantId": "g-unreadable", "organizationId": "o", "inodeId": CONNECTION,
            "memberId": "m-someone", "teamId": null, "permission": "superuser",
        }),
        "\"superuser\" is not one Sigma's API defines",
    )
    .await;
}

#[tokio::test]
async fn a_malformed_grant_entry_stops_the_sync() {
    an_unreadable_grant_entry_stops_the_sync(
        serde_json::json!({
            "grantId": "g-unreadable", "memberId": "m-someone", "teamId": null,
            "permission": 3,
        }),
        "invalid type",
    )
    .await;
}
