//! The three simulators wired together like a real deployment: the oCIS
//! simulator trusts the Authentik simulator's OIDC provider (JWKS and
//! issuer), and a service client for oCIS (client_credentials) is
//! registered there. Used by `provisioner simulate`, `provisioner demo` and
//! the end-to-end tests, which keep the handles to break things out of band.

use std::io;

use crate::authentik::{AuthentikSim, AuthentikSimOptions};
use crate::ocis::{OcisSim, OcisSimOptions};
use crate::stalwart::{StalwartSim, StalwartSimOptions, DEFAULT_API_KEY};

/// Client id of the oCIS service user (client_credentials at the OIDC provider).
pub const OCIS_CLIENT_ID: &str = "dezky-provisioner-ocis";
/// Its secret (a simulator: fixed, so exported settings survive a restart).
pub const OCIS_CLIENT_SECRET: &str = "sim-ocis-client-secret";
/// `sub` of the oCIS service user's tokens.
pub const OCIS_SERVICE_USER: &str = "svc-dezky-provisioner";

/// Loopback ports of the simulators; 0 = any free port.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ports {
    pub authentik: u16,
    pub stalwart: u16,
    pub ocis: u16,
}

/// A simulator that could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the {system} simulator on 127.0.0.1:{port} (port in use? pass 0 for any free port)")]
pub struct StartError {
    /// Which simulator.
    pub system: &'static str,
    /// The port it was asked to bind.
    pub port: u16,
    #[source]
    pub source: io::Error,
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
    pub async fn start(ports: Ports) -> Result<Self, StartError> {
        let failed = |system, port| {
            move |source| StartError {
                system,
                port,
                source,
            }
        };
        let authentik = AuthentikSim::start(AuthentikSimOptions {
            port: ports.authentik,
            ..AuthentikSimOptions::default()
        })
        .await
        .map_err(failed("Authentik", ports.authentik))?;
        let stalwart = StalwartSim::start_on(StalwartSimOptions::default(), ports.stalwart)
            .await
            .map_err(failed("Stalwart", ports.stalwart))?;
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
        .map_err(failed("oCIS", ports.ocis))?;
        Ok(Simulators {
            authentik,
            stalwart,
            ocis,
        })
    }

    /// `OIDC_ISSUER` of the provisioner (the Authentik application's issuer).
    pub fn oidc_issuer(&self) -> String {
        self.authentik.oidc().issuer()
    }

    /// `OIDC_AUDIENCE` of the provisioner (the Authentik application's client id).
    pub fn oidc_audience(&self) -> String {
        self.authentik.oidc().client_id().to_string()
    }

    /// The API key the Stalwart simulator accepts (`STALWART_TOKEN`).
    pub fn stalwart_token(&self) -> &'static str {
        DEFAULT_API_KEY
    }

    /// The provisioner's environment for these simulators, in `export`
    /// order. oCIS groups are created by the provisioner
    /// (`OCIS_CREATE_GROUPS=true`): no user ever logs in to the simulated
    /// oCIS, so nothing else would create them.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OIDC_ISSUER", self.oidc_issuer()),
            ("OIDC_AUDIENCE", self.oidc_audience()),
            ("AUTHENTIK_API_URL", self.authentik.url()),
            ("AUTHENTIK_TOKEN", self.authentik.api_token().to_string()),
            ("STALWART_API_URL", self.stalwart.url()),
            ("STALWART_TOKEN", self.stalwart_token().to_string()),
            ("OCIS_API_URL", self.ocis.url()),
            ("OCIS_CLIENT_ID", OCIS_CLIENT_ID.to_string()),
            ("OCIS_CLIENT_SECRET", OCIS_CLIENT_SECRET.to_string()),
            ("OCIS_CREATE_GROUPS", "true".to_string()),
        ]
    }
}
