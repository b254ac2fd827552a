//! Responses: the Sigma and Snowflake clients read only fields their answers
//! define, and the static check flags one that is not defined.

use super::*;

fn schema_of<T: schemars::JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap()
}

/// Statically: every field the Sigma client reads from an answer exists in
/// the response schema of the operation that gives it.
#[test]
fn the_sigma_client_reads_only_fields_its_answers_define() {
    let Some(apis) = definitions() else {
        return;
    };
    for (method, template, wire) in [
        ("POST", "/v2/auth/token", schema_of::<TokenAnswer>()),
        (
            "GET",
            "/v2/connections/{connectionId}/grants",
            schema_of::<Page<GrantEntry>>(),
        ),
        (
            "GET",
            "/v2/connections",
            schema_of::<Page<ConnectionEntry>>(),
        ),
        ("GET", "/v2/members", schema_of::<Page<MemberEntry>>()),
        ("GET", "/v2/teams", schema_of::<Page<TeamEntry>>()),
    ] {
        let missing = response_fields(&apis.sigma, method, template, "200", &wire).unwrap();
        assert!(missing.is_empty(), "{method} {template}: {missing:?}");
    }
}

#[test]
fn the_static_check_flags_a_field_an_answer_does_not_define() {
    #[derive(schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Entry {
        #[serde(rename = "grantId")]
        grant_id: String,
        #[serde(rename = "expiresAt")]
        expires_at: Option<String>,
    }
    let Some(apis) = definitions() else {
        return;
    };
    let missing = response_fields(
        &apis.sigma,
        "GET",
        "/v2/connections/{connectionId}/grants",
        "200",
        &schema_of::<Page<Entry>>(),
    )
    .unwrap();
    assert_eq!(missing, vec![".entries[].expiresAt".to_string()]);
    assert!(response_fields(&apis.sigma, "GET", "/v2/nowhere", "200", &json!({})).is_err());
}

/// Statically: every field the Snowflake client reads from an answer exists
/// in the response schema of the operation that gives it.
#[test]
fn the_snowflake_client_reads_only_fields_its_answers_define() {
    let Some(apis) = definitions() else {
        return;
    };
    let mut missing = Vec::new();
    for (method, template, status, wire) in
        grant_operator::vendor_api::snowflake::client::response_wire_types()
    {
        let wire = serde_json::to_value(wire).unwrap();
        for field in response_fields(&apis.snowflake, method, template, status, &wire).unwrap() {
            missing.push(format!("{method} {template} {status}: {field}"));
        }
    }
    assert!(
        missing.is_empty(),
        "fields the Snowflake client reads that the definitions do not define:\n  {}",
        missing.join("\n  ")
    );
}
