//! Credentials: missing, unknown, malformed, revoked and read-only tokens.

use super::*;

#[tokio::test]
async fn missing_unknown_and_malformed_credentials_are_unauthorized() {
    let w = world().await;
    let dremio = &w.dremio;
    for path in [
        "/api/v3/catalog".to_string(),
        CLOUD.to_string(),
        grants_path(SOFTWARE, &w.table),
        grants_path(CLOUD, &w.table),
        "/v1/users/name/jeansmith".to_string(),
        "/api/v3/user/by-name/jeansmith".to_string(),
    ] {
        let unauthorized = [
            dremio.anonymous("GET", &path),
            dremio.anonymous("GET", &path).bearer_auth("not-a-token"),
            dremio
                .anonymous("GET", &path)
                .header("authorization", TOKEN),
            dremio
                .anonymous("GET", &path)
                .header("authorization", format!("_dremio{TOKEN}")),
            dremio.anonymous("GET", &path).basic_auth(TOKEN, Some("")),
            dremio
                .anonymous("GET", &path)
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("authorization", format!("Bearer {TOKEN}")),
        ];
        for attempt in unauthorized {
            assert_error(&send(attempt).await, 401, "Unauthorized");
        }
        assert_ok(&get(dremio, &path).await);
        // The scheme is case-insensitive.
        let lower = dremio
            .anonymous("GET", &path)
            .header("authorization", format!("bearer {TOKEN}"));
        assert_ok(&send(lower).await);
    }
    // Auth comes before the project check: nothing is learned without a token.
    assert_error(
        &send(dremio.anonymous("GET", "/v0/projects/unknown")).await,
        401,
        "Unauthorized",
    );
}

#[tokio::test]
async fn a_revoked_token_is_unauthorized_from_then_on() {
    let dremio = emulator().await;
    dremio.add_token("second");
    assert_ok(&get(&dremio, "/api/v3/catalog").await);
    dremio.revoke_token(TOKEN);
    assert_error(&get(&dremio, "/api/v3/catalog").await, 401, "Unauthorized");
    assert_error(&get(&dremio, CLOUD).await, 401, "Unauthorized");
    let other = dremio
        .anonymous("GET", "/api/v3/catalog")
        .bearer_auth("second");
    assert_ok(&send(other).await);

    let unknown = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        dremio.revoke_token("never-added")
    }));
    assert!(unknown.is_err(), "revoking an unknown token is a test bug");
}

#[tokio::test]
async fn a_read_only_token_reads_but_cannot_put_grants() {
    let w = world().await;
    w.dremio.set_read_only(TOKEN);
    for base in [SOFTWARE, CLOUD] {
        assert_ok(&get(&w.dremio, &grants_path(base, &w.table)).await);
        assert_ok(&get(&w.dremio, &format!("{base}/catalog/{}", w.table)).await);
        let reply = put(
            &w.dremio,
            &grants_path(base, &w.table),
            json!({"grants": [entry("USER", &w.jean, &["SELECT"])]}),
        )
        .await;
        assert_error(&reply, 403, "User does not have MANAGE GRANTS privilege");
        // An unknown object is still not found.
        let reply = put(&w.dremio, &grants_path(base, "nope"), json!({"grants": []})).await;
        assert_error(&reply, 404, "Could not find entity with id [nope]");
    }
    assert!(w.dremio.grants(&w.table).is_empty());
    assert_eq!(w.dremio.puts(&w.table), 0);
    assert_ok(&get(&w.dremio, "/api/v3/user/by-name/jeansmith").await);
}
