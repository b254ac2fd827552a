//! Requests to Sigma: unknown emails, batches of at most 100, a refused grant
//! isolated from its batch, pagination.

use super::*;

#[tokio::test]
async fn unknown_email_is_grantee_not_found_while_the_others_apply() {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    // A substring match must not be taken for the member.
    h.sigma.add_member("nobody@example.com.au");
    h.put(&sigma_grant(
        "readers",
        vec![
            member("Jane@Example.com", Usage),
            member("nobody@example.com", Usage),
            team("Nope", Usage),
        ],
    ));
    let error = h.settle("readers").await.unwrap_err();
    assert_eq!(error.reason(), "GranteeNotFound");
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())]
    );
    let ready = h.ready_condition("readers");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "GranteeNotFound")
    );
    assert!(
        ready.message.contains("member:nobody@example.com"),
        "{}",
        ready.message
    );
    assert!(ready.message.contains("team:Nope"), "{}", ready.message);
    let rows = h.status("readers").grants;
    assert_eq!(rows[0].state, GrantState::Applied);
    assert_eq!(rows[1].state, GrantState::Failed);
    assert_eq!(rows[2].state, GrantState::Failed);
    assert!(
        h.events("readers")
            .iter()
            .any(|(kind, reason, _)| kind == "Warning" && reason == "GranteeNotFound")
    );

    // Once the member exists, the next retry applies it.
    h.sigma.add_member("nobody@example.com");
    h.edit("readers", |spec| spec.grants.truncate(2));
    h.settle("readers").await.unwrap();
    assert_eq!(h.live().len(), 2);
}

#[tokio::test]
async fn many_grants_go_in_batches_of_at_most_100() {
    let h = Harness::ready().await;
    h.sigma.set_page_size_cap(100);
    let ids: Vec<String> = (0..250)
        .map(|i| h.sigma.add_member(&format!("user{i}@example.com")))
        .collect();
    h.put_settled(&sigma_grant(
        "everyone",
        ids.iter().map(|id| member_id(id, Usage)).collect(),
    ))
    .await;
    assert_eq!(h.live().len(), 250);
    let posts: Vec<usize> = h
        .sigma
        .calls()
        .into_iter()
        .filter(|call| call.method == "POST" && call.path.ends_with("/grants"))
        .map(|call| call.body.unwrap()["grants"].as_array().unwrap().len())
        .collect();
    assert_eq!(posts, vec![100, 100, 50]);
    // Listings followed every page (3 pages of 100 after the writes).
    assert_eq!(
        h.status("everyone")
            .grants
            .iter()
            .filter(|row| row.state == GrantState::Applied)
            .count(),
        250
    );
}

#[tokio::test]
async fn a_refused_grant_is_isolated_and_the_rest_of_its_batch_applies() {
    let h = Harness::ready().await;
    let ids: Vec<String> = (0..10)
        .map(|i| h.sigma.add_member(&format!("user{i}@example.com")))
        .collect();
    let mut grants: Vec<_> = ids.iter().map(|id| member_id(id, Usage)).collect();
    grants.insert(4, member_id("DoesNotExist", Usage));
    h.put(&sigma_grant("readers", grants));
    let error = h.settle("readers").await.unwrap_err();
    assert_eq!(error.reason(), "InvalidGrant");
    assert_eq!(h.live().len(), 10);
    let rows = h.status("readers").grants;
    assert_eq!(rows[4].state, GrantState::Failed);
    assert!(
        rows[4].message.contains("DoesNotExist"),
        "{}",
        rows[4].message
    );
    assert_eq!(
        rows.iter()
            .filter(|row| row.state == GrantState::Applied)
            .count(),
        10
    );
}

#[tokio::test]
async fn pagination_is_followed_until_next_page_is_null() {
    let h = Harness::ready().await;
    h.sigma.set_page_size_cap(2);
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = h.sigma.add_member(&format!("user{i}@example.com"));
        h.sigma
            .seed_grant(CONNECTION, sigma::Grantee::Member(id.clone()), "usage");
        ids.push(id);
    }
    h.put_settled(&sigma_grant(
        "readers",
        ids.iter().map(|id| member_id(id, Usage)).collect(),
    ))
    .await;
    assert_eq!(
        h.sigma.count("GET", "/v2/connections"),
        3,
        "three pages, then nextPage is null"
    );
    assert_eq!(
        h.sigma.count("POST", "/v2/connections"),
        0,
        "everything was already live: adopted"
    );
    assert_eq!(
        h.ready_condition("readers").message,
        "5 of 5 grants applied"
    );
}
