//! Authentication: the provider's check, expired and foreign JWTs, unusable
//! keys explained without the key, unknown tokens.

use super::*;

#[tokio::test]
async fn the_provider_is_ready_after_a_real_call_and_says_who_it_is() {
    let h = ready(SnowflakeGrantsApi::RoleGrants, SnowflakeLogin::KeyPair).await;
    let condition = h.provider_ready(NS, "snowflake");
    assert_eq!(condition.status, "True");
    assert!(
        condition
            .message
            .contains("MYORG-MYACCOUNT.GRANT_OPERATOR.SHA256:"),
        "{}",
        condition.message
    );
    let h = Harness::new().await;
    h.put_snowflake_provider("login", SnowflakeLogin::Pat, SnowflakeGrantsApi::Legacy);
    h.reconcile_provider(NS, "snowflake").await.unwrap();
    let calls = h.snowflake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].path, "/api/v2/roles");
    assert_eq!(calls[0].query, "showLimit=1");
    assert_eq!(
        calls[0].header("x-snowflake-authorization-token-type"),
        Some("PROGRAMMATIC_ACCESS_TOKEN")
    );
}

#[tokio::test]
async fn an_expired_jwt_is_unauthorized() {
    let h = ready(SnowflakeGrantsApi::RoleGrants, SnowflakeLogin::KeyPair).await;
    // The emulator's clock runs two hours ahead: the cached JWT has expired for it.
    h.snowflake.shift_clock(2 * 3600);
    h.put(&analyst_grant(
        "public",
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
    ));
    assert_eq!(settle(&h, "public").await.unwrap_err(), "Unauthorized");
    let (_, _, message) = ready_of(&h, "public");
    assert!(message.contains("expired"), "{message}");
}

#[tokio::test]
async fn a_jwt_signed_with_another_key_is_unauthorized() {
    let h = Harness::new().await;
    h.secret(NS, "login", &[("private-key", SNOWFLAKE_OTHER_KEY)]);
    h.put(&h.snowflake_provider(
        NS,
        "snowflake",
        "login",
        SnowflakeLogin::KeyPair,
        SnowflakeGrantsApi::RoleGrants,
    ));
    let error = h.reconcile_provider(NS, "snowflake").await.unwrap_err();
    assert_eq!(error.reason(), "Unauthorized");
    assert!(
        h.provider_ready(NS, "snowflake")
            .message
            .contains("fingerprint"),
        "{}",
        h.provider_ready(NS, "snowflake").message
    );
}

#[tokio::test]
async fn unusable_keys_are_credentials_problems_explained_without_the_key() {
    for (name, data, hint) in [
        (
            "pkcs1",
            vec![("private-key", SNOWFLAKE_PKCS1_KEY)],
            "openssl pkcs8 -topk8",
        ),
        (
            "wrong-passphrase",
            vec![
                ("private-key", SNOWFLAKE_ENCRYPTED_KEY),
                ("passphrase", "not-the-passphrase"),
            ],
            "wrong passphrase",
        ),
        ("garbage", vec![("private-key", "hello")], "not a PEM text"),
    ] {
        let h = Harness::new().await;
        h.secret(NS, "login", &data);
        let login = if data.len() == 2 {
            SnowflakeLogin::EncryptedKeyPair
        } else {
            SnowflakeLogin::KeyPair
        };
        h.put(&h.snowflake_provider(
            NS,
            "snowflake",
            "login",
            login,
            SnowflakeGrantsApi::RoleGrants,
        ));
        let error = h.reconcile_provider(NS, "snowflake").await.unwrap_err();
        assert_eq!(error.reason(), "CredentialsMissing", "{name}");
        let message = h.provider_ready(NS, "snowflake").message;
        assert!(message.contains(hint), "{name}: {message}");
        for line in SNOWFLAKE_KEY
            .lines()
            .chain(SNOWFLAKE_PKCS1_KEY.lines())
            .skip(1)
            .take(3)
        {
            assert!(
                !message.contains(line),
                "{name}: key material in the message"
            );
        }
        assert!(h.snowflake.calls().is_empty(), "{name}: nothing sent");
    }
}

#[tokio::test]
async fn an_unknown_token_is_unauthorized() {
    let h = Harness::new().await;
    h.secret(NS, "login", &[("token", "not-a-token")]);
    h.put(&h.snowflake_provider(
        NS,
        "snowflake",
        "login",
        SnowflakeLogin::OAuth,
        SnowflakeGrantsApi::RoleGrants,
    ));
    let error = h.reconcile_provider(NS, "snowflake").await.unwrap_err();
    assert_eq!(error.reason(), "Unauthorized");
    assert!(
        !h.provider_ready(NS, "snowflake")
            .message
            .contains("not-a-token")
    );
}
