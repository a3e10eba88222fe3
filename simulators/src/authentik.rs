//! A simulated Authentik: the groups API (`/api/v3/core/groups/`) as the
//! real server answers it (see `shared/upstream/authentik.md`), and on the
//! same port the OIDC provider of one application (`/application/o/...`,
//! from [`crate::oidc`]), as one real Authentik serves both.
//!
//! [`AuthentikSim::start`] serves it on a loopback port. The handle gives
//! tests and the demo what an Authentik operator has: fault injection
//! ([`Faults`]), a log of received requests ([`Recorder`]) and direct
//! changes to groups ([`AuthentikSim::create_group`] and friends), without
//! any extra HTTP route.

mod index;
mod listing;
mod model;
mod routes;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use axum::Router;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::endpoint::{self, Endpoint};
use crate::faults::Faults;
use crate::oidc::{OidcProvider, OidcSim};
use crate::recording::Recorder;

pub use model::{SimGroup, SimGroupError};

/// How a simulated Authentik behaves.
#[derive(Clone, Debug)]
pub struct AuthentikSimOptions {
    /// The API token accepted as `Authorization: Bearer <token>`.
    pub api_token: String,
    /// Serve the pre-2025.12 group shape (`parent` + `parent_name`)
    /// instead of `parents`.
    pub legacy_parent_shape: bool,
    /// Send pagination numbers as JSON floats (`2.0`), as some deployments do.
    pub float_pagination: bool,
    /// Slug of the OIDC application (the issuer is `/application/o/<slug>/`).
    pub oidc_app_slug: String,
    /// Client id of that application (`aud` of its tokens).
    pub oidc_client_id: String,
    /// Loopback port to listen on; 0 = any free port.
    pub port: u16,
}

impl Default for AuthentikSimOptions {
    fn default() -> Self {
        AuthentikSimOptions {
            api_token: "sim-authentik-api-token".into(),
            legacy_parent_shape: false,
            float_pagination: false,
            oidc_app_slug: OidcSim::APP_SLUG.into(),
            oidc_client_id: OidcSim::CLIENT_ID.into(),
            port: 0,
        }
    }
}

/// A running simulated Authentik; the server stops when the handle drops.
pub struct AuthentikSim {
    endpoint: Endpoint,
    shared: Arc<routes::Shared>,
    oidc: OidcProvider,
}

impl AuthentikSim {
    /// Binds `127.0.0.1:<options.port>` and serves until the handle is dropped.
    pub async fn start(options: AuthentikSimOptions) -> std::io::Result<Self> {
        let listener = endpoint::bind(options.port).await?;
        let oidc = OidcProvider::new(
            &endpoint::url_of(&listener)?,
            &options.oidc_app_slug,
            &options.oidc_client_id,
        );
        let shared = Arc::new(routes::Shared {
            groups: Mutex::default(),
            api_token: options.api_token,
            legacy_parent_shape: options.legacy_parent_shape,
            float_pagination: options.float_pagination,
        });
        let app = Router::new()
            .merge(routes::router(shared.clone()))
            .merge(oidc.router())
            .fallback(routes::not_found);
        Ok(AuthentikSim {
            endpoint: Endpoint::serve("authentik", listener, app)?,
            shared,
            oidc,
        })
    }

    /// Base URL (what `AUTHENTIK_API_URL` is set to), without a trailing slash.
    pub fn url(&self) -> String {
        self.endpoint.url()
    }

    /// The accepted API token.
    pub fn api_token(&self) -> &str {
        &self.shared.api_token
    }

    /// Fault injection and request counters.
    pub fn faults(&self) -> &Faults {
        self.endpoint.faults()
    }

    /// The OIDC provider served under `/application/o/` (keys, clients,
    /// token minting).
    pub fn oidc(&self) -> &OidcProvider {
        &self.oidc
    }

    /// The latest requests received (method, path, query, JSON body) and
    /// counters of all of them.
    pub fn recorder(&self) -> &Recorder {
        self.endpoint.recorder()
    }

    /// All groups, ordered by name.
    pub fn groups(&self) -> Vec<SimGroup> {
        self.shared.groups().sorted().into_iter().cloned().collect()
    }

    /// One group by pk.
    pub fn group(&self, pk: Uuid) -> Option<SimGroup> {
        self.shared.groups().get(pk).cloned()
    }

    /// The group with exactly this name.
    pub fn group_named(&self, name: &str) -> Option<SimGroup> {
        self.shared.groups().named(name).cloned()
    }

    /// Creates a group out of band.
    pub fn create_group(
        &self,
        name: &str,
        attributes: Map<String, Value>,
    ) -> Result<SimGroup, SimGroupError> {
        self.shared.groups().insert(name, attributes)
    }

    /// Renames a group out of band.
    pub fn rename_group(&self, pk: Uuid, name: &str) -> Result<SimGroup, SimGroupError> {
        self.shared
            .groups()
            .modify(pk, |g| g.name = name.to_owned())
    }

    /// Replaces a group's attributes out of band.
    pub fn set_attributes(
        &self,
        pk: Uuid,
        attributes: Map<String, Value>,
    ) -> Result<SimGroup, SimGroupError> {
        self.shared
            .groups()
            .modify(pk, |g| g.attributes = attributes)
    }

    /// Sets a group's parents out of band (the legacy shape shows the first).
    pub fn set_parents(&self, pk: Uuid, parents: Vec<Uuid>) -> Result<SimGroup, SimGroupError> {
        self.shared.groups().modify(pk, |g| g.parents = parents)
    }

    /// Deletes a group out of band.
    pub fn delete_group(&self, pk: Uuid) -> Result<SimGroup, SimGroupError> {
        self.shared
            .groups()
            .remove(pk)
            .ok_or(SimGroupError::NotFound(pk))
    }
}
