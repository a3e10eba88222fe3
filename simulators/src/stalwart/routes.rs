//! HTTP surface of the simulated Stalwart: `POST /jmap` (and `/jmap/`),
//! `GET /jmap/session`, the `/.well-known/jmap` redirect, authentication
//! (API key as Bearer, or Basic) and the `application/problem+json` errors
//! the real server sends for 401, 403 and malformed requests.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};

use super::directory::Directory;
use super::jmap::{self, CallCounts, MAX_CALLS, MAX_OBJECTS};

/// State shared by the routes and the handle.
pub struct Shared {
    pub directory: Mutex<Directory>,
    /// Accepted API key (`Authorization: Bearer`).
    pub api_key: Option<String>,
    /// Accepted Basic login and password.
    pub basic: Option<(String, String)>,
    /// When set, authenticated requests lack every permission (HTTP 403).
    pub revoked: Mutex<bool>,
    /// Methods the credential may not call (method error `forbidden`).
    pub denied: Mutex<HashSet<String>>,
    /// JMAP method calls received, by method: what benchmarks count
    /// (the request log keeps only the latest requests).
    pub calls: Mutex<CallCounts>,
}

impl Shared {
    pub fn directory(&self) -> MutexGuard<'_, Directory> {
        self.directory
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn revoked(&self) -> MutexGuard<'_, bool> {
        self.revoked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn denied(&self) -> MutexGuard<'_, HashSet<String>> {
        self.denied
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn calls(&self) -> MutexGuard<'_, CallCounts> {
        self.calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn authenticated(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        if let Some(token) = value.strip_prefix("Bearer ") {
            return self.api_key.as_deref() == Some(token.trim());
        }
        let Some(encoded) = value.strip_prefix("Basic ") else {
            return false;
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        match (
            decoded.as_deref().and_then(|d| d.split_once(':')),
            &self.basic,
        ) {
            (Some((user, password)), Some((u, p))) => user == u && password == p,
            _ => false,
        }
    }

    /// The 401 or 403 answer if the caller may not use the API at all.
    fn rejection(&self, headers: &HeaderMap) -> Option<Response> {
        if !self.authenticated(headers) {
            let mut response = problem(
                StatusCode::UNAUTHORIZED,
                "about:blank",
                "Unauthorized",
                "You have to authenticate first.",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"Stalwart Server\""),
            );
            return Some(response);
        }
        if *self.revoked() {
            return Some(problem(
                StatusCode::FORBIDDEN,
                "about:blank",
                "Forbidden",
                "You do not have enough permissions to perform this action.",
            ));
        }
        None
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/jmap", post(api))
        .route("/jmap/", post(api))
        .route("/jmap/session", get(session))
        .route("/.well-known/jmap", get(well_known))
        .with_state(shared)
}

/// An `application/problem+json` response.
fn problem(status: StatusCode, kind: &str, title: &str, detail: &str) -> Response {
    let body = json!({"type": kind, "status": status.as_u16(), "title": title, "detail": detail});
    problem_body(status, body)
}

fn problem_body(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

pub async fn not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "about:blank",
        "Not Found",
        "The requested resource does not exist on this server.",
    )
}

async fn well_known() -> Response {
    (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, "/jmap/session")],
    )
        .into_response()
}

async fn session(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(response) = shared.rejection(&headers) {
        return response;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    axum::Json(json!({
        "capabilities": {
            "urn:ietf:params:jmap:core": {
                "maxSizeUpload": 50_000_000, "maxConcurrentUpload": 4,
                "maxSizeRequest": 10_000_000, "maxConcurrentRequests": 4,
                "maxCallsInRequest": MAX_CALLS, "maxObjectsInGet": MAX_OBJECTS,
                "maxObjectsInSet": MAX_OBJECTS, "collationAlgorithms": []
            },
            "urn:stalwart:jmap": {}
        },
        "accounts": {}, "primaryAccounts": {}, "username": "admin",
        "apiUrl": format!("http://{host}/jmap/"),
        "downloadUrl": format!("http://{host}/jmap/download/{{accountId}}/{{blobId}}/{{name}}?accept={{type}}"),
        "uploadUrl": format!("http://{host}/jmap/upload/{{accountId}}/"),
        "eventSourceUrl": format!("http://{host}/jmap/eventsource/?types={{types}}&closeafter={{closeafter}}&ping={{ping}}"),
        "state": "sim"
    }))
    .into_response()
}

async fn api(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = shared.rejection(&headers) {
        return response;
    }
    let not_json = |detail: &str| {
        problem(
            StatusCode::BAD_REQUEST,
            "urn:ietf:params:jmap:error:notJSON",
            "Not JSON",
            detail,
        )
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return not_json("Content-Type must be application/json");
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return not_json("Request body is not valid JSON");
    };
    let denied = shared.denied().clone();
    let result = jmap::process(
        &mut shared.directory(),
        &denied,
        &mut shared.calls(),
        &request,
    );
    match result {
        Ok(response) => axum::Json(response).into_response(),
        Err(error) => {
            let mut body = json!({
                "type": error.kind, "status": 400, "title": "Bad Request", "detail": error.detail,
            });
            if let (Some(limit), Some(map)) = (error.limit, body.as_object_mut()) {
                map.insert("limit".into(), json!(limit));
            }
            problem_body(StatusCode::BAD_REQUEST, body)
        }
    }
}
