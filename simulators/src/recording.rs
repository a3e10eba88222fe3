//! A log of the requests a simulator received, for contract tests: they
//! check that every request a client sent exists in the upstream's API
//! description and that its body fits the schema.
//!
//! A [`Recorder`] is installed as the outermost middleware
//! ([`layer`]), so it also sees requests that faults or auth rejected.

use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Largest body the recorder buffers; larger requests are refused with 413.
const MAX_BODY: usize = 1024 * 1024;

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
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<RecordedRequest>>>);

impl Recorder {
    /// Every request recorded so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log().clone()
    }

    /// Forgets the requests recorded so far.
    pub fn clear(&self) {
        self.log().clear();
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Vec<RecordedRequest>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Axum middleware: `axum::middleware::from_fn_with_state(recorder, recording::layer)`.
pub async fn layer(
    State(recorder): State<Recorder>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    recorder.log().push(RecordedRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        body: serde_json::from_slice(&bytes).ok(),
    });
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
