//! `provisioner login`: the OAuth 2.0 device authorization grant (RFC 8628)
//! against the issuer, with its endpoints from discovery (Authentik:
//! `/application/o/device/` and the shared token endpoint). Prints the
//! verification URL and the code, polls the token endpoint at the
//! interval the issuer asked for (five seconds more after each
//! `slow_down`), stores the token for the server (with the refresh token
//! that `offline_access` brings, which [`crate::session`] renews it with),
//! then syncs the user with `GET /users/me` so the API knows their groups.
//! `provisioner logout` forgets it.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;

use crate::args::{LoginArgs, LogoutArgs};
use crate::client::{Client, REQUEST_TIMEOUT};
use crate::credentials::{self, Credential};
use crate::error::CliError;
use crate::session::Bearer;

/// `grant_type` of the token requests.
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.2: the interval when the issuer names none.
const DEFAULT_INTERVAL: u64 = 5;
/// RFC 8628 §3.5: what every `slow_down` adds.
const SLOW_DOWN_STEP: u64 = 5;

/// The parts of the issuer's discovery document a client uses.
#[derive(Deserialize)]
pub(crate) struct Discovery {
    pub(crate) token_endpoint: String,
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
}

/// RFC 8628 §3.2.
#[derive(Deserialize)]
struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
}

/// A token endpoint's answer.
#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

impl TokenAnswer {
    /// The login to store; keeps `previous_refresh` if the issuer did not
    /// rotate the refresh token.
    pub(crate) fn into_credential(
        self,
        issuer: String,
        client_id: String,
        previous_refresh: Option<&str>,
    ) -> Credential {
        Credential {
            access_token: self.access_token,
            expires_at: self
                .expires_in
                .map(|s| Utc::now() + chrono::Duration::seconds(s)),
            refresh_token: self
                .refresh_token
                .or_else(|| previous_refresh.map(str::to_string)),
            issuer,
            client_id,
        }
    }
}

/// The discovery document of `issuer` (with or without its trailing slash).
pub(crate) async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Discovery, CliError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    json_of(http.get(&url).send().await, &url).await
}

/// What to do after one token poll that did not yield a token.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Poll again after this many seconds.
    PollAfter(u64),
    /// Give up with this message.
    Fail(String),
}

/// RFC 8628 §3.5 for an error answer (`error`, `error_description`).
fn after_error(interval: u64, error: &str, description: &str) -> Next {
    match error {
        "authorization_pending" => Next::PollAfter(interval),
        "slow_down" => Next::PollAfter(interval + SLOW_DOWN_STEP),
        "access_denied" => Next::Fail("the request was denied in the browser".into()),
        "expired_token" => Next::Fail(
            "the code expired before it was confirmed; run `provisioner login` again".into(),
        ),
        other => Next::Fail(format!("the issuer answered `{other}`: {description}")),
    }
}

/// `provisioner login`.
pub async fn login(args: &LoginArgs) -> Result<(), CliError> {
    let http = dezky_core::http::client(None, REQUEST_TIMEOUT)
        .map_err(|e| CliError::Login(e.to_string()))?;
    let issuer = if args.issuer.ends_with('/') {
        args.issuer.clone()
    } else {
        format!("{}/", args.issuer)
    };
    let discovery = discover(&http, &issuer).await?;
    let device_url = discovery.device_authorization_endpoint.ok_or_else(|| {
        CliError::Login(format!(
            "{issuer} advertises no device_authorization_endpoint (in Authentik, give the provider a device code flow)"
        ))
    })?;
    let form = [
        ("client_id", args.client_id.as_str()),
        ("scope", args.scope.as_str()),
    ];
    let device: DeviceAuthorization =
        json_of(http.post(&device_url).form(&form).send().await, &device_url).await?;
    println!(
        "To sign in, open {} and enter the code {}",
        device.verification_uri, device.user_code
    );
    if let Some(complete) = &device.verification_uri_complete {
        println!("(or open {complete})");
    }
    println!("Waiting for the confirmation ...");
    let token = poll(&http, &discovery.token_endpoint, &args.client_id, &device).await?;
    let server = &args.server.server;
    let credential = token.into_credential(issuer, args.client_id.clone(), None);
    let renewable = match credential.refresh_token {
        Some(_) => " (renewed with its refresh token while that is valid)",
        None => " (no refresh token: ask for the `offline_access` scope to stay signed in)",
    };
    let access_token = credential.access_token.clone();
    let path = credentials::save(server, credential)?;
    println!(
        "Token stored in {} for {server}{renewable}.",
        path.display()
    );
    let client = Client::new(server, Bearer::Fixed(access_token))?;
    let me = client.me().await?;
    let user = &me["user"];
    let admin = if user["platformAdmin"] == true {
        ", platform admin"
    } else {
        ""
    };
    println!(
        "Logged in to {server} as {} ({} tenant(s){admin}).",
        user["email"]
            .as_str()
            .or(user["authentikSubjectId"].as_str())
            .unwrap_or("?"),
        me["tenants"].as_array().map_or(0, Vec::len)
    );
    Ok(())
}

/// Polls the token endpoint until the code is confirmed, denied or expired.
async fn poll(
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    device: &DeviceAuthorization,
) -> Result<TokenAnswer, CliError> {
    let deadline = Instant::now() + Duration::from_secs(device.expires_in);
    let mut interval = device.interval.unwrap_or(DEFAULT_INTERVAL).max(1);
    loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        let form = [
            ("grant_type", DEVICE_CODE_GRANT),
            ("device_code", device.device_code.as_str()),
            ("client_id", client_id),
        ];
        let response = http
            .post(token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| CliError::Login(format!("{token_url}: {e}")))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| CliError::Login(format!("{token_url}: {status}: {e}")))?;
        if status.is_success() {
            return serde_json::from_value(body).map_err(|e| {
                CliError::Login(format!("{token_url}: unexpected token answer: {e}"))
            });
        }
        let error = body["error"].as_str().unwrap_or("unknown_error");
        let description = body["error_description"].as_str().unwrap_or_default();
        match after_error(interval, error, description) {
            Next::PollAfter(next) if Instant::now() + Duration::from_secs(next) < deadline => {
                interval = next
            }
            Next::PollAfter(_) => {
                return Err(CliError::Login(
                    "the code expired before it was confirmed; run `provisioner login` again"
                        .into(),
                ))
            }
            Next::Fail(message) => return Err(CliError::Login(message)),
        }
    }
}

/// The JSON answer of a discovery or device request, or a login error.
async fn json_of<T: serde::de::DeserializeOwned>(
    sent: Result<reqwest::Response, reqwest::Error>,
    url: &str,
) -> Result<T, CliError> {
    let response = sent.map_err(|e| CliError::Login(format!("{url}: {e}")))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| CliError::Login(format!("{url}: {e}")))?;
    if !status.is_success() {
        return Err(CliError::Login(format!("{url}: {status}: {text}")));
    }
    serde_json::from_str(&text)
        .map_err(|e| CliError::Login(format!("{url}: unexpected answer: {e}")))
}

/// `provisioner logout`.
pub fn logout(args: &LogoutArgs) -> Result<(), CliError> {
    let server = &args.server.server;
    if credentials::remove(server)? {
        println!("Logged out of {server}: its stored token was removed.");
    } else {
        println!("No stored login for {server}.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_follows_rfc_8628() {
        assert_eq!(
            after_error(5, "authorization_pending", ""),
            Next::PollAfter(5)
        );
        assert_eq!(after_error(5, "slow_down", ""), Next::PollAfter(10));
        assert!(
            matches!(after_error(5, "access_denied", ""), Next::Fail(m) if m.contains("denied"))
        );
        assert!(
            matches!(after_error(5, "expired_token", ""), Next::Fail(m) if m.contains("expired"))
        );
        assert!(matches!(after_error(5, "invalid_client", "no such client"),
            Next::Fail(m) if m.contains("invalid_client") && m.contains("no such client")));
    }
}
