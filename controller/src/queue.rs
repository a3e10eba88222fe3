//! The work queue: when each tenant is reconciled next, and why.
//!
//! Invariants (each has a test named after it):
//! - a tenant holds at most one slot: scheduling it again keeps the
//!   earlier slot (duplicate triggers collapse);
//! - a tenant is never handed out twice at once: while a pass runs, new
//!   triggers for it are parked and become its next slot when the pass ends;
//! - work is handed out by class first: manual requests, then changes,
//!   then routine work (retries and periodic resyncs) in due order, so a
//!   new tenant never waits behind thousands of due resyncs;
//! - nothing is handed out before it is due.
//!
//! Concurrency limits are the runner's job; this type only orders work.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;

use dezky_core::Id;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Why a tenant is due: decides its place in the queue and how its pass
/// may observe the upstreams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Trigger {
    /// A user asked (`POST /tenants/{slug}/reconcile`, a plan request).
    Manual,
    /// The tenant changed (create, PATCH, DELETE) or is not converged.
    Change,
    /// A retry after a failed pass (per-tenant backoff).
    Retry,
    /// The periodic resync of a converged tenant: the only pass that may be
    /// answered from the systems' snapshots.
    Resync,
}

impl Trigger {
    /// Queue class: lower runs first; retries and resyncs share one class
    /// and run in due order.
    fn class(self) -> u8 {
        match self {
            Trigger::Manual => 0,
            Trigger::Change => 1,
            Trigger::Retry | Trigger::Resync => 2,
        }
    }

    /// Whether this trigger runs as soon as a worker is free, ahead of its class's due time.
    fn is_urgent(self) -> bool {
        self.class() < 2
    }

    /// Metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Change => "change",
            Trigger::Retry => "retry",
            Trigger::Resync => "resync",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    due: Instant,
    trigger: Trigger,
}

impl Slot {
    /// Whether `self` should run no later than `other`.
    fn earlier_than(&self, other: &Slot) -> bool {
        (self.trigger.class(), self.due) < (other.trigger.class(), other.due)
    }
}

#[derive(Default)]
struct State {
    /// The one slot of each waiting tenant.
    slots: HashMap<Id, Slot>,
    /// Ordered view of `slots`; stale entries are skipped on pop.
    heap: BinaryHeap<Reverse<(u8, Instant, u64, Id)>>,
    /// Tenants being reconciled, with the slot requested meanwhile (if any).
    running: HashMap<Id, Option<Slot>>,
    seq: u64,
}

impl State {
    fn insert(&mut self, id: Id, slot: Slot) {
        if let Some(parked) = self.running.get_mut(&id) {
            if parked.is_none_or(|p| slot.earlier_than(&p)) {
                *parked = Some(slot);
            }
            return;
        }
        if self
            .slots
            .get(&id)
            .is_some_and(|existing| !slot.earlier_than(existing))
        {
            return;
        }
        self.slots.insert(id, slot);
        self.seq += 1;
        self.heap
            .push(Reverse((slot.trigger.class(), slot.due, self.seq, id)));
    }

    /// Drops stale heap entries and returns the head slot, if any.
    fn head(&mut self) -> Option<(Id, Slot)> {
        while let Some(Reverse((class, due, _, id))) = self.heap.peek().copied() {
            match self.slots.get(&id) {
                Some(slot) if slot.due == due && slot.trigger.class() == class => {
                    return Some((id, *slot))
                }
                _ => {
                    self.heap.pop();
                }
            }
        }
        None
    }
}

/// A scheduler of tenant ids; see the module doc for its invariants.
#[derive(Default)]
pub struct WorkQueue {
    state: Mutex<State>,
    changed: Notify,
}

impl WorkQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Asks for `id` to be reconciled for `trigger`: at once for manual
    /// requests and changes, at `due` for retries and resyncs (or earlier,
    /// if it already has an earlier slot).
    pub fn schedule(&self, id: Id, trigger: Trigger, due: Instant) {
        let due = if trigger.is_urgent() {
            Instant::now()
        } else {
            due
        };
        self.state().insert(id, Slot { due, trigger });
        self.changed.notify_one();
    }

    /// Waits until a tenant is due and not running, marks it running and
    /// returns it with its trigger. Call [`WorkQueue::done`] when its pass ends.
    pub async fn next(&self) -> (Id, Trigger) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wake_at = {
                let mut state = self.state();
                match state.head() {
                    Some((id, slot)) if slot.trigger.is_urgent() || slot.due <= Instant::now() => {
                        state.heap.pop();
                        state.slots.remove(&id);
                        state.running.insert(id, None);
                        return (id, slot.trigger);
                    }
                    Some((_, slot)) => Some(slot.due),
                    None => None,
                }
            };
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = &mut notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Ends the pass of `id`; a slot requested while it ran becomes its next slot.
    pub fn done(&self, id: Id) {
        let mut state = self.state();
        if let Some(Some(parked)) = state.running.remove(&id) {
            state.insert(id, parked);
        }
        drop(state);
        self.changed.notify_one();
    }

    /// Tenants waiting for a pass (not counting running ones).
    pub fn len(&self) -> usize {
        self.state().slots.len()
    }

    /// Whether no tenant is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every waiting slot (used when leadership is lost).
    pub fn clear(&self) {
        let mut state = self.state();
        state.slots.clear();
        state.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ids(n: usize) -> Vec<Id> {
        (0..n).map(|_| Id::new()).collect()
    }

    async fn next_now(q: &WorkQueue) -> Option<(Id, Trigger)> {
        tokio::time::timeout(Duration::from_millis(1), q.next())
            .await
            .ok()
    }

    fn resync_at(q: &WorkQueue, id: Id, after: Duration) {
        q.schedule(id, Trigger::Resync, Instant::now() + after);
    }

    #[tokio::test(start_paused = true)]
    async fn duplicate_triggers_collapse_into_one_slot_with_the_earliest_due_time() {
        let q = WorkQueue::new();
        let [a] = ids(1)[..] else { unreachable!() };
        resync_at(&q, a, Duration::from_secs(60));
        q.schedule(a, Trigger::Retry, Instant::now() + Duration::from_secs(5));
        resync_at(&q, a, Duration::from_secs(30));
        assert_eq!(q.len(), 1);
        let started = Instant::now();
        assert_eq!(q.next().await, (a, Trigger::Retry));
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert!(q.is_empty());
        q.done(a);
        assert_eq!(
            next_now(&q).await,
            None,
            "the collapsed triggers must not reappear"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_handed_out_before_it_is_due() {
        let q = WorkQueue::new();
        let a = Id::new();
        resync_at(&q, a, Duration::from_secs(10));
        assert_eq!(next_now(&q).await, None);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(next_now(&q).await, None);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(next_now(&q).await, Some((a, Trigger::Resync)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_running_tenant_is_never_handed_out_twice_and_its_new_trigger_waits() {
        let q = WorkQueue::new();
        let a = Id::new();
        q.schedule(a, Trigger::Change, Instant::now());
        assert_eq!(q.next().await, (a, Trigger::Change));
        q.schedule(a, Trigger::Change, Instant::now());
        q.schedule(a, Trigger::Manual, Instant::now());
        assert_eq!(next_now(&q).await, None, "a is running");
        q.done(a);
        assert_eq!(
            next_now(&q).await,
            Some((a, Trigger::Manual)),
            "the parked trigger runs after the pass, as the strongest one"
        );
        q.done(a);
        assert_eq!(
            next_now(&q).await,
            None,
            "parked triggers collapse into one"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_manual_request_jumps_ahead_of_everything_already_due() {
        let q = WorkQueue::new();
        let routine = ids(5);
        let past = Instant::now();
        tokio::time::advance(Duration::from_secs(1)).await;
        for id in &routine {
            q.schedule(*id, Trigger::Resync, past);
        }
        let change = Id::new();
        q.schedule(change, Trigger::Change, Instant::now());
        let manual = Id::new();
        q.schedule(manual, Trigger::Manual, Instant::now());
        assert_eq!(q.next().await, (manual, Trigger::Manual));
        assert_eq!(q.next().await, (change, Trigger::Change));
        let mut rest = Vec::new();
        for _ in 0..5 {
            rest.push(q.next().await.0);
        }
        assert_eq!(rest, routine, "routine work keeps its order");
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_runs_before_thousands_of_due_resyncs_and_retries() {
        let q = WorkQueue::new();
        let long_due = Instant::now();
        tokio::time::advance(Duration::from_secs(60)).await;
        for (i, id) in ids(10_000).into_iter().enumerate() {
            let trigger = if i % 2 == 0 {
                Trigger::Resync
            } else {
                Trigger::Retry
            };
            q.schedule(id, trigger, long_due);
        }
        let created = Id::new();
        q.schedule(created, Trigger::Change, Instant::now());
        assert_eq!(q.next().await, (created, Trigger::Change));
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_promotes_a_waiting_resync_and_observes_directly() {
        let q = WorkQueue::new();
        let a = Id::new();
        resync_at(&q, a, Duration::from_secs(300));
        q.schedule(a, Trigger::Change, Instant::now());
        assert_eq!(q.len(), 1);
        assert_eq!(next_now(&q).await, Some((a, Trigger::Change)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_resync_never_downgrades_a_waiting_change() {
        let q = WorkQueue::new();
        let a = Id::new();
        q.schedule(a, Trigger::Change, Instant::now());
        q.schedule(a, Trigger::Resync, Instant::now());
        assert_eq!(next_now(&q).await, Some((a, Trigger::Change)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleeping_waiter_wakes_for_newly_scheduled_work() {
        let q = std::sync::Arc::new(WorkQueue::new());
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.next().await }
        });
        tokio::task::yield_now().await;
        let a = Id::new();
        q.schedule(a, Trigger::Change, Instant::now());
        assert_eq!(waiter.await.unwrap(), (a, Trigger::Change));
    }

    #[tokio::test(start_paused = true)]
    async fn clear_forgets_waiting_work_but_not_running_passes() {
        let q = WorkQueue::new();
        let [a, b] = ids(2)[..] else { unreachable!() };
        q.schedule(a, Trigger::Change, Instant::now());
        assert_eq!(q.next().await.0, a);
        q.schedule(b, Trigger::Change, Instant::now());
        q.clear();
        assert!(q.is_empty());
        q.schedule(a, Trigger::Change, Instant::now());
        q.done(a);
        assert_eq!(next_now(&q).await, Some((a, Trigger::Change)));
    }
}
