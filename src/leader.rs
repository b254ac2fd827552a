//! Leader election on a `coordination.k8s.io/v1` Lease (`kube-lease-manager`).
//!
//! Controllers run only while this replica holds the lease:
//! - **Candidate**: wait until the lease is free (or expired) and take it.
//! - **Leading**: start the controllers with a stop signal, and keep renewing.
//!   When the lease is lost (another holder is seen) or cannot be renewed (any
//!   error of the API server while renewing), the controllers are stopped the
//!   way SIGTERM stops them: no new reconcile starts, those under way finish.
//!   Then the replica is a candidate again, with fresh caches once it leads.
//! - **Shutdown**: the controllers stop first (the lease is still renewed
//!   meanwhile), then the lease is released so a standby takes over at once
//!   instead of waiting for it to expire.
//!
//! Stepping down on the first failed renewal is deliberately conservative: it
//! costs one restart of the controllers, and never two leaders writing.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tracing::{info, warn};

use crate::controller::run::ShutdownSignal;
use crate::server::Health;

/// The Lease and how this replica appears in it.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// The Lease's name.
    pub name: String,
    /// The Lease's namespace (the operator's own).
    pub namespace: String,
    /// This replica's identity in `holderIdentity` (the pod name in a cluster).
    pub identity: String,
    /// How long the lease is valid after each renewal (at least 2 s).
    pub duration: Duration,
}

impl LeaseSettings {
    /// Lease duration and renewal margin in whole seconds, as the Lease stores
    /// them. The holder renews a third of the duration before it runs out.
    fn timing(&self) -> Result<(u64, u64), String> {
        let duration = self.duration.as_secs();
        if duration < 2 {
            return Err(format!(
                "the lease duration must be at least 2s, not {:?}",
                self.duration
            ));
        }
        Ok((duration, (duration / 3).max(1)))
    }
}

/// Why the controllers stopped while leading.
enum Stopped {
    /// The shutdown signal.
    Shutdown,
    /// The lease was lost or could not be renewed.
    LeaseLost,
}

/// Runs `controllers` whenever this replica holds the lease, until `shutdown`.
/// Each call of `controllers` gets a signal that completes on shutdown or when
/// the lease is lost, and must return once its work has stopped.
pub async fn run_while_leading<F, Fut>(
    client: kube::Client,
    settings: LeaseSettings,
    health: Arc<Health>,
    shutdown: ShutdownSignal,
    mut controllers: F,
) -> Result<(), String>
where
    F: FnMut(ShutdownSignal) -> Fut,
    Fut: Future<Output = ()>,
{
    let (duration, grace) = settings.timing()?;
    let mut retry = Duration::from_secs(1);
    let max_retry = Duration::from_secs(duration).min(Duration::from_secs(30));
    loop {
        let manager = tokio::select! {
            _ = shutdown.clone() => return Ok(()),
            built = LeaseManagerBuilder::new(client.clone(), &settings.name)
                .with_namespace(&settings.namespace)
                .with_identity(&settings.identity)
                .with_field_manager(format!("grant-operator-{}", settings.identity))
                .with_duration(duration)
                .with_grace(grace)
                .build() => built,
        };
        let manager = match manager {
            Ok(manager) => manager,
            Err(error) => {
                health.set_lease_reachable(false);
                warn!(lease = %settings.name, namespace = %settings.namespace, %error, retry_in = ?retry, "cannot read or create the lease");
                if pause(&shutdown, retry).await {
                    return Ok(());
                }
                retry = (retry * 2).min(max_retry);
                continue;
            }
        };
        health.set_lease_reachable(true);
        info!(lease = %settings.name, namespace = %settings.namespace, identity = %settings.identity, "standing by for the lease");
        loop {
            match lead_once(&manager, &settings, &health, &shutdown, &mut controllers).await {
                Ok(Stopped::Shutdown) => {
                    if let Err(error) = manager.release().await {
                        warn!(%error, "could not release the lease; it expires on its own");
                    } else {
                        info!(lease = %settings.name, "lease released");
                    }
                    return Ok(());
                }
                Ok(Stopped::LeaseLost) => {
                    retry = Duration::from_secs(1);
                    info!(lease = %settings.name, "standing by for the lease again");
                }
                Err(error) => {
                    health.set_lease_reachable(false);
                    warn!(lease = %settings.name, %error, retry_in = ?retry, "cannot take the lease");
                    if pause(&shutdown, retry).await {
                        return Ok(());
                    }
                    retry = (retry * 2).min(max_retry);
                    // A fresh manager: its view of the lease may be stale after errors.
                    break;
                }
            }
        }
    }
}

/// Waits to take the lease, then runs the controllers until shutdown or until
/// the lease is lost. `Err` when the lease could not be taken (API errors).
async fn lead_once<F, Fut>(
    manager: &LeaseManager,
    settings: &LeaseSettings,
    health: &Health,
    shutdown: &ShutdownSignal,
    controllers: &mut F,
) -> Result<Stopped, String>
where
    F: FnMut(ShutdownSignal) -> Fut,
    Fut: Future<Output = ()>,
{
    // Candidate.
    loop {
        let acquired = tokio::select! {
            _ = shutdown.clone() => return Ok(Stopped::Shutdown),
            changed = manager.changed() => changed,
        };
        match acquired {
            Ok(true) => break,
            Ok(false) => continue,
            Err(error) => return Err(error.to_string()),
        }
    }
    health.set_lease_reachable(true);
    info!(lease = %settings.name, identity = %settings.identity, "leading: starting the controllers");
    health.set_leading(true);

    // Leading: the controllers stop on shutdown or when `lost` fires.
    let (lost, lost_signal) = tokio::sync::oneshot::channel::<()>();
    let stop: ShutdownSignal = {
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                _ = shutdown => {}
                _ = lost_signal => {}
            }
        }
        .boxed()
        .shared()
    };
    let running = controllers(stop);
    tokio::pin!(running);
    let stopped = loop {
        tokio::select! {
            _ = &mut running => break Stopped::Shutdown,
            changed = manager.changed() => match changed {
                Ok(true) => continue,
                Ok(false) => {
                    warn!(lease = %settings.name, "lost the lease: stopping the controllers");
                    break Stopped::LeaseLost;
                }
                Err(error) => {
                    warn!(lease = %settings.name, %error, "cannot renew the lease: stopping the controllers");
                    break Stopped::LeaseLost;
                }
            },
        }
    };
    if let Stopped::LeaseLost = stopped {
        let _ = lost.send(());
        running.await;
    }
    health.set_leading(false);
    health.set_synced(false);
    info!(lease = %settings.name, "controllers stopped");
    Ok(stopped)
}

/// Sleeps `wait`; `true` when shutdown came first.
async fn pause(shutdown: &ShutdownSignal, wait: Duration) -> bool {
    tokio::select! {
        _ = shutdown.clone() => true,
        _ = tokio::time::sleep(wait) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_timing_is_whole_seconds_with_a_third_as_margin() {
        let settings = |secs| LeaseSettings {
            name: "l".into(),
            namespace: "n".into(),
            identity: "i".into(),
            duration: Duration::from_secs(secs),
        };
        assert_eq!(settings(15).timing(), Ok((15, 5)));
        assert_eq!(settings(2).timing(), Ok((2, 1)));
        assert!(settings(1).timing().is_err());
    }
}
