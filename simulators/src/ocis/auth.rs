//! Bearer-token authentication of the oCIS simulator: like oCIS's proxy, a
//! request resolves to a user only with a JWT (RS256 or ES256) that verifies
//! against the identity provider's JWKS; anything else is a 401. Like the
//! proxy's claims cache (owncloud/ocis#877), a verified token is remembered
//! until it expires, so a client reusing its token pays for one signature
//! check, not one per request.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::Shared;

/// The user a request acts as (`sub` of its token).
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub id: String,
    pub name: String,
}

/// Verifies tokens against a JWKS, fetched lazily and again when a token
/// names a key id it does not know (key rotation).
pub(crate) struct JwksVerifier {
    http: reqwest::Client,
    jwks_url: String,
    issuer: Option<String>,
    keys: Mutex<JwkSet>,
    verified: std::sync::Mutex<HashMap<String, Verified>>,
}

/// A token that verified, and when it expires (`exp`, Unix seconds).
#[derive(Clone)]
struct Verified {
    caller: Caller,
    expires: u64,
}

/// Verified tokens remembered at most; when full, the expired ones go, or all.
const VERIFIED_CAPACITY: usize = 1024;

#[derive(Deserialize)]
struct Claims {
    sub: String,
    /// Seconds; a number, not necessarily an integer (as jsonwebtoken reads it).
    exp: f64,
    #[serde(default)]
    preferred_username: Option<String>,
}

impl JwksVerifier {
    pub(crate) fn new(jwks_url: String, issuer: Option<String>) -> Self {
        JwksVerifier {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            jwks_url,
            issuer,
            keys: Mutex::new(JwkSet { keys: Vec::new() }),
            verified: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The caller of a valid token, `None` for anything else.
    async fn verify(&self, token: &str) -> Option<Caller> {
        // The clock `check` validates `exp` against.
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(known) = self.remembered().get(token) {
            // Valid up to its `exp` second, as `check` (no leeway) has it.
            return (now <= known.expires).then(|| known.caller.clone());
        }
        let caller = self.check(token).await?;
        let mut remembered = self.remembered();
        if remembered.len() >= VERIFIED_CAPACITY {
            remembered.retain(|_, v| now <= v.expires);
            if remembered.len() >= VERIFIED_CAPACITY {
                remembered.clear();
            }
        }
        remembered.insert(token.to_string(), caller.clone());
        Some(caller.caller)
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<String, Verified>> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks `token`'s signature and claims against the JWKS.
    async fn check(&self, token: &str) -> Option<Verified> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return None;
        }
        let kid = header.kid?;
        let key = {
            let mut keys = self.keys.lock().await;
            if keys.find(&kid).is_none() {
                *keys = self.fetch().await?;
            }
            DecodingKey::from_jwk(keys.find(&kid)?).ok()?
        };
        let mut validation = Validation::new(header.alg);
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .ok()?
            .claims;
        Some(Verified {
            caller: Caller {
                name: claims
                    .preferred_username
                    .unwrap_or_else(|| claims.sub.clone()),
                id: claims.sub,
            },
            // Whole seconds, as the check compares them.
            expires: claims.exp as u64,
        })
    }

    async fn fetch(&self) -> Option<JwkSet> {
        let response = self.http.get(&self.jwks_url).send().await.ok()?;
        response.error_for_status().ok()?.json().await.ok()
    }
}

/// Axum middleware: rejects requests without a valid bearer token, and
/// hands the [`Caller`] to the handlers.
pub(crate) async fn layer(
    State(shared): State<Shared>,
    mut request: Request<Body>,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_owned);
    let caller = match token {
        Some(token) => shared.verifier.verify(&token).await,
        None => None,
    };
    match caller {
        Some(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
        )
            .into_response(),
    }
}
