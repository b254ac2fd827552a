//! Running the syncs of a grant kind: a reconcile asks the unit coalescer for a
//! sync ([`request`]); the sync runs in a task of its own ([`SyncTasks`]), in its
//! provider's lane, followed by the syncs asked for meanwhile, and wakes the
//! members each one answers (also when it was cut short).

use std::sync::Arc;

use kube::runtime::reflector::ObjectRef;

use crate::controller::units::{Freshness, Granted, SyncOutcome, UnitKey};
use crate::vendor_api::GrantKind;

use super::pipeline::sync_unit;
use super::{GrantContext, cast};

/// The sync tasks of one grant kind: they outlive the reconciles that started
/// them and end with the controller (`abort_all`).
#[derive(Default)]
pub struct SyncTasks {
    tasks: std::sync::Mutex<tokio::task::JoinSet<()>>,
    running: tokio::sync::watch::Sender<usize>,
}

impl SyncTasks {
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        // Reap finished tasks so the set stays as large as what runs.
        while tasks.try_join_next().is_some() {}
        self.running.send_modify(|running| *running += 1);
        let running = self.running.clone();
        tasks.spawn(async move {
            struct Done(tokio::sync::watch::Sender<usize>);
            impl Drop for Done {
                fn drop(&mut self) {
                    self.0
                        .send_modify(|running| *running = running.saturating_sub(1));
                }
            }
            let _done = Done(running);
            task.await;
        });
    }

    /// Stops every sync task (the controller is stopping).
    pub fn abort_all(&self) {
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .abort_all();
    }

    /// Completes once no sync task runs.
    pub async fn idle(&self) {
        let mut running = self.running.subscribe();
        // Err: the sender is gone, so nothing runs.
        let _ = running.wait_for(|running| *running == 0).await;
    }

    /// Sync tasks running (for tests).
    pub fn running(&self) -> usize {
        *self.running.borrow()
    }
}

/// Asks for a sync of `unit` on behalf of `oref`: the outcome that answers it, or
/// `None` when it is queued (it is woken when the sync ends). Starts the sync when
/// it is this caller's turn.
pub(super) fn request<K: GrantKind>(
    cx: &Arc<GrantContext<K>>,
    unit: &UnitKey,
    oref: &ObjectRef<K>,
    fingerprint: u64,
    freshness: Freshness,
) -> Option<Arc<SyncOutcome<K>>> {
    match cx.units.request(unit, oref, fingerprint, freshness) {
        Granted::Answer(outcome) => Some(outcome),
        Granted::Queued => None,
        Granted::Start(seq) => {
            spawn_sync(cx, unit.clone(), seq);
            None
        }
    }
}

/// Runs sync `seq` of `unit` in its provider's lane, then the syncs asked for
/// while it ran, waking the members each one answers.
pub(super) fn spawn_sync<K: GrantKind>(cx: &Arc<GrantContext<K>>, unit: UnitKey, seq: u64) {
    let cx = cx.clone();
    let tasks = cx.syncs.clone();
    tasks.spawn(async move {
        let mut seq = seq;
        loop {
            let lane = cx.shared.lanes.of(&unit.provider);
            // The semaphore is never closed.
            let permit = lane.acquire_owned().await.ok();
            let mut guard = CutShort {
                cx: &cx,
                unit: &unit,
                seq,
                armed: true,
            };
            let outcome = Arc::new(sync_unit(cx.clone(), unit.clone(), seq).await);
            guard.armed = false;
            drop(permit);
            let (woken, next) = cx.units.finish(&unit, seq, Some(outcome));
            for member in woken {
                // Err: the controller is gone, and so is the need to wake anyone.
                let _ = cx.wake.send(cast(&member));
            }
            match next {
                Some(next) => seq = next,
                None => break,
            }
        }
    });
}

/// Marks a sync that did not finish (it panicked) as cut short, and wakes its
/// waiting members so they ask again.
struct CutShort<'a, K: GrantKind> {
    cx: &'a GrantContext<K>,
    unit: &'a UnitKey,
    seq: u64,
    armed: bool,
}

impl<K: GrantKind> Drop for CutShort<'_, K> {
    fn drop(&mut self) {
        if self.armed {
            let (woken, _) = self.cx.units.finish(self.unit, self.seq, None);
            for member in woken {
                let _ = self.cx.wake.send(cast(&member));
            }
        }
    }
}
