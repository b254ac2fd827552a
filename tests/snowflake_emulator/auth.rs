//! Logging in: the key's fingerprint, key-pair JWTs verified for signature,
//! claims and lifetime, and the token type each token needs.

use super::*;

#[test]
fn the_fingerprint_is_the_one_openssl_computes() {
    let expected = include_str!("../fixtures/snowflake/test_key.fingerprint");
    assert_eq!(fingerprint(SNOWFLAKE_PUBLIC_KEY), expected.trim());
}

#[tokio::test]
async fn key_pair_jwts_are_verified_for_signature_claims_and_lifetime() {
    let snowflake = emulator().await;
    let fp = fingerprint(SNOWFLAKE_PUBLIC_KEY);
    let iss = format!("{}.SHA256:{fp}", subject());
    let call = |token: String| {
        let request = with(
            snowflake.anonymous("GET", "/api/v2/roles?showLimit=1"),
            &token,
            "KEYPAIR_JWT",
        );
        send(request)
    };
    let ok = call(good_jwt()).await;
    assert_ok(&ok);
    assert_eq!(ok.body.as_array().map(Vec::len), Some(1), "showLimit=1");

    let cases = [
        (
            "another key",
            jwt(SNOWFLAKE_OTHER_KEY, &iss, &subject(), now(), now() + 3600),
            "signature",
        ),
        (
            "wrong fingerprint",
            jwt(
                SNOWFLAKE_KEY,
                &format!("{}.SHA256:AAAA", subject()),
                &subject(),
                now(),
                now() + 3600,
            ),
            "fingerprint",
        ),
        (
            "expired",
            jwt(SNOWFLAKE_KEY, &iss, &subject(), now() - 7200, now() - 3600),
            "expired",
        ),
        (
            "issued in the future",
            jwt(SNOWFLAKE_KEY, &iss, &subject(), now() + 600, now() + 3000),
            "future",
        ),
        (
            "too long",
            jwt(SNOWFLAKE_KEY, &iss, &subject(), now(), now() + 7200),
            "one hour",
        ),
        (
            "other user",
            jwt(
                SNOWFLAKE_KEY,
                &format!("MYORG-MYACCOUNT.SOMEONE.SHA256:{fp}"),
                "MYORG-MYACCOUNT.SOMEONE",
                now(),
                now() + 3600,
            ),
            "unknown user",
        ),
        ("garbage", "not.a.jwt".to_string(), "invalid"),
    ];
    for (what, token, message) in cases {
        let reply = call(token).await;
        assert_eq!(reply.status, 401, "{what}: {reply:?}");
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap_or_default()
                .contains(message),
            "{what}: {reply:?}"
        );
        assert_eq!(reply.body["code"], "390144", "{what}");
    }

    // The emulator's clock can move: a valid JWT expires for it.
    snowflake.shift_clock(3 * 3600);
    assert_error(&call(good_jwt()).await, 401, "expired");
}

#[tokio::test]
async fn tokens_need_their_own_token_type() {
    let snowflake = emulator().await;
    let call = |token: &str, kind: &str| {
        send(with(
            snowflake.anonymous("GET", "/api/v2/roles"),
            token,
            kind,
        ))
    };
    assert_ok(&call(SNOWFLAKE_OAUTH, "OAUTH").await);
    assert_ok(&call(SNOWFLAKE_PAT, "PROGRAMMATIC_ACCESS_TOKEN").await);
    assert_error(
        &call(SNOWFLAKE_OAUTH, "PROGRAMMATIC_ACCESS_TOKEN").await,
        401,
        "type",
    );
    assert_error(&call(SNOWFLAKE_PAT, "KEYPAIR_JWT").await, 401, "invalid");
    assert_error(&call("unknown", "OAUTH").await, 401, "Invalid");
    let no_type = send(
        snowflake
            .anonymous("GET", "/api/v2/roles")
            .bearer_auth(SNOWFLAKE_OAUTH),
    )
    .await;
    assert_error(&no_type, 401, "Token-Type");
}
