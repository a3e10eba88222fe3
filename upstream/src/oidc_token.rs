//! OAuth2 `client_credentials` access tokens for service-to-service calls
//! (the oCIS service user), as `shared/upstream/authentik.md` describes.
//!
//! Invariant: all workers share one [`TokenSource`]; at most one token
//! request is in flight at a time, and a cached token is reused until
//! shortly before its `expires_in` runs out (or until a 401 invalidates it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dezky_core::http::{SendError, UpstreamGuard};
use dezky_core::secret::Secret;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Metrics label of token endpoint calls.
const SYSTEM: &str = "oidc";

/// Renew at most this long before the token expires.
const MAX_RENEW_MARGIN: Duration = Duration::from_secs(60);

/// Why no access token could be obtained.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token endpoint {url} unreachable: {source}")]
    Transport { url: String, source: SendError },
    /// The endpoint answered with an error (`invalid_client`, a 5xx, ...).
    #[error("token endpoint {url} answered {status}: {body}")]
    Rejected {
        url: String,
        status: u16,
        body: String,
    },
    #[error("token endpoint {url} sent an unusable answer: {reason}")]
    InvalidResponse { url: String, reason: String },
    #[error("OIDC discovery at {url} failed: {reason}")]
    Discovery { url: String, reason: String },
    /// The client secret's file cannot be read (`OCIS_CLIENT_SECRET_FILE`).
    #[error("{0}")]
    Credential(String),
}

impl TokenError {
    /// Whether the identity provider refused our client credentials
    /// (retrying will not help until the configuration changes).
    pub fn is_auth_failure(&self) -> bool {
        matches!(
            self,
            TokenError::Rejected {
                status: 400 | 401 | 403,
                ..
            }
        )
    }
}

/// A cached, shared source of `client_credentials` access tokens.
pub struct TokenSource {
    http: reqwest::Client,
    /// The gate of every request (rate limit, pauses, breaker); unlimited by default.
    guard: Arc<UpstreamGuard>,
    token_url: String,
    client_id: String,
    client_secret: Secret,
    scope: String,
    /// The current token; the lock is held across a renewal so concurrent
    /// callers wait for that one request instead of sending their own.
    cache: Mutex<Option<CachedToken>>,
    /// Token requests sent so far (for metrics and tests).
    requests: AtomicU64,
}

struct CachedToken {
    value: String,
    renew_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<f64>,
}

impl TokenSource {
    /// A token source for `client_id` at `token_url` (e.g.
    /// `https://auth.example/application/o/token/`). `scope` is sent as is,
    /// e.g. `openid profile email`.
    pub fn new(
        http: reqwest::Client,
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        scope: impl Into<String>,
    ) -> Self {
        TokenSource {
            http,
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scope: scope.into(),
            cache: Mutex::new(None),
            requests: AtomicU64::new(0),
            guard: Arc::new(UpstreamGuard::unlimited(SYSTEM)),
        }
    }

    /// Sends through `guard` (shared with every other client of this upstream).
    pub fn with_guard(mut self, guard: Arc<UpstreamGuard>) -> Self {
        self.guard = guard;
        self
    }

    /// A valid access token: the cached one, or a fresh one.
    pub async fn token(&self) -> Result<String, TokenError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref() {
            if Instant::now() < cached.renew_at {
                return Ok(cached.value.clone());
            }
        }
        let fresh = self.fetch().await?;
        let value = fresh.value.clone();
        *cache = Some(fresh);
        Ok(value)
    }

    /// Forgets `rejected` (a token the server answered 401 to) so the next
    /// [`token`](Self::token) fetches a new one. A token another worker
    /// already replaced is left alone, so N concurrent 401s renew once.
    pub async fn invalidate(&self, rejected: &str) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|c| c.value == rejected) {
            *cache = None;
        }
    }

    /// The client id whose service user the tokens stand for.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Number of token requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    async fn fetch(&self) -> Result<CachedToken, TokenError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        let client_secret = self
            .client_secret
            .get()
            .map_err(|e| TokenError::Credential(e.to_string()))?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", client_secret.as_str()),
            ("scope", self.scope.as_str()),
        ];
        let response = self
            .guard
            .send(self.http.post(&self.token_url).form(&form))
            .await
            .map_err(|source| TokenError::Transport {
                url: self.token_url.clone(),
                source,
            })?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|source| TokenError::Transport {
                url: self.token_url.clone(),
                source: source.into(),
            })?;
        if !status.is_success() {
            return Err(TokenError::Rejected {
                url: self.token_url.clone(),
                status: status.as_u16(),
                body: truncate(&body),
            });
        }
        let invalid = |reason: String| TokenError::InvalidResponse {
            url: self.token_url.clone(),
            reason,
        };
        let parsed: TokenResponse =
            serde_json::from_str(&body).map_err(|e| invalid(e.to_string()))?;
        if parsed.access_token.is_empty() {
            return Err(invalid("empty access_token".into()));
        }
        if let Some(kind) = parsed.token_type.as_deref() {
            if !kind.eq_ignore_ascii_case("bearer") {
                return Err(invalid(format!("token_type `{kind}` is not Bearer")));
            }
        }
        // Without `expires_in` the token is used once; with it, until a
        // margin (a minute, or half the lifetime for short-lived tokens)
        // before the server would reject it.
        let lifetime = parsed
            .expires_in
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or_default();
        let margin = MAX_RENEW_MARGIN.min(lifetime / 2);
        Ok(CachedToken {
            value: parsed.access_token,
            renew_at: started + (lifetime - margin),
        })
    }
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Reads `token_endpoint` from `<issuer>.well-known/openid-configuration`
/// (the issuer ends with `/` on Authentik; one is added if missing).
pub async fn discover_token_endpoint(
    http: &reqwest::Client,
    issuer: &str,
) -> Result<String, TokenError> {
    #[derive(Deserialize)]
    struct Discovery {
        token_endpoint: String,
    }
    let base = if issuer.ends_with('/') {
        issuer.to_string()
    } else {
        format!("{issuer}/")
    };
    let url = format!("{base}.well-known/openid-configuration");
    let failed = |reason: String| TokenError::Discovery {
        url: url.clone(),
        reason,
    };
    let response = dezky_core::http::send(SYSTEM, http.get(&url))
        .await
        .map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(format!("status {status}")));
    }
    let doc: Discovery = response.json().await.map_err(|e| failed(e.to_string()))?;
    if doc.token_endpoint.is_empty() {
        return Err(failed("empty token_endpoint".into()));
    }
    Ok(doc.token_endpoint)
}

/// Keeps error bodies short enough for logs and status messages.
pub(crate) fn truncate(body: &str) -> String {
    const MAX: usize = 300;
    match body.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &body[..end]),
        None => body.to_string(),
    }
}
