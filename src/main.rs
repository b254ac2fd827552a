//! `grant-operator`: `run` (the controller, default), `crd` (prints every CRD),
//! the tools that need no cluster: `plan`, `apply`, `export`, `demo`, and the
//! access review `access` (manifests, or the cluster's resources read-only).

mod flags;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use futures::FutureExt;
use grant_operator::api::{all_crds, crd_yaml, crds_yaml};
use grant_operator::controller::{self, SystemClock};
use grant_operator::leader::{self, LeaseSettings};
use grant_operator::metrics::Metrics;
use grant_operator::server::{self, Health};
use grant_operator::telemetry::{self};
use tracing::{error, info};

use flags::{
    AccessArgs, AccessOutput, Cli, Command, ExportArgs, ExportOutput, FailOn, Output, PlanArgs,
    RunArgs,
};

fn write_crds(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|error| error.to_string())?;
    for (file, crd) in all_crds() {
        let yaml = crd_yaml(&crd).map_err(|error| error.to_string())?;
        std::fs::write(dir.join(&file), yaml).map_err(|error| format!("{file}: {error}"))?;
    }
    Ok(())
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
    let Some((manifests, secrets)) =
        reported(inputs(&args.files, args.secrets, args.secrets_from_cluster).await)
    else {
        return ExitCode::from(1);
    };
    let Some(resources) = reported(
        export::run(
            &manifests,
            &secrets,
            &provider,
            &args.targets,
            args.namespace.as_deref(),
            &Arc::new(Metrics::new()),
            &grant_operator::vendor_api::http::RetryPolicy::default(),
        )
        .await,
    ) else {
        return ExitCode::from(1);
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

/// The value of `result`; its error, if any, is printed on stderr (the command
/// then exits with 1).
fn reported<T, E: std::fmt::Display>(result: Result<T, E>) -> Option<T> {
    result.map_err(|error| eprintln!("error: {error}")).ok()
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
        let Some(client) =
            reported(kube_client_for(args.kubeconfig.as_deref(), args.context.as_deref()).await)
        else {
            return ExitCode::from(1);
        };
        Some(client)
    } else {
        None
    };
    let manifests = match (&cluster, args.from_cluster) {
        (Some(client), true) => access::from_cluster(client).await,
        _ => Manifests::load(&args.files).map_err(|error| error.to_string()),
    };
    let Some(manifests) = reported(manifests) else {
        return ExitCode::from(1);
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
    let Some(report) = reported(
        access::run(
            &manifests,
            &secrets,
            &options,
            &Arc::new(Metrics::new()),
            &grant_operator::vendor_api::http::RetryPolicy::default(),
        )
        .await,
    ) else {
        return ExitCode::from(1);
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
    let Some((manifests, secrets)) =
        reported(inputs(&args.files, args.secrets, args.secrets_from_cluster).await)
    else {
        return ExitCode::from(1);
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
