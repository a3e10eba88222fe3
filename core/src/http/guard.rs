//! The gate every request to one upstream passes, shared by all tenants
//! and workers (one [`UpstreamGuard`] per upstream system):
//!
//! - a token bucket (`governor`) caps the request rate (`*_QPS`, `*_BURST`);
//!   a request waits for its token;
//! - at most [`MAX_IN_FLIGHT`] requests are in flight at once (a request
//!   waits for a slot), so a burst of parallel passes never opens hundreds
//!   of connections, each with its buffers, even with the rate unlimited;
//! - `429`, or `503` with `Retry-After`, pauses the upstream for everyone for
//!   that long (at most [`MAX_PAUSE`]); while paused a request fails at once,
//!   without being sent;
//! - a [circuit breaker](super::breaker) fails requests at once while the
//!   upstream is down, letting one probe through per interval.
//!
//! Invariant: a request that is refused (paused, circuit open) never
//! reaches the network.

use std::num::NonZeroU32;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::RETRY_AFTER;
use reqwest::StatusCode;
use tokio::time::Instant;

use super::breaker::{Admission, Breaker, THRESHOLD};

/// Longest pause a `Retry-After` can impose.
pub const MAX_PAUSE: Duration = Duration::from_secs(300);

/// Requests in flight to one upstream at most (sent, answer not yet in).
pub const MAX_IN_FLIGHT: usize = 64;

/// Pause after a `429` that names no `Retry-After`.
pub const DEFAULT_PAUSE: Duration = Duration::from_secs(1);

/// A request rate: `qps` tokens a second, up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub qps: NonZeroU32,
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// `qps` a second with bursts of `burst`; `None` when `qps` is 0 (unlimited).
    pub fn new(qps: u32, burst: u32) -> Option<Self> {
        let qps = NonZeroU32::new(qps)?;
        Some(RateLimit {
            qps,
            burst: NonZeroU32::new(burst).unwrap_or(qps),
        })
    }
}

/// Why a request was not answered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Sent, but the transport failed (connect, timeout, ...).
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
    /// Not sent: the upstream asked everyone to wait.
    #[error("{system} is paused for another {} after HTTP {status} (Retry-After)", secs(*.retry_in))]
    Paused {
        system: &'static str,
        status: u16,
        retry_in: Duration,
    },
    /// Not sent: the upstream failed repeatedly.
    #[error("{system} circuit open after {THRESHOLD} consecutive failures; next probe in {}", secs(*.retry_in))]
    CircuitOpen {
        system: &'static str,
        retry_in: Duration,
    },
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

struct State {
    /// Until when, and after which status, the upstream asked us to wait.
    paused: Option<(Instant, u16)>,
    breaker: Breaker,
}

/// See the module doc.
pub struct UpstreamGuard {
    /// Metrics label and name in messages.
    system: &'static str,
    limiter: Option<DefaultDirectRateLimiter>,
    /// One permit per request in flight.
    in_flight: tokio::sync::Semaphore,
    state: Mutex<State>,
}

impl std::fmt::Debug for UpstreamGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamGuard")
            .field("system", &self.system)
            .field("limited", &self.limiter.is_some())
            .finish()
    }
}

impl UpstreamGuard {
    /// A guard of `system` limited to `limit` (`None`: no rate limit, but
    /// pauses and the breaker still apply).
    pub fn new(system: &'static str, limit: Option<RateLimit>) -> Self {
        let limiter =
            limit.map(|l| RateLimiter::direct(Quota::per_second(l.qps).allow_burst(l.burst)));
        metrics::gauge!("upstream_circuit_state", "system" => system).set(0.0);
        // Exported at 0 from the start, not at the first pause or refusal:
        // `rate()`/`increase()` cannot see a counter's first increment, and
        // the alerts and panels on them should see the system before any.
        metrics::counter!("upstream_pauses_total", "system" => system).increment(0);
        for reason in ["paused", "circuit_open"] {
            metrics::counter!("upstream_rejected_total", "system" => system, "reason" => reason)
                .increment(0);
        }
        UpstreamGuard {
            system,
            limiter,
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
            state: Mutex::new(State {
                paused: None,
                breaker: Breaker::default(),
            }),
        }
    }

    /// This guard with at most `requests` in flight instead of [`MAX_IN_FLIGHT`].
    pub fn with_max_in_flight(mut self, requests: usize) -> Self {
        self.in_flight = tokio::sync::Semaphore::new(requests.max(1));
        self
    }

    /// A guard without a rate limit.
    pub fn unlimited(system: &'static str) -> Self {
        Self::new(system, None)
    }

    /// The system this guard stands for.
    pub fn system(&self) -> &'static str {
        self.system
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends `request` through the guard (see the module doc).
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SendError> {
        // Refused at once while paused or open; else asked again once this
        // request may go, since the upstream may have failed meanwhile.
        let first = self.admit()?;
        let mut probe = Probe {
            guard: self,
            armed: first == Admission::Probe,
        };
        if let Some(limiter) = &self.limiter {
            let started = std::time::Instant::now();
            limiter.until_ready().await;
            metrics::histogram!("upstream_throttle_wait_seconds", "system" => self.system)
                .record(started.elapsed().as_secs_f64());
        }
        // After the token: a request waiting for its token is not in flight.
        // The semaphore is never closed, so acquiring only waits.
        let _slot = self.in_flight.acquire().await.ok();
        if probe.armed {
            self.check_pause(Instant::now())?;
        } else {
            probe.armed = self.admit()? == Admission::Probe;
        }
        let result = super::send(self.system, request).await;
        probe.armed = false;
        self.settle(&result);
        result.map_err(SendError::Transport)
    }

    /// Refuses the request while paused or open; else says how it may go.
    fn admit(&self) -> Result<Admission, SendError> {
        let now = Instant::now();
        self.check_pause(now)?;
        let mut state = self.state();
        let admission = state.breaker.admit(now);
        metrics::gauge!("upstream_circuit_state", "system" => self.system)
            .set(state.breaker.state().gauge());
        match admission {
            Admission::Reject(retry_in) => {
                metrics::counter!("upstream_rejected_total", "system" => self.system, "reason" => "circuit_open").increment(1);
                Err(SendError::CircuitOpen {
                    system: self.system,
                    retry_in,
                })
            }
            go => Ok(go),
        }
    }

    fn check_pause(&self, now: Instant) -> Result<(), SendError> {
        let mut state = self.state();
        match state.paused {
            Some((until, status)) if now < until => {
                metrics::counter!("upstream_rejected_total", "system" => self.system, "reason" => "paused").increment(1);
                Err(SendError::Paused {
                    system: self.system,
                    status,
                    retry_in: until - now,
                })
            }
            Some(_) => {
                state.paused = None;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Feeds an answer (or its absence) to the pause and the breaker.
    fn settle(&self, result: &Result<reqwest::Response, reqwest::Error>) {
        let now = Instant::now();
        let mut state = self.state();
        let succeeded = match result {
            Ok(response) => {
                let status = response.status();
                if let Some(pause) = pause_of(status, response.headers()) {
                    tracing::warn!(
                        system = self.system,
                        status = status.as_u16(),
                        seconds = pause.as_secs_f64(),
                        "upstream asked to slow down; pausing it for every tenant"
                    );
                    metrics::counter!("upstream_pauses_total", "system" => self.system)
                        .increment(1);
                    let until = now + pause;
                    if state.paused.is_none_or(|(current, _)| current < until) {
                        state.paused = Some((until, status.as_u16()));
                    }
                }
                !status.is_server_error()
            }
            Err(_) => false,
        };
        let before = state.breaker.state();
        state.breaker.record(succeeded, now);
        let after = state.breaker.state();
        if before != after {
            tracing::info!(system = self.system, from = ?before, to = ?after, "upstream circuit changed");
        }
        metrics::gauge!("upstream_circuit_state", "system" => self.system).set(after.gauge());
    }
}

/// Re-opens the breaker when a probe's caller gave up before the answer.
struct Probe<'a> {
    guard: &'a UpstreamGuard,
    armed: bool,
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.guard.state().breaker.abandon_probe(Instant::now());
        }
    }
}

/// How long an answer asks us to wait: `429` (with `Retry-After`, else
/// [`DEFAULT_PAUSE`]) or `503` with `Retry-After`; capped at [`MAX_PAUSE`].
pub fn pause_of(status: StatusCode, headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let asked = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let pause = match status {
        StatusCode::TOO_MANY_REQUESTS => asked.or(Some(DEFAULT_PAUSE)),
        StatusCode::SERVICE_UNAVAILABLE => asked,
        _ => None,
    }?;
    Some(pause.min(MAX_PAUSE))
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue};

    use super::*;

    fn retry_after(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date_and_capped() {
        let s = |v| pause_of(StatusCode::TOO_MANY_REQUESTS, &retry_after(v));
        assert_eq!(s("12"), Some(Duration::from_secs(12)));
        assert_eq!(s("86400"), Some(MAX_PAUSE));
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let parsed = s(&soon).expect("a date");
        assert!(parsed > Duration::from_secs(28) && parsed <= Duration::from_secs(30));
        assert_eq!(s("garbage"), Some(DEFAULT_PAUSE), "a 429 always pauses");
        assert_eq!(
            pause_of(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new()),
            None,
            "a 503 without Retry-After is a failure, not a pause"
        );
        assert_eq!(
            pause_of(StatusCode::SERVICE_UNAVAILABLE, &retry_after("3")),
            Some(Duration::from_secs(3))
        );
        assert_eq!(pause_of(StatusCode::OK, &retry_after("3")), None);
    }

    #[test]
    fn a_new_guard_exports_its_pause_and_refusal_counters_at_zero() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let exported = recorder.handle();
        metrics::with_local_recorder(&recorder, || UpstreamGuard::unlimited("authentik"));
        let text = exported.render();
        for series in [
            r#"upstream_pauses_total{system="authentik"} 0"#,
            r#"upstream_rejected_total{system="authentik",reason="paused"} 0"#,
            r#"upstream_rejected_total{system="authentik",reason="circuit_open"} 0"#,
            r#"upstream_circuit_state{system="authentik"} 0"#,
        ] {
            assert!(text.contains(series), "{series} missing from:\n{text}");
        }
    }

    #[test]
    fn a_zero_rate_means_unlimited() {
        assert_eq!(RateLimit::new(0, 10), None);
        let limit = RateLimit::new(20, 0).expect("limited");
        assert_eq!(
            limit.burst.get(),
            20,
            "burst defaults to one second's worth"
        );
    }
}
