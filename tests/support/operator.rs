//! The real operator: its loop (`run`) in a task, the binary as its own process
//! over the fake API server served on HTTP, and the leader-elected operator.

use super::*;

/// The real operator loop (`run`) in a task, stopped by [`RunningOperator::stop`].
pub struct RunningOperator {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningOperator {
    pub fn start(client: kube::Client, config: Config, metrics: Arc<Metrics>) -> RunningOperator {
        RunningOperator::spawn(|shutdown| {
            run::run(
                client,
                config,
                metrics,
                Arc::new(grant_operator::controller::SystemClock),
                shutdown,
            )
        })
    }

    /// Makes `health` report the leader and starts the operator with
    /// [`fast_config`], reporting to it, as an elected replica of the binary.
    pub fn start_leading(
        client: kube::Client,
        metrics: &Arc<Metrics>,
        health: &Arc<grant_operator::server::Health>,
    ) -> RunningOperator {
        health.set_leading(true);
        RunningOperator::start_reporting(client, fast_config(), metrics.clone(), health.clone())
    }

    /// [`RunningOperator::start`], reporting to `health` as the binary does.
    pub fn start_reporting(
        client: kube::Client,
        config: Config,
        metrics: Arc<Metrics>,
        health: Arc<grant_operator::server::Health>,
    ) -> RunningOperator {
        RunningOperator::spawn(|shutdown| {
            run::run_reporting(
                client,
                config,
                metrics,
                Arc::new(grant_operator::controller::SystemClock),
                shutdown,
                health,
            )
        })
    }

    fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(
        operator: impl FnOnce(run::ShutdownSignal) -> F,
    ) -> RunningOperator {
        use futures::FutureExt;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        }
        .boxed()
        .shared();
        let task = tokio::spawn(operator(shutdown));
        RunningOperator { stop, task }
    }

    /// Signals shutdown; `Err` when the operator did not stop within `within`.
    pub async fn stop(self, within: Duration) -> Result<(), String> {
        let _ = self.stop.send(());
        match tokio::time::timeout(within, self.task).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(format!("the operator task failed: {error}")),
            Err(_) => Err(format!("the operator did not stop within {within:?}")),
        }
    }
}

/// Requests served over HTTP by [`serve_kube_logged`]: (method, path). The
/// fake's own log also holds the in-process reflectors' requests; this one holds
/// only what came over the wire (a binary's).
pub type Served = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// Serves `kube` over HTTP on a loopback port (for an operator running as its own
/// process) and writes a kubeconfig pointing at it; returns the kubeconfig's path.
pub async fn serve_kube_over_http(kube: &FakeKube) -> std::path::PathBuf {
    serve_kube_logged(kube, None).await
}

/// [`serve_kube_over_http`], recording each request served in `log` when given.
pub async fn serve_kube_logged(kube: &FakeKube, log: Option<Served>) -> std::path::PathBuf {
    use http_body_util::BodyExt;
    use std::io::Write;
    use tower::ServiceExt;
    let service = kube.service();
    let app = tower::service_fn(move |request: http::Request<axum::body::Body>| {
        let service = service.clone();
        let log = log.clone();
        async move {
            let (parts, body) = request.into_parts();
            if let Some(log) = &log {
                log.lock()
                    .unwrap()
                    .push((parts.method.to_string(), parts.uri.path().to_string()));
            }
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
    let kubeconfig = std::env::temp_dir().join(format!(
        "grant-operator-bench-{}-{}.yaml",
        std::process::id(),
        address.port()
    ));
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
    kubeconfig
}

/// A value from `/proc/<pid>/status` in KiB (`VmRSS:`, `VmHWM:`), 0 if unreadable.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// The operator binary as its own process: `run` against `kubeconfig`, with
/// `args` appended; `BENCH_WRAPPER` (e.g. "valgrind --tool=massif") runs it
/// under a profiler, and `BENCH_OPERATOR` names another build of the binary.
pub fn spawn_operator(kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Child {
    let wrapper: Vec<String> = std::env::var("BENCH_WRAPPER")
        .map(|w| w.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    // BENCH_OPERATOR: another build of the binary (an earlier one, to compare).
    let binary = std::env::var("BENCH_OPERATOR")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_grant-operator").to_string());
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut command = std::process::Command::new(program);
            command.args(rest).arg(&binary);
            command
        }
        None => std::process::Command::new(&binary),
    };
    command
        .args(["run", "--kubeconfig"])
        .arg(kubeconfig)
        // Any free port: several benchmarks (or engineers) may run at once.
        .args(["--metrics-bind-address", "127.0.0.1:0"])
        .args(args)
        .spawn()
        .unwrap()
}

/// Stops an operator started with [`spawn_operator`] by SIGTERM (so a profiler
/// can write its report), killing it after a minute.
pub async fn stop_operator(mut operator: std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &operator.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while operator.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
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
}

/// The operator as the binary runs it with `--leader-election`: the leader gate
/// over `run`, reporting to its own [`Health`](grant_operator::server::Health).
pub struct ElectedOperator {
    pub health: Arc<grant_operator::server::Health>,
    pub metrics: Arc<Metrics>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

/// The Lease every elected test operator uses.
pub const LEASE: &str = "grant-operator";
/// The namespace of the Lease.
pub const OPERATOR_NS: &str = "grant-operator-system";

impl ElectedOperator {
    /// Starts a replica called `identity`, with a 2 s lease.
    pub fn start(client: kube::Client, config: Config, identity: &str) -> ElectedOperator {
        use futures::FutureExt;
        use grant_operator::leader::{LeaseSettings, run_while_leading};
        let metrics = Arc::new(Metrics::new());
        let health = grant_operator::server::Health::new(metrics.clone(), true);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        }
        .boxed()
        .shared();
        let settings = LeaseSettings {
            name: LEASE.into(),
            namespace: OPERATOR_NS.into(),
            identity: identity.into(),
            duration: Duration::from_secs(2),
        };
        let task = tokio::spawn({
            let metrics = metrics.clone();
            let health = health.clone();
            async move {
                run_while_leading(client.clone(), settings, health.clone(), shutdown, |stop| {
                    run::run_reporting(
                        client.clone(),
                        config.clone(),
                        metrics.clone(),
                        Arc::new(grant_operator::controller::SystemClock),
                        stop,
                        health.clone(),
                    )
                })
                .await
            }
        });
        ElectedOperator {
            health,
            metrics,
            stop,
            task,
        }
    }

    /// Signals shutdown; `Err` when it did not stop within `within` or failed.
    pub async fn stop(self, within: Duration) -> Result<(), String> {
        let _ = self.stop.send(());
        match tokio::time::timeout(within, self.task).await {
            Ok(Ok(result)) => result,
            Ok(Err(error)) => Err(format!("the operator task failed: {error}")),
            Err(_) => Err(format!("the operator did not stop within {within:?}")),
        }
    }
}

/// The operator's HTTP server (`/metrics`, `/healthz`, `/readyz`) on a loopback
/// port, stopped by [`HttpServer::stop`].
pub struct HttpServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl HttpServer {
    /// Serves `metrics` and `health`.
    pub async fn start(
        metrics: Arc<Metrics>,
        health: Arc<grant_operator::server::Health>,
    ) -> HttpServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(grant_operator::server::serve(
            listener,
            metrics,
            health,
            async move {
                let _ = stopped.await;
            },
        ));
        HttpServer { base, stop, task }
    }

    /// Shuts the server down gracefully; it must end without an error.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}
