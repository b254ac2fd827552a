//! What the `resources` and `grants` metrics count: providers by `Ready`,
//! grant resources by `Ready` and their status rows by state, read from the
//! reflector stores when Prometheus scrapes.

use std::sync::Arc;

use kube::runtime::reflector::Store;

use crate::api::ProviderKind;
use crate::metrics::{Census, CensusSource, Observed};
use crate::vendor_api::GrantKind;

use super::provider;
use super::units::Watched;

/// Counts providers by `Ready` for the `resources` metrics.
pub(super) fn provider_census<P: provider::ProviderObject>(store: Store<P>) -> CensusSource {
    Box::new(move |census: &mut Census| {
        let kind = match P::KIND {
            ProviderKind::GrantProvider => "GrantProvider",
            ProviderKind::ClusterGrantProvider => "ClusterGrantProvider",
        };
        for provider in store.state() {
            let meta = provider.meta();
            census.resource(Observed {
                kind,
                namespace: meta.namespace.as_deref(),
                name: meta.name.as_deref().unwrap_or_default(),
                created: meta.creation_timestamp.as_ref(),
                ready: provider
                    .provider_status()
                    .and_then(|status| super::status::ready_of(&status.conditions)),
                last_sync: None,
            });
        }
    })
}

/// Counts grant resources by `Ready` and their status rows by state.
pub(super) fn grant_census<K: GrantKind>(
    store: Store<Watched<K>>,
    last_synced: Arc<std::sync::atomic::AtomicI64>,
) -> CensusSource {
    Box::new(move |census: &mut Census| {
        let synced = last_synced.load(std::sync::atomic::Ordering::Relaxed);
        if synced > 0 {
            census.synced(K::KIND, synced as f64);
        }
        for watched in store.state() {
            let grant = match &watched.object {
                Ok(grant) => grant,
                Err(unreadable) => {
                    let meta = &unreadable.metadata;
                    census.unreadable(
                        K::KIND,
                        meta.namespace.as_deref(),
                        meta.name.as_deref().unwrap_or_default(),
                        meta.creation_timestamp.as_ref(),
                    );
                    continue;
                }
            };
            let meta = grant.meta();
            let status = grant.status();
            census.resource(Observed {
                kind: K::KIND,
                namespace: meta.namespace.as_deref(),
                name: meta.name.as_deref().unwrap_or_default(),
                created: meta.creation_timestamp.as_ref(),
                ready: status.and_then(|status| super::status::ready_of(&status.conditions)),
                last_sync: status.and_then(|status| status.last_sync_time.as_ref()),
            });
            for row in status.map(|status| status.grants.as_slice()).unwrap_or(&[]) {
                census.row(K::KIND, row_state(row.state));
            }
        }
    })
}

pub(super) fn row_state(state: crate::api::GrantState) -> &'static str {
    use crate::api::GrantState;
    match state {
        GrantState::Applied => "Applied",
        GrantState::Pending => "Pending",
        GrantState::Failed => "Failed",
        GrantState::Drifted => "Drifted",
    }
}
