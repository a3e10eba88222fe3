//! A bounded log of the requests a simulator received: for contract tests,
//! which check that every request a client sent exists in the upstream's
//! API description and that its body fits the schema, and for benchmarks,
//! which count requests per route over runs of any length.
//!
//! Memory does not grow with traffic: a [`Recorder`] keeps the last
//! `capacity` requests whole ([`Recorder::requests`]) and only counters for
//! everything else ([`Recorder::total`], [`Recorder::count`]). Counters are
//! keyed by method and route template (`/api/v3/core/groups/{group_uuid}/`,
//! not the concrete path), so their number is bounded by the routes a
//! simulator serves.
//!
//! A [`Recorder`] is installed as the outermost middleware ([`layer`]), so
//! it also sees requests that faults or auth rejected.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{to_bytes, Body};
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Largest body the recorder buffers; larger requests are refused with 413.
const MAX_BODY: usize = 1024 * 1024;

/// Requests kept whole unless [`Recorder::set_capacity`] says otherwise.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// The route counted for requests that matched no route (404 fallbacks):
/// one key for all of them, so unknown paths cannot grow the counters.
pub const UNMATCHED_ROUTE: &str = "(unmatched)";

/// One request as received.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// The body parsed as JSON (`None` when empty or not JSON).
    pub body: Option<serde_json::Value>,
}

/// Shared, cheaply clonable request log.
#[derive(Clone)]
pub struct Recorder(Arc<Mutex<Log>>);

struct Log {
    /// The most recent requests, oldest first, at most `capacity` of them.
    recent: VecDeque<RecordedRequest>,
    capacity: usize,
    /// Every request since the last clear, including those no longer in `recent`.
    total: u64,
    /// `total` split by `(method, route template)`.
    by_route: BTreeMap<(String, String), u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::with_capacity(DEFAULT_CAPACITY)
    }
}

impl Recorder {
    /// A recorder keeping the last `capacity` requests whole.
    pub fn with_capacity(capacity: usize) -> Self {
        Recorder(Arc::new(Mutex::new(Log {
            recent: VecDeque::new(),
            capacity,
            total: 0,
            by_route: BTreeMap::new(),
        })))
    }

    /// The last [`Recorder::capacity`] requests recorded, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log().recent.iter().cloned().collect()
    }

    /// Forgets the requests recorded so far and resets every counter.
    pub fn clear(&self) {
        let mut log = self.log();
        log.recent.clear();
        log.total = 0;
        log.by_route.clear();
    }

    /// How many requests [`Recorder::requests`] keeps.
    pub fn capacity(&self) -> usize {
        self.log().capacity
    }

    /// Keeps the last `capacity` requests from now on (dropping the oldest
    /// ones beyond it right away); counters are not affected.
    pub fn set_capacity(&self, capacity: usize) {
        let mut log = self.log();
        log.capacity = capacity;
        let excess = log.recent.len().saturating_sub(capacity);
        log.recent.drain(..excess);
    }

    /// Requests recorded since the start or the last [`Recorder::clear`],
    /// kept or not.
    pub fn total(&self) -> u64 {
        self.log().total
    }

    /// Requests with this method (`"GET"`) to this route template
    /// (`"/api/v3/core/groups/{group_uuid}/"`, or [`UNMATCHED_ROUTE`]).
    pub fn count(&self, method: &str, route: &str) -> u64 {
        self.log()
            .by_route
            .get(&(method.to_owned(), route.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Every counter: `(method, route template) -> requests`.
    pub fn counts(&self) -> BTreeMap<(String, String), u64> {
        self.log().by_route.clone()
    }

    fn record(&self, route: &str, request: RecordedRequest) {
        let mut log = self.log();
        log.total += 1;
        *log.by_route
            .entry((request.method.clone(), route.to_owned()))
            .or_default() += 1;
        if log.capacity == 0 {
            return;
        }
        if log.recent.len() == log.capacity {
            log.recent.pop_front();
        }
        log.recent.push_back(request);
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Axum middleware: `axum::middleware::from_fn_with_state(recorder, recording::layer)`,
/// added with `Router::layer` so that the matched route is known.
pub async fn layer(
    State(recorder): State<Recorder>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    recorder.record(
        route,
        RecordedRequest {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            body: serde_json::from_slice(&bytes).ok(),
        },
    );
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> RecordedRequest {
        RecordedRequest {
            method: "GET".into(),
            path: path.into(),
            query: None,
            body: None,
        }
    }

    #[test]
    fn keeps_only_the_last_requests_but_counts_them_all() {
        let recorder = Recorder::with_capacity(3);
        for i in 0..10 {
            recorder.record("/items/{id}", get(&format!("/items/{i}")));
        }
        recorder.record(UNMATCHED_ROUTE, get("/nope"));
        let kept: Vec<String> = recorder.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(kept, ["/items/8", "/items/9", "/nope"]);
        assert_eq!(recorder.total(), 11);
        assert_eq!(recorder.count("GET", "/items/{id}"), 10);
        assert_eq!(recorder.count("GET", UNMATCHED_ROUTE), 1);
        assert_eq!(recorder.count("POST", "/items/{id}"), 0);
        assert_eq!(recorder.counts().len(), 2);
    }

    #[test]
    fn shrinking_the_capacity_drops_the_oldest_and_clear_resets_everything() {
        let recorder = Recorder::default();
        assert_eq!(recorder.capacity(), DEFAULT_CAPACITY);
        for i in 0..5 {
            recorder.record("/r", get(&format!("/{i}")));
        }
        recorder.set_capacity(2);
        let kept: Vec<String> = recorder.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(kept, ["/3", "/4"]);
        assert_eq!(recorder.total(), 5, "counters survive a smaller buffer");
        recorder.set_capacity(0);
        recorder.record("/r", get("/5"));
        assert!(recorder.requests().is_empty());
        assert_eq!(recorder.total(), 6);
        recorder.clear();
        assert_eq!((recorder.total(), recorder.counts().len()), (0, 0));
    }
}
