//! Memory of the real `grant-operator` binary with many grant resources
//! (ignored by default; run with
//! `cargo test --release --test bench_memory -- --ignored --nocapture`).
//!
//! The in-memory Kubernetes API is served over HTTP from this test process and
//! the operator runs as its own process, so its resident memory is measured
//! alone.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use grant_operator::api::SigmaPermission::*;
use http_body_util::BodyExt;
use support::*;
use tower::ServiceExt;

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly"]
async fn resident_memory_with_many_grants() {
    let resources: usize = env_number("SCALE_RESOURCES", 10_000);
    let connections: usize = env_number("SCALE_CONNECTIONS", 1000);
    let per_resource: usize = env_number("SCALE_GRANTS", 2);
    let h = Harness::new().await;

    // Serve the in-memory API over HTTP.
    let service = h.kube.service();
    let app = tower::service_fn(move |request: http::Request<axum::body::Body>| {
        let service = service.clone();
        async move {
            let (parts, body) = request.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let request = http::Request::from_parts(parts, kube::client::Body::from(bytes));
            let response = service.oneshot(request).await.expect("fake API answers");
            let (parts, body) = response.into_parts();
            Ok::<_, std::convert::Infallible>(http::Response::from_parts(
                parts,
                axum::body::Body::new(body),
            ))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, tower::make::Shared::new(app)).await });
    let kubeconfig =
        std::env::temp_dir().join(format!("grant-operator-bench-{}.yaml", std::process::id()));
    std::fs::File::create(&kubeconfig)
        .unwrap()
        .write_all(
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{address}\n\
                 users:\n- name: fake\n  user:\n    token: fake\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
                 current-context: fake\n"
            )
            .as_bytes(),
        )
        .unwrap();

    h.secret(
        NS,
        "sigma-api",
        &[("client-id", CLIENT_ID), ("client-secret", CLIENT_SECRET)],
    );
    h.put(&h.sigma_provider(NS, "sigma-prod", "sigma-api"));
    for c in 0..connections {
        h.sigma.add_connection(&format!("conn-{c}"));
    }
    let members: Vec<String> = (0..200)
        .map(|i| h.sigma.add_member(&format!("user{i}@example.com")))
        .collect();
    for i in 0..resources {
        let grants = (0..per_resource)
            .map(|g| {
                member_id(
                    &members[(i * 7 + g * 13) % members.len()],
                    if g % 2 == 0 { Usage } else { Annotate },
                )
            })
            .collect();
        let mut grant = sigma_grant(&format!("g{i}"), grants);
        grant.spec.connection_id = format!("conn-{}", i % connections);
        grant.spec.policy.sync_interval = Some("1h".into());
        h.put(&grant);
    }

    // BENCH_WRAPPER runs the operator under a profiler, e.g. "valgrind --tool=massif".
    let wrapper: Vec<String> = std::env::var("BENCH_WRAPPER")
        .map(|w| w.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = std::process::Command::new(program);
            command.args(args).arg(env!("CARGO_BIN_EXE_grant-operator"));
            command
        }
        None => std::process::Command::new(env!("CARGO_BIN_EXE_grant-operator")),
    };
    let mut operator = command
        .args(["run", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--concurrency", "64", "--log-level", "warn"])
        .spawn()
        .unwrap();
    let pid = operator.id();
    let mut peak = 0;
    let converged = h
        .wait_until_synced(resources, Duration::from_secs(900), || {
            peak = peak.max(rss_kib(pid, "VmRSS:"));
        })
        .await;
    // BENCH_SETTLE_SECS: how long to let it settle (idle API connections close after 90 s).
    let settle: u64 = env_number("BENCH_SETTLE_SECS", 5);
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let settled = rss_kib(pid, "VmRSS:");
    let high_water = rss_kib(pid, "VmHWM:");
    eprintln!(
        "{resources} resources ({per_resource} grants each) on {connections} connections: converged in {converged:?}; \
         resident {} MiB after settling, peak {} MiB (high-water mark {} MiB)",
        settled / 1024,
        peak / 1024,
        high_water / 1024
    );
    if std::env::var("BENCH_TRIM").is_ok() {
        let _ = std::process::Command::new("gdb")
            .args([
                "-p",
                &pid.to_string(),
                "-batch",
                "-ex",
                "call (int)malloc_trim(0)",
            ])
            .output();
        eprintln!(
            "after malloc_trim(0): resident {} MiB",
            rss_kib(pid, "VmRSS:") / 1024
        );
    }
    // SIGTERM: the operator shuts down gracefully (and a profiler can write its report).
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(60);
    while operator.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match operator.try_wait().ok().flatten() {
        Some(status) => eprintln!("operator exited on SIGTERM: {status}"),
        None => {
            eprintln!("operator did not stop on SIGTERM; killing it");
            let _ = operator.kill();
            let _ = operator.wait();
        }
    }
    let _ = std::fs::remove_file(&kubeconfig);
}
