//! Shared waits: a pass waiting for a batch shared with other passes gives
//! its concurrency slot back, so more passes than `concurrency` can join
//! one batch, while the work outside such waits stays within the cap.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use dezky_controller::reconcile::{Mode, Outcome, Reconciler, SystemError};
use dezky_controller::slot;
use dezky_core::model::{Phase, System, Tenant};
use tokio::sync::Barrier;

use super::{config, Running, PATIENCE};
use crate::support::mongo::fresh_store;
use crate::support::tenants::{in_phase, insert, tenant};
use crate::support::wait::until;

/// Every pass waits (idle) until `batch` passes wait at once.
struct Batching {
    batch: Barrier,
    working: AtomicUsize,
    most_working: AtomicUsize,
}

impl Batching {
    fn work(&self) {
        let now = self.working.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_working.fetch_max(now, Ordering::SeqCst);
    }
}

#[async_trait]
impl Reconciler for Batching {
    fn system(&self) -> System {
        System::Ocis
    }

    async fn reconcile(&self, _: &Tenant, _: Mode) -> Result<Outcome, SystemError> {
        self.work();
        self.working.fetch_sub(1, Ordering::SeqCst);
        slot::idle(self.batch.wait()).await;
        self.work();
        tokio::task::yield_now().await;
        self.working.fetch_sub(1, Ordering::SeqCst);
        Ok(Outcome::ok("InSync", "batched"))
    }

    async fn cleanup(&self, _: &Tenant, _: Mode) -> Result<Outcome, SystemError> {
        Ok(Outcome::ok("Deleted", "nothing left"))
    }
}

#[tokio::test]
async fn passes_waiting_for_a_shared_batch_free_their_slots_for_more_passes() {
    let store = fresh_store().await;
    let batching = Arc::new(Batching {
        batch: Barrier::new(8),
        working: AtomicUsize::new(0),
        most_working: AtomicUsize::new(0),
    });
    let reconciler: Arc<dyn Reconciler> = batching.clone();
    let reconcilers = BTreeMap::from([(System::Ocis, reconciler)]);
    let mut cfg = config();
    cfg.concurrency = 2;
    let running = Running::start_synced(&store, reconcilers, cfg).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(insert(&store, &tenant(&format!("batch-{i}"))).await);
    }
    // Eight passes must wait in the batch at once: with two slots held
    // through the wait, none would ever finish.
    for id in &ids {
        until("all active", PATIENCE, || {
            in_phase(&store, *id, Phase::Active)
        })
        .await;
    }
    assert!(batching.most_working.load(Ordering::SeqCst) <= 2);
    running.shutdown().await;
}
