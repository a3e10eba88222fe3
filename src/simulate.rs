//! `provisioner simulate`: runs only the upstream simulators, wired together
//! ([`Simulators`], from `dezky_simulators::suite`), and prints how to point
//! `provisioner serve` at them; plus their settings for the in-process demo.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use dezky_simulators::suite::{Ports, Simulators};
use dezky_simulators::suite::{OCIS_CLIENT_ID, OCIS_CLIENT_SECRET};
use serde_json::json;

use crate::config::{RateLimitArgs, SimulateArgs, UpstreamArgs, DEFAULT_ADMIN_GROUP};
use crate::run;
use dezky_upstream::stalwart::Management;

/// Subject of the ready platform-admin token.
const ADMIN_SUBJECT: &str = "demo-admin";
/// Lifetime of the ready platform-admin token.
pub const ADMIN_TOKEN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// The upstream settings of `provisioner serve` for `sims` (the same as
/// [`Simulators::env`]).
pub fn upstream_args(sims: &Simulators) -> UpstreamArgs {
    UpstreamArgs {
        authentik_api_url: Some(sims.authentik.url()),
        authentik_token: Some(sims.authentik.api_token().to_string()),
        stalwart_api_url: Some(sims.stalwart.url()),
        stalwart_token: Some(sims.stalwart_token().to_string()),
        stalwart_username: None,
        stalwart_password: None,
        ocis_api_url: Some(sims.ocis.url()),
        ocis_client_id: Some(OCIS_CLIENT_ID.to_string()),
        ocis_client_secret: Some(OCIS_CLIENT_SECRET.to_string()),
        oidc_token_url: None,
        // No user ever logs in to the simulated oCIS, so nothing else
        // would create the tenant groups there.
        ocis_create_groups: true,
        ocis_purge_on_delete: false,
        stalwart_certificate_management: Management::Manual,
        stalwart_dns_management: Management::Manual,
        stalwart_dkim_management: Management::Manual,
        ocis_group_role: "editor".to_string(),
        ocis_token_scope: "openid profile email".to_string(),
        limits: RateLimitArgs::default(),
    }
}

/// A user token of a platform admin (group `dezky-admins`), valid for
/// [`ADMIN_TOKEN_LIFETIME`] while `sims` (and their signing key) live.
pub fn admin_token(sims: &Simulators) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    sims.authentik.oidc().mint(json!({
        "sub": ADMIN_SUBJECT,
        "email": "admin@dezky.test",
        "name": "Demo Admin",
        "preferred_username": ADMIN_SUBJECT,
        "groups": [DEFAULT_ADMIN_GROUP],
        "exp": now + ADMIN_TOKEN_LIFETIME.as_secs(),
    }))
}

/// `provisioner simulate`: runs the simulators until SIGINT/SIGTERM.
pub async fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let sims = Simulators::start(Ports {
        authentik: args.authentik_port,
        stalwart: args.stalwart_port,
        ocis: args.ocis_port,
    })
    .await?;
    let stop = run::shutdown_signal();
    let mut text = format!(
        "Upstream simulators are running (Ctrl-C to stop):\n  \
         Authentik  {}  (groups API and OIDC provider)\n  Stalwart   {}\n  oCIS       {}\n\n\
         Point `provisioner serve` at them:\n\n",
        sims.authentik.url(),
        sims.stalwart.url(),
        sims.ocis.url()
    );
    for (name, value) in sims.env() {
        text.push_str(&format!("export {name}={value}\n"));
    }
    text.push('\n');
    text.push_str(&token_help(&admin_token(&sims), args.listen_addr));
    // Whoever reads our output may stop reading; the simulators keep running.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    drop(stdout);
    stop.cancelled().await;
    Ok(())
}

/// A ready platform-admin `token` and how to use it against `api`.
pub fn token_help(token: &str, api: SocketAddr) -> String {
    format!(
        "A platform-admin token (sub {ADMIN_SUBJECT}, group {DEFAULT_ADMIN_GROUP}), valid for {} days \
         and only while these simulators run (their signing key is new on every start):\n\n\
         export TOKEN={token}\n\n\
         Sync its claims once (this makes the user a platform admin), then call the API:\n  \
         curl -s -H \"Authorization: Bearer $TOKEN\" http://{api}/users/me\n  \
         curl -s -H \"Authorization: Bearer $TOKEN\" http://{api}/tenants\n",
        ADMIN_TOKEN_LIFETIME.as_secs() / 86_400
    )
}
