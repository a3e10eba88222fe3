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
        authentik_token_file: None,
        stalwart_api_url: Some(sims.stalwart.url()),
        stalwart_token: Some(sims.stalwart_token().to_string()),
        stalwart_token_file: None,
        stalwart_username: None,
        stalwart_password: None,
        stalwart_password_file: None,
        ocis_api_url: Some(sims.ocis.url()),
        ocis_client_id: Some(OCIS_CLIENT_ID.to_string()),
        ocis_client_secret: Some(OCIS_CLIENT_SECRET.to_string()),
        ocis_client_secret_file: None,
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

/// The demo's platform admin as the simulated Authentik knows them.
fn admin_claims() -> serde_json::Value {
    json!({
        "sub": ADMIN_SUBJECT,
        "email": "admin@dezky.test",
        "name": "Demo Admin",
        "preferred_username": ADMIN_SUBJECT,
        "groups": [DEFAULT_ADMIN_GROUP],
    })
}

/// Public client id of the web console in the simulated Authentik.
pub const CONSOLE_CLIENT_ID: &str = "dezky-console";

/// Nobody can sign in to a simulator in a browser, so `provisioner login`
/// against it is confirmed automatically (on the first poll), and so is
/// the console's sign-in, as the platform admin of [`admin_token`]. The
/// console is registered for the API at `api` (and `localhost` on its port).
pub fn approve_logins(sims: &Simulators, api: SocketAddr) {
    let oidc = sims.authentik.oidc();
    oidc.auto_approve_devices(admin_claims(), 1);
    oidc.auto_approve_logins(admin_claims());
    let at_addr = console_url(api);
    let at_localhost = format!("http://localhost:{}/console/", api.port());
    oidc.register_public_client(CONSOLE_CLIENT_ID, &[&at_addr, &at_localhost]);
}

/// The console of the API at `api`.
pub fn console_url(api: SocketAddr) -> String {
    format!("http://{api}/console/")
}

/// A user token of a platform admin (group `dezky-admins`), valid for
/// [`ADMIN_TOKEN_LIFETIME`] while `sims` (and their signing key) live.
pub fn admin_token(sims: &Simulators) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut claims = admin_claims();
    claims["exp"] = json!(now + ADMIN_TOKEN_LIFETIME.as_secs());
    sims.authentik.oidc().mint(claims)
}

/// `provisioner simulate`: runs the simulators until SIGINT/SIGTERM.
pub async fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let sims = Simulators::start(Ports {
        authentik: args.authentik_port,
        stalwart: args.stalwart_port,
        ocis: args.ocis_port,
    })
    .await?;
    approve_logins(&sims, args.listen_addr);
    sims.authentik
        .oidc()
        .set_token_lifetime(args.token_lifetime);
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
    text.push_str(&format!("export CONSOLE_CLIENT_ID={CONSOLE_CLIENT_ID}\n"));
    text.push('\n');
    text.push_str(&token_help(&admin_token(&sims), args.listen_addr));
    text.push_str(&client_help(&sims, args.listen_addr));
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

/// The `provisioner tenants` commands to try against the API at `api`.
pub fn client_help(sims: &Simulators, api: SocketAddr) -> String {
    let oidc = sims.authentik.oidc();
    format!(
        "\nOr use the client (same binary); `provisioner login` is confirmed automatically here:\n  \
         export DEZKY_SERVER=http://{api}\n  \
         provisioner login --issuer {} --client-id {}   # or: export DEZKY_TOKEN=$TOKEN\n  \
         provisioner tenants get -o wide\n  \
         provisioner tenants describe acme\n  \
         provisioner tenants apply -f examples/tenants/ --dry-run\n  \
         provisioner tenants apply -f examples/tenants/ --wait\n  \
         provisioner tenants plan acme\n  \
         provisioner tenants events acme\n  \
         provisioner tenants delete stark --wait\n",
        oidc.issuer(),
        oidc.client_id()
    )
}
