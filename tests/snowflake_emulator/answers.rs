//! Answers: accepted (202) requests completing after some polls, and injected
//! faults answering with Snowflake's error body.

use super::*;

#[tokio::test]
async fn accepted_answers_complete_after_some_polls() {
    let snowflake = emulator().await;
    snowflake.answer_async(1, 2);
    let reply = get(&snowflake, "/api/v2/roles").await;
    assert_eq!(reply.status, 202);
    assert_eq!(reply.body["code"], "392604");
    let handle = reply.body["resultHandler"].as_str().unwrap().to_string();
    let result = format!("/api/v2/results/{handle}");
    assert_eq!(get(&snowflake, &result).await.status, 202);
    assert_eq!(get(&snowflake, &result).await.status, 202);
    let done = get(&snowflake, &result).await;
    assert_ok(&done);
    assert_eq!(done.body.as_array().map(Vec::len), Some(3), "the roles");
    assert_error(
        &get(&snowflake, &result).await,
        404,
        "unknown result handle",
    );
    assert_eq!(snowflake.result_polls(), 4);
}

#[tokio::test]
async fn injected_faults_answer_with_the_error_body() {
    let snowflake = emulator().await;
    snowflake.inject(fault("GET", "/api/v2/roles", 1, FaultKind::Status(503)));
    let reply = get(&snowflake, "/api/v2/roles").await;
    assert_eq!(reply.status, 503);
    assert!(reply.body["request_id"].is_string());
    assert_ok(&get(&snowflake, "/api/v2/roles").await);
    let payload = good_jwt();
    // A JWT's parts are base64url JSON (sanity check of the helper).
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], subject());
}
