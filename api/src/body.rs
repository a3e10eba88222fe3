//! What happens to a request body the handler did not read.
//!
//! Many answers come before the body is read: 401 (no token), 413 (declared
//! too large), 415 (not JSON), 404/405, a 400 about the query. HTTP/1.1
//! then leaves the unread rest of the body in the connection, and the server
//! closes it after answering; a keep-alive client that is not told so sends
//! its next request into the closed connection. [`finish_unread_body`]
//! keeps every such connection usable or says it is not:
//!
//! - a remainder of at most [`DRAIN_LIMIT`] bytes (declared, or counted
//!   while reading) is read and discarded before the answer goes out, so the
//!   connection stays open for the next request;
//! - anything larger, a remainder that does not arrive within
//!   [`DRAIN_TIME`], or a client waiting for `100 Continue` gets the answer
//!   with `Connection: close`.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as _, Frame, SizeHint};

/// Largest unread remainder that is drained rather than answered with
/// `Connection: close`.
pub const DRAIN_LIMIT: u64 = 256 * 1024;

/// How long draining may hold the answer back.
pub const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Middleware: drains a small unread request body, or marks the answer
/// `Connection: close` (see the module documentation).
pub async fn finish_unread_body(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let awaits_continue = request
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let returned = Arc::new(Mutex::new(None));
    let request = request.map(|body| {
        Body::new(Tracked {
            inner: Some(body),
            returned: returned.clone(),
        })
    });
    let mut response = next.run(request).await;
    let unread = returned.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(body) = unread {
        let small = declared.is_none_or(|len| len <= DRAIN_LIMIT);
        let drained = small && !awaits_continue && drain(body).await;
        if !drained {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    response
}

/// Reads `body` to its end within [`DRAIN_LIMIT`] bytes and [`DRAIN_TIME`];
/// whether it got there.
async fn drain(body: Body) -> bool {
    let read = async {
        let mut stream = body.into_data_stream();
        let mut seen = 0u64;
        while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
            let Ok(chunk) = chunk else { return false };
            seen += chunk.len() as u64;
            if seen > DRAIN_LIMIT {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_TIME, read)
        .await
        .unwrap_or(false)
}

/// The request body as the handler sees it. Dropped before its end, it
/// hands the rest back to the middleware through `returned`.
struct Tracked {
    /// `None` once the end was read.
    inner: Option<Body>,
    returned: Arc<Mutex<Option<Body>>>,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            this.inner = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(rest) = self.inner.take().filter(|b| !b.is_end_stream()) {
            *self.returned.lock().unwrap_or_else(|p| p.into_inner()) = Some(rest);
        }
    }
}
