//! The work queue: when each tenant is reconciled next.
//!
//! Invariants (each has a test named after it):
//! - a tenant holds at most one slot: scheduling it again keeps the
//!   earliest due time (duplicate triggers collapse);
//! - a tenant is never handed out twice at once: while a pass runs, new
//!   triggers for it are parked and become its next slot when the pass ends;
//! - a manual reconcile request jumps ahead of everything already due;
//! - nothing is handed out before it is due.
//!
//! Concurrency limits are the runner's job; this type only orders work.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;

use dezky_core::Id;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How urgent a slot is. Manual requests sort before every routine slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// A user asked for it (`POST /tenants/{slug}/reconcile`).
    Manual,
    /// Change events, resyncs, retries.
    Routine,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    due: Instant,
    priority: Priority,
}

impl Slot {
    /// Whether `self` should run no later than `other`.
    fn earlier_than(&self, other: &Slot) -> bool {
        (self.priority, self.due) < (other.priority, other.due)
    }
}

#[derive(Default)]
struct State {
    /// The one slot of each waiting tenant.
    slots: HashMap<Id, Slot>,
    /// Ordered view of `slots`; stale entries are skipped on pop.
    heap: BinaryHeap<Reverse<(Priority, Instant, u64, Id)>>,
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
            .push(Reverse((slot.priority, slot.due, self.seq, id)));
    }

    /// Drops stale heap entries and returns the head slot, if any.
    fn head(&mut self) -> Option<(Id, Slot)> {
        while let Some(Reverse((priority, due, _, id))) = self.heap.peek().copied() {
            let slot = Slot { due, priority };
            if self.slots.get(&id) == Some(&slot) {
                return Some((id, slot));
            }
            self.heap.pop();
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

    /// Asks for `id` to be reconciled at `due` (or earlier, if it already has
    /// an earlier slot).
    pub fn schedule(&self, id: Id, due: Instant) {
        self.state().insert(
            id,
            Slot {
                due,
                priority: Priority::Routine,
            },
        );
        self.changed.notify_one();
    }

    /// Asks for `id` to be reconciled now, ahead of everything already due.
    pub fn schedule_manual(&self, id: Id) {
        let slot = Slot {
            due: Instant::now(),
            priority: Priority::Manual,
        };
        self.state().insert(id, slot);
        self.changed.notify_one();
    }

    /// Waits until a tenant is due and not running, marks it running and
    /// returns it. Call [`WorkQueue::done`] when its pass ends.
    pub async fn next(&self) -> Id {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wake_at = {
                let mut state = self.state();
                match state.head() {
                    Some((id, slot))
                        if slot.priority == Priority::Manual || slot.due <= Instant::now() =>
                    {
                        state.heap.pop();
                        state.slots.remove(&id);
                        state.running.insert(id, None);
                        return id;
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

    async fn next_now(q: &WorkQueue) -> Option<Id> {
        tokio::time::timeout(Duration::from_millis(1), q.next())
            .await
            .ok()
    }

    #[tokio::test(start_paused = true)]
    async fn duplicate_triggers_collapse_into_one_slot_with_the_earliest_due_time() {
        let q = WorkQueue::new();
        let [a] = ids(1)[..] else { unreachable!() };
        let now = Instant::now();
        q.schedule(a, now + Duration::from_secs(60));
        q.schedule(a, now + Duration::from_secs(5));
        q.schedule(a, now + Duration::from_secs(30));
        assert_eq!(q.len(), 1);
        let started = Instant::now();
        assert_eq!(q.next().await, a);
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
        q.schedule(a, Instant::now() + Duration::from_secs(10));
        assert_eq!(next_now(&q).await, None);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(next_now(&q).await, None);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(next_now(&q).await, Some(a));
    }

    #[tokio::test(start_paused = true)]
    async fn a_running_tenant_is_never_handed_out_twice_and_its_new_trigger_waits() {
        let q = WorkQueue::new();
        let a = Id::new();
        q.schedule(a, Instant::now());
        assert_eq!(q.next().await, a);
        q.schedule(a, Instant::now());
        q.schedule_manual(a);
        assert_eq!(next_now(&q).await, None, "a is running");
        q.done(a);
        assert_eq!(
            next_now(&q).await,
            Some(a),
            "the parked trigger runs after the pass"
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
            q.schedule(*id, past);
        }
        let manual = Id::new();
        q.schedule_manual(manual);
        assert_eq!(q.next().await, manual);
        let mut rest = Vec::new();
        for _ in 0..5 {
            rest.push(q.next().await);
        }
        assert_eq!(rest, routine, "routine work keeps its order");
    }

    #[tokio::test(start_paused = true)]
    async fn a_manual_request_promotes_a_waiting_routine_slot() {
        let q = WorkQueue::new();
        let a = Id::new();
        q.schedule(a, Instant::now() + Duration::from_secs(300));
        q.schedule_manual(a);
        assert_eq!(q.len(), 1);
        assert_eq!(next_now(&q).await, Some(a));
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
        q.schedule(a, Instant::now());
        assert_eq!(waiter.await.unwrap(), a);
    }

    #[tokio::test(start_paused = true)]
    async fn clear_forgets_waiting_work_but_not_running_passes() {
        let q = WorkQueue::new();
        let [a, b] = ids(2)[..] else { unreachable!() };
        q.schedule(a, Instant::now());
        assert_eq!(q.next().await, a);
        q.schedule(b, Instant::now());
        q.clear();
        assert!(q.is_empty());
        q.schedule(a, Instant::now());
        q.done(a);
        assert_eq!(next_now(&q).await, Some(a));
    }
}
