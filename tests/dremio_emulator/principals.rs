//! Users and roles: Software's look-ups by exact name and id, Cloud's by name
//! and id at organisation level, and the filtered listings Cloud does not serve.

use super::*;

#[tokio::test]
async fn software_finds_users_and_roles_by_exact_name_and_by_id() {
    let w = world().await;
    let spaced = w.dremio.add_user("Jane Doe/EU", "jane.doe@example.com");
    let role = w.dremio.add_role("Data Team");

    let reply = get(&w.dremio, "/api/v3/user/by-name/jeansmith").await;
    assert_ok(&reply);
    let jean = json!({
        "id": w.jean,
        "name": "jeansmith",
        "firstName": "Jean",
        "lastName": "Smith",
        "email": "jean_smith@example.com",
    });
    assert_eq!(reply.body, jean);
    assert_eq!(
        get(&w.dremio, &format!("/api/v3/user/{}", w.jean))
            .await
            .body,
        jean
    );
    let reply = get(&w.dremio, "/api/v3/user/by-name/Jane%20Doe%2FEU").await;
    assert_eq!(reply.body["id"], json!(spaced));
    assert_eq!(
        (&reply.body["firstName"], &reply.body["lastName"]),
        (&json!("Jane"), &json!("Doe"))
    );

    let analysts = json!({"id": w.analysts, "name": "analysts", "type": "INTERNAL"});
    assert_eq!(
        get(&w.dremio, "/api/v3/role/by-name/analysts").await.body,
        analysts
    );
    assert_eq!(
        get(&w.dremio, &format!("/api/v3/role/{}", w.analysts))
            .await
            .body,
        analysts
    );
    assert_eq!(
        get(&w.dremio, "/api/v3/role/by-name/Data%20Team")
            .await
            .body["id"],
        json!(role)
    );

    for path in [
        "/api/v3/user/by-name/JeanSmith",
        "/api/v3/user/by-name/jean",
        "/api/v3/user/by-name/Jane+Doe%2FEU",
        "/api/v3/user/by-name/analysts",
    ] {
        let reply = get(&w.dremio, path).await;
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
        assert!(
            reply.body["errorMessage"]
                .as_str()
                .is_some_and(|m| m.starts_with("User "))
        );
    }
    assert_error(
        &get(&w.dremio, "/api/v3/user/by-name/nobody").await,
        404,
        "User nobody not found",
    );
    assert_error(
        &get(&w.dremio, "/api/v3/role/by-name/Analysts").await,
        404,
        "Role Analysts not found",
    );
    assert_error(
        &get(&w.dremio, &format!("/api/v3/user/{}", w.analysts)).await,
        404,
        &format!("User {} not found", w.analysts),
    );
    assert_error(
        &get(&w.dremio, &format!("/api/v3/role/{}", w.jean)).await,
        404,
        &format!("Role {} not found", w.jean),
    );
    assert_error(
        &get(&w.dremio, "/api/v3/user/by-name/%e9").await,
        400,
        "Malformed percent-encoding in path",
    );
}

#[tokio::test]
async fn cloud_finds_users_and_roles_by_name_and_id_at_organisation_level() {
    let w = world().await;
    let team = w.dremio.add_role("Data Team");
    let quoted = w
        .dremio
        .add_user("o'brien@example.com", "o'brien@example.com");

    // As Dremio's CLI asks: `/v1/users/name/{name}`, the name one path segment.
    let reply = get(&w.dremio, "/v1/users/name/jeansmith").await;
    assert_ok(&reply);
    assert_eq!(
        reply.body,
        json!({
            "id": w.jean,
            "name": "jeansmith",
            "firstName": "Jean",
            "lastName": "Smith",
            "identityType": "REGULAR_USER",
            "active": true,
        })
    );
    assert_eq!(
        get(&w.dremio, "/v1/roles/name/Data%20Team").await.body,
        json!({"id": team, "name": "Data Team", "type": "INTERNAL", "description": ""})
    );
    assert_eq!(
        get(&w.dremio, "/v1/users/name/o%27brien%40example.com")
            .await
            .body["id"],
        json!(quoted)
    );
    // Exact names only.
    for (path, message) in [
        ("/v1/users/name/JeanSmith", "User JeanSmith not found"),
        ("/v1/users/name/jean", "User jean not found"),
        ("/v1/roles/name/data%20team", "Role data team not found"),
        ("/v1/roles/name/jeansmith", "Role jeansmith not found"),
    ] {
        assert_error(&get(&w.dremio, path).await, 404, message);
    }

    assert_eq!(
        get(&w.dremio, &format!("/v1/users/{}", w.jean)).await.body["name"],
        "jeansmith"
    );
    assert_eq!(
        get(&w.dremio, &format!("/v1/roles/{}", w.analysts))
            .await
            .body["name"],
        "analysts"
    );
    assert_error(
        &get(&w.dremio, "/v1/users/nope").await,
        404,
        "User nope not found",
    );
    assert_error(
        &get(&w.dremio, &format!("/v1/roles/{}", w.jean)).await,
        404,
        &format!("Role {} not found", w.jean),
    );
    // Software's look-ups are not Cloud's, and the other way round.
    for path in [
        "/v1/users/by-name/jeansmith",
        "/v0/users/name/jeansmith",
        "/api/v3/users/name/jeansmith",
        "/v1/user/by-name/jeansmith",
    ] {
        assert_error(&get(&w.dremio, path).await, 404, "Not found");
    }
}

/// The old form (a filtered organisation listing) is not served: the operator
/// looks up by name, as Dremio's CLI does.
#[tokio::test]
async fn cloud_serves_no_filtered_user_or_role_listing() {
    let w = world().await;
    for kind in ["users", "roles"] {
        let reply = send(
            request(&w.dremio, "GET", &format!("/v0/{kind}"))
                .query(&[("filter", "name == 'jeansmith'"), ("maxResults", "100")]),
        )
        .await;
        assert_error(&reply, 404, "Not found");
        assert_error(
            &get(&w.dremio, &format!("/v0/{kind}/{}", w.jean)).await,
            404,
            "Not found",
        );
    }
    // Look-ups take no query parameters.
    assert_eq!(
        get(&w.dremio, "/v1/users/name/jeansmith?filter=x")
            .await
            .status,
        400
    );
}
