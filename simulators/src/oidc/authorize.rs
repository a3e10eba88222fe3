//! The OAuth 2.0 authorization code grant with PKCE (RFC 6749 §4.1, RFC
//! 7636) as Authentik serves it to a public client such as the web
//! console: `GET /application/o/authorize/` (`response_type=code`,
//! `client_id`, `redirect_uri`, `scope`, `state`, `code_challenge`,
//! `code_challenge_method=S256`, optional `nonce`) redirects back to
//! `redirect_uri` with `code` and `state`; the shared token endpoint takes
//! `grant_type=authorization_code` with `code`, `redirect_uri`,
//! `client_id` and `code_verifier`, and issues the user's tokens once
//! (with a refresh token for `offline_access`, see [`super::refresh`]).
//!
//! Errors follow the RFC: an unknown client or a redirect URI not
//! registered for it is answered on the page (400), never redirected to;
//! any other problem redirects with `error` and `state`. At the token
//! endpoint a wrong, reused or expired code, another client, another
//! redirect URI or a verifier that does not hash to the challenge is 400
//! `invalid_grant`. Codes live for one minute (Authentik's
//! `access_code_validity`).
//!
//! Nobody signs in to a simulator: the provider approves every request as
//! the one configured user ([`OidcProvider::auto_approve_logins`]); without
//! one the page says that nobody is signed in. The token endpoint answers
//! cross-origin requests from a registered redirect URI's origin (a browser
//! app exchanges its code with `fetch`), as Authentik does.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{random_secret, OAuthError, OidcProvider, TokenParams};

/// `grant_type` of a code exchange.
pub const AUTHORIZATION_CODE_GRANT: &str = "authorization_code";
/// Authentik's default `access_code_validity` (`minutes=1`).
const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// Registered public clients, issued codes and the user who approves.
#[derive(Default)]
pub(super) struct Logins {
    /// client_id → its registered redirect URIs (exact match, as Authentik's
    /// `strict` mode).
    clients: HashMap<String, Vec<String>>,
    /// code → what it was issued for.
    codes: HashMap<String, IssuedCode>,
    /// Token claims of the user who approves every request.
    user: Option<Value>,
}

struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    scope: String,
    claims: Value,
    expires_at: Instant,
}

/// Query of the authorization endpoint.
#[derive(serde::Deserialize)]
pub(super) struct AuthorizeParams {
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    scope: String,
    state: Option<String>,
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: String,
    nonce: Option<String>,
}

impl OidcProvider {
    /// `<base>/application/o/authorize/` (the `authorization_endpoint`).
    pub fn authorization_url(&self) -> String {
        format!("{}/application/o/authorize/", self.0.base_url)
    }

    /// Registers a public client (no secret; PKCE required) that may be
    /// redirected to `redirect_uris`.
    pub fn register_public_client(&self, client_id: &str, redirect_uris: &[&str]) {
        self.state().logins.clients.insert(
            client_id.to_string(),
            redirect_uris.iter().map(|uri| uri.to_string()).collect(),
        );
    }

    /// From now on, approve every authorization request as the user with
    /// these `claims` (completed like [`OidcProvider::mint`]'s, with the
    /// requesting client as `aud`).
    pub fn auto_approve_logins(&self, claims: Value) {
        self.state().logins.user = Some(claims);
    }

    /// Validates an authorization request and issues a code; the redirect
    /// target, or the page's error text.
    fn authorize(&self, params: &AuthorizeParams) -> Result<String, String> {
        let mut state = self.state();
        let logins = &mut state.logins;
        let registered = logins
            .clients
            .get(&params.client_id)
            .ok_or_else(|| format!("unknown client_id `{}`", params.client_id))?;
        if !registered.contains(&params.redirect_uri) {
            return Err(format!(
                "redirect_uri `{}` is not registered for this client",
                params.redirect_uri
            ));
        }
        let back = |query: Vec<(&str, &str)>| {
            let mut query = query;
            if let Some(state) = &params.state {
                query.push(("state", state));
            }
            with_query(&params.redirect_uri, &query)
        };
        let refuse = |error: &str, description: &str| {
            Ok(back(vec![
                ("error", error),
                ("error_description", description),
            ]))
        };
        if params.response_type != "code" {
            return refuse("unsupported_response_type", "only `code` is supported");
        }
        if params.code_challenge.is_empty() || params.code_challenge_method != "S256" {
            return refuse(
                "invalid_request",
                "a public client must send code_challenge with code_challenge_method=S256",
            );
        }
        let Some(user) = logins.user.clone() else {
            return refuse("access_denied", "nobody is signed in to the simulator");
        };
        let now = Instant::now();
        logins.codes.retain(|_, code| code.expires_at > now);
        let code = random_secret();
        logins.codes.insert(
            code.clone(),
            IssuedCode {
                client_id: params.client_id.clone(),
                redirect_uri: params.redirect_uri.clone(),
                challenge: params.code_challenge.clone(),
                nonce: params.nonce.clone(),
                scope: params.scope.clone(),
                claims: user,
                expires_at: now + CODE_LIFETIME,
            },
        );
        Ok(back(vec![("code", &code)]))
    }

    /// The tokens for a code exchange, or the OAuth error to answer.
    pub(super) fn redeem_code(&self, params: &TokenParams) -> Result<Value, OAuthError> {
        let invalid = (
            "invalid_grant",
            "the code is invalid, expired or was issued for another request",
        );
        let issued = self
            .state()
            .logins
            .codes
            .remove(&params.code)
            .filter(|code| code.expires_at > Instant::now())
            .ok_or(invalid)?;
        if issued.client_id != params.client_id || issued.redirect_uri != params.redirect_uri {
            return Err(invalid);
        }
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(params.code_verifier.as_bytes()));
        if params.code_verifier.is_empty() || computed != issued.challenge {
            return Err((
                "invalid_grant",
                "the code_verifier does not match the code_challenge",
            ));
        }
        let mut claims = issued.claims;
        if let Value::Object(map) = &mut claims {
            map.insert("aud".into(), json!(issued.client_id));
            map.insert("azp".into(), json!(issued.client_id));
            if let Some(nonce) = issued.nonce {
                map.insert("nonce".into(), json!(nonce));
            }
        }
        Ok(self.user_tokens(&issued.client_id, claims, &issued.scope))
    }

    /// `Access-Control-Allow-Origin` for a token request from `headers`'
    /// `Origin`, if it is the origin of a registered redirect URI.
    pub(super) fn cors_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
        let state = self.state();
        let known = state
            .logins
            .clients
            .values()
            .flatten()
            .any(|uri| origin_of(uri).as_deref() == Some(origin));
        known.then(|| HeaderValue::from_str(origin).ok()).flatten()
    }
}

/// `GET /application/o/authorize/`.
pub(super) async fn authorize(
    State(provider): State<OidcProvider>,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    match provider.authorize(&params) {
        // Authentik answers 302.
        Ok(target) => (StatusCode::FOUND, [(header::LOCATION, target)]).into_response(),
        Err(message) => (
            StatusCode::BAD_REQUEST,
            Html(format!(
                "<!doctype html><title>Authorization failed</title><h1>Authorization failed</h1><p>{}</p>",
                escape(&message)
            )),
        )
            .into_response(),
    }
}

/// `scheme://host[:port]` of an absolute URL.
fn origin_of(url: &str) -> Option<String> {
    let origin = url::Url::parse(url).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// `url` with `query` appended to its query string.
fn with_query(url: &str, query: &[(&str, &str)]) -> String {
    match url::Url::parse(url) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(query);
            url.into()
        }
        // Registered URIs are compared exactly, never parsed; keep it as is.
        Err(_) => url.to_string(),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::super::OidcSim;
    use super::*;

    const REDIRECT: &str = "http://127.0.0.1:3000/console/";

    fn challenge(verifier: &str) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
    }

    fn no_redirects() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    /// The query of a redirect's `Location` as pairs.
    fn location_query(response: &reqwest::Response) -> HashMap<String, String> {
        let location = response.headers()[header::LOCATION].to_str().unwrap();
        let url = reqwest::Url::parse(location).unwrap();
        assert!(location.starts_with(REDIRECT), "{location}");
        url.query_pairs().into_owned().collect()
    }

    async fn authorize(sim: &OidcSim, query: &[(&str, &str)]) -> reqwest::Response {
        no_redirects()
            .get(sim.authorization_url())
            .query(query)
            .send()
            .await
            .unwrap()
    }

    fn request(challenge: &str) -> Vec<(&str, &str)> {
        vec![
            ("response_type", "code"),
            ("client_id", "console"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid profile email"),
            ("state", "st4te"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("nonce", "n0nce"),
        ]
    }

    /// The console's code exchange.
    fn code_form<'a>(code: &'a str, verifier: &'a str) -> [(&'a str, &'a str); 5] {
        [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", "console"),
            ("code_verifier", verifier),
        ]
    }

    async fn exchange(sim: &OidcSim, form: &[(&str, &str)]) -> (StatusCode, Value, HeaderMap) {
        let response = no_redirects()
            .post(sim.token_url())
            .header(header::ORIGIN, "http://127.0.0.1:3000")
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, response.json().await.unwrap(), headers)
    }

    #[tokio::test]
    async fn a_code_with_the_right_verifier_is_exchanged_once_for_the_users_tokens() {
        let sim = OidcSim::start().await.unwrap();
        sim.register_public_client("console", &[REDIRECT]);
        sim.auto_approve_logins(json!({"sub": "admin", "groups": ["dezky-admins"]}));
        let verifier = "a-verifier-of-at-least-43-characters-0123456789";
        let challenge = challenge(verifier);
        let response = authorize(&sim, &request(&challenge)).await;
        assert_eq!(response.status(), StatusCode::FOUND);
        let query = location_query(&response);
        assert_eq!(query["state"], "st4te");
        let code = query["code"].clone();

        let (status, body, headers) = exchange(&sim, &code_form(&code, verifier)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "http://127.0.0.1:3000"
        );
        let token = body["access_token"].as_str().unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["sub"], "admin");
        assert_eq!(claims["aud"], "console");
        assert_eq!(claims["nonce"], "n0nce");
        assert_eq!(claims["groups"], json!(["dezky-admins"]));
        assert_eq!(claims["iss"], json!(sim.issuer()));

        // A code is good once.
        let (status, body, _) = exchange(&sim, &code_form(&code, verifier)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
    }

    #[tokio::test]
    async fn a_wrong_verifier_client_or_redirect_uri_is_refused() {
        let sim = OidcSim::start().await.unwrap();
        sim.register_public_client("console", &[REDIRECT]);
        sim.register_public_client("other", &[REDIRECT]);
        sim.auto_approve_logins(json!({"sub": "admin"}));
        let verifier = "the-real-verifier-0123456789-0123456789-abcdef";
        let challenge = challenge(verifier);
        for (field, value) in [
            (
                "code_verifier",
                "another-verifier-0123456789-0123456789-abcdef",
            ),
            ("client_id", "other"),
            ("redirect_uri", "http://127.0.0.1:3000/elsewhere/"),
        ] {
            let response = authorize(&sim, &request(&challenge)).await;
            let code = location_query(&response)["code"].clone();
            let mut form = vec![
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("client_id", "console"),
                ("code_verifier", verifier),
            ];
            for pair in form.iter_mut() {
                if pair.0 == field {
                    pair.1 = value;
                }
            }
            let (status, body, _) = exchange(&sim, &form).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{field}");
            assert_eq!(body["error"], "invalid_grant", "{field}");
        }
    }

    #[tokio::test]
    async fn bad_authorization_requests_are_refused_on_the_page_or_redirected_with_an_error() {
        let sim = OidcSim::start().await.unwrap();
        sim.register_public_client("console", &[REDIRECT]);
        let challenge = challenge("v");
        let mut unknown = request(&challenge);
        unknown[1].1 = "nobody";
        assert_eq!(
            authorize(&sim, &unknown).await.status(),
            StatusCode::BAD_REQUEST
        );
        let mut elsewhere = request(&challenge);
        elsewhere[2].1 = "http://evil.example/";
        assert_eq!(
            authorize(&sim, &elsewhere).await.status(),
            StatusCode::BAD_REQUEST
        );

        // Nobody signed in: access_denied, with the state.
        let response = authorize(&sim, &request(&challenge)).await;
        let query = location_query(&response);
        assert_eq!(
            (query["error"].as_str(), query["state"].as_str()),
            ("access_denied", "st4te")
        );

        sim.auto_approve_logins(json!({"sub": "admin"}));
        let mut plain = request(&challenge);
        plain[6].1 = "plain";
        let query = location_query(&authorize(&sim, &plain).await);
        assert_eq!(query["error"], "invalid_request");
        let mut token = request(&challenge);
        token[0].1 = "token";
        let query = location_query(&authorize(&sim, &token).await);
        assert_eq!(query["error"], "unsupported_response_type");
    }

    #[test]
    fn redirect_targets_keep_their_query_and_encode_values() {
        assert_eq!(
            with_query("http://h/cb?x=1", &[("code", "a b"), ("state", "s/&")]),
            "http://h/cb?x=1&code=a+b&state=s%2F%26"
        );
        assert_eq!(
            origin_of("http://127.0.0.1:3000/console/").as_deref(),
            Some("http://127.0.0.1:3000")
        );
        assert_eq!(origin_of("https://h").as_deref(), Some("https://h"));
    }

    /// The token answer of a console login that asked for `scope`.
    async fn login(sim: &OidcSim, scope: &str) -> Value {
        let verifier = "a-verifier-of-at-least-43-characters-0123456789";
        let challenge = challenge(verifier);
        let mut query = request(&challenge);
        query[3] = ("scope", scope);
        let code = location_query(&authorize(sim, &query).await)["code"].clone();
        let (status, body, _) = exchange(sim, &code_form(&code, verifier)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn refresh(sim: &OidcSim, client_id: &str, token: &str) -> (StatusCode, Value) {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client_id),
        ];
        let (status, body, headers) = exchange(sim, &form).await;
        if status == StatusCode::OK {
            assert_eq!(
                headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
                "http://127.0.0.1:3000"
            );
        }
        (status, body)
    }

    #[tokio::test]
    async fn offline_access_brings_a_refresh_token_that_rotates_on_every_use() {
        let sim = OidcSim::start().await.unwrap();
        sim.register_public_client("console", &[REDIRECT]);
        sim.auto_approve_logins(json!({"sub": "admin", "groups": ["dezky-admins"]}));
        let plain = login(&sim, "openid profile email").await;
        assert!(plain.get("refresh_token").is_none(), "{plain}");

        let first = login(&sim, "openid profile email offline_access").await;
        let r1 = first["refresh_token"].as_str().unwrap().to_string();
        let (status, second) = refresh(&sim, "console", &r1).await;
        assert_eq!(status, StatusCode::OK, "{second}");
        let r2 = second["refresh_token"].as_str().unwrap();
        assert_ne!(r2, r1, "rotated");
        assert!(second["access_token"].is_string());
        assert_eq!(second["scope"], "openid profile email offline_access");
        assert_eq!(sim.refreshes(), 1);

        // The used one, another client's use and a revoked one are refused.
        let (status, body) = refresh(&sim, "console", &r1).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
        let (status, _) = refresh(&sim, "other", r2).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let third = login(&sim, "openid offline_access").await;
        sim.revoke_refresh_tokens();
        let (status, body) =
            refresh(&sim, "console", third["refresh_token"].as_str().unwrap()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );

        // An expired one too.
        sim.set_refresh_token_lifetime(Duration::ZERO);
        let fourth = login(&sim, "openid offline_access").await;
        let (status, _) = refresh(&sim, "console", fourth["refresh_token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(sim.refreshes(), 1);
    }
}
