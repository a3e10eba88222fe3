//! Client of Stalwart's JMAP management API (v0.16+, `shared/upstream/stalwart.md`):
//! `POST {base}/jmap` with `x:<Type>/get|set|query` method calls, batched
//! under the 16-calls-per-request limit. HTTP-level failures (401/403
//! `application/problem+json`, outages) and method errors are typed;
//! per-object `SetError`s stay in the [`SetResponse`] for the caller.

mod domain;
mod jmap;
mod listing;

use std::fmt;
use std::sync::Arc;

use dezky_core::http::{SendError, UpstreamGuard};
use dezky_core::secret::Secret;

use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use serde::Deserialize;

pub use domain::{
    by_name, by_text, get as get_domains, page as domain_page, query_and_get, DkimSignatureSet,
    Domain, DomainPatch, DomainSet, Management, NewDomain, DOMAIN_PROPERTIES,
};
pub use jmap::{
    result_ref, Batch, Created, GetResponse, MethodCall, MethodError, MethodErrorKind, ObjectRef,
    ObjectType, QueryResponse, Responses, SetError, SetErrorKind, SetRequest, SetResponse,
    MAX_CALLS_PER_REQUEST, USING,
};
pub use listing::LIST_PAGE;

/// System name used in upstream metrics.
const SYSTEM: &str = "stalwart";

/// The admin credential.
#[derive(Clone)]
pub enum StalwartAuth {
    /// An API key (`API_...`), sent as `Authorization: Bearer`.
    Bearer(Secret),
    /// A login and password, sent as HTTP Basic.
    Basic { username: String, password: Secret },
}

impl fmt::Debug for StalwartAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StalwartAuth::Bearer(_) => f.write_str("Bearer(***)"),
            StalwartAuth::Basic { username, .. } => write!(f, "Basic({username}:***)"),
        }
    }
}

/// Why a batch could not be executed.
#[derive(Debug, thiserror::Error)]
pub enum StalwartError {
    #[error("Stalwart is unreachable: {0}")]
    Unreachable(#[source] SendError),
    #[error("Stalwart rejected the credentials (HTTP 401): {0}")]
    Unauthorized(String),
    #[error("Stalwart denied the request (HTTP 403): {0}")]
    Forbidden(String),
    #[error("Stalwart answered HTTP {status}: {detail}")]
    Http { status: u16, detail: String },
    #[error("invalid response from Stalwart: {0}")]
    InvalidResponse(String),
    #[error("cannot encode the request: {0}")]
    InvalidRequest(String),
    /// The credential's file cannot be read (`STALWART_TOKEN_FILE`, `STALWART_PASSWORD_FILE`).
    #[error("{0}")]
    Credential(String),
    #[error("method call {call_id} failed: {error}")]
    Method { call_id: String, error: MethodError },
    #[error(
        "a group of {0} method calls exceeds the limit of {MAX_CALLS_PER_REQUEST} per request"
    )]
    GroupTooLarge(usize),
}

/// Body of an HTTP-level error (`application/problem+json`).
#[derive(Deserialize)]
struct Problem {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

/// A Stalwart management endpoint with its credential.
#[derive(Clone, Debug)]
pub struct StalwartClient {
    http: reqwest::Client,
    /// The gate of every request (rate limit, pauses, breaker); unlimited by default.
    guard: Arc<UpstreamGuard>,
    endpoint: String,
    auth: StalwartAuth,
}

impl StalwartClient {
    /// A client of the server at `base_url` (`STALWART_API_URL`, without
    /// `/jmap`). `http` is the shared client of [`dezky_core::http::client`].
    pub fn new(http: reqwest::Client, base_url: &str, auth: StalwartAuth) -> Self {
        StalwartClient {
            http,
            endpoint: format!("{}/jmap", base_url.trim_end_matches('/')),
            auth,
            guard: Arc::new(UpstreamGuard::unlimited(SYSTEM)),
        }
    }

    /// Sends through `guard` (shared with every other client of this upstream).
    pub fn with_guard(mut self, guard: Arc<UpstreamGuard>) -> Self {
        self.guard = guard;
        self
    }

    /// Sends `batch` in as few HTTP requests as the call limit allows and
    /// collects every answer. Stops at the first request that fails as a
    /// whole.
    pub async fn execute(&self, batch: Batch) -> Result<Responses, StalwartError> {
        let mut responses = Responses::default();
        for calls in batch.into_requests()? {
            responses.extend(self.send(&calls).await?);
        }
        Ok(responses)
    }

    async fn send(&self, calls: &[MethodCall]) -> Result<jmap::ResponseBody, StalwartError> {
        let body = jmap::RequestBody {
            using: USING,
            method_calls: calls,
        };
        let request = self.http.post(&self.endpoint).json(&body);
        let secret = |s: &Secret| {
            s.get()
                .map_err(|e| StalwartError::Credential(e.to_string()))
        };
        let request = match &self.auth {
            StalwartAuth::Bearer(token) => request.bearer_auth(secret(token)?),
            StalwartAuth::Basic { username, password } => {
                request.basic_auth(username, Some(secret(password)?))
            }
        };
        let response = self
            .guard
            .send(request)
            .await
            .map_err(StalwartError::Unreachable)?;
        let status = response.status();
        if status.is_success() {
            return response
                .json()
                .await
                .map_err(|e| StalwartError::InvalidResponse(e.to_string()));
        }
        let is_problem = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let text = response.text().await.unwrap_or_default();
        let detail = is_problem
            .then(|| serde_json::from_str::<Problem>(&text).ok())
            .flatten()
            .map(|p| {
                let what = p.detail.or(p.title).unwrap_or_default();
                match p.kind {
                    Some(kind) if kind != "about:blank" => format!("{kind}: {what}"),
                    _ => what,
                }
            })
            .unwrap_or_else(|| text.chars().take(200).collect());
        Err(match status {
            StatusCode::UNAUTHORIZED => StalwartError::Unauthorized(detail),
            StatusCode::FORBIDDEN => StalwartError::Forbidden(detail),
            _ => StalwartError::Http {
                status: status.as_u16(),
                detail,
            },
        })
    }
}
