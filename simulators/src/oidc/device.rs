//! The OAuth 2.0 device authorization grant (RFC 8628) as Authentik serves
//! it: `POST /application/o/device/` (form `client_id`, `scope`) answers
//! `{device_code, user_code, verification_uri, verification_uri_complete,
//! expires_in, interval}` with the verification page at `/device`
//! (`?code=` completes it); the shared token endpoint takes
//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` and answers
//! `authorization_pending` until a user approved the code, `slow_down` (and
//! five more seconds of interval) when polled faster than the interval,
//! `access_denied` once denied and `expired_token` after the code's
//! lifetime, all as 400 `{error, error_description}`; an unknown code is
//! `invalid_grant`, as in Authentik. Approved, it issues the approving
//! user's tokens once and forgets the code.
//!
//! Nobody signs in to a simulator, so codes are decided through the Rust
//! handle ([`OidcProvider::approve_device`], [`OidcProvider::deny_device`])
//! or automatically ([`OidcProvider::auto_approve_devices`], for the demo).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::{Form, Json};
use rand::Rng;
use serde_json::{json, Value};

use super::{oauth_error, OAuthError, OidcProvider};

/// `grant_type` of a device-code token request.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Authentik's polling interval (seconds).
const DEFAULT_INTERVAL: u64 = 5;
/// Authentik's default code validity (`access_code_validity`, `minutes=1`).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);
/// RFC 8628 §3.5: every `slow_down` adds five seconds to the interval.
const SLOW_DOWN_STEP: u64 = 5;

/// Pending device codes and how they are decided.
pub(super) struct DeviceGrants {
    /// device_code → its state.
    codes: HashMap<String, DeviceCode>,
    /// Interval handed out with new codes.
    interval: u64,
    /// Validity of new codes.
    lifetime: Duration,
    /// Approves every code on its `after_polls`-th poll, as the user `claims`.
    auto_approve: Option<(Value, u32)>,
}

impl Default for DeviceGrants {
    fn default() -> Self {
        DeviceGrants {
            codes: HashMap::new(),
            interval: DEFAULT_INTERVAL,
            lifetime: DEFAULT_LIFETIME,
            auto_approve: None,
        }
    }
}

struct DeviceCode {
    user_code: String,
    scope: String,
    expires_at: Instant,
    /// The interval this code must be polled at (grows with `slow_down`).
    interval: u64,
    last_poll: Option<Instant>,
    polls: u32,
    decision: Decision,
}

enum Decision {
    Pending,
    /// Approved by the user with these token claims.
    Approved(Value),
    Denied,
}

impl OidcProvider {
    /// `<base>/application/o/device/` (the `device_authorization_endpoint`).
    pub fn device_authorization_url(&self) -> String {
        format!("{}/application/o/device/", self.0.base_url)
    }

    /// `<base>/device`: where a user enters the code.
    pub fn device_verification_url(&self) -> String {
        format!("{}/device", self.0.base_url)
    }

    /// Polling interval (whole seconds, at least 1) and validity of device
    /// codes issued from now on.
    pub fn set_device_flow(&self, interval: Duration, lifetime: Duration) {
        let mut state = self.state();
        state.devices.interval = interval.as_secs().max(1);
        state.devices.lifetime = lifetime;
    }

    /// From now on, approve every device code on its `after_polls`-th token
    /// request (1 = the first), as the user with these `claims` (completed
    /// like [`OidcProvider::mint`]'s).
    pub fn auto_approve_devices(&self, claims: Value, after_polls: u32) {
        self.state().devices.auto_approve = Some((claims, after_polls.max(1)));
    }

    /// The user codes still waiting for a decision.
    pub fn pending_user_codes(&self) -> Vec<String> {
        let state = self.state();
        let mut codes: Vec<String> = state
            .devices
            .codes
            .values()
            .filter(|c| matches!(c.decision, Decision::Pending))
            .map(|c| c.user_code.clone())
            .collect();
        codes.sort();
        codes
    }

    /// The user approves `user_code`; their tokens carry `claims`. False if
    /// no such code is pending.
    pub fn approve_device(&self, user_code: &str, claims: Value) -> bool {
        self.decide(user_code, Decision::Approved(claims))
    }

    /// The user denies `user_code`. False if no such code is pending.
    pub fn deny_device(&self, user_code: &str) -> bool {
        self.decide(user_code, Decision::Denied)
    }

    fn decide(&self, user_code: &str, decision: Decision) -> bool {
        let mut state = self.state();
        let code = state
            .devices
            .codes
            .values_mut()
            .find(|c| c.user_code == user_code && matches!(c.decision, Decision::Pending));
        match code {
            Some(code) => {
                code.decision = decision;
                true
            }
            None => false,
        }
    }

    /// A device-code token request: the tokens, or the RFC 8628 error.
    pub(super) fn poll_device(
        &self,
        device_code: &str,
        client_id: &str,
    ) -> Result<Value, OAuthError> {
        if client_id != self.0.client_id {
            return Err(("invalid_client", "unknown client"));
        }
        let now = Instant::now();
        let claims = {
            let mut state = self.state();
            let auto = state.devices.auto_approve.clone();
            let code = state
                .devices
                .codes
                .get_mut(device_code)
                .ok_or(("invalid_grant", "unknown device code"))?;
            if now >= code.expires_at {
                return Err(("expired_token", "the device code has expired"));
            }
            let too_soon = code
                .last_poll
                .is_some_and(|last| now < last + Duration::from_secs(code.interval));
            code.last_poll = Some(now);
            if too_soon {
                code.interval += SLOW_DOWN_STEP;
                return Err(("slow_down", "polling faster than the interval"));
            }
            code.polls += 1;
            if let (Decision::Pending, Some((claims, after))) = (&code.decision, auto) {
                if code.polls >= after {
                    code.decision = Decision::Approved(claims);
                }
            }
            let claims = match &code.decision {
                Decision::Pending => return Err(("authorization_pending", "waiting for the user")),
                Decision::Denied => None,
                Decision::Approved(claims) => Some((claims.clone(), code.scope.clone())),
            };
            state.devices.codes.remove(device_code);
            claims.ok_or(("access_denied", "the user denied the request"))?
        };
        let (claims, scope) = claims;
        Ok(self.user_tokens(client_id, claims, &scope))
    }
}

/// Form of `POST /application/o/device/`.
#[derive(serde::Deserialize)]
pub(super) struct DeviceRequest {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    scope: String,
}

/// `POST /application/o/device/`: a new device code for the application.
pub(super) async fn authorize(
    State(provider): State<OidcProvider>,
    Form(request): Form<DeviceRequest>,
) -> Response {
    if request.client_id != provider.0.client_id {
        return oauth_error(("invalid_client", "unknown client"));
    }
    let device_code = random_token(40);
    let user_code = format!("{:08}", rand::thread_rng().gen_range(0..100_000_000u32));
    let (interval, lifetime) = {
        let mut state = provider.state();
        let devices = &mut state.devices;
        let (interval, lifetime) = (devices.interval, devices.lifetime);
        devices.codes.insert(
            device_code.clone(),
            DeviceCode {
                user_code: user_code.clone(),
                scope: request.scope,
                expires_at: Instant::now() + lifetime,
                interval,
                last_poll: None,
                polls: 0,
                decision: Decision::Pending,
            },
        );
        (interval, lifetime)
    };
    let verification = provider.device_verification_url();
    Json(json!({
        "device_code": device_code,
        "verification_uri": verification,
        "verification_uri_complete": format!("{verification}?code={user_code}"),
        "user_code": user_code,
        "expires_in": lifetime.as_secs(),
        "interval": interval,
    }))
    .into_response()
}

/// `GET /device[?code=...]`: the verification page. A simulator has no
/// sign-in, so it only says how codes are decided here.
pub(super) async fn verification_page(
    State(provider): State<OidcProvider>,
    Query(query): Query<HashMap<String, String>>,
) -> Html<String> {
    let pending = provider.pending_user_codes();
    let line = match query.get("code") {
        Some(code) if pending.contains(code) => format!("Code {code} is waiting for approval."),
        Some(code) => format!("Code {code} is not pending."),
        None => format!("{} code(s) waiting for approval.", pending.len()),
    };
    let auto = provider.state().devices.auto_approve.is_some();
    let how = if auto {
        "This simulator approves device codes automatically."
    } else {
        "Codes are approved through the simulator's test hook."
    };
    Html(format!(
        "<!doctype html><title>Device login (simulated Authentik)</title><p>{line}</p><p>{how}</p>"
    ))
}

fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    use super::*;
    use crate::oidc::OidcSim;

    struct Flow {
        http: reqwest::Client,
        sim: OidcSim,
    }

    impl Flow {
        async fn start() -> Self {
            let sim = OidcSim::start().await.unwrap();
            sim.set_device_flow(Duration::from_secs(1), Duration::from_secs(60));
            Flow {
                http: reqwest::Client::new(),
                sim,
            }
        }

        async fn code(&self) -> Value {
            let response = self
                .http
                .post(self.sim.device_authorization_url())
                .form(&[
                    ("client_id", OidcSim::CLIENT_ID),
                    ("scope", "openid profile"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json().await.unwrap()
        }

        /// (status, body) of one token poll for `code`.
        async fn poll(&self, code: &Value) -> (u16, Value) {
            let device_code = code["device_code"].as_str().unwrap();
            let response = self
                .http
                .post(self.sim.token_url())
                .form(&[
                    ("grant_type", DEVICE_CODE_GRANT),
                    ("client_id", OidcSim::CLIENT_ID),
                    ("device_code", device_code),
                ])
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.json().await.unwrap())
        }
    }

    #[tokio::test]
    async fn discovery_advertises_the_device_endpoint_and_codes_look_like_authentiks() {
        let flow = Flow::start().await;
        let discovery: Value = flow
            .http
            .get(flow.sim.discovery_url())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            discovery["device_authorization_endpoint"],
            json!(flow.sim.device_authorization_url())
        );
        let code = flow.code().await;
        let user_code = code["user_code"].as_str().unwrap();
        assert_eq!(code["interval"], 1);
        assert_eq!(code["expires_in"], 60);
        assert_eq!(
            code["verification_uri"],
            json!(flow.sim.device_verification_url())
        );
        assert_eq!(
            code["verification_uri_complete"],
            json!(format!(
                "{}?code={user_code}",
                flow.sim.device_verification_url()
            ))
        );
        assert_eq!(flow.sim.pending_user_codes(), [user_code]);
        let page = flow
            .http
            .get(code["verification_uri_complete"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("waiting for approval"), "{page}");
        let unknown_client = flow
            .http
            .post(flow.sim.device_authorization_url())
            .form(&[("client_id", "nope")])
            .send()
            .await
            .unwrap();
        assert_eq!(unknown_client.status(), 400);
    }

    #[tokio::test]
    async fn polls_are_pending_then_slowed_down_when_too_fast() {
        let flow = Flow::start().await;
        let code = flow.code().await;
        assert_eq!(flow.poll(&code).await.1["error"], "authorization_pending");
        let (status, body) = flow.poll(&code).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("slow_down")));
    }

    #[tokio::test]
    async fn an_approved_code_yields_the_users_token_once() {
        let flow = Flow::start().await;
        let code = flow.code().await;
        let user_code = code["user_code"].as_str().unwrap();
        assert!(flow
            .sim
            .approve_device(user_code, json!({"sub": "alice", "groups": ["g"]})));
        let (status, body) = flow.poll(&code).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["scope"], "openid profile");
        let token = body["access_token"].as_str().unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["aud"], OidcSim::CLIENT_ID);
        assert_eq!(claims["iss"], json!(flow.sim.issuer()));
        assert_eq!(
            flow.poll(&code).await.1["error"],
            "invalid_grant",
            "used up"
        );
    }

    #[tokio::test]
    async fn denied_expired_unknown_and_auto_approved_codes() {
        let flow = Flow::start().await;
        let denied = flow.code().await;
        assert!(flow.sim.deny_device(denied["user_code"].as_str().unwrap()));
        assert_eq!(flow.poll(&denied).await.1["error"], "access_denied");

        flow.sim
            .set_device_flow(Duration::from_secs(1), Duration::ZERO);
        let expired = flow.code().await;
        assert_eq!(flow.poll(&expired).await.1["error"], "expired_token");
        let unknown = json!({"device_code": "nope"});
        assert_eq!(flow.poll(&unknown).await.1["error"], "invalid_grant");

        flow.sim
            .set_device_flow(Duration::from_secs(1), Duration::from_secs(60));
        flow.sim.auto_approve_devices(json!({"sub": "demo"}), 1);
        let auto = flow.code().await;
        let (status, body) = flow.poll(&auto).await;
        assert_eq!(status, 200, "{body}");
    }
}
