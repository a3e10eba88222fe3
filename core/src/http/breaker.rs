//! A circuit breaker for one upstream: after [`THRESHOLD`] consecutive
//! failures (connection errors, timeouts, 5xx) it opens; while open no
//! request is sent; after [`OPEN_FOR`] exactly one probe at a time may go
//! (half-open); a probe's success closes it, its failure opens it again.
//! So an outage costs about one request per [`OPEN_FOR`] in total, however
//! many tenants want the upstream.
//!
//! The state machine is pure: callers pass the time in.

use std::time::Duration;

use tokio::time::Instant;

/// Consecutive failures that open the breaker.
pub const THRESHOLD: u32 = 5;

/// How long the breaker stays open before the next probe.
pub const OPEN_FOR: Duration = Duration::from_secs(1);

/// The breaker's state, as the `upstream_circuit_state` gauge reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    /// Gauge value: 0 closed, 1 open, 2 half-open.
    pub fn gauge(self) -> f64 {
        match self {
            CircuitState::Closed => 0.0,
            CircuitState::Open => 1.0,
            CircuitState::HalfOpen => 2.0,
        }
    }
}

/// What the breaker says to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Send it (closed).
    Send,
    /// Send it as the one probe (half-open); report its result.
    Probe,
    /// Do not send; the next probe may go in this long.
    Reject(Duration),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A probe is in flight.
    Probing,
}

/// See the module doc.
#[derive(Debug)]
pub struct Breaker {
    state: State,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            state: State::Closed { failures: 0 },
        }
    }
}

impl Breaker {
    /// Whether a request may go now.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            State::Closed { .. } => Admission::Send,
            State::Open { until } if now < until => Admission::Reject(until - now),
            State::Open { .. } => {
                self.state = State::Probing;
                Admission::Probe
            }
            State::Probing => Admission::Reject(OPEN_FOR),
        }
    }

    /// Records the result of a request that was sent.
    pub fn record(&mut self, succeeded: bool, now: Instant) {
        self.state = match (self.state, succeeded) {
            (_, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures + 1 < THRESHOLD => State::Closed {
                failures: failures + 1,
            },
            // Another request's late failure while open changes nothing.
            (State::Open { until }, false) => State::Open { until },
            (_, false) => State::Open {
                until: now + OPEN_FOR,
            },
        };
    }

    /// A probe that ended without an answer (its caller gave up): the
    /// breaker stays open for another interval.
    pub fn abandon_probe(&mut self, now: Instant) {
        if self.state == State::Probing {
            self.state = State::Open {
                until: now + OPEN_FOR,
            };
        }
    }

    /// The current state.
    pub fn state(&self) -> CircuitState {
        match self.state {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { .. } => CircuitState::Open,
            State::Probing => CircuitState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_consecutive_failures_only() {
        let now = Instant::now();
        let mut breaker = Breaker::default();
        for _ in 0..THRESHOLD - 1 {
            breaker.record(false, now);
        }
        breaker.record(true, now);
        for _ in 0..THRESHOLD - 1 {
            breaker.record(false, now);
            assert_eq!(breaker.admit(now), Admission::Send);
        }
        breaker.record(false, now);
        assert_eq!(breaker.state(), CircuitState::Open);
        assert_eq!(breaker.admit(now), Admission::Reject(OPEN_FOR));
    }

    #[test]
    fn an_open_breaker_lets_exactly_one_probe_through_at_a_time() {
        let now = Instant::now();
        let mut breaker = Breaker::default();
        for _ in 0..THRESHOLD {
            breaker.record(false, now);
        }
        let later = now + OPEN_FOR;
        assert_eq!(breaker.admit(later), Admission::Probe);
        for _ in 0..100 {
            assert!(matches!(breaker.admit(later), Admission::Reject(_)));
        }
        assert_eq!(breaker.state(), CircuitState::HalfOpen);
        breaker.record(false, later);
        assert_eq!(
            breaker.state(),
            CircuitState::Open,
            "a failed probe reopens"
        );
        let again = later + OPEN_FOR;
        assert_eq!(breaker.admit(again), Admission::Probe);
        breaker.record(true, again);
        assert_eq!(breaker.state(), CircuitState::Closed, "a good probe closes");
        assert_eq!(breaker.admit(again), Admission::Send);
    }

    #[test]
    fn an_abandoned_probe_reopens_instead_of_blocking_forever() {
        let now = Instant::now();
        let mut breaker = Breaker::default();
        for _ in 0..THRESHOLD {
            breaker.record(false, now);
        }
        assert_eq!(breaker.admit(now + OPEN_FOR), Admission::Probe);
        breaker.abandon_probe(now + OPEN_FOR);
        assert_eq!(breaker.state(), CircuitState::Open);
        assert_eq!(breaker.admit(now + OPEN_FOR * 2), Admission::Probe);
    }
}
