//! The HTTP endpoints of the process: `/metrics`, `/healthz` and `/readyz`.
//!
//! - `/metrics`: every metric of [`Metrics`] in the Prometheus text format
//!   (the OpenMetrics flavour `prometheus-client` writes; Prometheus reads it).
//! - `/healthz` (liveness): the process serves requests.
//! - `/readyz` (readiness): see [`Health::readiness`]. A replica standing by for
//!   the lease is ready, so a rolling update is not held up by standbys; whether
//!   a replica leads is the `grant_operator_leader` metric.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::metrics::Metrics;

/// The content type of `/metrics`.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the health endpoints report, set by the leader gate and the controllers.
pub struct Health {
    metrics: Arc<Metrics>,
    leader_election: bool,
    leading: AtomicBool,
    synced: AtomicBool,
    lease_reachable: AtomicBool,
}

impl Health {
    /// Nothing running yet. With `leader_election`, readiness also follows the lease.
    pub fn new(metrics: Arc<Metrics>, leader_election: bool) -> Arc<Health> {
        metrics.leader.set(0);
        metrics.watches_synced.set(0);
        Arc::new(Health {
            metrics,
            leader_election,
            leading: AtomicBool::new(false),
            synced: AtomicBool::new(false),
            lease_reachable: AtomicBool::new(false),
        })
    }

    /// This replica runs the controllers (it holds the lease, or leader election is off).
    pub fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::SeqCst);
        self.metrics.leader.set(i64::from(leading));
    }

    /// Whether this replica runs the controllers.
    pub fn leading(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    /// The running controllers' watches have each listed everything once (or stopped).
    pub fn set_synced(&self, synced: bool) {
        self.synced.store(synced, Ordering::SeqCst);
        self.metrics.watches_synced.set(i64::from(synced));
    }

    /// Whether the running controllers' watches have synced.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }

    /// A standby could read the Lease (the API server answers and RBAC allows it).
    pub fn set_lease_reachable(&self, reachable: bool) {
        self.lease_reachable.store(reachable, Ordering::SeqCst);
    }

    /// `Ok` with a short explanation when ready, `Err` with the reason when not:
    /// - leading (or no leader election): ready once the watches have synced;
    /// - standing by for the lease: ready once the Lease could be read.
    pub fn readiness(&self) -> Result<&'static str, &'static str> {
        if self.leading() {
            if self.synced() {
                Ok("ok: leading, watches synced")
            } else {
                Err("not ready: watches not synced yet")
            }
        } else if !self.leader_election {
            Err("not ready: controllers not started")
        } else if self.lease_reachable.load(Ordering::SeqCst) {
            Ok("ok: standing by for the lease")
        } else {
            Err("not ready: the lease cannot be read yet")
        }
    }
}

/// The endpoints as a router (tests can serve it themselves).
pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(metrics)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz).with_state(health))
}

async fn serve_metrics(State(metrics): State<Arc<Metrics>>) -> Response {
    match metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics",
        )
            .into_response(),
    }
}

async fn readyz(State(health): State<Arc<Health>>) -> Response {
    match health.readiness() {
        Ok(message) => (StatusCode::OK, message).into_response(),
        Err(message) => (StatusCode::SERVICE_UNAVAILABLE, message).into_response(),
    }
}

/// Serves the endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics, health))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_leadership_and_sync() {
        let metrics = Arc::new(Metrics::new());
        let alone = Health::new(metrics.clone(), false);
        assert!(alone.readiness().is_err());
        alone.set_leading(true);
        assert!(alone.readiness().is_err(), "not synced yet");
        alone.set_synced(true);
        assert!(alone.readiness().is_ok());

        let elected = Health::new(metrics.clone(), true);
        assert!(elected.readiness().is_err(), "lease not read yet");
        elected.set_lease_reachable(true);
        assert_eq!(elected.readiness(), Ok("ok: standing by for the lease"));
        assert_eq!(metrics.leader.get(), 0);
        elected.set_leading(true);
        assert_eq!(metrics.leader.get(), 1);
        assert!(elected.readiness().is_err(), "leading, not synced");
        elected.set_synced(true);
        assert!(elected.readiness().is_ok());
    }
}
