//! A pass's share of `RECONCILE_CONCURRENCY`, and giving it back while the
//! pass only waits for a batch it shares with other passes.
//!
//! Every pass holds one of `concurrency` *active* permits. Some waits are
//! cheaper the more passes share them: the oCIS create check waits for one
//! project-drive list that confirms every create that asked before it
//! started. A pass in such a wait ([`idle`]) swaps its active permit for
//! one of a larger pool of *waiting* permits, so that other tenants' passes
//! run meanwhile and join the same batch; after the wait it queues for an
//! active permit again (the semaphore is fair, so it is not starved by new
//! passes). When the waiting pool is full, the pass waits holding its
//! active permit, which bounds the passes in flight to
//! `active + waiting`. The slot follows the pass into the task of every
//! system it runs (a task-local, re-entered by [`scope`]).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

tokio::task_local! {
    static SLOT: Arc<Slot>;
}

/// The two pools every pass of one controller draws from.
#[derive(Clone, Debug)]
pub struct Slots {
    active: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
}

impl Slots {
    /// `active` passes at once, and up to `waiting` more parked in shared waits.
    pub fn new(active: usize, waiting: usize) -> Self {
        Slots {
            active: Arc::new(Semaphore::new(active.max(1))),
            waiting: Arc::new(Semaphore::new(waiting)),
        }
    }

    /// An active slot for the next pass (waits for one to free up).
    pub async fn acquire(&self) -> Arc<Slot> {
        let permit = self.active.clone().acquire_owned().await.ok();
        Arc::new(Slot {
            slots: self.clone(),
            held: Mutex::new(Held {
                active: permit,
                waiting: None,
                idlers: 0,
            }),
        })
    }
}

/// One pass's permits; dropping it frees them.
#[derive(Debug)]
pub struct Slot {
    slots: Slots,
    held: Mutex<Held>,
}

#[derive(Debug)]
struct Held {
    active: Option<OwnedSemaphorePermit>,
    waiting: Option<OwnedSemaphorePermit>,
    /// This pass's systems currently in [`idle`].
    idlers: usize,
}

impl Slot {
    async fn park(&self) {
        let mut held = self.held.lock().await;
        held.idlers += 1;
        if held.idlers == 1 {
            if let Ok(waiting) = self.slots.waiting.clone().try_acquire_owned() {
                held.waiting = Some(waiting);
                held.active = None;
            }
        }
    }

    async fn resume(&self) {
        let mut held = self.held.lock().await;
        held.idlers -= 1;
        if held.idlers == 0 && held.waiting.is_some() {
            // Holding the lock: a sibling that parks now waits for this.
            held.active = self.slots.active.clone().acquire_owned().await.ok();
            held.waiting = None;
        }
    }

    /// Whether this pass holds an active permit now.
    pub async fn is_active(&self) -> bool {
        self.held.lock().await.active.is_some()
    }
}

/// Runs `fut` with `slot` as the current pass's slot.
pub async fn scope<F: Future>(slot: Option<Arc<Slot>>, fut: F) -> F::Output {
    match slot {
        Some(slot) => SLOT.scope(slot, fut).await,
        None => fut.await,
    }
}

/// The current pass's slot, to hand to the tasks it spawns.
pub fn current() -> Option<Arc<Slot>> {
    SLOT.try_with(Arc::clone).ok()
}

/// Awaits `fut` without holding an active permit (if the waiting pool has
/// room), then takes one again. Outside a pass it simply awaits `fut`.
pub async fn idle<F: Future>(fut: F) -> F::Output {
    let Some(slot) = current() else {
        return fut.await;
    };
    slot.park().await;
    let out = fut.await;
    slot.resume().await;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    /// Starts a pass on `slot` that idles until `release` fires; resolves
    /// once the pass is inside its wait. The task answers whether the pass
    /// was active again after the wait.
    async fn idling(slot: &Arc<Slot>) -> (oneshot::Sender<()>, tokio::task::JoinHandle<bool>) {
        let (release, released) = oneshot::channel::<()>();
        let (parked, is_parked) = oneshot::channel::<()>();
        let task = tokio::spawn(scope(Some(slot.clone()), async move {
            idle(async move {
                parked.send(()).ok();
                released.await.ok();
            })
            .await;
            current().expect("slot in scope").is_active().await
        }));
        is_parked.await.expect("the pass reaches its wait");
        (release, task)
    }

    #[tokio::test]
    async fn an_idle_pass_frees_its_active_permit_for_another_pass() {
        let slots = Slots::new(1, 4);
        let first = slots.acquire().await;
        let (release, task) = idling(&first).await;
        assert!(!first.is_active().await);
        assert_eq!(slots.active.available_permits(), 1);
        let second = slots.acquire().await;
        assert!(second.is_active().await);
        drop(second);
        release.send(()).ok();
        assert!(task.await.expect("task"), "active again after the wait");
        assert_eq!(slots.waiting.available_permits(), 4);
    }

    #[tokio::test]
    async fn a_full_waiting_pool_keeps_the_active_permit() {
        let slots = Slots::new(1, 0);
        let first = slots.acquire().await;
        let (release, task) = idling(&first).await;
        assert!(first.is_active().await);
        assert_eq!(slots.active.available_permits(), 0);
        release.send(()).ok();
        assert!(task.await.expect("task"));
    }

    #[tokio::test]
    async fn idle_outside_a_pass_just_awaits() {
        assert_eq!(idle(async { 7 }).await, 7);
        assert!(current().is_none());
    }

    #[tokio::test]
    async fn dropping_the_slot_frees_its_permits() {
        let slots = Slots::new(1, 1);
        let first = slots.acquire().await;
        let (release, task) = idling(&first).await;
        release.send(()).ok();
        task.await.expect("task");
        drop(first);
        assert_eq!(slots.active.available_permits(), 1);
        assert_eq!(slots.waiting.available_permits(), 1);
    }
}
