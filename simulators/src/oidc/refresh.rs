//! Refresh tokens as Authentik issues them: only when the request asked
//! for the `offline_access` scope (authorization code and device grants),
//! valid for the provider's `refresh_token_validity` (Authentik's default
//! `days=30`), and redeemed at the shared token endpoint with
//! `grant_type=refresh_token`, `refresh_token` and `client_id`. A redeemed
//! refresh token is rotated: the answer carries a new one and the old one
//! is revoked, so using it again is 400 `invalid_grant`, as is an unknown,
//! expired or revoked one, or one issued to another client (a real
//! Authentik may also keep the old one while it is far from expiry; clients
//! keep theirs when the answer has none).
//!
//! [`OidcProvider::user_tokens`] is the one place a user's tokens are
//! signed, for every grant that has a user.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{random_secret, OAuthError, OidcProvider, TokenParams};

/// `grant_type` of a refresh.
pub const REFRESH_TOKEN_GRANT: &str = "refresh_token";
/// Authentik's default `refresh_token_validity` (`days=30`).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// Issued refresh tokens and their validity.
pub(super) struct RefreshGrants {
    tokens: HashMap<String, Grant>,
    lifetime: Duration,
    /// Successful refreshes so far.
    redeemed: u64,
}

impl Default for RefreshGrants {
    fn default() -> Self {
        RefreshGrants {
            tokens: HashMap::new(),
            lifetime: DEFAULT_LIFETIME,
            redeemed: 0,
        }
    }
}

/// What a refresh token stands for.
struct Grant {
    client_id: String,
    /// The user's claims before completion (fresh `iat`/`exp` per token).
    claims: Value,
    scope: String,
    expires_at: Instant,
}

impl OidcProvider {
    /// Lifetime of refresh tokens issued from now on.
    pub fn set_refresh_token_lifetime(&self, lifetime: Duration) {
        self.state().refresh.lifetime = lifetime;
    }

    /// Revokes every refresh token, as a user ending their sessions would.
    pub fn revoke_refresh_tokens(&self) {
        self.state().refresh.tokens.clear();
    }

    /// Refresh tokens redeemed so far.
    pub fn refreshes(&self) -> u64 {
        self.state().refresh.redeemed
    }

    /// The token answer for a user with `claims` (`aud` set) who asked for
    /// `scope` with `client_id`: access and ID token, and a refresh token
    /// if `scope` has `offline_access`.
    pub(super) fn user_tokens(&self, client_id: &str, claims: Value, scope: &str) -> Value {
        let completed = self.complete_claims(claims.clone());
        let mut state = self.state();
        let key = state.key.clone();
        let mut answer = json!({
            "access_token": key.sign(&key.kid, &completed),
            "id_token": key.sign(&key.kid, &completed),
            "token_type": "Bearer",
            "expires_in": state.token_lifetime.as_secs(),
            "scope": scope,
        });
        if scope.split(' ').any(|s| s == "offline_access") {
            let token = random_secret();
            let grant = Grant {
                client_id: client_id.to_string(),
                claims,
                scope: scope.to_string(),
                expires_at: Instant::now() + state.refresh.lifetime,
            };
            state.refresh.tokens.insert(token.clone(), grant);
            answer["refresh_token"] = json!(token);
        }
        answer
    }

    /// A `refresh_token` grant: new tokens, the old refresh token revoked.
    pub(super) fn refresh(&self, params: &TokenParams) -> Result<Value, OAuthError> {
        let invalid = (
            "invalid_grant",
            "the refresh token is invalid, expired, revoked or was issued to another client",
        );
        let (claims, scope) = {
            let mut state = self.state();
            let now = Instant::now();
            // Redeemed means revoked: the answer carries its successor.
            let grant = state
                .refresh
                .tokens
                .remove(&params.refresh_token)
                .filter(|grant| grant.expires_at > now && grant.client_id == params.client_id)
                .ok_or(invalid)?;
            state.refresh.redeemed += 1;
            state.refresh.tokens.retain(|_, g| g.expires_at > now);
            (grant.claims, grant.scope)
        };
        Ok(self.user_tokens(&params.client_id, claims, &scope))
    }
}
