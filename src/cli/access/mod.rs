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
//! 2. **Read.** Each object is read once
//!    ([`Vendor::read_for_review`](crate::vendor_api::Vendor::read_for_review), the
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
//!    or `fixed` rows ([`OtherEntry`](crate::vendor_api::OtherEntry)).
//!
//! What could not be read (a provider, an object, a look-up) is reported with
//! its reason and makes the exit code 1; nothing secret is ever shown.
//!
//! Modules, in the order of the pipeline:
//! - `sources`: the providers of the sources, the account each reaches, their
//!   clients, what a `ClusterGrantProvider` admits, and [`from_cluster`].
//! - `scope`: which vendor objects are read through which provider for which
//!   resources, and how each read's result is gathered into the [`Report`].
//! - `grantees`: [`Reviewed`], what a `--grantee` names on each vendor, and the
//!   look-up of those names.
//! - `read`: the reads, bounded per provider, with progress on stderr.
//! - `classify`: declared against live for one object, into rows.
//! - `objects`: the objects one account gives the review, as read jobs.
//! - `report`: the [`Report`], its [`State`]s and the exit code.
//! - `output`: the table and CSV ([`render_table`], [`render_csv`]); JSON is the
//!   serialized [`Report`].

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;

use crate::controller::clients::ProviderId;
use crate::metrics::Metrics;
use crate::vendor_api::http::RetryPolicy;
use futures::FutureExt;

use super::manifests::Manifests;
use super::secrets::CliSecrets;

mod classify;
mod grantees;
mod objects;
mod output;
mod read;
mod report;
mod scope;
mod sources;

pub use grantees::Reviewed;
pub(crate) use grantees::plain_name;
pub use output::{CSV_HEADER, render_csv, render_table};
pub use report::*;
pub use sources::from_cluster;

use read::{Counter, read_all};
use scope::Engine;

/// Vendor objects read at once per provider unless told otherwise.
pub const DEFAULT_PARALLEL: usize = 4;

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
    // Every grant kind of the list in `crate::vendors`: first what is in scope
    // (so the progress counter knows the total), then the reads, all at once.
    macro_rules! read_every_kind {
        ([$($module:ident $kind:ident $grant:ident $block:ident $title:literal),* $(,)?]) => {{
            $(let $module = engine.prepare::<crate::api::$grant>(&manifests.$module).await;)*
            let counter = Counter::new(0 $(+ $module.len())*, options.progress);
            let now = Timestamp::now();
            let parallel = options.parallel.max(1);
            let results = futures::future::join_all([$(
                read_all($module, &counter, parallel, now).boxed_local(),
            )*])
            .await;
            counter.finish();
            results
        }};
    }
    for result in crate::vendors::vendors!(read_every_kind)
        .into_iter()
        .flatten()
    {
        engine.absorb(result);
    }
    Ok(engine.finish())
}
