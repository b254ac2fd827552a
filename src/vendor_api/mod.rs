//! The vendor side: one small trait per concern and one folder per vendor.
//!
//! - [`Vendor`]: what the grant controller needs from a vendor for one unit (a
//!   vendor object read with one listing): resolve names to keys, read the live
//!   grants, apply planned actions, and prove the credentials work.
//! - [`GrantKind`]: how a grant custom resource maps onto its vendor (its
//!   target, declarations, status rows).
//! - [`http`]: the one HTTP client every vendor uses.
//!
//! The controller knows nothing of any one vendor; a vendor's quirks stay in its
//! folder.
//!
//! Unknown is not absent: an entry of a listing that a client cannot read (no
//! grantee id, a grantee type or level it does not know, a malformed entry) is
//! never skipped as if it were not there, or a grant it holds would be granted
//! again, revoked by mistake, or forgotten on deletion. [`read_entries`] and
//! [`unreadable`] make such an entry fail the sync with a message naming it
//! (`reason=VendorUnavailable`): nothing is written from that listing, and a
//! deleted resource keeps its finalizer. Entries a vendor module knows and
//! deliberately leaves alone (Sigma's `admin` level, Grafana's inherited
//! entries) are read, counted as unmanaged, and kept as [`OtherEntry`]s for
//! reviews (`access`); they never reach the planner.

pub mod dremio;
pub mod grafana;
pub mod http;
pub mod sigma;
pub mod snowflake;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use kube::Resource;
use kube::core::NamespaceResourceScope;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{
    GrantPolicy, GrantRow, GrantStatus, GrantTarget, ProviderConfig, Reason, VendorKind,
};
use crate::plan::{Key, LiveGrant, Permission, Plan};

/// A vendor call that failed, with enough context to explain it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VendorError {
    /// 401: the credentials were refused.
    #[error("{vendor} rejected the credentials ({operation}): {message}")]
    Unauthorized {
        /// Vendor.
        vendor: VendorKind,
        /// Operation.
        operation: &'static str,
        /// Vendor message.
        message: String,
    },
    /// 403: the credentials may not do this.
    #[error("{vendor} denied {operation}: {message}")]
    Forbidden {
        /// Vendor.
        vendor: VendorKind,
        /// Operation.
        operation: &'static str,
        /// Vendor message.
        message: String,
    },
    /// The target object does not exist.
    #[error("{what} was not found on {vendor}")]
    TargetNotFound {
        /// Vendor.
        vendor: VendorKind,
        /// What was looked for.
        what: String,
    },
    /// A grantee does not exist.
    #[error("{what} was not found on {vendor}")]
    GranteeNotFound {
        /// Vendor.
        vendor: VendorKind,
        /// What was looked for.
        what: String,
    },
    /// 400 and other 4xx: the vendor refused the request as invalid.
    #[error("{vendor} refused {operation}: {message}")]
    Invalid {
        /// Vendor.
        vendor: VendorKind,
        /// Operation.
        operation: &'static str,
        /// Vendor message.
        message: String,
    },
    /// 429 beyond what the client waits for itself.
    #[error("{vendor} is rate limiting {operation}{}", retry_after.map(|d| format!("; retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// Vendor.
        vendor: VendorKind,
        /// Operation.
        operation: &'static str,
        /// How long the vendor asked to wait.
        retry_after: Option<Duration>,
    },
    /// No answer came (a timeout, a connection lost mid-request, a gateway's 504):
    /// the request may still be carried out later.
    #[error("{vendor} did not answer ({operation}): {message}")]
    NoAnswer {
        /// Vendor.
        vendor: VendorKind,
        /// Operation.
        operation: &'static str,
        /// What happened.
        message: String,
    },
    /// 5xx and connection errors, after retries.
    #[error("{vendor} is unavailable ({operation}): {message}")]
    Unavailable {
        /// Vendor.
        vendor: VendorKind,
        /// Operation.
        operation: &'static str,
        /// What happened.
        message: String,
    },
    /// 409: a conflicting change.
    #[error("{vendor} reported a conflict ({operation}): {message}")]
    Conflict {
        /// Vendor.
        vendor: VendorKind,
        /// Operation.
        operation: &'static str,
        /// Vendor message.
        message: String,
    },
    /// The answer could not be understood.
    #[error("unexpected answer from {vendor} ({operation}): {message}")]
    Protocol {
        /// Vendor.
        vendor: VendorKind,
        /// Operation.
        operation: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The provider's settings cannot be used (bad CA bundle, unsupported option).
    #[error("{vendor} provider: {message}")]
    Config {
        /// Vendor.
        vendor: VendorKind,
        /// What is wrong.
        message: String,
    },
}

impl VendorError {
    /// The contract reason for conditions, Events and metrics.
    pub fn reason(&self) -> Reason {
        match self {
            VendorError::Unauthorized { .. } => Reason::Unauthorized,
            VendorError::Forbidden { .. } => Reason::Forbidden,
            VendorError::TargetNotFound { .. } => Reason::TargetNotFound,
            VendorError::GranteeNotFound { .. } => Reason::GranteeNotFound,
            VendorError::Invalid { .. } => Reason::InvalidGrant,
            VendorError::RateLimited { .. } => Reason::RateLimited,
            VendorError::Unavailable { .. }
            | VendorError::NoAnswer { .. }
            | VendorError::Protocol { .. } => Reason::VendorUnavailable,
            VendorError::Conflict { .. } => Reason::Conflict,
            VendorError::Config { .. } => Reason::InvalidSpec,
        }
    }

    /// How long the vendor asked to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            VendorError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether a write that failed this way may still have taken effect on the
    /// vendor: no answer (timeout, lost connection), a 5xx, or an answer that could
    /// not be read. A 4xx, 429 or 409 means the vendor did not carry it out.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            VendorError::Unavailable { .. }
                | VendorError::NoAnswer { .. }
                | VendorError::Protocol { .. }
        )
    }
}

/// The resolved target of a unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedTarget {
    /// The vendor's id of the object.
    pub id: String,
    /// The ids shown in status.
    pub status: GrantTarget,
    /// The object's name, when resolving it showed one (a Grafana data source's
    /// name, a Dremio catalog path); for people reading a report, never a key.
    pub name: Option<String>,
}

/// Why the operator leaves an entry of a listing alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OtherKind {
    /// Access the object shows but that is set elsewhere (Grafana's inherited
    /// entries): changed where it comes from, never here.
    Inherited,
    /// An entry of a kind the operator never grants or revokes: Grafana's fixed
    /// and basic role entries, Sigma levels other than `usage` and `annotate`,
    /// Snowflake's `OWNERSHIP`, Dremio entries of grantee types other than
    /// users and roles (read only for a review).
    Fixed,
}

impl OtherKind {
    /// Lower-case name, as reports show it.
    pub fn as_str(self) -> &'static str {
        match self {
            OtherKind::Inherited => "inherited",
            OtherKind::Fixed => "fixed",
        }
    }
}

/// An entry of a listing that the operator reads and leaves alone: never a
/// grant it manages, so it never reaches the planner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherEntry {
    /// Where the entry sits, written as the planner's keys are (`member:ID`,
    /// `user:7`, `role:Admin`, a Snowflake securable).
    pub key: Key,
    /// The grantee's name as the vendor lists it, when it does.
    pub name: Option<String>,
    /// The permission as the vendor lists it (`admin`, `Query`, `OWNERSHIP`).
    pub permission: String,
    /// Why it is left alone.
    pub kind: OtherKind,
    /// What the vendor says of it besides (Grafana's role name), when anything.
    pub detail: Option<String>,
}

/// The live grants of a unit as the vendor reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Live<P> {
    /// Grants with permissions the operator manages.
    pub grants: Vec<LiveGrant<P>>,
    /// Entries with permissions the operator does not manage (left alone): the
    /// length of `others`, kept as a count for the controller.
    pub unmanaged: usize,
    /// Those entries themselves, for a review (`access`).
    pub others: Vec<OtherEntry>,
    /// Names of keys as the listing shows them (a Grafana login or team name, a
    /// Dremio user or role name), where it does; for people, never for planning.
    pub names: BTreeMap<Key, String>,
}

impl<P> Default for Live<P> {
    fn default() -> Self {
        Live {
            grants: Vec::new(),
            unmanaged: 0,
            others: Vec::new(),
            names: BTreeMap::new(),
        }
    }
}

impl<P> Live<P> {
    /// Records an entry left alone (and counts it).
    pub fn leave_alone(&mut self, entry: OtherEntry) {
        self.unmanaged += 1;
        self.others.push(entry);
    }
}

/// A vendor, as the grant controller uses it for one unit.
pub trait Vendor: Send + Sync + 'static {
    /// Permissions (levels or privileges).
    type Perm: Permission + FromStr + Send + Sync + 'static;
    /// The target as declared in a resource.
    type Target: Clone + Debug + Send + Sync + 'static;
    /// A grantee as declared in a resource.
    type Grantee: Clone + Debug + Eq + Hash + Send + Sync + 'static;

    /// Resolves declared grantees to keys, in order; `Ok(None)` means the
    /// grantee definitely does not exist. Any error aborts the sync (no writes).
    fn resolve(
        &self,
        grantees: &[Self::Grantee],
    ) -> impl Future<Output = Result<Vec<Option<Key>>, VendorError>> + Send;

    /// Resolves the declared target to the vendor's id.
    fn resolve_target(
        &self,
        target: &Self::Target,
    ) -> impl Future<Output = Result<ResolvedTarget, VendorError>> + Send;

    /// Reads the live grants of the target (one listing, all pages). `known` holds
    /// every key the sync can touch (declared, held, or held by others), for a
    /// vendor whose listing cannot show some of them by itself (Snowflake's bulk
    /// and future grants); the others ignore it.
    fn read(
        &self,
        target: &ResolvedTarget,
        known: &[Key],
    ) -> impl Future<Output = Result<Live<Self::Perm>, VendorError>> + Send;

    /// Applies the plan's actions; returns the failures by key. Actions are
    /// independent: one failing does not stop the others. The rest of the plan
    /// (what is kept at every key) is for a vendor whose write at one key can
    /// reach others.
    fn apply(
        &self,
        target: &ResolvedTarget,
        plan: &Plan<Self::Perm>,
    ) -> impl Future<Output = BTreeMap<Key, VendorError>> + Send;

    /// Reads the live grants of the target for a review (`access`): what
    /// [`Vendor::read`] reads, plus what the vendor lists that `read` fetches
    /// only when a key in `known` needs it (Snowflake's future grants). Still
    /// one read of one vendor object; nothing is cached from it for writes.
    fn read_for_review(
        &self,
        target: &ResolvedTarget,
        known: &[Key],
    ) -> impl Future<Output = Result<Live<Self::Perm>, VendorError>> + Send {
        self.read(target, known)
    }

    /// Every target the provider can list, resolved (`export` without
    /// `--target`, `access --all-targets`); `None` when the vendor has no such
    /// listing. A target's `id` is what a command line names it by.
    fn list_targets(
        &self,
    ) -> impl Future<Output = Result<Option<Vec<ResolvedTarget>>, VendorError>> + Send {
        async { Ok(None) }
    }

    /// Authenticates for real and describes the identity used (for the provider's
    /// `Ready` message; never a secret).
    fn check(&self) -> impl Future<Output = Result<String, VendorError>> + Send;
}

/// How a grant custom resource maps onto its vendor.
pub trait GrantKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The vendor.
    type Vendor: Vendor;
    /// Which provider block this kind needs.
    const VENDOR: VendorKind;
    /// The kind name, for metrics and messages.
    const KIND: &'static str;

    /// Provider, mode and lifecycle policies.
    fn policy(&self) -> &GrantPolicy;
    /// Current status.
    fn status(&self) -> Option<&GrantStatus>;
    /// The unit this resource belongs to, as declared; stable because target
    /// fields are immutable.
    fn unit_key(&self) -> String;
    /// The unit a raw object names, read leniently: used when the object as a whole
    /// cannot be read by this version (so it still counts as a member of its target).
    fn unit_key_of(object: &serde_json::Value) -> Option<String>;
    /// The declared target.
    fn target(&self) -> <Self::Vendor as Vendor>::Target;
    /// The declared grants, in spec order.
    fn declarations(&self) -> Vec<Declared<Self>>;
    /// How an unresolved grantee is shown in a status row.
    fn grantee_label(grantee: &<Self::Vendor as Vendor>::Grantee) -> String;
    /// Keys `Authoritative` covers for this resource (`None`: the whole unit).
    fn authoritative_keys(&self) -> Option<Vec<Key>> {
        None
    }
    /// The target shown in this resource's status, from its unit's resolved one
    /// (a unit may hold resources on different vendor objects: Snowflake grantees).
    fn target_status(&self, resolved: &GrantTarget) -> GrantTarget {
        resolved.clone()
    }
    /// The status row of a planner row.
    fn row(key_or_label: &str, perm: &<Self::Vendor as Vendor>::Perm) -> (String, String) {
        (key_or_label.to_string(), perm.to_string())
    }
    /// The planner key and permission of a status row (`None` for rows that are not keys).
    fn parse_row(row: &GrantRow) -> Option<(Key, <Self::Vendor as Vendor>::Perm)> {
        let perm = row.permission.parse().ok()?;
        Some((row.grantee.clone(), perm))
    }
    /// Identity of the vendor account a provider reaches (resources reaching the
    /// same account through different providers protect each other's grants).
    fn endpoint<P: ProviderConfig>(provider: &P) -> Option<String>;
    /// Builds the vendor client for a provider from its credentials.
    fn client(client: &VendorClient) -> Option<Arc<Self::Vendor>>;
    /// The target a command line names by the vendor's id (`export --target`).
    fn target_named(id: &str) -> <Self::Vendor as Vendor>::Target;
    /// Resources declaring exactly `live` on the target named `id` (`export`):
    /// grantees by id, so they resolve without look-ups. One resource, except
    /// where one resource cannot say it all (Snowflake: one per securable).
    fn declaring(
        policy: GrantPolicy,
        id: &str,
        live: &[crate::plan::LiveGrant<<Self::Vendor as Vendor>::Perm>],
    ) -> Vec<Self>;
}

/// One declared grant of a resource of kind `K`: the grantee as written and the permission.
pub type Declared<K> = (
    <<K as GrantKind>::Vendor as Vendor>::Grantee,
    <<K as GrantKind>::Vendor as Vendor>::Perm,
);

/// Reads the Secret values a provider's vendor block names, for the vendor
/// folders' `connect` modules (the controller reads them from the cluster, the
/// command-line tools from where they are pointed).
pub trait ProviderSecrets<S>: Sync {
    /// The value `value` refers to.
    fn value(
        &self,
        value: &crate::api::SecretValue<S>,
    ) -> impl Future<Output = Result<secrecy::SecretString, crate::controller::Failure>> + Send;
}

/// [`VendorClient`], one variant per vendor of the list in [`crate::vendors`].
macro_rules! vendor_client {
    ([$($module:ident $kind:ident $grant:ident $block:ident $title:literal),* $(,)?]) => {
        /// A ready-to-use client for one provider, whatever the vendor.
        #[derive(Clone, Debug)]
        pub enum VendorClient {
            $(
                #[doc = concat!($title, ".")]
                $kind(Arc<<crate::api::$grant as GrantKind>::Vendor>),
            )*
        }

        impl VendorClient {
            /// Authenticates for real (provider `Ready`).
            pub async fn check(&self) -> Result<String, VendorError> {
                match self {
                    $(VendorClient::$kind(client) => client.check().await,)*
                }
            }
        }
    };
}
crate::vendors::vendors!(vendor_client);

/// The longest excerpt of an entry shown in a message.
const ENTRY_EXCERPT: usize = 300;

/// An entry as shown in a message: compact JSON, cut at [`ENTRY_EXCERPT`] characters.
pub fn entry_excerpt(entry: &serde_json::Value) -> String {
    let text = entry.to_string();
    match text.char_indices().nth(ENTRY_EXCERPT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// The error for an entry of a listing the client cannot read: the sync stops
/// there, naming the entry (see the module documentation).
pub fn unreadable(
    vendor: VendorKind,
    operation: &'static str,
    entry: &serde_json::Value,
    why: impl std::fmt::Display,
) -> VendorError {
    VendorError::Protocol {
        vendor,
        operation,
        message: format!(
            "cannot read an entry of the listing ({why}): {}; nothing is changed from this \
             listing until every entry can be read",
            entry_excerpt(entry)
        ),
    }
}

/// Every entry of a listing as `T`, each checked by `check`; the first entry
/// that does not parse or fails its check is [`unreadable`].
pub fn read_entries<T: DeserializeOwned>(
    vendor: VendorKind,
    operation: &'static str,
    entries: Vec<serde_json::Value>,
    check: impl Fn(&T) -> Result<(), String>,
) -> Result<Vec<T>, VendorError> {
    entries
        .into_iter()
        .map(|entry| {
            let parsed: T = serde_json::from_value(entry.clone())
                .map_err(|error| unreadable(vendor, operation, &entry, error))?;
            check(&parsed).map_err(|why| unreadable(vendor, operation, &entry, why))?;
            Ok(parsed)
        })
        .collect()
}

/// The highest live level of each key, in key order (`export` of a vendor whose
/// keys hold one level each: Sigma, Grafana).
pub(crate) fn highest<P: Permission>(live: &[LiveGrant<P>]) -> Vec<(Key, P)> {
    let mut best: BTreeMap<Key, P> = BTreeMap::new();
    for grant in live {
        match best.get(&grant.key) {
            Some(level) if *level >= grant.perm => {}
            _ => {
                best.insert(grant.key.clone(), grant.perm.clone());
            }
        }
    }
    best.into_iter().collect()
}

/// Normalises a base URL for identity comparison (scheme and host lower-cased, no trailing slash).
pub fn normalize_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => {
            let mut text = format!(
                "{}://{}",
                parsed.scheme(),
                parsed.host_str().unwrap_or_default().to_ascii_lowercase()
            );
            if let Some(port) = parsed.port() {
                text.push_str(&format!(":{port}"));
            }
            text.push_str(parsed.path().trim_end_matches('/'));
            text
        }
        Err(_) => url.trim_end_matches('/').to_string(),
    }
}
