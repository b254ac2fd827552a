//! Another writer between a read and a write: when interference fires, which
//! reads count, and direct helpers refusing what a PUT would.

use super::*;

#[tokio::test]
async fn interference_fires_once_after_the_given_read() {
    let w = world().await;
    let bob = w.dremio.add_user("bob", "bob@example.com");
    let path = grants_path(SOFTWARE, &w.table);
    w.dremio.set_grants_directly(
        &w.table,
        vec![
            record(GranteeType::User, &w.jean, &["SELECT"]),
            record(GranteeType::Role, &w.analysts, &["SELECT"]),
        ],
    );
    // Reads of another object do not count.
    w.dremio
        .interfere_after_reads(&w.table, 2, record(GranteeType::User, &w.jean, &["ALTER"]));
    get(&w.dremio, &grants_path(SOFTWARE, &w.space)).await;
    get(&w.dremio, &format!("{SOFTWARE}/catalog/{}", w.table)).await;

    let first = get(&w.dremio, &path).await;
    assert_eq!(first.body["grants"][0]["privileges"], json!(["SELECT"]));
    assert_eq!(w.dremio.grants(&w.table)[0].privileges, ["SELECT"]);

    // The second read (through Cloud: one store) is answered unchanged, then
    // the other writer replaces jean's entry in place.
    let second = get(&w.dremio, &grants_path(CLOUD, &w.table)).await;
    assert_eq!(second.body["grants"][0]["privileges"], json!(["SELECT"]));
    assert_eq!(
        w.dremio.grants(&w.table),
        vec![
            record(GranteeType::User, &w.jean, &["ALTER"]),
            record(GranteeType::Role, &w.analysts, &["SELECT"]),
        ]
    );
    assert_eq!(w.dremio.puts(&w.table), 0, "not a PUT of ours");

    // Our write overwrites it; it never fires again.
    let reply = put(
        &w.dremio,
        &path,
        json!({"grants": [entry("USER", &w.jean, &["SELECT"])]}),
    )
    .await;
    assert_no_content(&reply);
    for _ in 0..3 {
        get(&w.dremio, &path).await;
    }
    assert_eq!(
        w.dremio.grants(&w.table),
        vec![record(GranteeType::User, &w.jean, &["SELECT"])]
    );

    // A new grantee is appended.
    w.dremio
        .interfere_after_reads(&w.table, 1, record(GranteeType::User, &bob, &["UPDATE"]));
    let reply = get(&w.dremio, &path).await;
    assert_eq!(reply.body["grants"].as_array().unwrap().len(), 1);
    assert_eq!(
        w.dremio.grants(&w.table),
        vec![
            record(GranteeType::User, &w.jean, &["SELECT"]),
            record(GranteeType::User, &bob, &["UPDATE"]),
        ]
    );

    // No privileges: the grantee's entry is removed. 0 reads: at once.
    w.dremio
        .interfere_after_reads(&w.table, 0, record(GranteeType::User, &w.jean, &[]));
    assert_eq!(
        w.dremio.grants(&w.table),
        vec![record(GranteeType::User, &bob, &["UPDATE"])]
    );
}

#[tokio::test]
async fn only_answered_reads_count_towards_interference() {
    let w = world().await;
    let path = grants_path(SOFTWARE, &w.table);
    w.dremio.interfere_after_reads(
        &w.table,
        1,
        record(GranteeType::Role, &w.analysts, &["SELECT"]),
    );
    w.dremio
        .inject(fault("GET", &path, 1, FaultKind::Status(503)));
    assert_eq!(get(&w.dremio, &path).await.status, 503);
    assert_eq!(send(w.dremio.anonymous("GET", &path)).await.status, 401);
    assert_eq!(
        get(
            &w.dremio,
            &format!("/v0/projects/other/catalog/{}/grants", w.table)
        )
        .await
        .status,
        404
    );
    assert!(w.dremio.grants(&w.table).is_empty());
    assert_eq!(w.dremio.grant_reads(&w.table), 0);

    assert_ok(&get(&w.dremio, &path).await);
    assert_eq!(w.dremio.grant_reads(&w.table), 1);
    assert_eq!(
        w.dremio.grants(&w.table),
        vec![record(GranteeType::Role, &w.analysts, &["SELECT"])]
    );
}

#[tokio::test]
async fn direct_helpers_refuse_what_a_put_would_refuse() {
    let w = world().await;
    let attempts: Vec<Box<dyn Fn() + '_>> = vec![
        Box::new(|| w.dremio.set_grants_directly("nope", vec![])),
        Box::new(|| {
            w.dremio.set_grants_directly(
                &w.table,
                vec![record(GranteeType::User, &w.jean, &["DROP"])],
            )
        }),
        Box::new(|| {
            w.dremio.set_grants_directly(
                &w.table,
                vec![record(GranteeType::Role, "unknown", &["SELECT"])],
            )
        }),
        Box::new(|| {
            w.dremio.set_grants_directly(
                &w.table,
                vec![
                    record(GranteeType::User, &w.jean, &["SELECT"]),
                    record(GranteeType::User, &w.jean, &["ALTER"]),
                ],
            )
        }),
        Box::new(|| {
            w.dremio
                .interfere_after_reads(&w.table, 1, record(GranteeType::User, "x", &["SELECT"]))
        }),
        Box::new(|| {
            w.dremio.interfere_after_reads(
                "nope",
                1,
                record(GranteeType::User, &w.jean, &["SELECT"]),
            )
        }),
        Box::new(|| {
            w.dremio.add_object(&["Sales", "eu", "orders"], &["SELECT"]);
        }),
        Box::new(|| {
            w.dremio.add_object(&["Sales", ""], &["SELECT"]);
        }),
        Box::new(|| {
            w.dremio.add_user("jeansmith", "other@example.com");
        }),
        Box::new(|| {
            w.dremio.add_role("analysts");
        }),
        Box::new(|| w.dremio.set_read_only("never-added")),
    ];
    for (i, attempt) in attempts.iter().enumerate() {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(attempt));
        assert!(outcome.is_err(), "attempt {i} is a test bug");
    }
    assert!(w.dremio.grants(&w.table).is_empty());
    // The emulator still works after those panics.
    assert_ok(&get(&w.dremio, &grants_path(SOFTWARE, &w.table)).await);
}
