//! Fault injection and request accounting shared by every simulator.
//!
//! A [`Faults`] handle is cloned into a simulator's router as a middleware
//! layer; tests flip it to make the next requests fail (optionally with a
//! `Retry-After`, as a throttling server answers), slow every request down,
//! or take the whole server out, and read how many requests arrived.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Shared, cheaply clonable fault switchboard of one simulator.
#[derive(Clone, Default)]
pub struct Faults(Arc<Inner>);

#[derive(Default)]
struct Inner {
    /// Every request that reached the simulator (including failed ones).
    requests: AtomicU64,
    /// Requests that were not GET/HEAD: what a "no write per resync" check counts.
    writes: AtomicU64,
    plan: Mutex<Plan>,
}

/// How an injected failure is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Refusal {
    status: StatusCode,
    retry_after: Option<u64>,
}

impl From<StatusCode> for Refusal {
    fn from(status: StatusCode) -> Self {
        Refusal {
            status,
            retry_after: None,
        }
    }
}

#[derive(Default)]
struct Plan {
    /// Answer the next `n` requests with this status (and a plain error
    /// body), with `Retry-After: <seconds>` if set.
    fail_next: Option<(u32, Refusal)>,
    /// Answer every request with 503 until cleared.
    outage: bool,
    /// Delay added before each request is handled.
    latency: Duration,
}

impl Faults {
    /// A switchboard with no faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fail the next `count` requests with `status`.
    pub fn fail_next(&self, count: u32, status: StatusCode) {
        self.plan().fail_next = Some((count, status.into()));
    }

    /// Answer the next `count` requests with `status` (429, 503) and
    /// `Retry-After: <retry_after in whole seconds>`.
    pub fn throttle_next(&self, count: u32, status: StatusCode, retry_after: Duration) {
        let refusal = Refusal {
            status,
            retry_after: Some(retry_after.as_secs()),
        };
        self.plan().fail_next = Some((count, refusal));
    }

    /// Start (`true`) or end (`false`) a full outage: every request gets 503.
    pub fn set_outage(&self, down: bool) {
        self.plan().outage = down;
    }

    /// Delay every request by `latency` (zero to stop).
    pub fn set_latency(&self, latency: Duration) {
        self.plan().latency = latency;
    }

    /// Remove every injected fault.
    pub fn clear(&self) {
        *self.plan() = Plan::default();
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.0.requests.load(Ordering::SeqCst)
    }

    /// Non-GET requests received so far.
    pub fn writes(&self) -> u64 {
        self.0.writes.load(Ordering::SeqCst)
    }

    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.0
            .plan
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Decides what to do with one request: `Err(status)` to fail it.
    fn admit(&self, is_write: bool) -> (Duration, Result<(), Refusal>) {
        self.0.requests.fetch_add(1, Ordering::SeqCst);
        if is_write {
            self.0.writes.fetch_add(1, Ordering::SeqCst);
        }
        let mut plan = self.plan();
        let latency = plan.latency;
        if plan.outage {
            return (latency, Err(StatusCode::SERVICE_UNAVAILABLE.into()));
        }
        if let Some((remaining, refusal)) = plan.fail_next {
            plan.fail_next = (remaining > 1).then_some((remaining - 1, refusal));
            return (latency, Err(refusal));
        }
        (latency, Ok(()))
    }
}

/// Axum middleware: `axum::middleware::from_fn_with_state(faults, faults::layer)`.
pub async fn layer(State(faults): State<Faults>, request: Request<Body>, next: Next) -> Response {
    let is_write = !matches!(request.method().as_str(), "GET" | "HEAD");
    let (latency, admitted) = faults.admit(is_write);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match admitted {
        Ok(()) => next.run(request).await,
        Err(Refusal {
            status,
            retry_after: None,
        }) => (status, "injected fault").into_response(),
        Err(Refusal {
            status,
            retry_after: Some(seconds),
        }) => (
            status,
            [(axum::http::header::RETRY_AFTER, seconds.to_string())],
            "injected fault",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_next_fails_exactly_that_many_requests() {
        let faults = Faults::new();
        faults.fail_next(2, StatusCode::BAD_GATEWAY);
        assert_eq!(faults.admit(false).1, Err(StatusCode::BAD_GATEWAY.into()));
        assert_eq!(faults.admit(true).1, Err(StatusCode::BAD_GATEWAY.into()));
        assert_eq!(faults.admit(false).1, Ok(()));
        assert_eq!((faults.requests(), faults.writes()), (3, 1));
    }

    #[test]
    fn outage_lasts_until_cleared() {
        let faults = Faults::new();
        faults.set_outage(true);
        assert_eq!(
            faults.admit(false).1,
            Err(StatusCode::SERVICE_UNAVAILABLE.into())
        );
        assert_eq!(
            faults.admit(false).1,
            Err(StatusCode::SERVICE_UNAVAILABLE.into())
        );
        faults.clear();
        assert_eq!(faults.admit(false).1, Ok(()));
    }
}
