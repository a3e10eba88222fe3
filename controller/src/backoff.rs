//! Per-tenant error backoff: `base`, doubling per consecutive failure up to
//! `max`, forgotten on the first success.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use dezky_core::Id;

/// Consecutive-failure counters of every tenant.
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<Id, u32>>,
}

impl Backoff {
    /// A backoff starting at `base` and capped at `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max: max.max(base),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure of `id` and returns how long to wait before retrying.
    pub fn fail(&self, id: Id) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let count = failures.entry(id).or_insert(0);
        let delay = self.delay(*count);
        *count = count.saturating_add(1);
        delay
    }

    /// Forgets the failures of `id` (after a success or once it is gone).
    pub fn reset(&self, id: Id) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// The delay after `previous` earlier consecutive failures.
    fn delay(&self, previous: u32) -> Duration {
        let factor = 2u32.saturating_pow(previous.min(31));
        self.base.saturating_mul(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_base_up_to_max() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let id = Id::new();
        let delays: Vec<u64> = (0..6).map(|_| b.fail(id).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn backoff_resets_on_success_and_is_per_tenant() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let (a, other) = (Id::new(), Id::new());
        b.fail(a);
        b.fail(a);
        assert_eq!(b.fail(other), Duration::from_millis(100));
        b.reset(a);
        assert_eq!(b.fail(a), Duration::from_millis(100));
    }

    #[test]
    fn backoff_never_overflows() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        let id = Id::new();
        for _ in 0..100 {
            assert!(b.fail(id) <= Duration::from_secs(300));
        }
    }
}
