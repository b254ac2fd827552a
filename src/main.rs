//! `grant-operator`: `run` (the controller, default) and `crd` (prints every CRD).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use grant_operator::api::{all_crds, crd_yaml, crds_yaml, parse_duration};
use grant_operator::controller::{self, SystemClock};
use grant_operator::metrics::Metrics;
use grant_operator::telemetry::{self, LogFormat};
use tracing::{error, info};

#[derive(Parser)]
#[command(
    name = "grant-operator",
    version,
    about = "Keeps SaaS data platform access grants matching Kubernetes resources"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers against the current cluster (the default).
    Run(RunArgs),
    /// Print every CustomResourceDefinition as YAML.
    Crd {
        /// Write one file per kind into this folder instead (as committed in `crds/`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Kubeconfig file; by default KUBECONFIG, ~/.kube/config, or the in-cluster service account.
    #[arg(long, env = "GRANT_OPERATOR_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use instead of the current one.
    #[arg(long, env = "KUBE_CONTEXT")]
    context: Option<String>,
    /// Watch only this namespace (grants, providers, Secrets); all namespaces when unset.
    #[arg(long, short = 'n', env = "WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// syncInterval of resources that do not set one (e.g. 30s, 10m, 1h).
    #[arg(long, env = "SYNC_INTERVAL", default_value = "10m", value_parser = interval)]
    sync_interval: Duration,
    /// How often providers authenticate again.
    #[arg(long, env = "PROVIDER_CHECK_INTERVAL", default_value = "10m", value_parser = interval)]
    provider_check_interval: Duration,
    /// Reconciles in flight per controller.
    #[arg(long, env = "CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Log filter, e.g. `info` or `grant_operator=debug,kube=warn`.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

fn write_crds(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|error| error.to_string())?;
    for (file, crd) in all_crds() {
        let yaml = crd_yaml(&crd).map_err(|error| error.to_string())?;
        std::fs::write(dir.join(&file), yaml).map_err(|error| format!("{file}: {error}"))?;
    }
    Ok(())
}

fn interval(text: &str) -> Result<Duration, String> {
    match parse_duration(text) {
        Some(duration) if duration >= Duration::from_secs(1) => Ok(duration),
        Some(_) => Err("must be at least 1s".into()),
        None => Err("expected a duration such as 30s, 10m or 1h".into()),
    }
}

/// glibc gives threads their own heap arenas and keeps freed memory in each. The
/// operator's threads mostly wait on the network, so one arena costs nothing in
/// speed and saves about 8% of resident memory with 10,000 resources (measured
/// with `tests/bench_memory.rs`). `MALLOC_ARENA_MAX`, when set, still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    const M_ARENA_MAX: std::ffi::c_int = -8;
    unsafe extern "C" {
        fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    }
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only tunes the allocator; it is called once, before any
        // other thread exists.
        unsafe {
            mallopt(M_ARENA_MAX, 1);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn main() -> ExitCode {
    limit_malloc_arenas();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run_cli()),
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run_cli() -> ExitCode {
    grant_operator::install_crypto_provider();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd { dir: Some(dir) }) => match write_crds(&dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("cannot write the CRDs to {}: {error}", dir.display());
                ExitCode::FAILURE
            }
        },
        Some(Command::Crd { dir: None }) => match crds_yaml() {
            Ok(yaml) => {
                use std::io::Write;
                match std::io::stdout().lock().write_all(yaml.as_bytes()) {
                    Ok(()) => ExitCode::SUCCESS,
                    // `grant-operator crd | head` closes the pipe early; that is fine.
                    Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                        ExitCode::SUCCESS
                    }
                    Err(error) => {
                        eprintln!("cannot write the CRDs: {error}");
                        ExitCode::FAILURE
                    }
                }
            }
            Err(error) => {
                eprintln!("cannot render the CRDs: {error}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Run(args)) => run(args).await,
        None => run(cli.run).await,
    }
}

async fn run(args: RunArgs) -> ExitCode {
    telemetry::init(&args.log_level, args.log_format);
    let client = match kube_client(&args).await {
        Ok(client) => client,
        Err(message) => {
            error!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let config = controller::Config {
        default_sync_interval: args.sync_interval,
        provider_check_interval: args.provider_check_interval,
        concurrency: args.concurrency,
        namespace: args.namespace.clone(),
        ..controller::Config::default()
    };
    info!(
        namespace = args.namespace.as_deref().unwrap_or("<all>"),
        sync_interval = ?args.sync_interval,
        concurrency = args.concurrency,
        "starting grant-operator {}",
        env!("CARGO_PKG_VERSION")
    );
    let metrics = Arc::new(Metrics::new());
    controller::run::run(
        client,
        config,
        metrics,
        Arc::new(SystemClock),
        controller::run::shutdown_signal(),
    )
    .await;
    info!("stopped");
    ExitCode::SUCCESS
}

async fn kube_client(args: &RunArgs) -> Result<kube::Client, String> {
    let options = kube::config::KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|error| format!("cannot read kubeconfig {}: {error}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|error| format!("invalid kubeconfig {}: {error}", path.display()))?
        }
        None if args.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|error| format!("cannot load kubeconfig: {error}"))?,
        None => kube::Config::infer().await.map_err(|error| {
            format!("no Kubernetes configuration found (kubeconfig or in-cluster): {error}")
        })?,
    };
    kube::Client::try_from(config)
        .map_err(|error| format!("cannot create the Kubernetes client: {error}"))
}
