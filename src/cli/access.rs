//! `access`: a cross-vendor access review. It answers "who can use this data?"
//! and "what can this person reach?" from what the resources declare and what
//! the vendors show, without writing anything anywhere.
//!
//! Pipeline:
//! 1. **Scope.** Providers come from the sources (manifests, or the cluster with
//!    [`from_cluster`]), all of them or those named. Vendor objects are those the
//!    resources declare, those named with `--target`, or with `--all-targets`
//!    every one a provider lists. Objects are grouped as the controller's units
//!    are, by the vendor account they are reached on and the object's id: one
//!    object read through two providers of one account is read once, and the
//!    resources of both count as declaring on it.
//! 2. **Read.** Each object is read once ([`Vendor::read_for_review`], the
//!    listing a sync reads) through its provider's own HTTP client, so the
//!    provider's rate limit and retries apply; objects are read concurrently,
//!    at most `parallel` at a time per provider.
//! 3. **Compare.** Declared against live with the planner's algebra of levels and
//!    privilege sets ([`crate::plan::close`], [`crate::plan::maximal`]): every live
//!    grant is a row, `managed` (naming every resource that declares it),
//!    `expiring` (managed, and every resource declaring it has `expiresAt`),
//!    `unmanaged` (declared by nothing), or `drifted` (live at another level than
//!    declared, or still live after every resource declaring it expired or is
//!    being deleted); a declared grant that is not live is a `drifted` row too.
//!    Entries the vendor shows that the operator never manages are `inherited`
//!    or `fixed` rows ([`OtherEntry`]).
//!
//! What could not be read (a provider, an object, a look-up) is reported with
//! its reason and makes the exit code 1; nothing secret is ever shown.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};
use kube::core::{Selector, SelectorExt};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::api::{
    ClusterGrantProvider, DeletionPolicy, DremioGrant, GrafanaBuiltInRole, GrafanaGrant,
    GrantProvider, ProviderKind, Reason, SigmaGrant, SnowflakeGrant, VendorKind, vendor_of,
};
use crate::controller::Failure;
use crate::controller::clients::{ProviderId, build_client};
use crate::metrics::Metrics;
use crate::plan::{self, Key, LiveGrant, Permission};
use crate::sync::{self, PermOf};
use crate::vendor::dremio::DremioGrantee;
use crate::vendor::grafana::GrafanaGrantee;
use crate::vendor::http::RetryPolicy;
use crate::vendor::sigma::SigmaGrantee;
use crate::vendor::{
    GrantKind, Live, OtherEntry, OtherKind, ResolvedTarget, Vendor, VendorClient, VendorError,
};

use super::manifests::Manifests;
use super::secrets::CliSecrets;

/// Vendor objects read at once per provider unless told otherwise.
pub const DEFAULT_PARALLEL: usize = 4;

/// The exit code when a row has a state named with `--fail-on` (0: nothing to
/// report, 1: something could not be read, 2: `plan`'s "changes").
pub const EXIT_FAIL_ON: u8 = 3;

/// The state of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Live and declared, at the declared level.
    Managed,
    /// Managed, and every resource declaring it has `expiresAt`.
    Expiring,
    /// Live and declared by no resource.
    Unmanaged,
    /// Declared and not live, live at another level, or live after every resource
    /// declaring it expired or is being deleted.
    Drifted,
    /// Shown on the object, set elsewhere (see [`OtherKind::Inherited`]).
    Inherited,
    /// Shown on the object, of a kind the operator never changes (see [`OtherKind::Fixed`]).
    Fixed,
}

impl State {
    /// Every state, in report order.
    pub const ALL: [State; 6] = [
        State::Managed,
        State::Expiring,
        State::Unmanaged,
        State::Drifted,
        State::Inherited,
        State::Fixed,
    ];

    /// Lower-case name, as every output shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Managed => "managed",
            State::Expiring => "expiring",
            State::Unmanaged => "unmanaged",
            State::Drifted => "drifted",
            State::Inherited => "inherited",
            State::Fixed => "fixed",
        }
    }
}

impl From<OtherKind> for State {
    fn from(kind: OtherKind) -> State {
        match kind {
            OtherKind::Inherited => State::Inherited,
            OtherKind::Fixed => State::Fixed,
        }
    }
}

/// How progress is shown on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Not at all.
    Off,
    /// One line rewritten in place (stderr is a terminal).
    Terminal,
    /// A line per object read (`--progress` without a terminal).
    Lines,
}

/// What to review.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--target [VENDOR:]ID`.
    pub targets: Vec<String>,
    /// `--all-targets`.
    pub all_targets: bool,
    /// `--grantee NAME`.
    pub grantees: Vec<String>,
    /// `--provider` and `--cluster-provider`: only these (all when empty).
    pub providers: Vec<ProviderId>,
    /// Vendor objects read at once per provider.
    pub parallel: usize,
    /// Progress on stderr.
    pub progress: Progress,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            targets: Vec::new(),
            all_targets: false,
            grantees: Vec::new(),
            providers: Vec::new(),
            parallel: DEFAULT_PARALLEL,
            progress: Progress::Off,
        }
    }
}

/// An id and the name people know it by, when known.
#[derive(Serialize, Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Named {
    /// The vendor's id (`null` for a declared grantee that does not resolve).
    pub id: Option<String>,
    /// The name as declared, or as the vendor lists it.
    pub name: Option<String>,
}

impl Named {
    /// `name (id)`, or whichever is known.
    pub fn label(&self) -> String {
        match (&self.name, &self.id) {
            (Some(name), Some(id)) if name != id => format!("{name} ({id})"),
            (Some(name), _) => name.clone(),
            (None, Some(id)) => id.clone(),
            (None, None) => "-".to_string(),
        }
    }
}

/// One grant (or entry) of the review.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// `sigma`, `grafana`, `dremio` or `snowflake`.
    pub vendor: &'static str,
    /// The provider the object was read through, as `Kind namespace/name`.
    pub provider: String,
    /// What is reached: a connection, data source, catalog object, or Snowflake securable.
    pub target: Named,
    /// Who reaches it: a member, team, user, role, or Snowflake grantee (`ROLE:NAME`).
    pub grantee: Named,
    /// The permission as the vendor spells it.
    pub permission: String,
    /// The state.
    pub state: State,
    /// The resources declaring it, as `namespace/name`.
    pub resources: Vec<String>,
    /// When the grant ends: the latest `expiresAt` of the resources declaring it
    /// (`expiring`), or when they expired (a `drifted` grant still live after).
    pub expires_at: Option<String>,
    /// Why the row has its state, for people.
    pub detail: String,
}

/// Something that could not be read.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReadError {
    /// The vendor.
    pub vendor: &'static str,
    /// The provider, when one was involved.
    pub provider: Option<String>,
    /// The vendor object, as named or declared, when one was involved.
    pub target: Option<String>,
    /// The resources whose grants could therefore not be reviewed.
    pub resources: Vec<String>,
    /// The contract reason (`Unauthorized`, `TargetNotFound`, ...).
    pub reason: String,
    /// What happened (never a secret).
    pub message: String,
}

/// Where one `--grantee` was found.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct GranteeMatches {
    /// The name as given.
    pub name: String,
    /// Each vendor grantee it names (none: found on no provider).
    pub matches: Vec<GranteeMatch>,
}

/// One vendor grantee a `--grantee` names.
#[derive(Serialize, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GranteeMatch {
    /// The vendor.
    pub vendor: &'static str,
    /// The provider it was looked up through.
    pub provider: String,
    /// The vendor's id (`member:...`, `user:7`, `ROLE:ANALYST`).
    pub id: String,
}

/// Counts of the review.
#[derive(Serialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Vendor objects read.
    pub objects: usize,
    /// Rows.
    pub rows: usize,
    /// Rows by state.
    pub managed: usize,
    /// Rows `expiring`.
    pub expiring: usize,
    /// Rows `unmanaged`.
    pub unmanaged: usize,
    /// Rows `drifted`.
    pub drifted: usize,
    /// Rows `inherited`.
    pub inherited: usize,
    /// Rows `fixed`.
    pub fixed: usize,
    /// Things that could not be read.
    pub errors: usize,
}

/// The review.
#[derive(Serialize, Debug, Clone, Default)]
pub struct Report {
    /// One row per live grant or entry, and per declared grant that is not live.
    pub rows: Vec<Row>,
    /// What could not be read, and why.
    pub errors: Vec<ReadError>,
    /// Remarks that change no result (a vendor that cannot list its objects, a
    /// named target absent from one of several providers).
    pub notes: Vec<String>,
    /// With `--grantee`: where each name was found.
    pub grantees: Vec<GranteeMatches>,
    /// Counts.
    pub summary: Summary,
}

impl Report {
    /// Rows in `state`.
    pub fn count(&self, state: State) -> usize {
        self.rows.iter().filter(|row| row.state == state).count()
    }

    /// 1 when something could not be read; otherwise [`EXIT_FAIL_ON`] when a
    /// row is in a state of `fail_on`; otherwise 0.
    pub fn exit_code(&self, fail_on: &[State]) -> u8 {
        if !self.errors.is_empty() {
            1
        } else if fail_on.iter().any(|state| self.count(*state) > 0) {
            EXIT_FAIL_ON
        } else {
            0
        }
    }

    fn summarize(&mut self) {
        self.summary.rows = self.rows.len();
        self.summary.managed = self.count(State::Managed);
        self.summary.expiring = self.count(State::Expiring);
        self.summary.unmanaged = self.count(State::Unmanaged);
        self.summary.drifted = self.count(State::Drifted);
        self.summary.inherited = self.count(State::Inherited);
        self.summary.fixed = self.count(State::Fixed);
        self.summary.errors = self.errors.len();
    }
}

/// How a grant kind's grantees and objects read in a review.
pub trait Reviewed: GrantKind {
    /// Whether the vendor object is the grantee (Snowflake: a role's or a user's
    /// listing, keyed by securable).
    const OBJECT_IS_GRANTEE: bool = false;

    /// The name a declaration writes, when it names the grantee by name.
    fn declared_name(grantee: &<Self::Vendor as Vendor>::Grantee) -> Option<String>;

    /// The grantees a `--grantee` text can name on this vendor, resolved with the
    /// vendor's own look-ups (an email, a login, a team, a role; or a key such as
    /// `member:ID`, taken as an id).
    fn grantee_candidates(text: &str) -> Vec<<Self::Vendor as Vendor>::Grantee>;

    /// The object a `--grantee` text names, where the object is the grantee.
    fn grantee_object(_text: &str) -> Option<String> {
        None
    }
}

/// The prefixes of keys, which `--grantee` takes as ids on the vendor using them.
const KEY_PREFIXES: [&str; 4] = ["member:", "team:", "user:", "role:"];

/// A `--grantee` text in a Snowflake grantee's form (`ROLE:NAME`, ...).
fn snowflake_grantee_form(text: &str) -> bool {
    ["ROLE:", "USER:", "DATABASE_ROLE:"]
        .iter()
        .any(|prefix| text.starts_with(prefix) && text.len() > prefix.len())
}

/// A text other vendors look up by name: not a key of another vendor.
fn plain_name(text: &str) -> bool {
    !snowflake_grantee_form(text) && !KEY_PREFIXES.iter().any(|p| text.starts_with(p))
}

impl Reviewed for SigmaGrant {
    fn declared_name(grantee: &SigmaGrantee) -> Option<String> {
        match grantee {
            SigmaGrantee::MemberEmail(email) => Some(email.clone()),
            SigmaGrantee::TeamName(name) => Some(name.clone()),
            SigmaGrantee::MemberId(_) | SigmaGrantee::TeamId(_) => None,
        }
    }

    fn grantee_candidates(text: &str) -> Vec<SigmaGrantee> {
        if let Some(id) = text.strip_prefix("member:").filter(|id| !id.is_empty()) {
            vec![SigmaGrantee::MemberId(id.to_string())]
        } else if let Some(id) = text.strip_prefix("team:").filter(|id| !id.is_empty()) {
            vec![SigmaGrantee::TeamId(id.to_string())]
        } else if !plain_name(text) {
            Vec::new()
        } else if text.contains('@') {
            vec![SigmaGrantee::MemberEmail(text.to_string())]
        } else {
            vec![SigmaGrantee::TeamName(text.to_string())]
        }
    }
}

impl Reviewed for GrafanaGrant {
    fn declared_name(grantee: &GrafanaGrantee) -> Option<String> {
        match grantee {
            GrafanaGrantee::UserLogin(name)
            | GrafanaGrantee::UserEmail(name)
            | GrafanaGrantee::TeamName(name) => Some(name.clone()),
            GrafanaGrantee::Role(role) => Some(role.as_str().to_string()),
            GrafanaGrantee::UserId(_) | GrafanaGrantee::TeamId(_) => None,
        }
    }

    fn grantee_candidates(text: &str) -> Vec<GrafanaGrantee> {
        let role = |name: &str| match name {
            "Viewer" => Some(GrafanaBuiltInRole::Viewer),
            "Editor" => Some(GrafanaBuiltInRole::Editor),
            "Admin" => Some(GrafanaBuiltInRole::Admin),
            _ => None,
        };
        if let Some(id) = text.strip_prefix("user:") {
            return id
                .parse()
                .map(|id| vec![GrafanaGrantee::UserId(id)])
                .unwrap_or_default();
        }
        if let Some(id) = text.strip_prefix("team:") {
            return id
                .parse()
                .map(|id| vec![GrafanaGrantee::TeamId(id)])
                .unwrap_or_default();
        }
        if let Some(name) = text.strip_prefix("role:") {
            return role(name).map(GrafanaGrantee::Role).into_iter().collect();
        }
        if !plain_name(text) {
            return Vec::new();
        }
        let mut out = Vec::new();
        if text.contains('@') {
            out.push(GrafanaGrantee::UserEmail(text.to_string()));
        }
        out.push(GrafanaGrantee::UserLogin(text.to_string()));
        if !text.contains('@') {
            out.push(GrafanaGrantee::TeamName(text.to_string()));
        }
        out.extend(role(text).map(GrafanaGrantee::Role));
        out
    }
}

impl Reviewed for DremioGrant {
    fn declared_name(grantee: &DremioGrantee) -> Option<String> {
        match grantee {
            DremioGrantee::UserName(name) | DremioGrantee::RoleName(name) => Some(name.clone()),
            DremioGrantee::UserId(_) | DremioGrantee::RoleId(_) => None,
        }
    }

    fn grantee_candidates(text: &str) -> Vec<DremioGrantee> {
        if let Some(id) = text.strip_prefix("user:").filter(|id| !id.is_empty()) {
            vec![DremioGrantee::UserId(id.to_string())]
        } else if let Some(id) = text.strip_prefix("role:").filter(|id| !id.is_empty()) {
            vec![DremioGrantee::RoleId(id.to_string())]
        } else if !plain_name(text) {
            Vec::new()
        } else {
            vec![
                DremioGrantee::UserName(text.to_string()),
                DremioGrantee::RoleName(text.to_string()),
            ]
        }
    }
}

impl Reviewed for SnowflakeGrant {
    const OBJECT_IS_GRANTEE: bool = true;

    fn declared_name(_grantee: &<Self::Vendor as Vendor>::Grantee) -> Option<String> {
        // The key is the securable's name already.
        None
    }

    fn grantee_candidates(_text: &str) -> Vec<<Self::Vendor as Vendor>::Grantee> {
        Vec::new()
    }

    fn grantee_object(text: &str) -> Option<String> {
        snowflake_grantee_form(text).then(|| text.to_string())
    }
}

/// Reviews the resources of `manifests` (see the module documentation). `Err`
/// is a command line that cannot be carried out (an unknown provider, a target
/// that does not say its vendor where several are in scope).
pub async fn run(
    manifests: &Manifests,
    secrets: &CliSecrets,
    options: &Options,
    metrics: &Arc<Metrics>,
    retry: &RetryPolicy,
) -> Result<Report, String> {
    let mut engine = Engine::new(manifests, secrets, options, metrics, retry)?;
    let sigma = engine.prepare::<SigmaGrant>(&manifests.sigma).await;
    let grafana = engine.prepare::<GrafanaGrant>(&manifests.grafana).await;
    let dremio = engine.prepare::<DremioGrant>(&manifests.dremio).await;
    let snowflake = engine.prepare::<SnowflakeGrant>(&manifests.snowflake).await;
    let total = sigma.len() + grafana.len() + dremio.len() + snowflake.len();
    let counter = Counter::new(total, options.progress);
    let now = Timestamp::now();
    let parallel = options.parallel.max(1);
    let (sigma, grafana, dremio, snowflake) = tokio::join!(
        read_all(sigma, &counter, parallel, now),
        read_all(grafana, &counter, parallel, now),
        read_all(dremio, &counter, parallel, now),
        read_all(snowflake, &counter, parallel, now),
    );
    counter.finish();
    for result in sigma
        .into_iter()
        .chain(grafana)
        .chain(dremio)
        .chain(snowflake)
    {
        engine.absorb(result);
    }
    Ok(engine.finish())
}

/// A provider of the sources.
struct ProviderEntry<'a> {
    id: ProviderId,
    vendor: Option<VendorKind>,
    spec: ProviderSpec<'a>,
    in_scope: bool,
}

#[derive(Clone, Copy)]
enum ProviderSpec<'a> {
    Namespaced(&'a GrantProvider),
    Cluster(&'a ClusterGrantProvider),
}

/// The vendor account a provider reaches, as the controller compares them
/// (providers without one stand for themselves).
fn endpoint<K: GrantKind>(entry: &ProviderEntry<'_>) -> String {
    let reached = match entry.spec {
        ProviderSpec::Namespaced(provider) => K::endpoint(&provider.spec),
        ProviderSpec::Cluster(provider) => K::endpoint(&provider.spec),
    };
    reached.unwrap_or_else(|| entry.id.to_string())
}

/// What became of a `--target` on the providers of its vendor.
#[derive(Default)]
struct NamedTarget {
    vendor: Option<VendorKind>,
    found: Vec<String>,
    not_found: Vec<String>,
    tried: bool,
    failed: bool,
}

/// One vendor object to read.
struct Job<K: Reviewed> {
    vendor: Arc<K::Vendor>,
    provider: ProviderId,
    target: ResolvedTarget,
    members: Vec<Arc<K>>,
    /// Read only because it was named, listed or is a `--grantee`: not finding it
    /// is not an error by itself.
    optional: bool,
    /// The `--target` that named it.
    named_as: Option<String>,
    /// The `--grantee` it is (Snowflake).
    grantee_of: Option<String>,
    /// With `--grantee`: the keys it resolved to, and the texts (for declared
    /// names that do not resolve).
    filter: Option<(BTreeSet<Key>, Vec<String>)>,
}

/// What reading one object gave.
struct JobResult {
    vendor: VendorKind,
    provider: String,
    rows: Vec<Row>,
    error: Option<ReadError>,
    not_found: bool,
    named_as: Option<String>,
    grantee_of: Option<(String, String)>,
}

struct Engine<'a> {
    manifests: &'a Manifests,
    secrets: &'a CliSecrets,
    options: &'a Options,
    metrics: &'a Arc<Metrics>,
    retry: &'a RetryPolicy,
    providers: Vec<ProviderEntry<'a>>,
    clients: HashMap<ProviderId, Result<VendorClient, Failure>>,
    /// `--target`s: the text as given and the vendor's id it names.
    targets: Vec<(String, String)>,
    named: BTreeMap<String, NamedTarget>,
    grantees: Vec<GranteeMatches>,
    report: Report,
}

fn vendor_named(text: &str) -> Option<VendorKind> {
    [
        VendorKind::Sigma,
        VendorKind::Grafana,
        VendorKind::Dremio,
        VendorKind::Snowflake,
    ]
    .into_iter()
    .find(|vendor| vendor.as_str() == text)
}

impl<'a> Engine<'a> {
    fn new(
        manifests: &'a Manifests,
        secrets: &'a CliSecrets,
        options: &'a Options,
        metrics: &'a Arc<Metrics>,
        retry: &'a RetryPolicy,
    ) -> Result<Engine<'a>, String> {
        let mut providers: Vec<ProviderEntry<'a>> = manifests
            .providers
            .iter()
            .map(|provider| ProviderEntry {
                id: ProviderId {
                    kind: ProviderKind::GrantProvider,
                    namespace: provider.namespace(),
                    name: provider.name_any(),
                },
                vendor: vendor_of(&provider.spec),
                spec: ProviderSpec::Namespaced(provider),
                in_scope: true,
            })
            .chain(
                manifests
                    .cluster_providers
                    .iter()
                    .map(|provider| ProviderEntry {
                        id: ProviderId {
                            kind: ProviderKind::ClusterGrantProvider,
                            namespace: None,
                            name: provider.name_any(),
                        },
                        vendor: vendor_of(&provider.spec),
                        spec: ProviderSpec::Cluster(provider),
                        in_scope: true,
                    }),
            )
            .collect();
        providers.sort_by_key(|entry| entry.id.to_string());
        if !options.providers.is_empty() {
            for wanted in &options.providers {
                if !providers.iter().any(|entry| &entry.id == wanted) {
                    return Err(format!("{wanted} is not in the sources"));
                }
            }
            for entry in &mut providers {
                entry.in_scope = options.providers.contains(&entry.id);
            }
        }
        let mut vendors: Vec<VendorKind> = Vec::new();
        for vendor in providers
            .iter()
            .filter(|entry| entry.in_scope)
            .filter_map(|entry| entry.vendor)
        {
            if !vendors.contains(&vendor) {
                vendors.push(vendor);
            }
        }
        vendors.sort_by_key(|vendor| vendor_order(vendor.as_str()));
        let mut targets = Vec::new();
        let mut named = BTreeMap::new();
        for text in &options.targets {
            let (vendor, id) = match text.split_once(':') {
                Some((prefix, id)) if vendor_named(prefix).is_some() && !id.is_empty() => {
                    (vendor_named(prefix), id.to_string())
                }
                _ => (None, text.clone()),
            };
            if vendor.is_none() && vendors.len() > 1 {
                let listed: Vec<&str> = vendors.iter().map(|vendor| vendor.as_str()).collect();
                return Err(format!(
                    "--target {text}: the providers in scope reach several vendors ({}); write VENDOR:ID (for example {}:{text}), or name the provider with --provider",
                    listed.join(", "),
                    listed[0]
                ));
            }
            named.insert(
                text.clone(),
                NamedTarget {
                    vendor: vendor.or_else(|| vendors.iter().next().copied()),
                    ..NamedTarget::default()
                },
            );
            targets.push((text.clone(), id));
        }
        let grantees = options
            .grantees
            .iter()
            .map(|name| GranteeMatches {
                name: name.clone(),
                matches: Vec::new(),
            })
            .collect();
        Ok(Engine {
            manifests,
            secrets,
            options,
            metrics,
            retry,
            providers,
            clients: HashMap::new(),
            targets,
            named,
            grantees,
            report: Report::default(),
        })
    }

    fn error(
        &mut self,
        vendor: VendorKind,
        provider: Option<&ProviderId>,
        target: Option<String>,
        resources: Vec<String>,
        failure: Failure,
    ) {
        self.report.errors.push(ReadError {
            vendor: vendor.as_str(),
            provider: provider.map(ToString::to_string),
            target,
            resources,
            reason: failure.reason.as_str().to_string(),
            message: failure.message,
        });
    }

    /// The provider's client, built once.
    async fn client(&mut self, id: &ProviderId) -> Result<VendorClient, Failure> {
        if let Some(client) = self.clients.get(id) {
            return client.clone();
        }
        let client = match self.providers.iter().find(|entry| &entry.id == id) {
            Some(entry) => match entry.spec {
                ProviderSpec::Namespaced(provider) => {
                    build_client(
                        &provider.spec,
                        id.namespace.as_deref(),
                        self.secrets,
                        self.metrics,
                        self.retry,
                    )
                    .await
                }
                ProviderSpec::Cluster(provider) => {
                    build_client(&provider.spec, None, self.secrets, self.metrics, self.retry).await
                }
            },
            None => Err(Failure::new(
                Reason::ProviderNotFound,
                format!("{id} is not in the sources"),
            )),
        };
        self.clients.insert(id.clone(), client.clone());
        client
    }

    /// Whether a `ClusterGrantProvider` admits grants of `namespace`, as the
    /// controller decides it from the Namespace's labels.
    fn admits(&self, provider: &ClusterGrantProvider, namespace: &str) -> Result<(), Failure> {
        let selector =
            Selector::try_from(provider.spec.namespace_selector.clone()).map_err(|error| {
                Failure::new(
                    Reason::ProviderNotAllowed,
                    format!(
                        "ClusterGrantProvider {} has an invalid namespaceSelector: {error}",
                        provider.name_any()
                    ),
                )
            })?;
        let labels = self
            .manifests
            .namespace_labels(namespace)
            .unwrap_or_default();
        if selector.matches(&labels) {
            Ok(())
        } else {
            Err(Failure::new(
                Reason::ProviderNotAllowed,
                format!(
                    "ClusterGrantProvider {} does not admit namespace {namespace} (its namespaceSelector does not match the Namespace's labels, or the Namespace is not in the sources)",
                    provider.name_any()
                ),
            ))
        }
    }

    /// Scope, clients, targets and look-ups of one kind: the objects to read.
    async fn prepare<K: Reviewed>(&mut self, resources: &[K]) -> Vec<Job<K>> {
        let vendor_kind = K::VENDOR;
        let has_targets = !self.targets.is_empty();
        // This vendor's `--target`s: (text as given, the vendor's id).
        let targets: Vec<(String, String)> = self
            .targets
            .iter()
            .filter(|(text, _)| {
                self.named
                    .get(text)
                    .is_some_and(|named| named.vendor == Some(vendor_kind))
            })
            .cloned()
            .collect();

        // The accounts in scope, each with its providers and the resources on it.
        struct Account<K> {
            providers: Vec<ProviderId>,
            members: Vec<Arc<K>>,
        }
        // Whether the resources' own objects are in scope (so problems of a
        // resource are problems of the review).
        let declared_in_scope = !has_targets || self.options.all_targets;
        let report_resources = declared_in_scope && self.options.providers.is_empty();
        let grantee_objects = self
            .grantees
            .iter()
            .any(|grantee| K::grantee_object(&grantee.name).is_some());
        let mut accounts: BTreeMap<String, Account<K>> = BTreeMap::new();
        for entry in self
            .providers
            .iter()
            .filter(|entry| entry.in_scope && entry.vendor == Some(vendor_kind))
        {
            accounts
                .entry(endpoint::<K>(entry))
                .or_insert_with(|| Account {
                    providers: Vec::new(),
                    members: Vec::new(),
                })
                .providers
                .push(entry.id.clone());
        }
        for object in resources {
            let namespace = object.namespace().unwrap_or_default();
            let name = resource_name(object);
            let id = ProviderId::of_ref(&object.policy().provider_ref, &namespace);
            let found = self
                .providers
                .iter()
                .find(|entry| entry.id == id)
                .map(|entry| (entry.vendor, entry.spec, endpoint::<K>(entry)));
            let Some((vendor, spec, account)) = found else {
                if report_resources {
                    self.error(
                        vendor_kind,
                        Some(&id),
                        None,
                        vec![name],
                        Failure::new(
                            Reason::ProviderNotFound,
                            format!("{id} is not in the sources"),
                        ),
                    );
                }
                continue;
            };
            if vendor != Some(vendor_kind) {
                if !report_resources {
                    continue;
                }
                self.error(
                    vendor_kind,
                    Some(&id),
                    None,
                    vec![name],
                    Failure::new(
                        Reason::ProviderNotFound,
                        format!("{id} is not a {vendor_kind} provider"),
                    ),
                );
                continue;
            }
            let admitted = match spec {
                ProviderSpec::Cluster(provider) => self.admits(provider, &namespace),
                ProviderSpec::Namespaced(_) => Ok(()),
            };
            let Some(account) = accounts.get_mut(&account) else {
                // Reached through no provider in scope.
                continue;
            };
            match admitted {
                Ok(()) => account.members.push(Arc::new(object.clone())),
                Err(failure) if report_resources => {
                    self.error(vendor_kind, Some(&id), None, vec![name], failure)
                }
                Err(_) => {}
            }
        }

        let mut jobs = Vec::new();
        for (_, account) in accounts {
            // An account that can add nothing to the review is not even logged in to.
            let needed = if K::OBJECT_IS_GRANTEE && !self.grantees.is_empty() {
                grantee_objects
            } else {
                !targets.is_empty()
                    || self.options.all_targets
                    || (!has_targets && !account.members.is_empty())
            };
            if !needed {
                continue;
            }
            let names: Vec<String> = account
                .members
                .iter()
                .map(|member| resource_name(member.as_ref()))
                .collect();
            // The first provider of the account whose client builds reads for it.
            let mut failures = Vec::new();
            let mut reader = None;
            for id in &account.providers {
                match self.client(id).await {
                    Ok(client) => match K::client(&client) {
                        Some(vendor) => {
                            reader = Some((id.clone(), vendor));
                            break;
                        }
                        None => failures.push((
                            id.clone(),
                            Failure::new(
                                Reason::ProviderNotFound,
                                format!("{id} is not a {vendor_kind} provider"),
                            ),
                        )),
                    },
                    Err(failure) => failures.push((id.clone(), failure)),
                }
            }
            let Some((provider, vendor)) = reader else {
                for (id, failure) in failures {
                    self.error(vendor_kind, Some(&id), None, names.clone(), failure);
                }
                for (text, _) in &targets {
                    if let Some(named) = self.named.get_mut(text) {
                        named.failed = true;
                    }
                }
                continue;
            };

            struct Object<K> {
                target: ResolvedTarget,
                members: Vec<Arc<K>>,
                declared: bool,
                listed: bool,
                named_as: Option<String>,
                grantee_of: Option<String>,
            }
            let mut objects: BTreeMap<String, Object<K>> = BTreeMap::new();
            let object = |objects: &mut BTreeMap<String, Object<K>>, target: ResolvedTarget| {
                objects
                    .entry(target.id.clone())
                    .or_insert_with(|| Object {
                        target,
                        members: Vec::new(),
                        declared: false,
                        listed: false,
                        named_as: None,
                        grantee_of: None,
                    })
                    .target
                    .id
                    .clone()
            };

            // Declared objects, resolved as the controller resolves them.
            let mut units: BTreeMap<String, Vec<Arc<K>>> = BTreeMap::new();
            for member in &account.members {
                units
                    .entry(member.unit_key())
                    .or_default()
                    .push(member.clone());
            }
            for (unit, members) in units {
                let Some(first) = members.first() else {
                    continue;
                };
                match vendor.resolve_target(&first.target()).await {
                    Ok(target) => {
                        let id = object(&mut objects, target);
                        if let Some(found) = objects.get_mut(&id) {
                            found.declared = true;
                            found.members.extend(members);
                        }
                    }
                    Err(error) => self.error(
                        vendor_kind,
                        Some(&provider),
                        Some(unit),
                        members.iter().map(|m| resource_name(m.as_ref())).collect(),
                        error.into(),
                    ),
                }
            }

            // Named objects.
            for (text, id) in &targets {
                let named_text = text.clone();
                if let Some(named) = self.named.get_mut(&named_text) {
                    named.tried = true;
                }
                match vendor.resolve_target(&K::target_named(id)).await {
                    Ok(target) => {
                        let key = object(&mut objects, target);
                        if let Some(found) = objects.get_mut(&key) {
                            found.named_as = Some(named_text);
                        }
                    }
                    Err(
                        VendorError::TargetNotFound { .. } | VendorError::GranteeNotFound { .. },
                    ) => {
                        if let Some(named) = self.named.get_mut(&named_text) {
                            named.not_found.push(provider.to_string());
                        }
                    }
                    Err(error) => {
                        if let Some(named) = self.named.get_mut(&named_text) {
                            named.failed = true;
                        }
                        self.error(
                            vendor_kind,
                            Some(&provider),
                            Some(id.clone()),
                            Vec::new(),
                            error.into(),
                        );
                    }
                }
            }

            // Every object the provider lists.
            if self.options.all_targets {
                match vendor.list_targets().await {
                    Ok(Some(listed)) => {
                        for target in listed {
                            let key = object(&mut objects, target);
                            if let Some(found) = objects.get_mut(&key) {
                                found.listed = true;
                            }
                        }
                    }
                    Ok(None) => self.report.notes.push(format!(
                        "{provider}: {vendor_kind} has no listing of every object, so --all-targets reviews only the objects the resources declare or --target names"
                    )),
                    Err(error) => self.error(
                        vendor_kind,
                        Some(&provider),
                        None,
                        Vec::new(),
                        Failure::from(error),
                    ),
                }
            }

            // The grantees: objects where the object is the grantee, keys elsewhere.
            let mut filter = None;
            if !self.grantees.is_empty() {
                if K::OBJECT_IS_GRANTEE {
                    let texts: Vec<String> = self.grantees.iter().map(|g| g.name.clone()).collect();
                    for text in texts {
                        let Some(id) = K::grantee_object(&text) else {
                            continue;
                        };
                        match vendor.resolve_target(&K::target_named(&id)).await {
                            Ok(target) => {
                                let key = object(&mut objects, target);
                                if let Some(found) = objects.get_mut(&key) {
                                    found.grantee_of = Some(text);
                                }
                            }
                            Err(error) => self.error(
                                vendor_kind,
                                Some(&provider),
                                Some(id),
                                Vec::new(),
                                error.into(),
                            ),
                        }
                    }
                } else {
                    let mut candidates = Vec::new();
                    let mut owners = Vec::new();
                    for (index, grantee) in self.grantees.iter().enumerate() {
                        for candidate in K::grantee_candidates(&grantee.name) {
                            candidates.push(candidate);
                            owners.push(index);
                        }
                    }
                    let keys = if candidates.is_empty() {
                        Ok(Vec::new())
                    } else {
                        vendor.resolve(&candidates).await
                    };
                    match keys {
                        Ok(keys) => {
                            let mut found = BTreeSet::new();
                            for (key, owner) in keys.into_iter().zip(owners) {
                                let Some(key) = key else {
                                    continue;
                                };
                                let matched = GranteeMatch {
                                    vendor: vendor_kind.as_str(),
                                    provider: provider.to_string(),
                                    id: key.clone(),
                                };
                                if let Some(grantee) = self.grantees.get_mut(owner)
                                    && !grantee.matches.contains(&matched)
                                {
                                    grantee.matches.push(matched);
                                }
                                found.insert(key);
                            }
                            let texts: Vec<String> =
                                self.grantees.iter().map(|g| g.name.clone()).collect();
                            filter = Some((found, texts));
                        }
                        Err(error) => {
                            self.error(
                                vendor_kind,
                                Some(&provider),
                                None,
                                names.clone(),
                                Failure::new(
                                    error.reason(),
                                    format!("could not look up the grantees: {error}"),
                                ),
                            );
                            continue;
                        }
                    }
                }
            }

            for (_, object) in objects {
                let in_scope = if K::OBJECT_IS_GRANTEE && !self.grantees.is_empty() {
                    object.grantee_of.is_some()
                } else {
                    object.named_as.is_some()
                        || (self.options.all_targets && (object.listed || object.declared))
                        || (!has_targets && object.declared)
                };
                if !in_scope {
                    continue;
                }
                if let Some((keys, texts)) = &filter
                    && keys.is_empty()
                    && !declares_a_name::<K>(&object.members, texts)
                {
                    // Nothing on it can be one of the grantees.
                    continue;
                }
                jobs.push(Job {
                    vendor: vendor.clone(),
                    provider: provider.clone(),
                    optional: !object.declared,
                    target: object.target,
                    members: object.members,
                    named_as: object.named_as,
                    grantee_of: object.grantee_of,
                    filter: filter.clone(),
                });
            }
        }
        // A vendor with no provider in scope cannot read what is named for it.
        for (text, _) in &targets {
            if let Some(named) = self.named.get_mut(text)
                && !named.tried
                && !named.failed
            {
                named.failed = true;
                self.report.errors.push(ReadError {
                    vendor: vendor_kind.as_str(),
                    provider: None,
                    target: Some(text.clone()),
                    resources: Vec::new(),
                    reason: Reason::ProviderNotFound.as_str().to_string(),
                    message: format!("no {vendor_kind} provider in scope to read it through"),
                });
            }
        }
        jobs
    }

    fn absorb(&mut self, result: JobResult) {
        self.report.summary.objects += 1;
        if let Some(text) = &result.named_as
            && let Some(named) = self.named.get_mut(text)
        {
            if result.not_found {
                named.not_found.push(result.provider.clone());
            } else if result.error.is_some() {
                named.failed = true;
            } else {
                named.found.push(result.provider.clone());
            }
        }
        if let Some((text, id)) = &result.grantee_of
            && !result.not_found
            && result.error.is_none()
            && let Some(grantee) = self.grantees.iter_mut().find(|g| &g.name == text)
        {
            grantee.matches.push(GranteeMatch {
                vendor: result.vendor.as_str(),
                provider: result.provider.clone(),
                id: id.clone(),
            });
        }
        self.report.rows.extend(result.rows);
        self.report.errors.extend(result.error);
    }

    fn finish(mut self) -> Report {
        for (text, named) in std::mem::take(&mut self.named) {
            let vendor = named.vendor.map(VendorKind::as_str).unwrap_or("any");
            if !named.found.is_empty() {
                for provider in &named.not_found {
                    self.report
                        .notes
                        .push(format!("--target {text} is not on {provider}"));
                }
            } else if named.vendor.is_none() {
                self.report.errors.push(ReadError {
                    vendor,
                    provider: None,
                    target: Some(text.clone()),
                    resources: Vec::new(),
                    reason: Reason::ProviderNotFound.as_str().to_string(),
                    message: "no provider in scope to read it through".to_string(),
                });
            } else if !named.failed {
                let through = if named.not_found.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", named.not_found.join(", "))
                };
                self.report.errors.push(ReadError {
                    vendor,
                    provider: None,
                    target: Some(text.clone()),
                    resources: Vec::new(),
                    reason: Reason::TargetNotFound.as_str().to_string(),
                    message: format!(
                        "{text} was not found through any {vendor} provider in scope{through}"
                    ),
                });
            }
        }
        for grantee in &mut self.grantees {
            grantee.matches.sort();
        }
        self.report.grantees = self.grantees;
        self.report.rows.sort_by(|a, b| {
            (
                vendor_order(a.vendor),
                &a.provider,
                &a.target,
                &a.grantee,
                &a.permission,
                a.state,
            )
                .cmp(&(
                    vendor_order(b.vendor),
                    &b.provider,
                    &b.target,
                    &b.grantee,
                    &b.permission,
                    b.state,
                ))
        });
        self.report.summarize();
        self.report
    }
}

fn vendor_order(vendor: &str) -> usize {
    ["sigma", "grafana", "dremio", "snowflake"]
        .iter()
        .position(|known| *known == vendor)
        .unwrap_or(usize::MAX)
}

/// Whether a member declares a grantee by one of `texts` (case-insensitive): a
/// name that may not resolve, still shown as declared.
fn declares_a_name<K: Reviewed>(members: &[Arc<K>], texts: &[String]) -> bool {
    members.iter().any(|member| {
        member.declarations().iter().any(|(grantee, _)| {
            K::declared_name(grantee)
                .is_some_and(|name| texts.iter().any(|text| text.eq_ignore_ascii_case(&name)))
        })
    })
}

fn resource_name<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.meta().namespace.clone().unwrap_or_default(),
        object.meta().name.clone().unwrap_or_default()
    )
}

/// Counts objects read, on stderr.
struct Counter {
    total: usize,
    done: AtomicUsize,
    mode: Progress,
}

impl Counter {
    fn new(total: usize, mode: Progress) -> Counter {
        Counter {
            total,
            done: AtomicUsize::new(0),
            mode,
        }
    }

    fn tick(&self) {
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        let line = format!("read {done} of {} vendor objects", self.total);
        let mut stderr = std::io::stderr().lock();
        let _ = match self.mode {
            Progress::Off => Ok(()),
            Progress::Terminal => write!(stderr, "\r{line}"),
            Progress::Lines => writeln!(stderr, "{line}"),
        };
        let _ = stderr.flush();
    }

    fn finish(&self) {
        if self.mode == Progress::Terminal && self.total > 0 {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr);
        }
    }
}

/// Reads every job, at most `parallel` at a time per provider.
async fn read_all<K: Reviewed>(
    jobs: Vec<Job<K>>,
    counter: &Counter,
    parallel: usize,
    now: Timestamp,
) -> Vec<JobResult> {
    let mut lanes: HashMap<ProviderId, Arc<Semaphore>> = HashMap::new();
    let reads = jobs.into_iter().map(|job| {
        let lane = lanes
            .entry(job.provider.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(parallel)))
            .clone();
        async move {
            let result = match lane.acquire().await {
                Ok(_permit) => read_one(job, now).await,
                // The semaphore is never closed.
                Err(_) => read_one(job, now).await,
            };
            counter.tick();
            result
        }
    });
    let reads: Vec<_> = reads.collect();
    futures::future::join_all(reads).await
}

/// Where a resource stands for the review.
struct MemberInfo {
    name: String,
    /// `expiresAt` in the future.
    expires_at: Option<Timestamp>,
    /// Why it declares nothing any more (expired, being deleted), and when it expired.
    ended: Option<(String, Option<Timestamp>)>,
}

fn member_info<K: GrantKind>(member: &K, now: Timestamp) -> MemberInfo {
    let policy = member.policy();
    let expires_at = policy.expires_at.as_ref().map(|at| at.0);
    let deleting = member.meta().deletion_timestamp.is_some()
        && policy.deletion_policy == DeletionPolicy::Delete;
    let ended = match expires_at {
        Some(at) if at <= now => Some((format!("expired at {at}"), Some(at))),
        _ if deleting => Some(("is being deleted".to_string(), None)),
        _ => None,
    };
    MemberInfo {
        name: resource_name(member),
        expires_at: expires_at.filter(|at| *at > now),
        ended,
    }
}

/// Resolves, reads and compares one object.
async fn read_one<K: Reviewed>(job: Job<K>, now: Timestamp) -> JobResult {
    let mut result = JobResult {
        vendor: K::VENDOR,
        provider: job.provider.to_string(),
        rows: Vec::new(),
        error: None,
        not_found: false,
        named_as: job.named_as.clone(),
        grantee_of: job
            .grantee_of
            .clone()
            .map(|text| (text, job.target.id.clone())),
    };
    let fail = |error: VendorError| ReadError {
        vendor: K::VENDOR.as_str(),
        provider: Some(job.provider.to_string()),
        target: Some(job.target.id.clone()),
        resources: job
            .members
            .iter()
            .map(|member| resource_name(member.as_ref()))
            .collect(),
        reason: error.reason().as_str().to_string(),
        message: error.to_string(),
    };

    let mut grantees = Vec::new();
    for member in &job.members {
        for (grantee, _) in member.declarations() {
            if !grantees.contains(&grantee) {
                grantees.push(grantee);
            }
        }
    }
    let keys: HashMap<_, _> = match job.vendor.resolve(&grantees).await {
        Ok(keys) => grantees.into_iter().zip(keys).collect(),
        Err(error) => {
            result.error = Some(fail(error));
            return result;
        }
    };
    let mut known: BTreeSet<Key> = keys.values().flatten().cloned().collect();
    for member in &job.members {
        let rows = member
            .status()
            .map(|status| status.grants.clone())
            .unwrap_or_default();
        known.extend(
            sync::previous_rows::<K>(&rows)
                .into_iter()
                .map(|row| row.key),
        );
    }
    let known: Vec<Key> = known.into_iter().collect();
    let live = match job.vendor.read_for_review(&job.target, &known).await {
        Ok(live) => live,
        Err(VendorError::TargetNotFound { .. } | VendorError::GranteeNotFound { .. })
            if job.optional =>
        {
            result.not_found = true;
            return result;
        }
        Err(error) => {
            result.error = Some(fail(error));
            return result;
        }
    };
    result.rows = compare::<K>(&job, &keys, &live, now);
    result
}

/// The review's rows of one object read.
fn compare<K: Reviewed>(
    job: &Job<K>,
    keys: &HashMap<<K::Vendor as Vendor>::Grantee, Option<Key>>,
    live: &Live<PermOf<K>>,
    now: Timestamp,
) -> Vec<Row> {
    let infos: Vec<MemberInfo> = job
        .members
        .iter()
        .map(|member| member_info(member.as_ref(), now))
        .collect();
    let mut declared = Vec::new();
    let mut ended = Vec::new();
    let mut declared_names: BTreeMap<Key, String> = BTreeMap::new();
    // Declared names that do not resolve: (name, permission) -> members.
    let mut unresolved: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (index, member) in job.members.iter().enumerate() {
        for (grantee, perm) in member.declarations() {
            match keys.get(&grantee).cloned().flatten() {
                Some(key) => {
                    if let Some(name) = K::declared_name(&grantee) {
                        declared_names.entry(key.clone()).or_insert(name);
                    }
                    if infos[index].ended.is_some() {
                        ended.push((key, perm, index));
                    } else {
                        declared.push((key, perm, index));
                    }
                }
                None if infos[index].ended.is_none() => {
                    let name =
                        K::declared_name(&grantee).unwrap_or_else(|| K::grantee_label(&grantee));
                    unresolved
                        .entry((name, perm.to_string()))
                        .or_default()
                        .push(index);
                }
                None => {}
            }
        }
    }

    let name_of = |key: &Key| -> Option<String> {
        declared_names
            .get(key)
            .or_else(|| live.names.get(key))
            .cloned()
    };
    let place = |key: &Key, name: Option<String>| -> (Named, Named) {
        if K::OBJECT_IS_GRANTEE {
            (
                Named {
                    id: Some(key.clone()),
                    name: None,
                },
                Named {
                    id: Some(job.target.id.clone()),
                    name: job.target.name.clone(),
                },
            )
        } else {
            (
                Named {
                    id: Some(job.target.id.clone()),
                    name: job.target.name.clone(),
                },
                Named {
                    id: Some(key.clone()),
                    name,
                },
            )
        }
    };
    let names_of = |members: &[usize]| -> Vec<String> {
        let mut names: Vec<String> = members.iter().map(|i| infos[*i].name.clone()).collect();
        names.sort();
        names.dedup();
        names
    };
    let wanted = |key: &Key| -> bool {
        job.filter
            .as_ref()
            .is_none_or(|(keys, _)| keys.contains(key))
    };

    let mut rows = Vec::new();
    for found in classify(&declared, &ended, &live.grants) {
        if !wanted(&found.key) {
            continue;
        }
        let (target, grantee) = place(&found.key, name_of(&found.key));
        let mut row = Row {
            vendor: K::VENDOR.as_str(),
            provider: job.provider.to_string(),
            target,
            grantee,
            permission: found.perm.to_string(),
            state: State::Drifted,
            resources: names_of(&found.declarers),
            expires_at: None,
            detail: String::new(),
        };
        match &found.kind {
            Found::Managed => {
                let ends: Vec<Option<Timestamp>> =
                    found.exact.iter().map(|i| infos[*i].expires_at).collect();
                if !ends.is_empty() && ends.iter().all(Option::is_some) {
                    let last = ends.into_iter().flatten().max();
                    row.state = State::Expiring;
                    row.expires_at = last.map(|at| at.to_string());
                    row.detail = "revoked when the last declaring resource expires".to_string();
                } else {
                    row.state = State::Managed;
                }
            }
            Found::Lower(declared) => {
                row.detail = format!("live at a lower level than declared ({})", joined(declared));
            }
            Found::Higher(declared) => {
                row.detail = format!(
                    "live at a higher level than declared ({})",
                    joined(declared)
                );
            }
            Found::NotLive => {
                row.detail = "declared, not live".to_string();
            }
            Found::Ended => {
                let whys: Vec<String> = found
                    .declarers
                    .iter()
                    .filter_map(|i| {
                        infos[*i]
                            .ended
                            .as_ref()
                            .map(|(why, _)| format!("{} {why}", infos[*i].name))
                    })
                    .collect();
                row.expires_at = found
                    .declarers
                    .iter()
                    .filter_map(|i| infos[*i].ended.as_ref().and_then(|(_, at)| *at))
                    .max()
                    .map(|at| at.to_string());
                row.detail = format!(
                    "still live, but no resource declares it any more: {}",
                    whys.join("; ")
                );
            }
            Found::Unmanaged => {
                row.state = State::Unmanaged;
            }
        }
        rows.push(row);
    }

    for ((name, permission), members) in unresolved {
        if let Some((_, texts)) = &job.filter
            && !texts.iter().any(|text| text.eq_ignore_ascii_case(&name))
        {
            continue;
        }
        rows.push(Row {
            vendor: K::VENDOR.as_str(),
            provider: job.provider.to_string(),
            target: Named {
                id: Some(job.target.id.clone()),
                name: job.target.name.clone(),
            },
            grantee: Named {
                id: None,
                name: Some(name.clone()),
            },
            permission,
            state: State::Drifted,
            resources: names_of(&members),
            expires_at: None,
            detail: format!("declared, but {name} is not found on {}", K::VENDOR),
        });
    }

    for other in &live.others {
        if !wanted(&other.key) {
            continue;
        }
        let name = other.name.clone().or_else(|| name_of(&other.key));
        let (target, grantee) = place(&other.key, name);
        rows.push(Row {
            vendor: K::VENDOR.as_str(),
            provider: job.provider.to_string(),
            target,
            grantee,
            permission: other.permission.clone(),
            state: other.kind.into(),
            resources: Vec::new(),
            expires_at: None,
            detail: other_detail(other),
        });
    }
    rows
}

fn other_detail(other: &OtherEntry) -> String {
    let what = match other.kind {
        OtherKind::Inherited => "inherited; changed where it is set",
        OtherKind::Fixed => "not a grant the operator manages",
    };
    match &other.detail {
        Some(detail) => format!("{what} ({detail})"),
        None => what.to_string(),
    }
}

fn joined<P: Permission>(perms: &[P]) -> String {
    perms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a permission at a key compares.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Found<P> {
    /// Live at the declared level.
    Managed,
    /// Live below what is declared (the declared levels).
    Lower(Vec<P>),
    /// Live above what is declared (the declared levels it includes).
    Higher(Vec<P>),
    /// Declared, not live.
    NotLive,
    /// Live, declared only by resources that expired or are being deleted.
    Ended,
    /// Live, declared by nothing.
    Unmanaged,
}

/// One permission at one key, compared.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Compared<P> {
    key: Key,
    perm: P,
    kind: Found<P>,
    /// Members declaring a permission that includes it or that it includes.
    declarers: Vec<usize>,
    /// Members declaring it, or more (whose expiry ends it).
    exact: Vec<usize>,
}

/// Declared `(key, permission, member)` against live grants, key by key, with the
/// planner's closure: levels include lower levels, a privilege with the grant
/// option includes the privilege. One result per highest live permission at a
/// key, and per highest declared permission that nothing live covers or
/// approaches.
fn classify<P: Permission>(
    declared: &[(Key, P, usize)],
    ended: &[(Key, P, usize)],
    live: &[LiveGrant<P>],
) -> Vec<Compared<P>> {
    let keys: BTreeSet<&Key> = declared
        .iter()
        .map(|(key, _, _)| key)
        .chain(live.iter().map(|grant| &grant.key))
        .collect();
    let related = |p: &P, q: &P| q.closure().contains(p) || p.closure().contains(q);
    let members = |entries: &[(Key, P, usize)], key: &Key, keep: &dyn Fn(&P) -> bool| {
        let found: BTreeSet<usize> = entries
            .iter()
            .filter(|(at, perm, _)| at == key && keep(perm))
            .map(|(_, _, member)| *member)
            .collect();
        found.into_iter().collect::<Vec<usize>>()
    };
    let mut out = Vec::new();
    for key in keys {
        let declared_closed = plan::close(
            declared
                .iter()
                .filter(|(at, _, _)| at == key)
                .map(|(_, perm, _)| perm),
        );
        let declared_top = plan::maximal(&declared_closed);
        let live_closed = plan::close(
            live.iter()
                .filter(|grant| &grant.key == key)
                .map(|grant| &grant.perm),
        );
        let live_top = plan::maximal(&live_closed);
        for p in &live_top {
            let declarers = members(declared, key, &|q| related(p, q));
            let exact = members(declared, key, &|q| q.closure().contains(p));
            let kind = if declared_closed.contains(p) {
                if declared_top.contains(p) {
                    Found::Managed
                } else {
                    Found::Lower(
                        declared_top
                            .iter()
                            .filter(|q| q.closure().contains(p))
                            .cloned()
                            .collect(),
                    )
                }
            } else {
                let below: BTreeSet<P> = p
                    .closure()
                    .into_iter()
                    .filter(|q| declared_closed.contains(q))
                    .collect();
                if !below.is_empty() {
                    Found::Higher(plan::maximal(&below))
                } else if !members(ended, key, &|q| related(p, q)).is_empty() {
                    out.push(Compared {
                        key: key.clone(),
                        perm: p.clone(),
                        kind: Found::Ended,
                        declarers: members(ended, key, &|q| related(p, q)),
                        exact: Vec::new(),
                    });
                    continue;
                } else {
                    Found::Unmanaged
                }
            };
            out.push(Compared {
                key: key.clone(),
                perm: p.clone(),
                kind,
                declarers,
                exact,
            });
        }
        for q in &declared_top {
            let approached =
                live_closed.contains(q) || live_top.iter().any(|p| q.closure().contains(p));
            if approached {
                continue;
            }
            out.push(Compared {
                key: key.clone(),
                perm: q.clone(),
                kind: Found::NotLive,
                declarers: members(declared, key, &|other| related(q, other)),
                exact: members(declared, key, &|other| other.closure().contains(q)),
            });
        }
    }
    out
}

/// Providers, grant resources and Namespaces from the cluster (`--from-cluster`):
/// list calls only. Secrets are read one by one when a provider needs them.
pub async fn from_cluster(client: &kube::Client) -> Result<Manifests, String> {
    async fn all<K>(client: &kube::Client, what: &str) -> Result<Vec<K>, String>
    where
        K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        Api::<K>::all(client.clone())
            .list(&ListParams::default())
            .await
            .map(|list| list.items)
            .map_err(|error| format!("cannot list {what} in the cluster: {error}"))
    }
    let mut manifests = Manifests {
        providers: all(client, "GrantProviders").await?,
        cluster_providers: all(client, "ClusterGrantProviders").await?,
        sigma: all(client, "SigmaGrants").await?,
        grafana: all(client, "GrafanaGrants").await?,
        dremio: all(client, "DremioGrants").await?,
        snowflake: all(client, "SnowflakeGrants").await?,
        ..Manifests::default()
    };
    // Namespace labels decide what a ClusterGrantProvider admits; without one they
    // are not needed.
    if !manifests.cluster_providers.is_empty() {
        manifests.namespaces = all::<Namespace>(client, "Namespaces").await?;
    }
    Ok(manifests)
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The columns of `-o csv`, in order.
pub const CSV_HEADER: [&str; 11] = [
    "vendor",
    "provider",
    "target_id",
    "target_name",
    "grantee_id",
    "grantee_name",
    "permission",
    "state",
    "resources",
    "expires_at",
    "detail",
];

/// The review as CSV (RFC 4180: a header row, CRLF line ends, fields quoted
/// where they need it): one line per row, then one line per thing that could
/// not be read, with the state `error`. Resources are separated by spaces.
pub fn render_csv(report: &Report) -> String {
    let mut out = String::new();
    let mut line = |fields: [&str; 11]| {
        let fields: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    };
    line(CSV_HEADER);
    for row in &report.rows {
        let resources = row.resources.join(" ");
        line([
            row.vendor,
            &row.provider,
            row.target.id.as_deref().unwrap_or_default(),
            row.target.name.as_deref().unwrap_or_default(),
            row.grantee.id.as_deref().unwrap_or_default(),
            row.grantee.name.as_deref().unwrap_or_default(),
            &row.permission,
            row.state.as_str(),
            &resources,
            row.expires_at.as_deref().unwrap_or_default(),
            &row.detail,
        ]);
    }
    for error in &report.errors {
        let resources = error.resources.join(" ");
        let detail = format!("{}: {}", error.reason, error.message);
        line([
            error.vendor,
            error.provider.as_deref().unwrap_or_default(),
            error.target.as_deref().unwrap_or_default(),
            "",
            "",
            "",
            "",
            "error",
            &resources,
            "",
            &detail,
        ]);
    }
    out
}

/// The review as a table for people.
pub fn render_table(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let header = [
        "VENDOR",
        "PROVIDER",
        "TARGET",
        "GRANTEE",
        "PERMISSION",
        "STATE",
        "RESOURCES",
        "DETAIL",
    ];
    let cells: Vec<[String; 8]> = report
        .rows
        .iter()
        .map(|row| {
            let detail = match (&row.expires_at, row.state) {
                (Some(at), State::Expiring) => format!("expires {at}"),
                _ => row.detail.clone(),
            };
            [
                row.vendor.to_string(),
                row.provider.clone(),
                row.target.label(),
                row.grantee.label(),
                row.permission.clone(),
                row.state.as_str().to_string(),
                if row.resources.is_empty() {
                    "-".to_string()
                } else {
                    row.resources.join(", ")
                },
                detail,
            ]
        })
        .collect();
    if !cells.is_empty() {
        let mut widths = header.map(str::len);
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut line = |cells: &[String]| {
            let mut text = String::new();
            for (index, cell) in cells.iter().enumerate() {
                if index + 1 == cells.len() {
                    text.push_str(cell);
                } else {
                    let _ = write!(text, "{cell:<width$}  ", width = widths[index]);
                }
            }
            let _ = writeln!(out, "{}", text.trim_end());
        };
        line(&header.map(String::from));
        for row in &cells {
            line(row);
        }
    }
    if !report.errors.is_empty() {
        let _ = writeln!(out, "\nCould not read:");
        for error in &report.errors {
            let mut place = vec![error.vendor.to_string()];
            place.extend(error.provider.clone());
            place.extend(error.target.clone());
            let _ = writeln!(
                out,
                "  ! {}: {}: {}",
                place.join(" "),
                error.reason,
                error.message
            );
            if !error.resources.is_empty() {
                let _ = writeln!(out, "    resources: {}", error.resources.join(", "));
            }
        }
    }
    if !report.grantees.is_empty() {
        let _ = writeln!(out, "\nGrantees:");
        for grantee in &report.grantees {
            if grantee.matches.is_empty() {
                let _ = writeln!(out, "  {}: found on no provider", grantee.name);
            }
            for found in &grantee.matches {
                let _ = writeln!(
                    out,
                    "  {}: {} {} via {}",
                    grantee.name, found.vendor, found.id, found.provider
                );
            }
        }
    }
    if !report.notes.is_empty() {
        let _ = writeln!(out);
        for note in &report.notes {
            let _ = writeln!(out, "Note: {note}");
        }
    }
    let summary = &report.summary;
    let _ = writeln!(
        out,
        "\n{} grant(s) on {} vendor object(s): {} managed, {} expiring, {} unmanaged, {} drifted, {} inherited, {} fixed; {} could not be read.",
        summary.rows,
        summary.objects,
        summary.managed,
        summary.expiring,
        summary.unmanaged,
        summary.drifted,
        summary.inherited,
        summary.fixed,
        summary.errors
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SigmaPermission::{Annotate, Usage};
    use crate::vendor::snowflake::SnowflakePrivilege;

    fn live<P: Clone>(grants: &[(&str, P)]) -> Vec<LiveGrant<P>> {
        grants
            .iter()
            .map(|(key, perm)| LiveGrant {
                key: key.to_string(),
                perm: perm.clone(),
                vendor_id: None,
            })
            .collect()
    }

    fn declared<P: Clone>(entries: &[(&str, P, usize)]) -> Vec<(Key, P, usize)> {
        entries
            .iter()
            .map(|(key, perm, member)| (key.to_string(), perm.clone(), *member))
            .collect()
    }

    fn kinds<P: Clone>(compared: &[Compared<P>]) -> Vec<(String, P, Found<P>)> {
        compared
            .iter()
            .map(|c| (c.key.clone(), c.perm.clone(), c.kind.clone()))
            .collect()
    }

    #[test]
    fn levels_compare_with_the_planners_closure() {
        // annotate declared and live: managed, by both resources that it covers.
        let found = classify(
            &declared(&[("member:a", Annotate, 0), ("member:a", Usage, 1)]),
            &[],
            &live(&[("member:a", Annotate)]),
        );
        assert_eq!(
            kinds(&found),
            vec![("member:a".into(), Annotate, Found::Managed)]
        );
        assert_eq!(found[0].declarers, vec![0, 1]);
        assert_eq!(found[0].exact, vec![0], "only annotate's declarer ends it");

        // usage declared, annotate live: drifted, live at a higher level.
        let found = classify(
            &declared(&[("member:a", Usage, 0)]),
            &[],
            &live(&[("member:a", Annotate)]),
        );
        assert_eq!(
            kinds(&found),
            vec![("member:a".into(), Annotate, Found::Higher(vec![Usage]))]
        );

        // annotate declared, usage live: drifted, live at a lower level; no second row.
        let found = classify(
            &declared(&[("member:a", Annotate, 0)]),
            &[],
            &live(&[("member:a", Usage)]),
        );
        assert_eq!(
            kinds(&found),
            vec![("member:a".into(), Usage, Found::Lower(vec![Annotate]))]
        );

        // Declared, not live; live, not declared; live after its resource ended.
        let found = classify(
            &declared(&[("member:a", Usage, 0)]),
            &declared(&[("member:c", Annotate, 1)]),
            &live(&[("member:b", Usage), ("member:c", Annotate)]),
        );
        assert_eq!(
            kinds(&found),
            vec![
                ("member:a".into(), Usage, Found::NotLive),
                ("member:b".into(), Usage, Found::Unmanaged),
                ("member:c".into(), Annotate, Found::Ended),
            ]
        );
        assert_eq!(found[2].declarers, vec![1]);
    }

    #[test]
    fn privilege_sets_compare_privilege_by_privilege() {
        let p = |name: &str, option: bool| SnowflakePrivilege::new(name, option);
        let found = classify(
            &declared(&[
                ("SCHEMA S.P", p("USAGE", false), 0),
                ("SCHEMA S.P", p("MONITOR", false), 0),
                ("TABLE S.P.T", p("SELECT", true), 1),
            ]),
            &[],
            &live(&[
                ("SCHEMA S.P", p("USAGE", true)),
                ("SCHEMA S.P", p("CREATE TABLE", false)),
                ("TABLE S.P.T", p("SELECT", false)),
            ]),
        );
        assert_eq!(
            kinds(&found),
            vec![
                (
                    "SCHEMA S.P".into(),
                    p("CREATE TABLE", false),
                    Found::Unmanaged
                ),
                (
                    "SCHEMA S.P".into(),
                    p("USAGE", true),
                    Found::Higher(vec![p("USAGE", false)])
                ),
                ("SCHEMA S.P".into(), p("MONITOR", false), Found::NotLive),
                (
                    "TABLE S.P.T".into(),
                    p("SELECT", false),
                    Found::Lower(vec![p("SELECT", true)])
                ),
            ]
        );
    }

    fn row(state: State) -> Row {
        Row {
            vendor: "sigma",
            provider: "GrantProvider a/p".into(),
            target: Named {
                id: Some("c".into()),
                name: Some("Finance, \"EU\"".into()),
            },
            grantee: Named {
                id: Some("member:1".into()),
                name: Some("jane@example.com".into()),
            },
            permission: "usage".into(),
            state,
            resources: vec!["a/x".into(), "a/y".into()],
            expires_at: None,
            detail: "line one\nline two".into(),
        }
    }

    #[test]
    fn exit_codes_follow_the_fail_on_states() {
        let mut report = Report {
            rows: vec![row(State::Managed), row(State::Unmanaged)],
            ..Report::default()
        };
        assert_eq!(report.exit_code(&[]), 0);
        assert_eq!(report.exit_code(&[State::Drifted]), 0);
        assert_eq!(report.exit_code(&[State::Drifted, State::Unmanaged]), 3);
        report.errors.push(ReadError {
            vendor: "sigma",
            provider: None,
            target: None,
            resources: Vec::new(),
            reason: "Unauthorized".into(),
            message: "no".into(),
        });
        assert_eq!(report.exit_code(&[State::Unmanaged]), 1);
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut report = Report {
            rows: vec![row(State::Managed)],
            ..Report::default()
        };
        report.summarize();
        let csv = render_csv(&report);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], CSV_HEADER.join(","));
        assert!(
            lines[1].starts_with(
                "sigma,GrantProvider a/p,c,\"Finance, \"\"EU\"\"\",member:1,jane@example.com,usage,managed,a/x a/y,,\"line one\nline two\""
            ),
            "{csv}"
        );
    }

    #[test]
    fn grantee_texts_become_each_vendors_candidates() {
        assert_eq!(
            SigmaGrant::grantee_candidates("jane@example.com"),
            vec![SigmaGrantee::MemberEmail("jane@example.com".into())]
        );
        assert_eq!(
            SigmaGrant::grantee_candidates("member:Q1"),
            vec![SigmaGrantee::MemberId("Q1".into())]
        );
        assert!(SigmaGrant::grantee_candidates("ROLE:ANALYST").is_empty());
        assert_eq!(
            GrafanaGrant::grantee_candidates("Admin"),
            vec![
                GrafanaGrantee::UserLogin("Admin".into()),
                GrafanaGrantee::TeamName("Admin".into()),
                GrafanaGrantee::Role(GrafanaBuiltInRole::Admin),
            ]
        );
        assert_eq!(
            GrafanaGrant::grantee_candidates("user:7"),
            vec![GrafanaGrantee::UserId(7)]
        );
        assert!(GrafanaGrant::grantee_candidates("member:Q1").is_empty());
        assert_eq!(
            DremioGrant::grantee_candidates("jeansmith").len(),
            2,
            "a user or a role"
        );
        assert_eq!(
            SnowflakeGrant::grantee_object("ROLE:ANALYST").as_deref(),
            Some("ROLE:ANALYST")
        );
        assert_eq!(SnowflakeGrant::grantee_object("jane@example.com"), None);
    }
}
