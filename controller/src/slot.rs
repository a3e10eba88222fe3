//! A pass's share of `RECONCILE_CONCURRENCY`, and giving it back while the
//! pass only waits for a batch it shares with other passes.
//!
//! Every pass holds one *in-flight* permit for its whole life and one of
//! `concurrency` *active* permits while it works. Some waits are cheaper
//! the more passes share them: the oCIS create check waits for one
//! project-drive list that confirms every create that asked before it
//! started. A pass in such a wait ([`idle`]) gives its active permit back,
//! so that other tenants' passes run meanwhile and join the same batch;
//! after the wait it queues for an active permit again (the semaphore is
//! fair, so new passes do not starve it). The in-flight permits bound the
//! passes started at once to `active + waiting`, and a new pass takes its
//! in-flight permit before its active one, so a full house never blocks an
//! active permit in a wait. The slot follows the pass into the task of
//! every system it runs (a task-local, re-entered by [`scope`]).

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
    in_flight: Arc<Semaphore>,
}

impl Slots {
    /// `active` passes working at once, and up to `waiting` more parked in
    /// shared waits.
    pub fn new(active: usize, waiting: usize) -> Self {
        let active = active.max(1);
        Slots {
            active: Arc::new(Semaphore::new(active)),
            in_flight: Arc::new(Semaphore::new(active + waiting)),
        }
    }

    /// The slot of the next pass (waits until one may start).
    pub async fn acquire(&self) -> Arc<Slot> {
        let in_flight = self.in_flight.clone().acquire_owned().await.ok();
        let active = self.active.clone().acquire_owned().await.ok();
        Arc::new(Slot {
            slots: self.clone(),
            _in_flight: in_flight,
            held: Mutex::new(Held { active, idlers: 0 }),
        })
    }
}

/// One pass's permits; dropping it frees them.
#[derive(Debug)]
pub struct Slot {
    slots: Slots,
    _in_flight: Option<OwnedSemaphorePermit>,
    held: Mutex<Held>,
}

#[derive(Debug)]
struct Held {
    active: Option<OwnedSemaphorePermit>,
    /// This pass's systems currently in [`idle`].
    idlers: usize,
}

impl Slot {
    async fn park(&self) {
        let mut held = self.held.lock().await;
        held.idlers += 1;
        if held.idlers == 1 {
            held.active = None;
        }
    }

    async fn resume(&self) {
        let mut held = self.held.lock().await;
        held.idlers -= 1;
        if held.idlers == 0 {
            // Holding the lock: a sibling that parks now waits for this.
            held.active = self.slots.active.clone().acquire_owned().await.ok();
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

/// Awaits `fut` without holding an active permit, then takes one again.
/// Outside a pass it simply awaits `fut`.
pub async fn idle<F: Future>(fut: F) -> F::Output {
    let Some(slot) = current() else {
        return fut.await;
    };
    slot.park().await;
    let out = fut.await;
    slot.resume().await;
    out
}

/// Gives the current pass's active permit back for good: what is left of
/// the pass only waits for MongoDB (its results, written in a batch shared
/// with other passes). Call it when none of the pass's systems still works.
/// Outside a pass it does nothing.
pub async fn release() {
    if let Some(slot) = current() {
        slot.held.lock().await.active = None;
    }
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
        drop(first);
        assert_eq!(slots.in_flight.available_permits(), 5);
    }

    #[tokio::test]
    async fn no_pass_starts_beyond_active_plus_waiting_and_the_active_permit_stays_free() {
        let slots = Slots::new(1, 1);
        let first = slots.acquire().await;
        let (release_first, first_task) = idling(&first).await;
        let second = slots.acquire().await;
        let (release_second, second_task) = idling(&second).await;
        assert_eq!(slots.in_flight.available_permits(), 0);
        assert_eq!(
            slots.active.available_permits(),
            1,
            "free for a returning pass"
        );
        release_first.send(()).ok();
        assert!(first_task.await.expect("task"));
        drop(first);
        release_second.send(()).ok();
        assert!(second_task.await.expect("task"));
        drop(second);
        assert_eq!(slots.in_flight.available_permits(), 2);
    }

    #[tokio::test]
    async fn a_released_pass_frees_its_active_permit_for_good() {
        let slots = Slots::new(1, 1);
        let first = slots.acquire().await;
        scope(Some(first.clone()), release()).await;
        assert!(!first.is_active().await);
        let second = slots.acquire().await;
        assert!(second.is_active().await, "the next pass starts at once");
        assert_eq!(
            slots.in_flight.available_permits(),
            0,
            "both still in flight"
        );
        drop(first);
        assert_eq!(slots.in_flight.available_permits(), 1);
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
        assert_eq!(slots.in_flight.available_permits(), 2);
    }
}
