//! What the binary passes to [`crate::build`]: the OIDC issuer to trust, group
//! naming, the plans, the outbound HTTP client, the readiness hook and the
//! token that stops the API's background work.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use dezky_core::plans::PlanQuotas;
use tokio_util::sync::CancellationToken;

/// Configuration of the API (DESIGN §2 env vars in parentheses).
#[derive(Clone)]
pub struct ApiConfig {
    /// Exact expected `iss`, with trailing slash (`OIDC_ISSUER`).
    pub oidc_issuer: String,
    /// Expected member of `aud`: the client id (`OIDC_AUDIENCE`).
    pub oidc_audience: String,
    /// Override of the discovered JWKS URL (`OIDC_JWKS_URL`).
    pub oidc_jwks_url: Option<String>,
    /// Group in the `groups` claim that makes a platform admin (`PLATFORM_ADMIN_GROUP`).
    pub platform_admin_group: String,
    /// Prefix of tenant group names, `tenant-` by default: membership in
    /// group `{prefix}{slug}` makes a member of tenant `slug`.
    pub group_prefix: String,
    /// Valid plan names (`PLAN_QUOTAS`).
    pub plans: PlanQuotas,
    /// Outbound client for discovery and JWKS (built with `EXTRA_CA_CERTS`).
    pub http: reqwest::Client,
    /// Extra readiness condition for `/readyz` besides MongoDB.
    pub readiness: Readiness,
    /// Public OIDC client of the web console (`CONSOLE_CLIENT_ID`): it signs
    /// in with the authorization code flow and PKCE, and tokens issued to
    /// it are accepted like those for `oidc_audience`.
    pub console_client_id: Option<String>,
    /// The console also offers signing in by pasting a token (the demo).
    pub console_token_paste: bool,
    /// Interval of the comment lines that keep an idle
    /// `GET /tenants?watch=true` stream open (15 s).
    pub watch_heartbeat: Duration,
    /// Stops the API's background work (the `users` change stream of the
    /// actor cache). Cancel it when shutting down, before the database goes
    /// away, so that nothing reports the database's disappearance.
    pub shutdown: CancellationToken,
}

impl ApiConfig {
    /// A configuration with DESIGN's defaults for everything but the issuer,
    /// audience and client.
    pub fn new(oidc_issuer: &str, oidc_audience: &str, http: reqwest::Client) -> Self {
        ApiConfig {
            oidc_issuer: oidc_issuer.to_string(),
            oidc_audience: oidc_audience.to_string(),
            oidc_jwks_url: None,
            platform_admin_group: "dezky-admins".to_string(),
            group_prefix: "tenant-".to_string(),
            plans: PlanQuotas::default(),
            http,
            readiness: Readiness::default(),
            console_client_id: None,
            console_token_paste: false,
            watch_heartbeat: Duration::from_secs(15),
            shutdown: CancellationToken::new(),
        }
    }
}

/// A readiness condition checked by `/readyz` (e.g. "the controller is leader
/// or standby"); `Err` holds the reason shown to the prober.
#[derive(Clone, Default)]
pub struct Readiness(Option<Arc<dyn Fn() -> Result<(), String> + Send + Sync>>);

impl Readiness {
    /// Ready when `check` says so (and MongoDB answers).
    pub fn new(check: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Self {
        Readiness(Some(Arc::new(check)))
    }

    /// The condition's verdict; no condition means ready.
    pub fn check(&self) -> Result<(), String> {
        self.0.as_ref().map_or(Ok(()), |check| check())
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Readiness(custom)"
        } else {
            "Readiness(none)"
        })
    }
}
