//! The controller process: leader election, then triggers → queue →
//! workers until the lease is lost or shutdown is requested.
//!
//! - Only the lease holder reconciles; a standby retries the lease every
//!   renew interval. A lost lease stops work at once (in-flight passes are
//!   aborted; every upstream write is idempotent, so the next leader simply
//!   redoes them).
//! - At most `concurrency` passes run at once, never two for one tenant
//!   (the queue's invariant); each pass has a timeout and a panic boundary.
//!   A pass that only waits for a batch shared with other passes gives its
//!   slot back meanwhile ([`crate::slot`]).
//! - After a pass: converged → requeue in `resync_interval` ±10%; failed →
//!   per-tenant backoff; gone → forgotten.
//! - Shutdown: stop taking work, let in-flight passes finish (bounded),
//!   save the resume token, release the lease.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dezky_core::model::System;
use dezky_core::store::{Store, StoreError};
use dezky_core::Id;
use rand::Rng;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::{error, info, warn};

use crate::backoff::Backoff;
use crate::fleet;
use crate::group::PassIo;
use crate::lease::{Lease, CONTROLLER_LEASE};
use crate::pass::{self, PassEnd, Reconcilers};
use crate::queue::{Trigger, WorkQueue};
use crate::slot::{self, Slot, Slots};
use crate::watch::TenantWatch;

/// Passes that may be parked in a shared wait (see [`slot`]) per active pass.
const WAITING_PER_ACTIVE: usize = 64;

/// Tunables of the controller (DESIGN §2).
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Requeue period after a successful pass (±10% jitter).
    pub resync_interval: Duration,
    /// Passes at once.
    pub concurrency: usize,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Upper bound of one system's reconcile or cleanup in a pass.
    pub reconcile_timeout: Duration,
    /// How long a lease is valid after its last renewal.
    pub lease_duration: Duration,
    /// How long shutdown waits for in-flight passes.
    pub shutdown_grace: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            resync_interval: Duration::from_secs(300),
            concurrency: 16,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            reconcile_timeout: Duration::from_secs(60),
            lease_duration: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// What `/readyz` and `/metrics` need to know about the controller.
#[derive(Debug, Default)]
pub struct ControllerHealth {
    running: AtomicBool,
    leader: AtomicBool,
    /// Set once the leader's change stream is open and the first relist is done.
    synced: AtomicBool,
}

impl ControllerHealth {
    /// Whether the controller loop runs (as leader or standby).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Whether this process holds the lease.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    /// Whether this process leads and has seen every tenant (the stream is
    /// open and the initial relist is queued).
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }

    pub(crate) fn set_synced(&self, synced: bool) {
        self.synced.store(synced, Ordering::SeqCst);
    }

    fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::SeqCst);
        metrics::gauge!("controller_leader").set(if leader { 1.0 } else { 0.0 });
    }
}

/// The reconciliation controller.
pub struct Controller {
    store: Store,
    reconcilers: Reconcilers,
    config: ControllerConfig,
    health: Arc<ControllerHealth>,
    /// Unique id of this process in the lease.
    holder: String,
}

/// Every series a controller exports only when something happens, at 0
/// from the start: a standby's `controller_leader`, errors, retries and
/// drift corrections, so dashboards show 0 rather than "No data" and
/// `rate()` sees the first event.
fn export_zeros() {
    metrics::gauge!("controller_leader").set(0.0);
    metrics::counter!("reconcile_retries_total").increment(0);
    for system in System::ALL {
        for result in ["ok", "skipped", "error", "pending"] {
            metrics::counter!("reconciles_total", "system" => system.as_str(), "result" => result)
                .increment(0);
        }
        metrics::counter!("drift_corrections_total", "system" => system.as_str()).increment(0);
    }
}

impl Controller {
    /// A controller over `store` with the configured `reconcilers`.
    pub fn new(store: Store, reconcilers: Reconcilers, config: ControllerConfig) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
        export_zeros();
        Controller {
            store,
            reconcilers,
            config,
            health: Arc::default(),
            holder: format!("{host}/{}/{}", std::process::id(), uuid::Uuid::new_v4()),
        }
    }

    /// Shared health flags (for readiness).
    pub fn health(&self) -> Arc<ControllerHealth> {
        self.health.clone()
    }

    /// This process's lease holder id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Runs until `shutdown` fires; returns after a graceful stop.
    pub async fn run(self, shutdown: CancellationToken) {
        let lease = Lease::new(
            &self.store,
            CONTROLLER_LEASE,
            self.holder.clone(),
            self.config.lease_duration,
        );
        let renew_every = self.config.lease_duration / 3;
        self.health.running.store(true, Ordering::SeqCst);
        info!(holder = %self.holder, "controller started; waiting for the lease");
        while !shutdown.is_cancelled() {
            match lease.try_acquire().await {
                Ok(true) => {
                    info!(holder = %self.holder, "lease acquired; leading");
                    self.lead(&lease, renew_every, &shutdown).await;
                }
                Ok(false) => {}
                Err(e) => warn!(error = %e.kind, "cannot reach the lease"),
            }
            let _ = tokio::time::timeout(renew_every, shutdown.cancelled()).await;
        }
        self.health.running.store(false, Ordering::SeqCst);
        info!("controller stopped");
    }

    /// Leads until the lease is lost or shutdown; on shutdown releases the lease.
    async fn lead(&self, lease: &Lease, renew_every: Duration, shutdown: &CancellationToken) {
        self.health.set_leader(true);
        let term = CancellationToken::new();
        let queue = Arc::new(WorkQueue::new());
        let renewer = AbortOnDropHandle::new(tokio::spawn(renew(
            lease.clone(),
            renew_every,
            self.config.lease_duration,
            term.clone(),
        )));
        // Aborted with this future, like the watcher.
        let fleet = AbortOnDropHandle::new(tokio::spawn(fleet::report(self.store.clone())));
        let watch_stop = CancellationToken::new();
        // Aborted with this future: a crashed leader leaves nothing running.
        let watcher = AbortOnDropHandle::new(tokio::spawn({
            let watch = TenantWatch::new(
                self.store.clone(),
                self.health.clone(),
                self.config.resync_interval,
            );
            let queue = queue.clone();
            let stop = watch_stop.clone();
            async move { watch.run(&queue, stop).await }
        }));

        let in_flight = self.work(&queue, &term, shutdown).await;
        let graceful = shutdown.is_cancelled() && !term.is_cancelled();
        if graceful {
            info!(
                in_flight = in_flight.len(),
                "shutting down: finishing in-flight passes"
            );
            drain(in_flight, self.config.shutdown_grace).await;
        } else {
            warn!("lease lost: stopping all work at once");
            drop(in_flight);
        }
        watch_stop.cancel();
        let _ = watcher.await;
        term.cancel();
        let _ = renewer.await;
        if graceful {
            if let Err(e) = lease.release().await {
                warn!(error = %e.kind, "cannot release the lease; it expires by itself");
            }
        }
        drop(fleet);
        fleet::clear();
        self.health.set_synced(false);
        self.health.set_leader(false);
    }

    /// Hands due tenants to workers until the term ends or shutdown.
    async fn work(
        &self,
        queue: &Arc<WorkQueue>,
        term: &CancellationToken,
        shutdown: &CancellationToken,
    ) -> JoinSet<()> {
        let slots = Slots::new(
            self.config.concurrency,
            self.config.concurrency * WAITING_PER_ACTIVE,
        );
        let backoff = Arc::new(Backoff::new(
            self.config.backoff_base,
            self.config.backoff_max,
        ));
        // Per term: its tasks stop once the term's passes are gone.
        let io = PassIo::start(&self.store);
        let mut in_flight = JoinSet::new();
        loop {
            let slot = tokio::select! {
                _ = term.cancelled() => break,
                _ = shutdown.cancelled() => break,
                slot = slots.acquire() => slot,
            };
            let (id, trigger) = tokio::select! {
                _ = term.cancelled() => break,
                _ = shutdown.cancelled() => break,
                next = queue.next() => next,
            };
            metrics::gauge!("queue_depth").set(queue.len() as f64);
            while in_flight.try_join_next().is_some() {}
            let worker = Worker {
                io: io.clone(),
                reconcilers: self.reconcilers.clone(),
                queue: queue.clone(),
                backoff: backoff.clone(),
                config: self.config.clone(),
            };
            in_flight.spawn(worker.pass(id, trigger, slot));
        }
        in_flight
    }
}

/// Everything one pass needs, owned so it can run in its own task.
struct Worker {
    io: PassIo,
    reconcilers: Reconcilers,
    queue: Arc<WorkQueue>,
    backoff: Arc<Backoff>,
    config: ControllerConfig,
}

impl Worker {
    /// Runs one pass holding `slot` (freed when the pass ends).
    async fn pass(self, id: Id, trigger: Trigger, slot: Arc<Slot>) {
        let started = std::time::Instant::now();
        // Its own task: a panic or a hang fails this pass only.
        let io = self.io.clone();
        let reconcilers = self.reconcilers.clone();
        let timeout = self.config.reconcile_timeout;
        let joined = tokio::time::timeout(
            timeout + Duration::from_secs(5),
            AbortOnDropHandle::new(tokio::spawn(slot::scope(Some(slot), async move {
                pass::run(&io, &reconcilers, id, trigger, timeout).await
            }))),
        )
        .await;
        let end = match joined {
            Ok(Ok(Ok(end))) => end,
            // Retrying cannot help a document that does not decode: report
            // it once; its next change (or the next relist) tries again.
            Ok(Ok(Err(StoreError::Undecodable(e)))) => {
                e.report();
                PassEnd::Gone
            }
            Ok(Ok(Err(e))) => {
                warn!(tenant_id = %id, error = %e, "pass failed on the database");
                PassEnd::Retry
            }
            Ok(Err(join)) => {
                error!(tenant_id = %id, error = %join, "pass panicked");
                PassEnd::Retry
            }
            Err(_) => {
                warn!(tenant_id = %id, "pass timed out");
                PassEnd::Retry
            }
        };
        metrics::histogram!("reconcile_duration_seconds", "trigger" => trigger.as_str())
            .record(started.elapsed().as_secs_f64());
        match end {
            PassEnd::Converged => {
                self.backoff.reset(id);
                self.queue.schedule(
                    id,
                    Trigger::Resync,
                    Instant::now() + jitter(self.config.resync_interval),
                );
            }
            PassEnd::Retry => {
                metrics::counter!("reconcile_retries_total").increment(1);
                let delay = self.backoff.fail(id);
                self.queue
                    .schedule(id, Trigger::Retry, Instant::now() + delay);
            }
            PassEnd::Gone => self.backoff.reset(id),
            PassEnd::Planned { converge_now: true } => {
                self.queue.schedule(id, Trigger::Change, Instant::now());
            }
            PassEnd::Planned {
                converge_now: false,
            } => self.queue.schedule(
                id,
                Trigger::Resync,
                Instant::now() + jitter(self.config.resync_interval),
            ),
        }
        self.queue.done(id);
    }
}

/// `interval` ±10%.
fn jitter(interval: Duration) -> Duration {
    let factor = rand::thread_rng().gen_range(0.9..=1.1);
    interval.mul_f64(factor)
}

/// Renews the lease every `every`; cancels `term` when it is lost (another
/// holder, or no successful renewal before it expires).
async fn renew(lease: Lease, every: Duration, duration: Duration, term: CancellationToken) {
    let mut last_ok = Instant::now();
    loop {
        tokio::select! {
            _ = term.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match lease.try_acquire().await {
            Ok(true) => last_ok = Instant::now(),
            Ok(false) => {
                warn!("lease taken by another controller");
                term.cancel();
                return;
            }
            Err(e) => {
                warn!(error = %e.kind, "cannot renew the lease");
                if last_ok.elapsed() + every >= duration {
                    term.cancel();
                    return;
                }
            }
        }
    }
}

/// Waits for in-flight passes, at most `grace`; aborts the rest.
async fn drain(mut in_flight: JoinSet<()>, grace: Duration) {
    let all = async { while in_flight.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, all).await.is_err() {
        warn!("in-flight passes did not finish in time; aborting them");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        let base = Duration::from_secs(100);
        for _ in 0..1000 {
            let j = jitter(base);
            assert!(
                j >= Duration::from_secs(90) && j <= Duration::from_secs(110),
                "{j:?}"
            );
        }
    }
}
