//! `grant-operator`: `run` (the controller, default), `crd` (prints every CRD),
//! the tools that need no cluster: `plan`, `apply`, `export`, `demo`, and the
//! access review `access` (manifests, or the cluster's resources read-only).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use futures::FutureExt;
use grant_operator::api::{all_crds, crd_yaml, crds_yaml, parse_duration};
use grant_operator::controller::{self, SystemClock};
use grant_operator::leader::{self, LeaseSettings};
use grant_operator::metrics::Metrics;
use grant_operator::server::{self, Health};
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
    Run(Box<RunArgs>),
    /// Print every CustomResourceDefinition as YAML.
    Crd {
        /// Write one file per kind into this folder instead (as committed in `crds/`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Show what the controller would do for the grant resources in some
    /// manifests, reading the vendors' live grants (no cluster needed). Exit
    /// code: 0 nothing would change, 2 something would, 1 a problem.
    Plan(PlanArgs),
    /// Carry out that plan once and print each resource's result as its status
    /// would show it (resources absent from the manifests are not deleted).
    /// Exit code: 0 everything applied, 1 a problem.
    Apply(PlanArgs),
    /// The whole loop in the terminal against local vendor sandboxes: no
    /// cluster, no vendor account, no flags.
    Demo,
    /// Print grant resources that declare exactly the live grants of some vendor
    /// objects, ready to commit and adopt (`plan` on them shows no change).
    Export(ExportArgs),
    /// Review who can reach what, across every vendor: each live grant of the
    /// vendor objects in scope, managed (by which resources), expiring,
    /// unmanaged, drifted, inherited or fixed. Writes nothing. Exit code: 0 done,
    /// 1 something could not be read, 3 a row in a state named with --fail-on.
    Access(Box<AccessArgs>),
}

#[derive(Args, Clone)]
struct AccessArgs {
    /// Manifest files or folders holding providers, grants, Secrets and Namespaces (as for `plan`).
    #[arg(
        short = 'f',
        long = "filename",
        num_args = 1..,
        required_unless_present = "from_cluster",
        conflicts_with = "from_cluster"
    )]
    files: Vec<PathBuf>,
    /// Read providers, grant resources and Secrets from the current kube context
    /// instead (list and get only; nothing is written).
    #[arg(long)]
    from_cluster: bool,
    /// A vendor object to review, by the vendor's id, as `export` names it: a
    /// Sigma connection id, a Grafana data source uid, a Dremio catalog object
    /// id, a Snowflake grantee (ROLE:NAME, DATABASE_ROLE:DB.NAME, USER:NAME).
    /// Prefix it with its vendor (sigma:, grafana:, dremio:, snowflake:) when the
    /// providers in scope reach several vendors (repeatable). Without --target,
    /// the objects the resources declare.
    #[arg(long = "target", value_name = "[VENDOR:]ID")]
    targets: Vec<String>,
    /// Also every object each provider can list (Sigma connections, Grafana data
    /// sources, Snowflake roles; Dremio has no such listing).
    #[arg(long)]
    all_targets: bool,
    /// Only the grants of this grantee: an email, a login, a team, a role, a key
    /// such as member:ID or user:7, or a Snowflake grantee (ROLE:NAME, USER:NAME),
    /// looked up with each vendor's own look-ups (repeatable).
    #[arg(long = "grantee", value_name = "NAME")]
    grantees: Vec<String>,
    /// Only this GrantProvider, as NAMESPACE/NAME (repeatable; default: every provider).
    #[arg(long = "provider", value_name = "NAMESPACE/NAME")]
    providers: Vec<String>,
    /// Only this ClusterGrantProvider (repeatable).
    #[arg(long = "cluster-provider", value_name = "NAME")]
    cluster_providers: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: AccessOutput,
    /// Exit with code 3 when a row is in this state (repeatable).
    #[arg(long = "fail-on", value_enum)]
    fail_on: Vec<FailOn>,
    /// Show progress on stderr even when it is not a terminal.
    #[arg(long)]
    progress: bool,
    /// Vendor objects read at once per provider.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: u16,
    /// A Secret value from the environment or a file (as for `plan`).
    #[arg(long = "secret", value_name = "NAMESPACE/NAME/KEY=SOURCE")]
    secrets: Vec<grant_operator::cli::secrets::SecretOverride>,
    /// Read Secrets the manifests do not hold from the current kube context.
    #[arg(long)]
    secrets_from_cluster: bool,
    /// Kubeconfig file (for --from-cluster and --secrets-from-cluster); by default
    /// KUBECONFIG, ~/.kube/config, or the in-cluster service account.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use instead of the current one.
    #[arg(long)]
    context: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AccessOutput {
    /// A table for people.
    Table,
    /// CSV (RFC 4180) for spreadsheets.
    Csv,
    /// JSON for machines.
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FailOn {
    /// A live grant no resource declares.
    Unmanaged,
    /// A declared grant not live, or live at another level.
    Drifted,
}

#[derive(Args, Clone)]
struct ExportArgs {
    /// Manifests holding the provider (and its Secrets).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    files: Vec<PathBuf>,
    /// The GrantProvider to read through, as NAMESPACE/NAME.
    #[arg(
        long,
        conflicts_with = "cluster_provider",
        required_unless_present = "cluster_provider"
    )]
    provider: Option<String>,
    /// The ClusterGrantProvider to read through.
    #[arg(long)]
    cluster_provider: Option<String>,
    /// A vendor object to export, by the vendor's id: a Sigma connection id, a
    /// Grafana data source uid, a Dremio catalog object id, a Snowflake grantee
    /// (ROLE:NAME, DATABASE_ROLE:DB.NAME, USER:NAME) (repeatable). Without it,
    /// every object the provider can list (Sigma connections, Grafana data
    /// sources; Dremio and Snowflake need --target).
    #[arg(long = "target")]
    targets: Vec<String>,
    /// Namespace of the exported resources (default: the provider's, or `default`).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    output: ExportOutput,
    /// A Secret value from the environment or a file (as for `plan`).
    #[arg(long = "secret", value_name = "NAMESPACE/NAME/KEY=SOURCE")]
    secrets: Vec<grant_operator::cli::secrets::SecretOverride>,
    /// Read Secrets the manifests do not hold from the current kube context.
    #[arg(long)]
    secrets_from_cluster: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportOutput {
    /// Multi-document YAML.
    Yaml,
    /// A JSON array.
    Json,
}

#[derive(Args, Clone)]
struct PlanArgs {
    /// Manifest files or folders (multi-document YAML; providers, grants, Secrets, Namespaces).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: Output,
    /// A Secret value from the environment or a file: NAMESPACE/NAME/KEY=env:VARIABLE
    /// or NAMESPACE/NAME/KEY=file:PATH (repeatable; wins over the manifests).
    #[arg(long = "secret", value_name = "NAMESPACE/NAME/KEY=SOURCE")]
    secrets: Vec<grant_operator::cli::secrets::SecretOverride>,
    /// Read Secrets the manifests do not hold from the current kube context.
    #[arg(long)]
    secrets_from_cluster: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Output {
    /// A table for people.
    Text,
    /// JSON for machines.
    Json,
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
    /// Write a Ready resource's unchanged status (only its lastSyncTime would move)
    /// once lastSyncTime is this many sync intervals old; 1 writes it on every sync.
    #[arg(long, env = "LAST_SYNC_REFRESH_INTERVALS", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..))]
    last_sync_refresh_intervals: u32,
    /// Reconciles in flight per controller.
    #[arg(long, env = "CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Log filter, e.g. `info` or `grant_operator=debug,kube=warn`.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_BIND_ADDRESS", default_value = "0.0.0.0:8080")]
    metrics_bind_address: SocketAddr,
    /// Run the controllers only while holding a Lease, so several replicas can run.
    #[arg(long, env = "LEADER_ELECTION", default_value_t = false, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    leader_election: bool,
    /// Name of the Lease used for leader election.
    #[arg(
        long,
        env = "LEADER_ELECTION_LEASE_NAME",
        default_value = "grant-operator"
    )]
    leader_election_lease_name: String,
    /// Namespace of the Lease; by default the operator's own (the in-cluster service account's namespace).
    #[arg(long, env = "POD_NAMESPACE")]
    leader_election_namespace: Option<String>,
    /// This replica's identity in the Lease; by default the host (pod) name.
    #[arg(long, env = "POD_NAME")]
    leader_election_identity: Option<String>,
    /// How long the Lease stays valid without renewal (the holder renews a third of it before the end).
    #[arg(long, env = "LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = lease_duration)]
    leader_election_lease_duration: Duration,
}

fn write_crds(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|error| error.to_string())?;
    for (file, crd) in all_crds() {
        let yaml = crd_yaml(&crd).map_err(|error| error.to_string())?;
        std::fs::write(dir.join(&file), yaml).map_err(|error| format!("{file}: {error}"))?;
    }
    Ok(())
}

fn lease_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text) {
        Some(duration) if duration >= Duration::from_secs(2) => Ok(duration),
        Some(_) => Err("must be at least 2s".into()),
        None => Err("expected a duration such as 15s or 1m".into()),
    }
}

fn interval(text: &str) -> Result<Duration, String> {
    match parse_duration(text) {
        Some(duration) if duration >= Duration::from_secs(1) => Ok(duration),
        Some(_) => Err("must be at least 1s".into()),
        None => Err("expected a duration such as 30s, 10m or 1h".into()),
    }
}

/// The operator's memory is mimalloc's, not glibc's. Every status write comes
/// back through the watch as a new copy of its object, and glibc's malloc,
/// which can return only whole free pages, kept what the old copies and the
/// parsing in between had left free: with 10,000 resources the heap in use was
/// about 50 MB, the resident heap three times that after a burst, and it stayed
/// there. mimalloc keeps objects of one size together and gives pages back
/// once they empty (README, "Performance").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
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
        Some(Command::Run(args)) => run(*args).await,
        Some(Command::Plan(args)) => plan(args, false).await,
        Some(Command::Apply(args)) => plan(args, true).await,
        Some(Command::Demo) => demo().await,
        Some(Command::Export(args)) => export(args).await,
        Some(Command::Access(args)) => access(*args).await,
        None => run(cli.run).await,
    }
}

#[cfg(feature = "sandbox")]
async fn demo() -> ExitCode {
    match grant_operator::cli::demo::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("demo failed: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "sandbox"))]
async fn demo() -> ExitCode {
    eprintln!(
        "this build has no vendor sandboxes (it was built without the `sandbox` feature); run `cargo run -- demo` from the source tree"
    );
    ExitCode::FAILURE
}

async fn export(args: ExportArgs) -> ExitCode {
    use grant_operator::cli::export::{self, ProviderChoice};
    let provider = match (&args.provider, &args.cluster_provider) {
        (Some(reference), _) => match reference.split_once('/') {
            Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {
                ProviderChoice::Namespaced {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                }
            }
            _ => {
                eprintln!("error: --provider takes NAMESPACE/NAME");
                return ExitCode::from(1);
            }
        },
        (None, Some(name)) => ProviderChoice::Cluster(name.clone()),
        (None, None) => {
            eprintln!("error: name a --provider or a --cluster-provider");
            return ExitCode::from(1);
        }
    };
    let (manifests, secrets) =
        match inputs(&args.files, args.secrets, args.secrets_from_cluster).await {
            Ok(inputs) => inputs,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(1);
            }
        };
    let resources = match export::run(
        &manifests,
        &secrets,
        &provider,
        &args.targets,
        args.namespace.as_deref(),
        &Arc::new(Metrics::new()),
        &grant_operator::vendor_api::http::RetryPolicy::default(),
    )
    .await
    {
        Ok(resources) => resources,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
    };
    let text = match args.output {
        ExportOutput::Yaml => export::to_yaml(&resources),
        ExportOutput::Json => {
            let resources: Vec<&serde_json::Value> = resources
                .iter()
                .map(|exported| &exported.resource)
                .collect();
            serde_json::to_string_pretty(&resources).map_err(|e| e.to_string())
        }
    };
    match text {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
    }
}

/// The manifests of `files` and the Secret values the user named.
async fn inputs(
    files: &[PathBuf],
    overrides: Vec<grant_operator::cli::secrets::SecretOverride>,
    from_cluster: bool,
) -> Result<
    (
        grant_operator::cli::manifests::Manifests,
        grant_operator::cli::secrets::CliSecrets,
    ),
    String,
> {
    use grant_operator::cli::{manifests::Manifests, secrets::CliSecrets};
    let manifests = Manifests::load(files).map_err(|error| error.to_string())?;
    let cluster = if from_cluster {
        Some(
            kube::Client::try_default()
                .await
                .map_err(|error| format!("--secrets-from-cluster needs a kube context: {error}"))?,
        )
    } else {
        None
    };
    let secrets = CliSecrets::new(&manifests.secrets, overrides, cluster);
    Ok((manifests, secrets))
}

async fn access(args: AccessArgs) -> ExitCode {
    use grant_operator::cli::access::{self, Options, Progress, State};
    use grant_operator::cli::{manifests::Manifests, secrets::CliSecrets};
    use grant_operator::controller::clients::ProviderId;
    use std::io::IsTerminal;

    let mut providers = Vec::new();
    for reference in &args.providers {
        match reference.split_once('/') {
            Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {
                providers.push(ProviderId {
                    kind: grant_operator::api::ProviderKind::GrantProvider,
                    namespace: Some(namespace.to_string()),
                    name: name.to_string(),
                });
            }
            _ => {
                eprintln!("error: --provider takes NAMESPACE/NAME");
                return ExitCode::from(1);
            }
        }
    }
    providers.extend(args.cluster_providers.iter().map(|name| ProviderId {
        kind: grant_operator::api::ProviderKind::ClusterGrantProvider,
        namespace: None,
        name: name.clone(),
    }));
    let cluster = if args.from_cluster || args.secrets_from_cluster {
        match kube_client_for(args.kubeconfig.as_deref(), args.context.as_deref()).await {
            Ok(client) => Some(client),
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };
    let manifests = match (&cluster, args.from_cluster) {
        (Some(client), true) => access::from_cluster(client).await,
        _ => Manifests::load(&args.files).map_err(|error| error.to_string()),
    };
    let manifests = match manifests {
        Ok(manifests) => manifests,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
    };
    let secrets = CliSecrets::new(&manifests.secrets, args.secrets, cluster);
    let progress = if std::io::stderr().is_terminal() {
        Progress::Terminal
    } else if args.progress {
        Progress::Lines
    } else {
        Progress::Off
    };
    let options = Options {
        targets: args.targets,
        all_targets: args.all_targets,
        grantees: args.grantees,
        providers,
        parallel: usize::from(args.parallel),
        progress,
    };
    let report = match access::run(
        &manifests,
        &secrets,
        &options,
        &Arc::new(Metrics::new()),
        &grant_operator::vendor_api::http::RetryPolicy::default(),
    )
    .await
    {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
    };
    let fail_on: Vec<State> = args
        .fail_on
        .iter()
        .map(|state| match state {
            FailOn::Unmanaged => State::Unmanaged,
            FailOn::Drifted => State::Drifted,
        })
        .collect();
    let text = match args.output {
        AccessOutput::Table => Ok(access::render_table(&report)),
        AccessOutput::Csv => {
            // The CSV holds rows only; remarks go to stderr.
            for note in &report.notes {
                eprintln!("note: {note}");
            }
            Ok(access::render_csv(&report))
        }
        AccessOutput::Json => serde_json::to_string_pretty(&report)
            .map(|json| format!("{json}\n"))
            .map_err(|error| error.to_string()),
    };
    match text {
        Ok(text) => {
            use std::io::Write;
            match std::io::stdout().lock().write_all(text.as_bytes()) {
                Ok(()) => {}
                // `access | head` closes the pipe early; the exit code still tells.
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(error) => {
                    eprintln!("error: cannot write the report: {error}");
                    return ExitCode::from(1);
                }
            }
            ExitCode::from(report.exit_code(&fail_on))
        }
        Err(error) => {
            eprintln!("error: cannot render the report: {error}");
            ExitCode::from(1)
        }
    }
}

async fn plan(args: PlanArgs, apply: bool) -> ExitCode {
    use grant_operator::cli::plan;
    let (manifests, secrets) =
        match inputs(&args.files, args.secrets, args.secrets_from_cluster).await {
            Ok(inputs) => inputs,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(1);
            }
        };
    let metrics = Arc::new(Metrics::new());
    let report = plan::run(
        &manifests,
        &secrets,
        apply,
        &metrics,
        &grant_operator::vendor_api::http::RetryPolicy::default(),
    )
    .await;
    match args.output {
        Output::Text => print!("{}", plan::render(&report, apply)),
        Output::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(error) => {
                eprintln!("error: cannot render the report: {error}");
                return ExitCode::from(1);
            }
        },
    }
    ExitCode::from(report.exit_code(apply))
}

async fn run(args: RunArgs) -> ExitCode {
    telemetry::init(&args.log_level, args.log_format);
    let listener = match tokio::net::TcpListener::bind(args.metrics_bind_address).await {
        Ok(listener) => listener,
        Err(error) => {
            error!(address = %args.metrics_bind_address, %error, "cannot listen for /metrics, /healthz and /readyz");
            return ExitCode::FAILURE;
        }
    };
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
        last_sync_refresh_intervals: args.last_sync_refresh_intervals,
        ..controller::Config::default()
    };
    info!(
        namespace = args.namespace.as_deref().unwrap_or("<all>"),
        sync_interval = ?args.sync_interval,
        concurrency = args.concurrency,
        leader_election = args.leader_election,
        address = %args.metrics_bind_address,
        "starting grant-operator {}",
        env!("CARGO_PKG_VERSION")
    );
    let metrics = Arc::new(Metrics::new());
    let health = Health::new(metrics.clone(), args.leader_election);

    // The HTTP server outlives the controllers: it stops once they have.
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(
        listener,
        metrics.clone(),
        health.clone(),
        server_stopped.map(|_| ()),
    ));

    let shutdown = controller::run::shutdown_signal();
    let clock: Arc<dyn controller::Clock> = Arc::new(SystemClock);
    let mut code = ExitCode::SUCCESS;
    if args.leader_election {
        let settings = LeaseSettings {
            name: args.leader_election_lease_name.clone(),
            namespace: args
                .leader_election_namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_string()),
            identity: args
                .leader_election_identity
                .clone()
                .or_else(|| std::env::var("HOSTNAME").ok())
                .filter(|identity| !identity.is_empty())
                .unwrap_or_else(|| format!("grant-operator-{:016x}", rand::random::<u64>())),
            duration: args.leader_election_lease_duration,
        };
        let result =
            leader::run_while_leading(client.clone(), settings, health.clone(), shutdown, |stop| {
                controller::run::run_reporting(
                    client.clone(),
                    config.clone(),
                    metrics.clone(),
                    clock.clone(),
                    stop,
                    health.clone(),
                )
            })
            .await;
        if let Err(message) = result {
            error!("{message}");
            code = ExitCode::FAILURE;
        }
    } else {
        health.set_leading(true);
        controller::run::run_reporting(client, config, metrics, clock, shutdown, health.clone())
            .await;
        health.set_leading(false);
    }
    let _ = stop_server.send(());
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => error!(%error, "the HTTP server failed"),
        Err(error) => error!(%error, "the HTTP server task failed"),
    }
    info!("stopped");
    code
}

async fn kube_client(args: &RunArgs) -> Result<kube::Client, String> {
    kube_client_for(args.kubeconfig.as_deref(), args.context.as_deref()).await
}

/// A client for a kubeconfig file and context; by default as kube infers it
/// (KUBECONFIG, ~/.kube/config, or the in-cluster service account).
async fn kube_client_for(
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
) -> Result<kube::Client, String> {
    let options = kube::config::KubeConfigOptions {
        context: context.map(String::from),
        ..Default::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|error| format!("cannot read kubeconfig {}: {error}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|error| format!("invalid kubeconfig {}: {error}", path.display()))?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|error| format!("cannot load kubeconfig: {error}"))?,
        None => kube::Config::infer().await.map_err(|error| {
            format!("no Kubernetes configuration found (kubeconfig or in-cluster): {error}")
        })?,
    };
    kube::Client::try_from(config)
        .map_err(|error| format!("cannot create the Kubernetes client: {error}"))
}
