//! The check at work: the demo sends only conforming requests, a violation
//! names the scenario, request and rule, and a harness fails its test when a
//! request departs.

use super::*;

/// The demo runs outside any harness: its requests are checked here.
#[tokio::test]
async fn the_demo_sends_only_conforming_requests() {
    grant_operator::install_crypto_provider();
    let sandboxes = grant_operator::cli::demo::Sandboxes::start().await;
    grant_operator::cli::demo::run_on(&sandboxes).await.unwrap();
    let sigma = sandboxes.sigma.journal();
    let snowflake = sandboxes.snowflake.journal();
    assert!(!sigma.is_empty() && !snowflake.is_empty());
    conformance::assert_conform(&conformance::scenario(), &sigma, &snowflake);
}

/// A violation names the scenario, the request and the rule.
#[test]
fn a_violation_names_the_scenario_the_request_and_the_rule() {
    let Some(apis) = definitions() else {
        return;
    };
    let lines = conformance::violations(
        "some_scenario",
        &apis.sigma,
        &[sigma(
            "GET",
            "/v2/connections/c1/grants?limit=1000&x=1",
            None,
        )],
    );
    assert_eq!(
        lines,
        vec![
            "some_scenario: sigma GET /v2/connections/c1/grants?limit=1000&x=1: \
             public-rest-api.json#listConnectionGrants: query parameter x is not defined"
                .to_string()
        ]
    );
}

/// The harness checks what its emulators received when it is dropped: a
/// request that departs from Sigma's definition fails the test that sent it.
#[tokio::test]
async fn a_harness_fails_its_test_when_a_request_departs() {
    if definitions().is_none() {
        return;
    }
    let h = support::Harness::new().await;
    let reply = grant_operator::sandbox::emulator::send(
        h.sigma
            .anonymous("GET", "/v2/connections?limit=10&verbose=true")
            .bearer_auth("not-a-token"),
    )
    .await;
    assert_eq!(reply.status, 401);
    h.sigma.clear_calls();
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(h)));
    let message = dropped
        .expect_err("the harness panics on drop")
        .downcast::<String>()
        .map(|text| *text)
        .unwrap_or_default();
    assert!(
        message.contains(
            "a_harness_fails_its_test_when_a_request_departs: sigma GET /v2/connections?limit=10&verbose=true"
        ) && message.contains("query parameter verbose is not defined"),
        "{message}"
    );
}
