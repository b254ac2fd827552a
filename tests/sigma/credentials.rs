//! Credentials and tokens: wrong, revoked, rotated and missing credentials,
//! the token cache and its refresh, Secrets outside the watched namespaces.

use super::*;

#[tokio::test]
async fn wrong_credentials_make_the_provider_unauthorized_and_grants_wait() {
    let h = Harness::new().await;
    h.secret(
        NS,
        "sigma-api",
        &[("client-id", CLIENT_ID), ("client-secret", "wrong")],
    );
    h.put(&h.sigma_provider(NS, "sigma-prod", "sigma-api"));
    let error = h.reconcile_provider(NS, "sigma-prod").await.unwrap_err();
    assert_eq!(error.reason(), "Unauthorized");
    let ready = h.provider_ready(NS, "sigma-prod");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Unauthorized")
    );
    assert!(
        !ready.message.contains("wrong"),
        "never a secret in status: {}",
        ready.message
    );
    // Woken again by its own status write with nothing changed: no new login attempt.
    h.sigma.clear_calls();
    let again = h.reconcile_provider(NS, "sigma-prod").await.unwrap_err();
    assert!(
        matches!(again, grant_operator::controller::Error::Backoff { .. }),
        "{again:?}"
    );
    assert_eq!(again.reason(), "Unauthorized");
    assert_eq!(h.sigma.calls().len(), 0);

    h.sigma.add_member("jane@example.com");
    h.put(&jane_readers());
    h.sigma.clear_calls();
    let error = h.settle("readers").await.unwrap_err();
    assert_eq!(error.reason(), "ProviderNotReady");
    let ready = h.ready_condition("readers");
    assert_eq!(ready.reason, "ProviderNotReady");
    assert!(ready.message.contains("Unauthorized"), "{}", ready.message);
    assert_eq!(
        h.sigma.calls().len(),
        0,
        "grants do not hammer the vendor with bad credentials"
    );

    // Fixing the Secret fixes the provider, then the grant, without a restart.
    h.sigma_api_secret();
    h.reconcile_provider(NS, "sigma-prod").await.unwrap();
    h.settle("readers").await.unwrap();
    assert_eq!(h.ready_condition("readers").reason, "Synced");
}

#[tokio::test]
async fn credentials_revoked_behind_our_back_give_unauthorized_and_a_provider_recheck() {
    let (h, _) = jane_reads().await;

    // The Secret is rotated to a value Sigma does not accept.
    h.secret(
        NS,
        "sigma-api",
        &[("client-id", CLIENT_ID), ("client-secret", "revoked")],
    );
    h.advance(Duration::from_secs(61));
    let error = h.settle("readers").await.unwrap_err();
    assert_eq!(error.reason(), "Unauthorized");
    assert_eq!(h.ready_condition("readers").reason, "Unauthorized");
    let recheck = h
        .rechecks
        .lock()
        .await
        .try_recv()
        .expect("provider asked to check again");
    assert_eq!(recheck.name, "sigma-prod");
    assert_eq!(h.live().len(), 1, "nothing revoked on an auth failure");
}

#[tokio::test]
async fn rotated_secret_is_used_from_the_next_sync_without_restart() {
    let h = Harness::ready().await;
    h.sigma.add_member("jane@example.com");
    h.sigma.add_member("joe@example.com");
    h.put_settled(&jane_readers()).await;

    h.sigma.add_client("client-id-2", "client-secret-2");
    h.secret(
        NS,
        "sigma-api",
        &[
            ("client-id", "client-id-2"),
            ("client-secret", "client-secret-2"),
        ],
    );
    h.sigma.expire_all_tokens();
    h.sigma.clear_calls();
    h.edit("readers", |spec| {
        spec.grants.push(member("joe@example.com", Usage))
    });
    h.settle("readers").await.unwrap();
    assert_eq!(h.live().len(), 2);
    let token_calls: Vec<_> = h
        .sigma
        .calls()
        .into_iter()
        .filter(|c| c.path == "/v2/auth/token")
        .collect();
    assert_eq!(token_calls.len(), 1, "one login with the new credentials");
    assert_eq!(token_calls[0].status, 200);
}

#[tokio::test]
async fn token_is_cached_refreshed_and_renewed_after_401() {
    let (h, _) = jane_reads().await;
    let (logins, refreshes) = h.sigma.tokens_issued();
    assert_eq!(
        (logins, refreshes),
        (1, 0),
        "the provider check's token is reused by grants"
    );

    // An access token the API refuses is dropped; the refresh token renews it.
    h.sigma.expire_all_tokens();
    h.advance(Duration::from_secs(61));
    h.settle("readers").await.unwrap();
    assert_eq!(h.sigma.tokens_issued(), (1, 1));
    assert_eq!(h.ready_condition("readers").reason, "Synced");
}

#[tokio::test]
async fn missing_secret_and_key_are_credentials_missing() {
    let h = Harness::new().await;
    h.put(&h.sigma_provider(NS, "sigma-prod", "sigma-api"));
    assert_eq!(
        h.provider_refusal(NS, "sigma-prod").await,
        "CredentialsMissing"
    );
    let ready = h.provider_ready(NS, "sigma-prod");
    assert_eq!(ready.reason, "CredentialsMissing");
    assert_eq!(ready.message, "Secret analytics/sigma-api not found");

    h.secret(NS, "sigma-api", &[("client-id", CLIENT_ID)]);
    assert_eq!(
        h.provider_refusal(NS, "sigma-prod").await,
        "CredentialsMissing"
    );
    assert_eq!(
        h.provider_ready(NS, "sigma-prod").message,
        "Secret analytics/sigma-api has no key \"client-secret\""
    );
    assert_eq!(h.sigma.calls().len(), 0);
}

#[tokio::test]
async fn the_token_is_refreshed_shortly_before_it_expires() {
    let h = Harness::new().await;
    h.sigma.set_token_ttl(4);
    h.sigma_prod_provider();
    h.reconcile_provider(NS, "sigma-prod").await.unwrap();
    h.sigma.add_member("jane@example.com");
    h.put_settled(&jane_readers()).await;
    assert_eq!(h.sigma.tokens_issued(), (1, 0));

    // Renewed a quarter of its lifetime early (at 3 s of 4 s): never refused.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    h.advance(Duration::from_secs(61));
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.sigma.tokens_issued(),
        (1, 1),
        "refreshed, not logged in again"
    );
    assert!(
        h.sigma.calls().iter().all(|call| call.status != 401),
        "no request was refused"
    );
}

#[tokio::test]
async fn secrets_outside_the_watched_namespaces_are_versioned_by_a_metadata_read() {
    use grant_operator::credentials::SecretReader;
    let h = Harness::new().await;
    h.namespace("platform", &[]);
    h.secret("platform", "sigma-api", &[("client-id", CLIENT_ID)]);
    // A reader whose watch sees no Secret at all (as with --namespace and a cluster provider).
    let (unwatched, _writer) = kube::runtime::reflector::store();
    let reader = SecretReader::new(h.kube.client(), unwatched);
    assert_eq!(reader.version("platform", "sigma-api"), None);
    let before = reader
        .current_version("platform", "sigma-api")
        .await
        .expect("a version");
    h.secret("platform", "sigma-api", &[("client-id", "rotated")]);
    let after = reader
        .current_version("platform", "sigma-api")
        .await
        .expect("a version");
    assert_ne!(before, after, "a rotation is seen without the watch");
    assert_eq!(reader.current_version("platform", "missing").await, None);
}
