//! No secret value or token ever reaches logs (at any level, ours or the
//! libraries'), status, Events, or `Debug` output.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

#[tokio::test]
async fn secrets_and_tokens_never_leave_memory() {
    let logs = Capture::default();
    tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_writer(logs.clone())
        .with_ansi(false)
        .init();

    let h = Harness::ready().await;
    h.sigma.add_member("jane@example.com");
    h.put(&jane_readers());
    h.settle("readers").await.unwrap();
    // Refresh after a refused token, then a failing rotation.
    h.sigma.expire_all_tokens();
    h.advance(Duration::from_secs(61));
    h.settle("readers").await.unwrap();
    h.secret(
        NS,
        "sigma-api",
        &[
            ("client-id", CLIENT_ID),
            ("client-secret", "rotated-but-wrong"),
        ],
    );
    h.advance(Duration::from_secs(61));
    let _ = h.settle("readers").await;
    let _ = h.reconcile_provider(NS, "sigma-prod").await;

    // Snowflake: an encrypted key pair (JWTs, one refused as expired) and a PAT.
    h.put_snowflake_provider(
        "snowflake-key",
        SnowflakeLogin::EncryptedKeyPair,
        grant_operator::api::SnowflakeGrantsApi::RoleGrants,
    );
    h.reconcile_provider(NS, "snowflake").await.unwrap();
    h.put(&snowflake_grant(
        "sf",
        (grant_operator::api::SnowflakeGranteeType::Role, "ANALYST"),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        true,
    ));
    h.settle_of::<grant_operator::api::SnowflakeGrant>("sf")
        .await
        .unwrap();
    h.snowflake.shift_clock(2 * 3600);
    h.advance(Duration::from_secs(61));
    let _ = h
        .settle_of::<grant_operator::api::SnowflakeGrant>("sf")
        .await;
    h.snowflake.shift_clock(0);
    h.snowflake_secret(NS, "snowflake-pat", SnowflakeLogin::Pat);
    h.put(&h.snowflake_provider(
        NS,
        "snowflake-pat",
        "snowflake-pat",
        SnowflakeLogin::Pat,
        grant_operator::api::SnowflakeGrantsApi::Legacy,
    ));
    h.reconcile_provider(NS, "snowflake-pat").await.unwrap();

    let mut secrets = vec![CLIENT_SECRET.to_string(), "rotated-but-wrong".to_string()];
    secrets.push(SNOWFLAKE_PASSPHRASE.trim().to_string());
    secrets.push(SNOWFLAKE_PAT.to_string());
    secrets.extend(
        SNOWFLAKE_KEY
            .lines()
            .chain(SNOWFLAKE_ENCRYPTED_KEY.lines())
            .filter(|line| !line.starts_with("-----"))
            .map(String::from),
    );
    for call in h.snowflake.calls() {
        if let Some(token) = call
            .authorization
            .as_deref()
            .and_then(|auth| auth.strip_prefix("Bearer "))
        {
            secrets.push(token.to_string());
        }
    }
    for call in h.sigma.calls() {
        if let Some(token) = call
            .authorization
            .as_deref()
            .and_then(|auth| auth.strip_prefix("Bearer "))
        {
            secrets.push(token.to_string());
        }
    }
    let bearer_tokens = |calls: Vec<support::emulator::Call>| {
        calls
            .iter()
            .filter(|call| call.authorization.is_some())
            .count()
    };
    assert!(bearer_tokens(h.sigma.calls()) > 0, "Sigma tokens were used");
    assert!(
        h.snowflake
            .calls()
            .iter()
            .any(|call| call.header("x-snowflake-authorization-token-type") == Some("KEYPAIR_JWT")),
        "Snowflake JWTs were used"
    );

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.len() > 10_000,
        "trace logs were captured ({} bytes)",
        logs.len()
    );
    let mut objects = String::new();
    for (group, plural) in [
        ("grantoperator.dev", "sigmagrants"),
        ("grantoperator.dev", "snowflakegrants"),
        ("grantoperator.dev", "grantproviders"),
        ("events.k8s.io", "events"),
    ] {
        for object in h.kube.list_json(group, plural) {
            objects.push_str(&object.to_string());
        }
    }
    let debug = format!("{:?}", h.context.clients.snapshot());
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret or token was logged"
        );
        assert!(
            !objects.contains(secret.as_str()),
            "a secret or token reached status or an Event"
        );
        assert!(
            !debug.contains(secret.as_str()),
            "a secret or token is in Debug output"
        );
    }
}
