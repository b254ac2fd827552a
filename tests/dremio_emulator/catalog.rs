//! Probes, projects and the catalog: the probes, objects by id on both bases,
//! by-path look-ups decoded part by part.

use super::*;

#[tokio::test]
async fn probes_answer_the_catalog_root_and_the_project() {
    let w = world().await;
    let reply = get(&w.dremio, "/api/v3/catalog").await;
    assert_ok(&reply);
    assert_eq!(
        reply.body,
        json!({"data": [{
            "id": w.space,
            "path": ["Sales"],
            "type": "CONTAINER",
            "containerType": "SPACE",
        }]}),
        "only top-level containers"
    );
    assert_eq!(
        get(&w.dremio, &format!("{CLOUD}/catalog")).await.body,
        reply.body
    );

    let reply = get(&w.dremio, CLOUD).await;
    assert_ok(&reply);
    assert_eq!(reply.body, json!({"id": PROJECT, "name": PROJECT}));

    for path in [
        "/v0/projects/0000".to_string(),
        format!("/v0/projects/0000/catalog/{}", w.table),
        format!("/v0/projects/0000/catalog/{}/grants", w.table),
        "/v0/projects/0000/catalog/by-path/Sales".to_string(),
    ] {
        assert_error(&get(&w.dremio, &path).await, 404, "Project not found");
    }
    assert_error(
        &put(
            &w.dremio,
            "/v0/projects/0000/catalog/x/grants",
            json!({"grants": []}),
        )
        .await,
        404,
        "Project not found",
    );
    w.dremio.add_project("0000");
    assert_ok(&get(&w.dremio, "/v0/projects/0000").await);
    assert_ok(&get(&w.dremio, &format!("/v0/projects/0000/catalog/{}", w.table)).await);
}

#[tokio::test]
async fn catalog_objects_are_found_by_id_on_both_bases() {
    let w = world().await;
    for base in [SOFTWARE, CLOUD] {
        let reply = get(&w.dremio, &format!("{base}/catalog/{}", w.table)).await;
        assert_ok(&reply);
        let tag = reply.body["tag"].as_str().expect("a tag").to_string();
        assert!(!tag.is_empty());
        assert_eq!(
            reply.body,
            json!({
                "entityType": "dataset",
                "id": w.table,
                "path": ["Sales", "eu", "orders"],
                "tag": tag,
            })
        );
        let reply = get(&w.dremio, &format!("{base}/catalog/{}", w.space)).await;
        assert_eq!(reply.body["entityType"], "space");
        assert_eq!(reply.body["path"], json!(["Sales"]));

        let unknown = "8d2b1f4c-0000-4000-8000-000000000000";
        assert_error(
            &get(&w.dremio, &format!("{base}/catalog/{unknown}")).await,
            404,
            &format!("Could not find entity with id [{unknown}]"),
        );
        assert_error(
            &get(&w.dremio, &grants_path(base, unknown)).await,
            404,
            &format!("Could not find entity with id [{unknown}]"),
        );
    }
    let id = w.table.as_str();
    assert_eq!(id.len(), 36);
    assert_eq!(id.matches('-').count(), 4, "UUID-shaped: {id}");
}

#[tokio::test]
async fn by_path_decodes_each_part_and_matches_exactly() {
    let w = world().await;
    let odd = w
        .dremio
        .add_object(&["My Space", "a/b", "100% c+d"], &["SELECT"]);
    for base in [SOFTWARE, CLOUD] {
        let by_path = |rest: &str| format!("{base}/catalog/by-path/{rest}");
        let reply = get(&w.dremio, &by_path("Sales/eu/orders")).await;
        assert_ok(&reply);
        assert_eq!(reply.body["id"], json!(w.table));
        assert_eq!(reply.body["entityType"], "dataset");
        assert_eq!(
            get(&w.dremio, &by_path("Sales")).await.body["id"],
            json!(w.space)
        );
        assert_eq!(
            get(&w.dremio, &by_path("%53ales/eu/orders")).await.body["id"],
            json!(w.table),
            "any part may be escaped"
        );

        let reply = get(&w.dremio, &by_path("My%20Space/a%2Fb/100%25%20c%2Bd")).await;
        assert_ok(&reply);
        assert_eq!(reply.body["id"], json!(odd));
        assert_eq!(reply.body["path"], json!(["My Space", "a/b", "100% c+d"]));
        // A `/` that is not escaped separates parts; `+` is not a space.
        assert_error(
            &get(&w.dremio, &by_path("My%20Space/a/b/100%25%20c%2Bd")).await,
            404,
            "Could not find entity with path [My Space, a, b, 100% c+d]",
        );
        assert_error(
            &get(&w.dremio, &by_path("My+Space/a%2Fb/100%25%20c%2Bd")).await,
            404,
            "Could not find entity with path [My+Space, a/b, 100% c+d]",
        );

        for (rest, shown) in [
            ("sales/eu/orders", "sales, eu, orders"),
            ("Sales/EU/orders", "Sales, EU, orders"),
            ("Sales/eu", "Sales, eu"),
            ("Sales/eu/orders/more", "Sales, eu, orders, more"),
            ("Sales%2Feu/orders", "Sales/eu, orders"),
        ] {
            assert_error(
                &get(&w.dremio, &by_path(rest)).await,
                404,
                &format!("Could not find entity with path [{shown}]"),
            );
        }

        for rest in ["", "Sales//orders", "Sales/eu/", "/Sales", "Sales/%20/x/%"] {
            let reply = get(&w.dremio, &by_path(rest)).await;
            assert_eq!(reply.status, 400, "{rest}: {reply:?}");
            assert!(reply.body["errorMessage"].is_string(), "{reply:?}");
        }
        assert_error(
            &get(&w.dremio, &format!("{base}/catalog/by-path")).await,
            400,
            "Catalog path must not have empty parts",
        );
        assert_error(
            &get(&w.dremio, &by_path("Sales/%zz")).await,
            400,
            "Malformed percent-encoding in path",
        );
        assert_error(
            &get(&w.dremio, &by_path("Sales/%ff")).await,
            400,
            "Malformed percent-encoding in path",
        );
    }
}
