//! The reconcilers: one for both provider kinds, one generic over the grant kinds.
//!
//! Pipeline of a grant resource (see [`grant`]): the finalizer is added first;
//! then the resource asks the [`units`] coalescer for a sync of its *unit* (the
//! vendor object it targets, through its provider) fresh enough for it. One
//! sync reads the vendor once for every resource on the unit, plans with the
//! pure [`crate::plan`], applies, reads again, and writes the status of every
//! member whose status changed. Deletion asks for a sync in which the resource
//! declares nothing, and releases the finalizer once nothing it held is left.

mod census;
pub mod clients;
pub mod grant;
pub mod provider;
pub mod run;
pub mod status;
pub mod units;
pub mod watches;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::PartialObjectMeta;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::Store;

use crate::api::{ClusterGrantProvider, GrantProvider, Reason};
use crate::cache::BoundedLru;
use crate::credentials::{CredentialError, SecretReader};
use crate::metrics::Metrics;
use crate::vendor_api::VendorError;
use crate::vendor_api::http::RetryPolicy;

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "grant-operator";

/// Settings of the controllers.
#[derive(Clone, Debug)]
pub struct Config {
    /// `syncInterval` of resources that do not set one.
    pub default_sync_interval: Duration,
    /// How often providers authenticate again to prove their credentials.
    pub provider_check_interval: Duration,
    /// Reconciles in flight per controller.
    pub concurrency: u16,
    /// Watch only this namespace (grants, providers, Secrets); `None` for all.
    pub namespace: Option<String>,
    /// First wait after a failed reconcile (doubles per failure, capped at the sync interval).
    pub error_backoff: Duration,
    /// Retries of vendor requests.
    pub vendor_retry: RetryPolicy,
    /// Status and Event writes in flight at once (bounds connections to the API server).
    pub kube_writes: usize,
    /// A Ready resource whose status a sync would change only in `lastSyncTime`
    /// gets it written once it is this many sync intervals old (1: every sync
    /// writes it; see README, "Behaviour where the contract is silent").
    pub last_sync_refresh_intervals: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_sync_interval: Duration::from_secs(600),
            provider_check_interval: Duration::from_secs(600),
            concurrency: 64,
            namespace: None,
            error_backoff: Duration::from_secs(2),
            vendor_retry: RetryPolicy::default(),
            kube_writes: 16,
            last_sync_refresh_intervals: 6,
        }
    }
}

/// Where the controllers get the time (a test can hold it still).
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Reflector stores every controller reads from.
#[derive(Clone)]
pub struct Stores {
    /// Namespaced providers.
    pub providers: Store<GrantProvider>,
    /// Cluster providers.
    pub cluster_providers: Store<ClusterGrantProvider>,
    /// Secrets, metadata only.
    pub secrets: Store<PartialObjectMeta<Secret>>,
    /// Namespaces, metadata only (labels for `namespaceSelector`).
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
}

/// Everything the reconcilers share.
pub struct Context {
    /// Kubernetes client.
    pub client: kube::Client,
    /// Settings.
    pub config: Config,
    /// Events publisher.
    pub events: status::Events,
    /// Bounds concurrent status and Event writes to the API server.
    pub writes: Arc<tokio::sync::Semaphore>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Reflector stores.
    pub stores: Stores,
    /// Secret access.
    pub secrets: SecretReader,
    /// Vendor clients per provider.
    pub clients: clients::VendorClients,
    /// Per-object failure counts for backoff.
    pub backoff: Backoff,
    /// Asks the provider controllers to check a provider again (after a 401 in a grant sync).
    pub recheck: tokio::sync::mpsc::Sender<clients::ProviderId>,
    /// The watches whose first listing readiness waits for.
    pub readiness: run::Readiness,
    /// Syncs in flight per provider.
    pub lanes: Lanes,
    /// When this context (a term of leadership, or the process) started: every
    /// vendor request an earlier operator sent was sent before then.
    pub leading_since: Timestamp,
}

impl Context {
    /// A context over `client` and `stores`; returns the receiving end of provider re-checks.
    pub fn new(
        client: kube::Client,
        config: Config,
        stores: Stores,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> (Context, tokio::sync::mpsc::Receiver<clients::ProviderId>) {
        let (recheck, rechecks) = tokio::sync::mpsc::channel(1024);
        let writes = Arc::new(tokio::sync::Semaphore::new(config.kube_writes.max(1)));
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let lanes = Lanes::new(config_lane_width(&config));
        let clock_now = clock.now();
        let context = Context {
            events: status::Events::new(client.clone(), reporter, writes.clone()),
            writes,
            secrets: SecretReader::new(client.clone(), stores.secrets.clone()),
            clients: clients::VendorClients::new(metrics.clone(), config.vendor_retry.clone()),
            backoff: Backoff::new(config.error_backoff),
            client,
            config,
            metrics,
            clock,
            stores,
            recheck,
            readiness: run::Readiness::default(),
            lanes,
            leading_since: clock_now,
        };
        (context, rechecks)
    }
}

impl Context {
    /// Forgets everything kept for a provider that is gone: its vendor client (with
    /// its credentials) and its lane.
    pub fn forget_provider(&self, id: &clients::ProviderId) {
        self.clients.forget(id);
        self.lanes.forget(id);
    }
}

fn config_lane_width(config: &Config) -> usize {
    usize::from(config.concurrency).max(1)
}

/// Bounds the syncs in flight per provider, so that a provider whose vendor hangs
/// holds only its own lane and every other provider keeps its full pace.
pub struct Lanes {
    width: usize,
    lanes: Mutex<std::collections::HashMap<clients::ProviderId, Arc<tokio::sync::Semaphore>>>,
}

impl Lanes {
    /// Lanes of `width` syncs each.
    pub fn new(width: usize) -> Lanes {
        Lanes {
            width,
            lanes: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The lane of a provider.
    pub fn of(&self, id: &clients::ProviderId) -> Arc<tokio::sync::Semaphore> {
        self.lanes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.clone())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.width)))
            .clone()
    }

    /// Forgets the lane of a provider that is gone (syncs holding it finish on it).
    pub fn forget(&self, id: &clients::ProviderId) {
        self.lanes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Lanes kept (for tests of boundedness).
    pub fn len(&self) -> usize {
        self.lanes.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no lane is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a reconcile failed, as conditions and Events show it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// Contract reason.
    pub reason: Reason,
    /// Readable message, never a secret.
    pub message: String,
    /// Wait the vendor asked for.
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A failure with a reason and message.
    pub fn new(reason: Reason, message: impl Into<String>) -> Failure {
        Failure {
            reason,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl From<VendorError> for Failure {
    fn from(error: VendorError) -> Failure {
        Failure {
            reason: error.reason(),
            retry_after: error.retry_after(),
            message: error.to_string(),
        }
    }
}

impl From<CredentialError> for Failure {
    fn from(error: CredentialError) -> Failure {
        Failure::new(Reason::CredentialsMissing, error.to_string())
    }
}

/// Errors of a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The resource cannot be brought to its declared state yet.
    #[error("{0}")]
    Failed(Failure),
    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    /// The finalizer could not be added or removed.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// Nothing changed since the last failure and its backoff has not run out:
    /// wait `wait` more (woken by our own status write, not by a change).
    #[error("{failure} (retrying in {}s)", wait.as_secs())]
    Backoff {
        /// The last failure.
        failure: Failure,
        /// Time left until the retry.
        wait: Duration,
    },
    /// A sync of the resource's unit was asked for and runs on its own; the
    /// resource is woken when it is done (an error, so the finalizer helper never
    /// takes a deletion that is still waiting for its revocation as finished).
    #[error("waiting for a sync of its target")]
    Queued,
}

impl Error {
    /// The reason for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Failed(failure) | Error::Backoff { failure, .. } => failure.reason.as_str(),
            Error::Kube(_) => "KubernetesError",
            Error::Finalizer(_) => "FinalizerError",
            Error::Queued => "Queued",
        }
    }

    /// Whether waiting alone may clear it ([`Reason::transient`]); Kubernetes
    /// errors are taken as transient.
    pub fn transient(&self) -> bool {
        match self {
            Error::Failed(failure) | Error::Backoff { failure, .. } => failure.reason.transient(),
            Error::Kube(_) | Error::Finalizer(_) | Error::Queued => true,
        }
    }

    /// The wait the vendor asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Failed(failure) => failure.retry_after,
            Error::Backoff { wait, .. } => Some(*wait),
            _ => None,
        }
    }

    /// Flattens the finalizer helper's wrapper.
    pub fn from_finalizer(error: kube::runtime::finalizer::Error<Error>) -> Error {
        use kube::runtime::finalizer::Error as F;
        match error {
            F::ApplyFailed(error) | F::CleanupFailed(error) => error,
            F::AddFinalizer(error) | F::RemoveFinalizer(error) => {
                Error::Finalizer(error.to_string())
            }
            F::UnnamedObject => Error::Finalizer("object has no name".into()),
            F::InvalidFinalizer => Error::Finalizer("invalid finalizer name".into()),
        }
    }
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Error {
        Error::Failed(failure)
    }
}

/// How many doublings of the base backoff a permanent failure starts with (2 s
/// base: 16 s before the first retry instead of 2 s).
pub const PERMANENT_HEAD_START: u32 = 3;

/// Per-object consecutive failures and when the next retry is due; bounded
/// (least recently failed forgotten first).
pub struct Backoff {
    base: Duration,
    failures: Mutex<BoundedLru<String, (u32, tokio::time::Instant)>>,
}

impl Backoff {
    /// Backoff starting at `base`.
    pub fn new(base: Duration) -> Backoff {
        Backoff {
            base,
            failures: Mutex::new(BoundedLru::new(100_000)),
        }
    }

    /// Records a failure of `key` and returns how long to wait: exponential with
    /// jitter ([`crate::vendor_api::http::backoff_delay`], as vendor retries), capped at
    /// `cap`; a vendor's `Retry-After` wins. A failure that waiting alone will not
    /// clear (`transient` false: a refusal, a missing name or Secret) starts
    /// [`PERMANENT_HEAD_START`] doublings further along: a change of the resource,
    /// its provider or its Secret retries it at once anyway.
    pub fn fail(
        &self,
        key: &str,
        cap: Duration,
        retry_after: Option<Duration>,
        transient: bool,
    ) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let attempts = failures
            .get(key)
            .map_or(0, |(attempts, _)| *attempts)
            .saturating_add(1);
        let doublings = if transient {
            attempts
        } else {
            attempts.saturating_add(PERMANENT_HEAD_START)
        };
        let wait = retry_after
            .unwrap_or_else(|| crate::vendor_api::http::backoff_delay(self.base, cap, doublings));
        failures.put(
            key.to_string(),
            (attempts, tokio::time::Instant::now() + wait),
        );
        wait
    }

    /// Time left before the retry of a failed `key`, if it is still backing off.
    pub fn remaining(&self, key: &str) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (_, due) = failures.get(key)?;
        let now = tokio::time::Instant::now();
        (*due > now).then(|| *due - now)
    }

    /// Forgets the failures of `key`.
    pub fn reset(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop(key);
    }
}

/// A random extra wait of up to a tenth of `interval`, so resyncs spread out.
pub fn jitter(interval: Duration) -> Duration {
    let max = (interval.as_millis() / 10).max(1) as u64;
    Duration::from_millis(rand::random_range(0..=max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_resets() {
        let backoff = Backoff::new(Duration::from_secs(2));
        let cap = Duration::from_secs(60);
        let first = backoff.fail("a", cap, None, true);
        assert!(first <= Duration::from_secs(2) && first >= Duration::from_secs(1));
        let second = backoff.fail("a", cap, None, true);
        assert!(second >= Duration::from_secs(2) && second <= Duration::from_secs(4));
        for _ in 0..20 {
            assert!(backoff.fail("a", cap, None, true) <= cap);
        }
        assert_eq!(
            backoff.fail("a", cap, Some(Duration::from_secs(120)), true),
            Duration::from_secs(120)
        );
        assert!(
            backoff
                .remaining("a")
                .is_some_and(|left| left <= Duration::from_secs(120))
        );
        backoff.reset("a");
        assert_eq!(backoff.remaining("a"), None);
        assert!(backoff.fail("a", cap, None, true) <= Duration::from_secs(2));
        // Other objects are independent.
        assert!(backoff.fail("b", cap, None, true) <= Duration::from_secs(2));
    }

    #[test]
    fn a_permanent_failure_waits_longer_than_an_outage() {
        let backoff = Backoff::new(Duration::from_secs(2));
        let cap = Duration::from_secs(600);
        // Equal jitter: between half and all of base x 2^(doublings - 1).
        let outage = backoff.fail("outage", cap, None, true);
        assert!(outage <= Duration::from_secs(2), "{outage:?}");
        let refused = backoff.fail("refused", cap, None, false);
        assert!(
            refused >= Duration::from_secs(8) && refused <= Duration::from_secs(16),
            "{refused:?}"
        );
        // Still capped, and a vendor's Retry-After still wins.
        for _ in 0..20 {
            assert!(backoff.fail("refused", cap, None, false) <= cap);
        }
        assert_eq!(
            backoff.fail("refused", cap, Some(Duration::from_secs(5)), false),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn reasons_are_the_contract_s_with_their_names() {
        assert_eq!(Reason::ALL.len(), 21);
        for reason in Reason::ALL {
            assert_eq!(Reason::named(reason.as_str()), Some(*reason));
            assert_eq!(reason.to_string(), reason.as_str());
        }
        assert_eq!(Reason::ALL[0].as_str(), "Synced");
        assert_eq!(Reason::named("NoSuchReason"), None);
        assert!(Reason::VendorUnavailable.transient() && Reason::RateLimited.transient());
        assert!(!Reason::Unauthorized.transient() && !Reason::GranteeNotFound.transient());
    }

    #[test]
    fn jitter_is_bounded() {
        for _ in 0..100 {
            assert!(jitter(Duration::from_secs(10)) <= Duration::from_secs(1));
        }
    }
}
