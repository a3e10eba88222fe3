//! The three upstream simulators wired together like a real deployment
//! ([`Simulators`]: oCIS trusts the Authentik OIDC provider, a service
//! client for oCIS is registered there), and `provisioner simulate`, which
//! runs only them and prints how to point `provisioner serve` at them.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use dezky_simulators::authentik::{AuthentikSim, AuthentikSimOptions};
use dezky_simulators::ocis::{OcisSim, OcisSimOptions};
use dezky_simulators::stalwart::{StalwartSim, StalwartSimOptions, DEFAULT_API_KEY};
use serde_json::json;

use crate::config::{SimulateArgs, UpstreamArgs, DEFAULT_ADMIN_GROUP};
use crate::run;

/// Client id of the oCIS service user (client_credentials at the OIDC provider).
const OCIS_CLIENT_ID: &str = "dezky-provisioner-ocis";
/// Its secret (a simulator: fixed, so exported settings survive a restart).
const OCIS_CLIENT_SECRET: &str = "sim-ocis-client-secret";
/// `sub` of the oCIS service user's tokens.
const OCIS_SERVICE_USER: &str = "svc-dezky-provisioner";
/// Subject of the ready platform-admin token.
const ADMIN_SUBJECT: &str = "demo-admin";
/// Lifetime of the ready platform-admin token.
pub const ADMIN_TOKEN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Loopback ports of the simulators; 0 = any free port.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ports {
    pub authentik: u16,
    pub stalwart: u16,
    pub ocis: u16,
}

/// The running simulators; they stop when this is dropped.
pub struct Simulators {
    /// Groups API and OIDC provider (issuer of user and service tokens).
    pub authentik: AuthentikSim,
    pub stalwart: StalwartSim,
    /// Trusts `authentik`'s JWKS and issuer.
    pub ocis: OcisSim,
}

impl Simulators {
    /// Starts the three simulators on `ports`, wired together.
    pub async fn start(ports: Ports) -> anyhow::Result<Self> {
        let authentik = AuthentikSim::start(AuthentikSimOptions {
            port: ports.authentik,
            ..AuthentikSimOptions::default()
        })
        .await
        .with_context(|| bind_error("Authentik", ports.authentik))?;
        let stalwart = StalwartSim::start_on(StalwartSimOptions::default(), ports.stalwart)
            .await
            .with_context(|| bind_error("Stalwart", ports.stalwart))?;
        let oidc = authentik.oidc();
        oidc.register_client(OCIS_CLIENT_ID, OCIS_CLIENT_SECRET, OCIS_SERVICE_USER);
        let ocis = OcisSim::start_on(
            OcisSimOptions {
                jwks_url: oidc.jwks_url(),
                issuer: Some(oidc.issuer()),
                null_empty_list: false,
            },
            ports.ocis,
        )
        .await
        .with_context(|| bind_error("oCIS", ports.ocis))?;
        Ok(Simulators {
            authentik,
            stalwart,
            ocis,
        })
    }

    /// `OIDC_ISSUER` of the API (the Authentik application's issuer).
    pub fn oidc_issuer(&self) -> String {
        self.authentik.oidc().issuer()
    }

    /// `OIDC_AUDIENCE` of the API (the Authentik application's client id).
    pub fn oidc_audience(&self) -> String {
        self.authentik.oidc().client_id().to_string()
    }

    /// The upstream settings of `provisioner serve` for these simulators.
    pub fn upstream_args(&self) -> UpstreamArgs {
        UpstreamArgs {
            authentik_api_url: Some(self.authentik.url()),
            authentik_token: Some(self.authentik.api_token().to_string()),
            stalwart_api_url: Some(self.stalwart.url()),
            stalwart_token: Some(DEFAULT_API_KEY.to_string()),
            stalwart_username: None,
            stalwart_password: None,
            ocis_api_url: Some(self.ocis.url()),
            ocis_client_id: Some(OCIS_CLIENT_ID.to_string()),
            ocis_client_secret: Some(OCIS_CLIENT_SECRET.to_string()),
            oidc_token_url: None,
            // No user ever logs in to the simulated oCIS, so nothing else
            // would create the tenant groups there.
            ocis_create_groups: true,
            ocis_purge_on_delete: false,
        }
    }

    /// The same settings as environment variables, in `export` order.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let u = self.upstream_args();
        let set = |value: Option<String>| value.unwrap_or_default();
        vec![
            ("OIDC_ISSUER", self.oidc_issuer()),
            ("OIDC_AUDIENCE", self.oidc_audience()),
            ("AUTHENTIK_API_URL", set(u.authentik_api_url)),
            ("AUTHENTIK_TOKEN", set(u.authentik_token)),
            ("STALWART_API_URL", set(u.stalwart_api_url)),
            ("STALWART_TOKEN", set(u.stalwart_token)),
            ("OCIS_API_URL", set(u.ocis_api_url)),
            ("OCIS_CLIENT_ID", set(u.ocis_client_id)),
            ("OCIS_CLIENT_SECRET", set(u.ocis_client_secret)),
            ("OCIS_CREATE_GROUPS", u.ocis_create_groups.to_string()),
        ]
    }

    /// A user token of a platform admin (group `dezky-admins`), valid for
    /// [`ADMIN_TOKEN_LIFETIME`] while this process (and its signing key) lives.
    pub fn admin_token(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        self.authentik.oidc().mint(json!({
            "sub": ADMIN_SUBJECT,
            "email": "admin@dezky.test",
            "name": "Demo Admin",
            "preferred_username": ADMIN_SUBJECT,
            "groups": [DEFAULT_ADMIN_GROUP],
            "exp": now + ADMIN_TOKEN_LIFETIME.as_secs(),
        }))
    }
}

fn bind_error(system: &str, port: u16) -> String {
    format!("cannot start the {system} simulator on 127.0.0.1:{port} (port in use? pass 0 for any free port)")
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
    println!("Upstream simulators are running (Ctrl-C to stop):");
    println!(
        "  Authentik  {}  (groups API and OIDC provider)",
        sims.authentik.url()
    );
    println!("  Stalwart   {}", sims.stalwart.url());
    println!("  oCIS       {}", sims.ocis.url());
    println!();
    println!("Point `provisioner serve` at them:");
    println!();
    print_exports(&sims);
    println!();
    print_token_help(&sims.admin_token(), args.listen_addr);
    stop.cancelled().await;
    Ok(())
}

/// Prints `export NAME=value` for every setting of [`Simulators::env`].
pub fn print_exports(sims: &Simulators) {
    for (name, value) in sims.env() {
        println!("export {name}={value}");
    }
}

/// Prints a ready platform-admin `token` and how to use it against `api`.
pub fn print_token_help(token: &str, api: SocketAddr) {
    println!(
        "A platform-admin token (sub {ADMIN_SUBJECT}, group {DEFAULT_ADMIN_GROUP}), valid for {} days \
         and only while these simulators run (their signing key is new on every start):",
        ADMIN_TOKEN_LIFETIME.as_secs() / 86_400
    );
    println!();
    println!("export TOKEN={token}");
    println!();
    println!("Sync its claims once (this makes the user a platform admin), then call the API:");
    println!("  curl -s -H \"Authorization: Bearer $TOKEN\" http://{api}/users/me");
    println!("  curl -s -H \"Authorization: Bearer $TOKEN\" http://{api}/tenants");
}
