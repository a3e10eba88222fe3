//! Bearer-token verification per DESIGN §5: the issuer's keys come from OIDC
//! discovery, are cached, and are refetched when a token names an unknown
//! `kid` (at most once per [`REFETCH_INTERVAL`]). Only RS256 and ES256 are
//! accepted, and a key is used only with its own algorithm, so `none`, HS*
//! and algorithm-confusion tokens fail; a token signed by a foreign key that
//! reuses a known `kid` fails its signature check.
//!
//! A client sends the same token with every request, so a verified token is
//! remembered for [`VERIFIED_TTL`] (never past its `exp` plus leeway, and
//! only until the key set is refetched), and its signature is not checked
//! again meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

/// Minimum time between two JWKS refetches triggered by unknown key ids.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;
/// How long a verified token is accepted without checking it again.
pub const VERIFIED_TTL: Duration = Duration::from_secs(30);
/// Above this many remembered tokens, remembering one first drops the expired.
const VERIFIED_MAX: usize = 10_000;

/// Why the verifier could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot fetch {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("the discovery document at {url} names issuer `{found}`, but OIDC_ISSUER is `{expected}` (they must match exactly, trailing slash included)")]
    IssuerMismatch {
        url: String,
        expected: String,
        found: String,
    },
    #[error("the JWKS at {url} holds no RS256 or ES256 signing key. An Authentik provider without a signing key signs tokens with HS256 and the client secret, which this service refuses: select a signing key (certificate) in the provider settings")]
    NoSigningKeys { url: String },
}

/// The claims the API uses; everything else in the token is ignored.
#[derive(Clone, Debug, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// Expiry (seconds since the epoch); required.
    pub exp: u64,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub preferred_username: Option<String>,
    /// Names of the groups the user directly belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A public key usable with exactly one algorithm.
struct VerifyingKey {
    alg: Algorithm,
    key: DecodingKey,
}

struct KeyCache {
    keys: HashMap<String, VerifyingKey>,
    /// When an unknown `kid` last caused a refetch (start-up does not count).
    last_refetch: Option<Instant>,
}

/// Verifies bearer tokens of one issuer and audience.
pub struct Verifier {
    issuer: String,
    /// Accepted `aud` values: the API's client id, and the console's.
    audiences: Vec<String>,
    /// The discovery document's `authorization_endpoint` and
    /// `token_endpoint`, which the console signs in with.
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    jwks_url: String,
    http: reqwest::Client,
    cache: RwLock<KeyCache>,
    /// Serialises refetches so a burst of unknown kids costs one request.
    refetch: tokio::sync::Mutex<()>,
    /// Recently verified tokens and until when they are accepted unchecked.
    verified: Mutex<HashMap<String, (Arc<Claims>, Instant)>>,
}

impl Verifier {
    /// Discovers the JWKS URL (unless `jwks_url` overrides it), checks the
    /// discovery document names `issuer` exactly, and loads the keys.
    pub async fn discover(
        issuer: &str,
        audience: &str,
        jwks_url: Option<&str>,
        http: reqwest::Client,
    ) -> Result<Self, DiscoveryError> {
        let discovery_url = format!("{issuer}.well-known/openid-configuration");
        let document = fetch_json(&http, &discovery_url).await?;
        let found = document["issuer"].as_str().unwrap_or_default();
        if found != issuer {
            return Err(DiscoveryError::IssuerMismatch {
                url: discovery_url,
                expected: issuer.to_string(),
                found: found.to_string(),
            });
        }
        let jwks_url = match jwks_url {
            Some(url) => url.to_string(),
            None => document["jwks_uri"]
                .as_str()
                .ok_or_else(|| DiscoveryError::Fetch {
                    url: discovery_url.clone(),
                    reason: "the discovery document has no `jwks_uri`".into(),
                })?
                .to_string(),
        };
        let keys = fetch_keys(&http, &jwks_url).await?;
        if keys.is_empty() {
            return Err(DiscoveryError::NoSigningKeys { url: jwks_url });
        }
        Ok(Verifier {
            issuer: issuer.to_string(),
            audiences: vec![audience.to_string()],
            authorization_endpoint: document["authorization_endpoint"]
                .as_str()
                .map(str::to_string),
            token_endpoint: document["token_endpoint"].as_str().map(str::to_string),
            jwks_url,
            http,
            cache: RwLock::new(KeyCache {
                keys,
                last_refetch: None,
            }),
            refetch: tokio::sync::Mutex::new(()),
            verified: Mutex::default(),
        })
    }

    /// Also accepts tokens whose `aud` is `audience` (the console's public
    /// client, whose tokens Authentik issues for that client).
    pub fn also_accept(mut self, audience: &str) -> Self {
        if !self.audiences.iter().any(|a| a == audience) {
            self.audiences.push(audience.to_string());
        }
        self
    }

    /// The issuer's authorization endpoint, from discovery.
    pub fn authorization_endpoint(&self) -> Option<&str> {
        self.authorization_endpoint.as_deref()
    }

    /// The issuer's token endpoint, from discovery.
    pub fn token_endpoint(&self) -> Option<&str> {
        self.token_endpoint.as_deref()
    }

    /// The exact issuer tokens must name.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Verifies `token` (or finds it verified within [`VERIFIED_TTL`]) and
    /// returns its claims, or why it was refused.
    pub async fn verify(&self, token: &str) -> Result<Arc<Claims>, String> {
        if let Some(claims) = self.recently_verified(token) {
            return Ok(claims);
        }
        let claims = Arc::new(self.check(token).await?);
        self.remember(token, &claims);
        Ok(claims)
    }

    fn recently_verified(&self, token: &str) -> Option<Arc<Claims>> {
        let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        let (claims, until) = verified.get(token)?;
        (Instant::now() < *until).then(|| claims.clone())
    }

    fn remember(&self, token: &str, claims: &Arc<Claims>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let valid_for = Duration::from_secs((claims.exp + LEEWAY_SECS).saturating_sub(now));
        let until = Instant::now() + valid_for.min(VERIFIED_TTL);
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_MAX {
            let now = Instant::now();
            verified.retain(|_, (_, until)| *until > now);
            if verified.len() >= VERIFIED_MAX {
                verified.clear();
            }
        }
        verified.insert(token.to_string(), (claims.clone(), until));
    }

    /// Checks `token`'s signature and claims.
    async fn check(&self, token: &str) -> Result<Claims, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(format!(
                "algorithm {:?} is not accepted (RS256 or ES256 only)",
                header.alg
            ));
        }
        let kid = header.kid.ok_or("the token has no `kid`")?;
        if !self.knows(&kid) {
            self.refetch_for(&kid).await;
        }
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        let key = cache
            .keys
            .get(&kid)
            .ok_or_else(|| format!("unknown signing key `{kid}`"))?;
        if key.alg != header.alg {
            return Err(format!(
                "key `{kid}` is a {:?} key, the token claims {:?}",
                key.alg, header.alg
            ));
        }
        let mut validation = Validation::new(key.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map(|data| data.claims)
            .map_err(|e| format!("invalid token: {e}"))
    }

    fn knows(&self, kid: &str) -> bool {
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        cache.keys.contains_key(kid)
    }

    /// Refetches the JWKS for an unknown `kid`, unless another refetch
    /// happened within [`REFETCH_INTERVAL`]. Failures keep the old keys.
    async fn refetch_for(&self, kid: &str) {
        let _guard = self.refetch.lock().await;
        {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            let recent = cache
                .last_refetch
                .is_some_and(|at| at.elapsed() < REFETCH_INTERVAL);
            if cache.keys.contains_key(kid) || recent {
                return;
            }
        }
        let fetched = fetch_keys(&self.http, &self.jwks_url).await;
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        cache.last_refetch = Some(Instant::now());
        match fetched {
            Ok(keys) if !keys.is_empty() => {
                cache.keys = keys;
                // A key may have been withdrawn: check every token again.
                self.verified
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
            }
            Ok(_) => {
                tracing::warn!(url = %self.jwks_url, "JWKS refetch returned no signing keys; keeping the cached ones")
            }
            Err(e) => tracing::warn!(error = %e, "JWKS refetch failed; keeping the cached keys"),
        }
    }
}

async fn fetch_json(http: &reqwest::Client, url: &str) -> Result<Value, DiscoveryError> {
    let failed = |reason: String| DiscoveryError::Fetch {
        url: url.to_string(),
        reason,
    };
    let response = dezky_core::http::send("authentik", http.get(url))
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("HTTP {}", response.status())));
    }
    response.json().await.map_err(|e| failed(e.to_string()))
}

/// The RS256/ES256 signing keys of a JWKS, by `kid`; other keys are skipped.
async fn fetch_keys(
    http: &reqwest::Client,
    url: &str,
) -> Result<HashMap<String, VerifyingKey>, DiscoveryError> {
    let jwks = fetch_json(http, url).await?;
    Ok(signing_keys(&jwks))
}

fn signing_keys(jwks: &Value) -> HashMap<String, VerifyingKey> {
    let entries = jwks["keys"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    entries
        .iter()
        .filter(|entry| !matches!(entry["use"].as_str(), Some(u) if u != "sig"))
        .filter_map(|entry| {
            let jwk: Jwk = serde_json::from_value(entry.clone()).ok()?;
            let kid = jwk.common.key_id.clone()?;
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                _ => return None,
            };
            let declared = entry["alg"].as_str();
            if declared.is_some_and(|d| d != format!("{alg:?}")) {
                return None;
            }
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            Some((kid, VerifyingKey { alg, key }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_rs256_and_p256_signing_keys_are_kept() {
        let jwks = json!({"keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "rsa", "alg": "RS256", "use": "sig", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": "sXch", "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
        ]});
        let keys = signing_keys(&jwks);
        let mut kids: Vec<_> = keys.keys().cloned().collect();
        kids.sort();
        assert_eq!(kids, ["ec", "rsa"]);
        assert_eq!(keys["ec"].alg, Algorithm::ES256);
        assert!(signing_keys(&json!({"keys": []})).is_empty());
    }
}
