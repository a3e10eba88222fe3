//! A simulated Stalwart (v0.16+): the JMAP management API for `x:Domain`
//! and `x:DkimSignature` as `shared/upstream/stalwart.md` describes it.
//!
//! [`StalwartSim::start`] serves it on a loopback port. The handle gives
//! tests and the demo what a Stalwart operator has: fault injection
//! ([`Faults`]), a log of received requests ([`Recorder`]), direct changes
//! to domains, DKIM keys and principals using a domain, and the
//! credential's permissions (whole-request 403, per-method `forbidden`).

mod directory;
mod jmap;
mod model;
mod query;
mod routes;
mod text;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use serde_json::{json, Map, Value};

use crate::endpoint::{self, Endpoint};
use crate::faults::Faults;
use crate::recording::Recorder;

pub use model::{LinkKind, SimDkimSignature, SimDomain, SimLink, SimSetError};

/// The API key a default simulator accepts.
pub const DEFAULT_API_KEY: &str = "API_dezky-sim-stalwart";

/// Credentials a simulated Stalwart accepts.
#[derive(Clone, Debug)]
pub struct StalwartSimOptions {
    /// API key accepted as `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Login and password accepted as HTTP Basic.
    pub basic: Option<(String, String)>,
}

impl Default for StalwartSimOptions {
    fn default() -> Self {
        StalwartSimOptions {
            api_key: Some(DEFAULT_API_KEY.into()),
            basic: None,
        }
    }
}

/// A running simulated Stalwart; the server stops when the handle drops.
pub struct StalwartSim {
    endpoint: Endpoint,
    shared: Arc<routes::Shared>,
}

impl StalwartSim {
    /// Binds `127.0.0.1:0` and serves until the handle is dropped.
    pub async fn start(options: StalwartSimOptions) -> std::io::Result<Self> {
        Self::start_on(options, 0).await
    }

    /// Binds `127.0.0.1:<port>` (0 = any free port) and serves until the
    /// handle is dropped.
    pub async fn start_on(options: StalwartSimOptions, port: u16) -> std::io::Result<Self> {
        let shared = Arc::new(routes::Shared {
            directory: Mutex::default(),
            api_key: options.api_key,
            basic: options.basic,
            revoked: Mutex::new(false),
            denied: Mutex::default(),
            calls: Mutex::default(),
        });
        let app = Router::new()
            .merge(routes::router(shared.clone()))
            .fallback(routes::not_found);
        let listener = endpoint::bind(port).await?;
        Ok(StalwartSim {
            endpoint: Endpoint::serve("stalwart", listener, app)?,
            shared,
        })
    }

    /// Base URL (what `STALWART_API_URL` is set to), without a trailing slash.
    pub fn url(&self) -> String {
        self.endpoint.url()
    }

    /// Fault injection and request counters.
    pub fn faults(&self) -> &Faults {
        self.endpoint.faults()
    }

    /// The latest requests received (method, path, query, JSON body) and
    /// counters of all of them.
    pub fn recorder(&self) -> &Recorder {
        self.endpoint.recorder()
    }

    /// JMAP method calls the server processed so far (in authenticated
    /// JSON requests within the call limit), by method: known methods only
    /// (e.g. `"x:Domain/set"`), whether the call succeeded or not.
    pub fn method_calls(&self) -> BTreeMap<String, u64> {
        self.shared
            .calls()
            .iter()
            .map(|(name, count)| ((*name).to_owned(), *count))
            .collect()
    }

    /// All domains, ordered by id.
    pub fn domains(&self) -> Vec<SimDomain> {
        self.shared.directory().domains().cloned().collect()
    }

    /// One domain by id.
    pub fn domain(&self, id: &str) -> Option<SimDomain> {
        self.shared.directory().domain(id).cloned()
    }

    /// The domain with this (normalised) name.
    pub fn domain_named(&self, name: &str) -> Option<SimDomain> {
        let dir = self.shared.directory();
        dir.domain_with_key(name)
            .filter(|d| d.name == name)
            .cloned()
    }

    /// Creates a domain out of band, as an operator typing only a name and
    /// description would: server defaults, so automatic DKIM keys.
    pub fn create_domain(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<SimDomain, SimSetError> {
        self.create_domain_with(json!({"name": name, "description": description}))
    }

    /// Creates a domain out of band from JMAP properties.
    pub fn create_domain_with(&self, props: Value) -> Result<SimDomain, SimSetError> {
        let props = props.as_object().cloned().unwrap_or_default();
        let mut dir = self.shared.directory();
        let id = dir.create_domain(&props)?;
        dir.domain(&id).cloned().ok_or_else(SimSetError::not_found)
    }

    /// Applies a JMAP patch to a domain out of band.
    pub fn update_domain(&self, id: &str, patch: Value) -> Result<SimDomain, SimSetError> {
        let patch: Map<String, Value> = patch.as_object().cloned().unwrap_or_default();
        let mut dir = self.shared.directory();
        dir.update_domain(id, &patch)?;
        dir.domain(id).cloned().ok_or_else(SimSetError::not_found)
    }

    /// Enables or disables a domain out of band.
    pub fn set_enabled(&self, id: &str, enabled: bool) -> Result<SimDomain, SimSetError> {
        self.update_domain(id, json!({ "isEnabled": enabled }))
    }

    /// Changes (or clears) a domain's description out of band.
    pub fn set_description(
        &self,
        id: &str,
        description: Option<&str>,
    ) -> Result<SimDomain, SimSetError> {
        self.update_domain(id, json!({ "description": description }))
    }

    /// Destroys a domain out of band (refused while something is linked).
    pub fn destroy_domain(&self, id: &str) -> Result<(), SimSetError> {
        self.shared.directory().destroy_domain(id)
    }

    /// Adds a DKIM key to a domain out of band; returns its id.
    pub fn add_dkim_signature(&self, domain_id: &str) -> Result<String, SimSetError> {
        let mut dir = self.shared.directory();
        if dir.domain(domain_id).is_none() {
            return Err(SimSetError::not_found());
        }
        Ok(dir.add_dkim(domain_id, "manual"))
    }

    /// All DKIM keys.
    pub fn dkim_signatures(&self) -> Vec<SimDkimSignature> {
        self.shared.directory().dkim_keys().cloned().collect()
    }

    /// Makes a new account, group or list use a domain; returns its id.
    pub fn link(&self, kind: LinkKind, domain_id: &str) -> Result<String, SimSetError> {
        self.shared.directory().link(kind, domain_id)
    }

    /// Removes a principal created with [`StalwartSim::link`].
    pub fn unlink(&self, id: &str) {
        self.shared.directory().unlink(id);
    }

    /// Withdraws (`true`) or restores every permission of the credential:
    /// requests then get HTTP 403.
    pub fn revoke_permissions(&self, revoked: bool) {
        *self.shared.revoked() = revoked;
    }

    /// Denies (`true`) or allows one method (e.g. `x:DkimSignature/set`):
    /// calls of it get the method error `forbidden`.
    pub fn deny_method(&self, method: &str, denied: bool) {
        let mut set = self.shared.denied();
        if denied {
            set.insert(method.to_owned());
        } else {
            set.remove(method);
        }
    }
}

#[cfg(test)]
mod tests;
