//! An OIDC provider shaped like Authentik's (see `shared/upstream/authentik.md`):
//! per-application discovery and JWKS under `/application/o/<app-slug>/`, the
//! shared token endpoint `/application/o/token/` (client_credentials, and
//! the device authorization grant of [`device`], the authorization code
//! grant of [`authorize`], refresh tokens of [`refresh`]), RS256 or ES256 signing
//! keys that can be rotated, and out-of-band minting of tokens for tests and
//! the demo.
//!
//! [`OidcProvider`] is the composable part: its [`OidcProvider::router`] can be
//! merged into another simulator's server (the Authentik simulator does).
//! [`OidcSim`] serves only OIDC on its own loopback port.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use rand::RngCore;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Map, Value};

mod authorize;
mod device;
mod refresh;

pub use authorize::AUTHORIZATION_CODE_GRANT;
pub use device::DEVICE_CODE_GRANT;
pub use refresh::REFRESH_TOKEN_GRANT;

use crate::endpoint::{self, Endpoint};
use crate::faults::Faults;

/// Authentik's default access-token validity (`minutes=5`).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// The signature algorithms Authentik uses with a signing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningAlg {
    /// RSA key (Authentik's self-signed default certificate).
    Rs256,
    /// P-256 EC key.
    Es256,
}

/// One private signing key and its public JWK.
pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    encoding: EncodingKey,
    jwk: Value,
}

impl SigningKey {
    /// Generates a fresh key with a random `kid` (RSA keys are 2048 bits).
    pub fn generate(alg: SigningAlg) -> Self {
        let mut rng = rand::rngs::OsRng;
        let mut kid_bytes = [0u8; 16];
        rng.fill_bytes(&mut kid_bytes);
        let kid: String = kid_bytes.iter().map(|b| format!("{b:02x}")).collect();
        let (encoding, jwk) = match alg {
            SigningAlg::Rs256 => {
                let private =
                    rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA key generation succeeds");
                let der = private
                    .to_pkcs1_der()
                    .expect("a generated RSA key encodes as PKCS#1");
                let jwk = json!({
                    "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                    "n": URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
                    "e": URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
                });
                (EncodingKey::from_rsa_der(der.as_bytes()), jwk)
            }
            SigningAlg::Es256 => {
                let private = p256::SecretKey::random(&mut rng);
                let der = private
                    .to_pkcs8_der()
                    .expect("a generated P-256 key encodes as PKCS#8");
                let point = private.public_key().to_encoded_point(false);
                let coordinate = |c: Option<&p256::FieldBytes>| {
                    URL_SAFE_NO_PAD.encode(c.expect("an uncompressed point has coordinates"))
                };
                let jwk = json!({
                    "kty": "EC", "alg": "ES256", "use": "sig", "kid": kid, "crv": "P-256",
                    "x": coordinate(point.x()),
                    "y": coordinate(point.y()),
                });
                (EncodingKey::from_ec_der(der.as_bytes()), jwk)
            }
        };
        SigningKey {
            kid,
            alg,
            encoding,
            jwk,
        }
    }

    /// The key id published in the JWKS.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key's algorithm.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The public key as a JWK (what the JWKS lists).
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// Signs `claims` as-is, with `kid` in the header. Passing another key's
    /// kid forges a token that claims to come from that key.
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(match self.alg {
            SigningAlg::Rs256 => Algorithm::RS256,
            SigningAlg::Es256 => Algorithm::ES256,
        });
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .expect("signing a JSON value with a generated key succeeds")
    }
}

/// A simulated Authentik OAuth2/OIDC provider for one application. Cheap to
/// clone; every clone shares keys, clients and counters.
#[derive(Clone)]
pub struct OidcProvider(Arc<Inner>);

struct Inner {
    /// `http://host:port` without a trailing slash; the issuer is derived from it.
    base_url: String,
    app_slug: String,
    /// The application's client id: the `aud` of minted user tokens.
    client_id: String,
    state: Mutex<ProviderState>,
    token_requests: AtomicU64,
    jwks_requests: AtomicU64,
}

struct ProviderState {
    /// The provider's single signing key (Authentik has one per provider).
    key: Arc<SigningKey>,
    /// client_id → registered client_credentials client.
    clients: HashMap<String, ServiceClient>,
    token_lifetime: Duration,
    /// Device codes of the device authorization grant.
    devices: device::DeviceGrants,
    /// Public clients and codes of the authorization code grant.
    logins: authorize::Logins,
    /// Issued refresh tokens.
    refresh: refresh::RefreshGrants,
}

struct ServiceClient {
    secret: String,
    /// `sub` of the service-account user the tokens belong to.
    subject: String,
}

impl OidcProvider {
    /// A provider reachable at `base_url` (e.g. `http://127.0.0.1:4010`) for
    /// the application `app_slug` whose client id is `client_id`. Starts with
    /// an RS256 key.
    pub fn new(base_url: &str, app_slug: &str, client_id: &str) -> Self {
        OidcProvider(Arc::new(Inner {
            base_url: base_url.trim_end_matches('/').to_string(),
            app_slug: app_slug.to_string(),
            client_id: client_id.to_string(),
            state: Mutex::new(ProviderState {
                key: Arc::new(SigningKey::generate(SigningAlg::Rs256)),
                clients: HashMap::new(),
                token_lifetime: DEFAULT_TOKEN_LIFETIME,
                devices: device::DeviceGrants::default(),
                logins: authorize::Logins::default(),
                refresh: refresh::RefreshGrants::default(),
            }),
            token_requests: AtomicU64::new(0),
            jwks_requests: AtomicU64::new(0),
        }))
    }

    /// `<base>/application/o/<app-slug>/` (with the trailing slash, as Authentik).
    pub fn issuer(&self) -> String {
        format!("{}/application/o/{}/", self.0.base_url, self.0.app_slug)
    }

    /// `<issuer>.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}.well-known/openid-configuration", self.issuer())
    }

    /// `<base>/application/o/<app-slug>/jwks/`.
    pub fn jwks_url(&self) -> String {
        format!("{}jwks/", self.issuer())
    }

    /// `<base>/application/o/token/` (shared by all applications).
    pub fn token_url(&self) -> String {
        format!("{}/application/o/token/", self.0.base_url)
    }

    /// The application's client id (`aud` of user tokens).
    pub fn client_id(&self) -> &str {
        &self.0.client_id
    }

    /// The `kid` of the current signing key.
    pub fn current_kid(&self) -> String {
        self.state().key.kid.clone()
    }

    /// Replaces the signing key by a fresh one of `alg`, like an operator
    /// choosing another certificate: the JWKS lists only the new key, tokens
    /// signed before no longer verify. Returns the new `kid`.
    pub fn rotate_key(&self, alg: SigningAlg) -> String {
        let key = SigningKey::generate(alg);
        let kid = key.kid.clone();
        self.state().key = Arc::new(key);
        kid
    }

    /// Lifetime (`exp - iat`, `expires_in`) of tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state().token_lifetime = lifetime;
    }

    /// Registers a client_credentials client whose tokens have `sub = subject`.
    pub fn register_client(&self, client_id: &str, secret: &str, subject: &str) {
        self.state().clients.insert(
            client_id.to_string(),
            ServiceClient {
                secret: secret.to_string(),
                subject: subject.to_string(),
            },
        );
    }

    /// Requests that reached the token endpoint (successful or not).
    pub fn token_requests(&self) -> u64 {
        self.0.token_requests.load(Ordering::SeqCst)
    }

    /// Requests that fetched the JWKS.
    pub fn jwks_requests(&self) -> u64 {
        self.0.jwks_requests.load(Ordering::SeqCst)
    }

    /// `claims` with Authentik's defaults filled in where absent: `iss`,
    /// `aud` (the client id), `iat`, `auth_time`, `exp` (now + token
    /// lifetime), `azp`, `acr`. A claim given as `null` is removed instead.
    pub fn complete_claims(&self, claims: Value) -> Value {
        let now = unix_now();
        let lifetime = self.state().token_lifetime.as_secs();
        let mut map = match claims {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let defaults = [
            ("iss", json!(self.issuer())),
            ("aud", json!(self.0.client_id)),
            ("azp", json!(self.0.client_id)),
            ("iat", json!(now)),
            ("auth_time", json!(now)),
            ("exp", json!(now + lifetime)),
            ("acr", json!("goauthentik.io/providers/oauth2/default")),
        ];
        for (name, value) in defaults {
            map.entry(name).or_insert(value);
        }
        map.retain(|_, v| !v.is_null());
        Value::Object(map)
    }

    /// A token signed with the current key: [`OidcProvider::complete_claims`]
    /// of `claims`. Override any default (e.g. `"exp"`, `"iss"`) to forge one.
    pub fn mint(&self, claims: Value) -> String {
        let key = self.state().key.clone();
        key.sign(&key.kid, &self.complete_claims(claims))
    }

    /// The discovery, JWKS and token routes, ready to serve or merge.
    pub fn router(&self) -> Router {
        let app = format!("/application/o/{}", self.0.app_slug);
        Router::new()
            .route(
                &format!("{app}/.well-known/openid-configuration"),
                get(discovery),
            )
            .route(&format!("{app}/jwks/"), get(jwks))
            .route("/application/o/token/", post(token))
            .route("/application/o/authorize/", get(authorize::authorize))
            .route("/application/o/device/", post(device::authorize))
            .route("/device", get(device::verification_page))
            .with_state(self.clone())
    }

    fn state(&self) -> MutexGuard<'_, ProviderState> {
        self.0
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A token for a client_credentials grant, or the OAuth error
    /// (`error`, `error_description`) to answer.
    fn issue_client_token(&self, params: &TokenParams) -> Result<Value, OAuthError> {
        if params.grant_type != "client_credentials" {
            return Err((
                "unsupported_grant_type",
                "only client_credentials, authorization_code, device_code and refresh_token are supported",
            ));
        }
        let (subject, lifetime) = {
            let state = self.state();
            let client = state
                .clients
                .get(&params.client_id)
                .filter(|c| c.secret == params.client_secret)
                .ok_or(("invalid_client", "client authentication failed"))?;
            (client.subject.clone(), state.token_lifetime)
        };
        let claims = self.complete_claims(json!({
            "sub": subject,
            "aud": params.client_id,
            "azp": params.client_id,
            "uid": subject,
            "preferred_username": format!("ak-{}-client_credentials", params.client_id),
        }));
        let key = self.state().key.clone();
        let access_token = key.sign(&key.kid, &claims);
        let id_token = key.sign(&key.kid, &claims);
        Ok(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "id_token": id_token,
        }))
    }
}

/// A random URL-safe secret (codes, refresh tokens).
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// An OAuth error code and its description.
type OAuthError = (&'static str, &'static str);

fn oauth_error((error, description): OAuthError) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

async fn discovery(State(provider): State<OidcProvider>) -> Json<Value> {
    let base = &provider.0.base_url;
    Json(json!({
        "issuer": provider.issuer(),
        "authorization_endpoint": provider.authorization_url(),
        "token_endpoint": provider.token_url(),
        "userinfo_endpoint": format!("{base}/application/o/userinfo/"),
        "end_session_endpoint": format!("{}end-session/", provider.issuer()),
        "introspection_endpoint": format!("{base}/application/o/introspect/"),
        "revocation_endpoint": format!("{base}/application/o/revoke/"),
        "device_authorization_endpoint": provider.device_authorization_url(),
        "jwks_uri": provider.jwks_url(),
        "response_types_supported": ["code", "id_token", "id_token token", "code token", "code id_token", "code id_token token"],
        "grant_types_supported": ["authorization_code", "refresh_token", "implicit", "client_credentials", "password", "urn:ietf:params:oauth:grant-type:device_code"],
        "id_token_signing_alg_values_supported": [match provider.state().key.alg {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
        }],
        "subject_types_supported": ["public"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "scopes_supported": ["openid", "email", "profile", "offline_access"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "email_verified", "name", "given_name", "preferred_username", "nickname", "groups"],
    }))
}

async fn jwks(State(provider): State<OidcProvider>) -> Json<Value> {
    provider.0.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let key = provider.state().key.jwk.clone();
    Json(json!({ "keys": [key] }))
}

/// Form body of the token endpoint; credentials may also come as HTTP Basic.
#[derive(serde::Deserialize)]
struct TokenParams {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    device_code: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    code_verifier: String,
    #[serde(default)]
    refresh_token: String,
}

async fn token(
    State(provider): State<OidcProvider>,
    headers: HeaderMap,
    Form(mut params): Form<TokenParams>,
) -> Response {
    provider.0.token_requests.fetch_add(1, Ordering::SeqCst);
    if let Some((id, secret)) = basic_credentials(&headers) {
        params.client_id = id;
        params.client_secret = secret;
    }
    let issued = match params.grant_type.as_str() {
        DEVICE_CODE_GRANT => provider.poll_device(&params.device_code, &params.client_id),
        AUTHORIZATION_CODE_GRANT => provider.redeem_code(&params),
        REFRESH_TOKEN_GRANT => provider.refresh(&params),
        _ => provider.issue_client_token(&params),
    };
    let mut response = match issued {
        Ok(body) => Json(body).into_response(),
        Err(error) => oauth_error(error),
    };
    if let Some(origin) = provider.cors_origin(&headers) {
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    response
}

/// `Authorization: Basic base64(client_id:secret)`, if present and well formed.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// A standalone OIDC provider on `127.0.0.1:<random port>`; the server stops
/// when the handle is dropped.
pub struct OidcSim {
    provider: OidcProvider,
    endpoint: Endpoint,
}

impl OidcSim {
    /// Application slug and client id of [`OidcSim::start`].
    pub const APP_SLUG: &'static str = "dezky";
    pub const CLIENT_ID: &'static str = "dezky-provisioner";

    /// Starts a provider for the application `dezky` (client id
    /// `dezky-provisioner`).
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(Self::APP_SLUG, Self::CLIENT_ID).await
    }

    /// Starts a provider for `app_slug` whose client id is `client_id`.
    pub async fn start_with(app_slug: &str, client_id: &str) -> std::io::Result<Self> {
        let listener = endpoint::bind(0).await?;
        let provider = OidcProvider::new(&endpoint::url_of(&listener)?, app_slug, client_id);
        Ok(OidcSim {
            endpoint: Endpoint::serve("OIDC", listener, provider.router())?,
            provider,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.endpoint.url()
    }

    /// The fault switchboard of this server.
    pub fn faults(&self) -> &Faults {
        self.endpoint.faults()
    }

    /// The provider (keys, clients, minting); also reachable through `Deref`.
    pub fn provider(&self) -> &OidcProvider {
        &self.provider
    }
}

impl Deref for OidcSim {
    type Target = OidcProvider;
    fn deref(&self) -> &OidcProvider {
        &self.provider
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn decode(token: &str, jwk: &Value, alg: Algorithm, aud: &str) -> Value {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let key = DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = Validation::new(alg);
        validation.set_audience(&[aud]);
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .unwrap()
            .claims
    }

    #[test]
    fn minted_tokens_verify_against_the_published_key_with_defaults_filled() {
        let provider = OidcProvider::new("http://127.0.0.1:1", "dezky", "client");
        let key = provider.state().key.jwk.clone();
        let token = provider.mint(json!({"sub": "u1", "groups": ["g"]}));
        let claims = decode(&token, &key, Algorithm::RS256, "client");
        assert_eq!(claims["iss"], "http://127.0.0.1:1/application/o/dezky/");
        assert_eq!(claims["sub"], "u1");
        assert_eq!(claims["groups"], json!(["g"]));
        assert!(claims["exp"].as_u64().unwrap() > unix_now());

        let kid = provider.rotate_key(SigningAlg::Es256);
        let token = provider.mint(json!({"sub": "u1", "acr": null}));
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
        assert_eq!(header.alg, Algorithm::ES256);
        let new_key = provider.state().key.jwk.clone();
        let claims = decode(&token, &new_key, Algorithm::ES256, "client");
        assert!(claims.get("acr").is_none());
    }

    #[tokio::test]
    async fn serves_discovery_jwks_and_client_credentials_tokens() {
        let sim = OidcSim::start().await.unwrap();
        sim.register_client("svc", "s3cret", "svc-user");
        sim.set_token_lifetime(Duration::from_secs(42));
        let http = reqwest::Client::new();
        let get = |url: String| {
            let http = http.clone();
            async move {
                let response = http.get(url).send().await.unwrap();
                assert_eq!(response.status(), 200);
                response.json::<Value>().await.unwrap()
            }
        };
        let discovery = get(sim.discovery_url()).await;
        assert_eq!(discovery["issuer"], json!(sim.issuer()));
        assert_eq!(discovery["jwks_uri"], json!(sim.jwks_url()));
        assert_eq!(discovery["token_endpoint"], json!(sim.token_url()));
        let jwks = get(sim.jwks_url()).await;
        assert_eq!(jwks["keys"][0]["kid"], json!(sim.current_kid()));
        assert_eq!(sim.jwks_requests(), 1);

        let token = |form: &'static [(&'static str, &'static str)]| {
            http.post(sim.token_url()).form(form).send()
        };
        let response = token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", "s3cret"),
            ("scope", "openid profile email"),
        ])
        .await
        .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 42);
        let access = body["access_token"].as_str().unwrap();
        let claims = decode(access, &jwks["keys"][0], Algorithm::RS256, "svc");
        assert_eq!(claims["sub"], "svc-user");

        let response = token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", "nope"),
        ])
        .await
        .unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
        assert_eq!(sim.token_requests(), 2);
    }
}
