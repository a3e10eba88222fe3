//! The bearer token of a command, kept valid for as long as the command
//! runs. `--token` / `DEZKY_TOKEN` is sent as given. A stored login
//! (`provisioner login`) is renewed with its refresh token, silently, when
//! it has expired or expires within [`RENEW_BEFORE`]: the issuer's token
//! endpoint comes from discovery, `grant_type=refresh_token`; a new access
//! token (and the new refresh token, if the issuer rotated it) is stored
//! again (0600) before it is used. When the issuer refuses the refresh
//! token (expired, revoked, already used), the command says so and asks
//! for `provisioner login`; a login without a refresh token (from before
//! `offline_access`) ends at its expiry as before.

use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::client::REQUEST_TIMEOUT;
use crate::credentials::{self, Credential};
use crate::error::CliError;
use crate::login::{discover, TokenAnswer};

/// A stored token this close to its expiry is renewed first.
pub const RENEW_BEFORE: chrono::Duration = chrono::Duration::seconds(30);

/// Where a command's bearer token comes from.
pub enum Bearer {
    /// Given on the command line or in the environment.
    Fixed(String),
    /// The stored login for `server`, renewed when due.
    Stored {
        server: String,
        credential: Mutex<Credential>,
    },
}

impl Bearer {
    /// `explicit` if given, else the stored login for `server`.
    pub fn for_server(server: &str, explicit: Option<&str>) -> Result<Self, CliError> {
        if let Some(token) = explicit.filter(|t| !t.is_empty()) {
            return Ok(Bearer::Fixed(token.to_string()));
        }
        let credential = credentials::load(server)?.ok_or_else(|| CliError::NoToken {
            server: credentials::key(server),
        })?;
        Ok(Bearer::Stored {
            server: server.to_string(),
            credential: Mutex::new(credential),
        })
    }

    /// The token to send now.
    pub async fn token(&self) -> Result<String, CliError> {
        let (server, credential) = match self {
            Bearer::Fixed(token) => return Ok(token.clone()),
            Bearer::Stored { server, credential } => (server, credential),
        };
        let mut credential = credential.lock().await;
        let due = credential
            .expires_at
            .is_some_and(|at| at - RENEW_BEFORE <= Utc::now());
        if !due {
            return Ok(credential.access_token.clone());
        }
        let expired = credential.expires_at.is_some_and(|at| at <= Utc::now());
        let Some(refresh_token) = credential.refresh_token.clone() else {
            return match expired {
                true => Err(expired_login(
                    server,
                    &credential,
                    "it has no refresh token",
                )),
                false => Ok(credential.access_token.clone()),
            };
        };
        match renew(&credential, &refresh_token).await {
            Ok(renewed) => {
                credentials::save(server, renewed.clone())?;
                *credential = renewed;
                Ok(credential.access_token.clone())
            }
            // Not yet expired: use it while the issuer is unreachable.
            Err(Renewal::Unreachable(_)) if !expired => Ok(credential.access_token.clone()),
            Err(Renewal::Unreachable(message)) => Err(CliError::Login(message)),
            Err(Renewal::Refused(reason)) => Err(expired_login(server, &credential, &reason)),
        }
    }
}

/// Why a renewal did not happen.
enum Renewal {
    /// The issuer could not be asked (network, discovery).
    Unreachable(String),
    /// The issuer refused the refresh token: the reason.
    Refused(String),
}

fn expired_login(server: &str, credential: &Credential, why: &str) -> CliError {
    let at = credential
        .expires_at
        .map_or_else(String::new, |at| format!(" expired at {at} and"));
    CliError::Failed(format!(
        "the stored login for {}{at} cannot be renewed: {why}; run `provisioner login` again",
        credentials::key(server)
    ))
}

/// An OAuth error answer.
#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// The credential after a refresh-token grant at its issuer.
async fn renew(credential: &Credential, refresh_token: &str) -> Result<Credential, Renewal> {
    let unreachable = |e: String| Renewal::Unreachable(e);
    let http =
        dezky_core::http::client(None, REQUEST_TIMEOUT).map_err(|e| unreachable(e.to_string()))?;
    let discovery = discover(&http, &credential.issuer)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let url = &discovery.token_endpoint;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", credential.client_id.as_str()),
    ];
    let response = http
        .post(url)
        .form(&form)
        .send()
        .await
        .map_err(|e| unreachable(format!("{url}: {e}")))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| unreachable(format!("{url}: {status}: {e}")))?;
    if !status.is_success() {
        return Err(match serde_json::from_value::<OAuthError>(body) {
            Ok(error) if status.is_client_error() => Renewal::Refused(format!(
                "the issuer refused its refresh token ({}{}{})",
                error.error,
                if error.error_description.is_empty() {
                    ""
                } else {
                    ": "
                },
                error.error_description
            )),
            _ => unreachable(format!("{url}: {status}")),
        });
    }
    let answer: TokenAnswer = serde_json::from_value(body)
        .map_err(|e| unreachable(format!("{url}: unexpected token answer: {e}")))?;
    let (issuer, client_id) = (credential.issuer.clone(), credential.client_id.clone());
    Ok(answer.into_credential(issuer, client_id, Some(refresh_token)))
}
