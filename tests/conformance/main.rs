//! The conformance check itself (`support::conformance`): it accepts requests
//! as the vendors' definitions shape them and flags a known-bad request of each
//! kind; the Sigma client reads only response fields its definition defines;
//! and the scenario no integration test runs through a harness (the demo) sends
//! only conforming requests. Every harness-based scenario is checked when its
//! harness is dropped (`tests/support/mod.rs`).
//!
//! Without `../shared/vendor-apis/` these tests print why and check nothing.

#[path = "../support/mod.rs"]
mod support;

use std::time::Instant;

use base64::Engine as _;
use grant_operator::sandbox::emulator::Call;
use grant_operator::vendor_api::sigma::client::{
    ConnectionEntry, GrantEntry, MemberEntry, Page, TeamEntry, TokenAnswer,
};
use serde_json::{Value, json};
use support::conformance::{self, Api, definitions, response_fields};

const SIGMA_TOKEN: &str = "sat_0123456789";

fn call(method: &str, target: &str, headers: &[(&str, &str)], body: Option<Value>) -> Call {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
        .collect();
    Call {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        status: 200,
        body,
        authorization: headers
            .iter()
            .find(|(name, _)| name == "authorization")
            .map(|(_, value)| value.clone()),
        headers,
        at: Instant::now(),
    }
}

/// An HTTP Basic `Authorization` value.
fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("client-id:client-secret")
    )
}

/// Sigma's token request, with HTTP Basic credentials, the `content_type` and
/// the form `body`.
fn token_request(content_type: &str, body: Value) -> Call {
    call(
        "POST",
        "/v2/auth/token",
        &[("authorization", &basic()), ("content-type", content_type)],
        Some(body),
    )
}

fn bearer() -> String {
    format!("Bearer {SIGMA_TOKEN}")
}

fn sigma(method: &str, target: &str, body: Option<Value>) -> Call {
    let auth = bearer();
    let mut headers = vec![("authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    call(method, target, &headers, body)
}

fn snowflake(method: &str, target: &str, body: Option<Value>, token_type: &str) -> Call {
    let mut headers = vec![
        ("authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"),
        ("x-snowflake-authorization-token-type", token_type),
        ("accept", "application/json"),
    ];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    call(method, target, &headers, body)
}

fn jwt(method: &str, target: &str, body: Option<Value>) -> Call {
    snowflake(method, target, body, "KEYPAIR_JWT")
}

#[track_caller]
fn conforms(api: &Api, call: &Call) {
    let broken = api.check(call);
    assert!(
        broken.is_empty(),
        "{} {}?{} should conform: {broken:#?}",
        call.method,
        call.path,
        call.query
    );
}

#[track_caller]
fn flagged(api: &Api, call: &Call, rule: &str) {
    let broken = api.check(call);
    assert!(
        broken.iter().any(|line| line.contains(rule)),
        "{} {}?{} should break {rule:?}, broke: {broken:#?}",
        call.method,
        call.path,
        call.query
    );
}

mod harness;
mod requests;
mod responses;
