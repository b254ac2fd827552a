//! The command line of the `grant-operator` binary (clap): the subcommands and
//! their flags, every flag of `run` with an environment variable. Binary only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use grant_operator::api::parse_duration;
use grant_operator::telemetry::LogFormat;

#[derive(Parser)]
#[command(
    name = "grant-operator",
    version,
    about = "Keeps SaaS data platform access grants matching Kubernetes resources"
)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
pub(crate) struct AccessArgs {
    /// Manifest files or folders holding providers, grants, Secrets and Namespaces (as for `plan`).
    #[arg(
        short = 'f',
        long = "filename",
        num_args = 1..,
        required_unless_present = "from_cluster",
        conflicts_with = "from_cluster"
    )]
    pub(crate) files: Vec<PathBuf>,
    /// Read providers, grant resources and Secrets from the current kube context
    /// instead (list and get only; nothing is written).
    #[arg(long)]
    pub(crate) from_cluster: bool,
    /// A vendor object to review, by the vendor's id, as `export` names it: a
    /// Sigma connection id, a Grafana data source uid, a Dremio catalog object
    /// id, a Snowflake grantee (ROLE:NAME, DATABASE_ROLE:DB.NAME, USER:NAME).
    /// Prefix it with its vendor (sigma:, grafana:, dremio:, snowflake:) when the
    /// providers in scope reach several vendors (repeatable). Without --target,
    /// the objects the resources declare.
    #[arg(long = "target", value_name = "[VENDOR:]ID")]
    pub(crate) targets: Vec<String>,
    /// Also every object each provider can list (Sigma connections, Grafana data
    /// sources, Snowflake roles; Dremio has no such listing).
    #[arg(long)]
    pub(crate) all_targets: bool,
    /// Only the grants of this grantee: an email, a login, a team, a role, a key
    /// such as member:ID or user:7, or a Snowflake grantee (ROLE:NAME, USER:NAME),
    /// looked up with each vendor's own look-ups (repeatable).
    #[arg(long = "grantee", value_name = "NAME")]
    pub(crate) grantees: Vec<String>,
    /// Only this GrantProvider, as NAMESPACE/NAME (repeatable; default: every provider).
    #[arg(long = "provider", value_name = "NAMESPACE/NAME")]
    pub(crate) providers: Vec<String>,
    /// Only this ClusterGrantProvider (repeatable).
    #[arg(long = "cluster-provider", value_name = "NAME")]
    pub(crate) cluster_providers: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub(crate) output: AccessOutput,
    /// Exit with code 3 when a row is in this state (repeatable).
    #[arg(long = "fail-on", value_enum)]
    pub(crate) fail_on: Vec<FailOn>,
    /// Show progress on stderr even when it is not a terminal.
    #[arg(long)]
    pub(crate) progress: bool,
    /// Vendor objects read at once per provider.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) parallel: u16,
    /// A Secret value from the environment or a file (as for `plan`).
    #[arg(long = "secret", value_name = "NAMESPACE/NAME/KEY=SOURCE")]
    pub(crate) secrets: Vec<grant_operator::cli::secrets::SecretOverride>,
    /// Read Secrets the manifests do not hold from the current kube context.
    #[arg(long)]
    pub(crate) secrets_from_cluster: bool,
    /// Kubeconfig file (for --from-cluster and --secrets-from-cluster); by default
    /// KUBECONFIG, ~/.kube/config, or the in-cluster service account.
    #[arg(long)]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use instead of the current one.
    #[arg(long)]
    pub(crate) context: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum AccessOutput {
    /// A table for people.
    Table,
    /// CSV (RFC 4180) for spreadsheets.
    Csv,
    /// JSON for machines.
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum FailOn {
    /// A live grant no resource declares.
    Unmanaged,
    /// A declared grant not live, or live at another level.
    Drifted,
}

#[derive(Args, Clone)]
pub(crate) struct ExportArgs {
    /// Manifests holding the provider (and its Secrets).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub(crate) files: Vec<PathBuf>,
    /// The GrantProvider to read through, as NAMESPACE/NAME.
    #[arg(
        long,
        conflicts_with = "cluster_provider",
        required_unless_present = "cluster_provider"
    )]
    pub(crate) provider: Option<String>,
    /// The ClusterGrantProvider to read through.
    #[arg(long)]
    pub(crate) cluster_provider: Option<String>,
    /// A vendor object to export, by the vendor's id: a Sigma connection id, a
    /// Grafana data source uid, a Dremio catalog object id, a Snowflake grantee
    /// (ROLE:NAME, DATABASE_ROLE:DB.NAME, USER:NAME) (repeatable). Without it,
    /// every object the provider can list (Sigma connections, Grafana data
    /// sources; Dremio and Snowflake need --target).
    #[arg(long = "target")]
    pub(crate) targets: Vec<String>,
    /// Namespace of the exported resources (default: the provider's, or `default`).
    #[arg(short = 'n', long)]
    pub(crate) namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    pub(crate) output: ExportOutput,
    /// A Secret value from the environment or a file (as for `plan`).
    #[arg(long = "secret", value_name = "NAMESPACE/NAME/KEY=SOURCE")]
    pub(crate) secrets: Vec<grant_operator::cli::secrets::SecretOverride>,
    /// Read Secrets the manifests do not hold from the current kube context.
    #[arg(long)]
    pub(crate) secrets_from_cluster: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum ExportOutput {
    /// Multi-document YAML.
    Yaml,
    /// A JSON array.
    Json,
}

#[derive(Args, Clone)]
pub(crate) struct PlanArgs {
    /// Manifest files or folders (multi-document YAML; providers, grants, Secrets, Namespaces).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub(crate) files: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub(crate) output: Output,
    /// A Secret value from the environment or a file: NAMESPACE/NAME/KEY=env:VARIABLE
    /// or NAMESPACE/NAME/KEY=file:PATH (repeatable; wins over the manifests).
    #[arg(long = "secret", value_name = "NAMESPACE/NAME/KEY=SOURCE")]
    pub(crate) secrets: Vec<grant_operator::cli::secrets::SecretOverride>,
    /// Read Secrets the manifests do not hold from the current kube context.
    #[arg(long)]
    pub(crate) secrets_from_cluster: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Output {
    /// A table for people.
    Text,
    /// JSON for machines.
    Json,
}

#[derive(Args, Clone)]
pub(crate) struct RunArgs {
    /// Kubeconfig file; by default KUBECONFIG, ~/.kube/config, or the in-cluster service account.
    #[arg(long, env = "GRANT_OPERATOR_KUBECONFIG")]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use instead of the current one.
    #[arg(long, env = "KUBE_CONTEXT")]
    pub(crate) context: Option<String>,
    /// Watch only this namespace (grants, providers, Secrets); all namespaces when unset.
    #[arg(long, short = 'n', env = "WATCH_NAMESPACE")]
    pub(crate) namespace: Option<String>,
    /// syncInterval of resources that do not set one (e.g. 30s, 10m, 1h).
    #[arg(long, env = "SYNC_INTERVAL", default_value = "10m", value_parser = interval)]
    pub(crate) sync_interval: Duration,
    /// How often providers authenticate again.
    #[arg(long, env = "PROVIDER_CHECK_INTERVAL", default_value = "10m", value_parser = interval)]
    pub(crate) provider_check_interval: Duration,
    /// Write a Ready resource's unchanged status (only its lastSyncTime would move)
    /// once lastSyncTime is this many sync intervals old; 1 writes it on every sync.
    #[arg(long, env = "LAST_SYNC_REFRESH_INTERVALS", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) last_sync_refresh_intervals: u32,
    /// Reconciles in flight per controller.
    #[arg(long, env = "CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) concurrency: u16,
    /// Log filter, e.g. `info` or `grant_operator=debug,kube=warn`.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub(crate) log_level: String,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub(crate) log_format: LogFormat,
    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_BIND_ADDRESS", default_value = "0.0.0.0:8080")]
    pub(crate) metrics_bind_address: SocketAddr,
    /// Run the controllers only while holding a Lease, so several replicas can run.
    #[arg(long, env = "LEADER_ELECTION", default_value_t = false, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) leader_election: bool,
    /// Name of the Lease used for leader election.
    #[arg(
        long,
        env = "LEADER_ELECTION_LEASE_NAME",
        default_value = "grant-operator"
    )]
    pub(crate) leader_election_lease_name: String,
    /// Namespace of the Lease; by default the operator's own (the in-cluster service account's namespace).
    #[arg(long, env = "POD_NAMESPACE")]
    pub(crate) leader_election_namespace: Option<String>,
    /// This replica's identity in the Lease; by default the host (pod) name.
    #[arg(long, env = "POD_NAME")]
    pub(crate) leader_election_identity: Option<String>,
    /// How long the Lease stays valid without renewal (the holder renews a third of it before the end).
    #[arg(long, env = "LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = lease_duration)]
    pub(crate) leader_election_lease_duration: Duration,
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
