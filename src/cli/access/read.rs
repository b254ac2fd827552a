//! Reading: every object in scope read once through its provider's client,
//! at most `parallel` at a time per provider, with progress on stderr.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::jiff::Timestamp;
use tokio::sync::Semaphore;

use crate::api::VendorKind;
use crate::controller::clients::ProviderId;
use crate::plan::Key;
use crate::sync;
use crate::vendor_api::{Vendor, VendorError};

use super::Progress;
use super::classify::compare;
use super::grantees::Reviewed;
use super::report::{ReadError, Row};
use super::scope::{Job, resource_name};

/// What reading one object gave.
pub(super) struct JobResult {
    pub(super) vendor: VendorKind,
    pub(super) provider: String,
    pub(super) rows: Vec<Row>,
    pub(super) error: Option<ReadError>,
    pub(super) not_found: bool,
    pub(super) named_as: Option<String>,
    pub(super) grantee_of: Option<(String, String)>,
}

/// Counts objects read, on stderr.
pub(super) struct Counter {
    pub(super) total: usize,
    pub(super) done: AtomicUsize,
    pub(super) mode: Progress,
}

impl Counter {
    pub(super) fn new(total: usize, mode: Progress) -> Counter {
        Counter {
            total,
            done: AtomicUsize::new(0),
            mode,
        }
    }

    pub(super) fn tick(&self) {
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

    pub(super) fn finish(&self) {
        if self.mode == Progress::Terminal && self.total > 0 {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr);
        }
    }
}

/// Reads every job, at most `parallel` at a time per provider.
pub(super) async fn read_all<K: Reviewed>(
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

/// Resolves, reads and compares one object.
pub(super) async fn read_one<K: Reviewed>(job: Job<K>, now: Timestamp) -> JobResult {
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
