//! The HTTP API of the dezky provisioner (DESIGN §4, §5). It validates input,
//! records desired state in MongoDB (bumping `generation`) and answers from
//! MongoDB; it never calls Authentik, Stalwart or oCIS.
//!
//! Layout: one module per resource ([`tenants`], [`events`], [`users`],
//! [`subscriptions`], [`fleet`] for the fleet view), each with a `router()`; [`auth`] turns a bearer token
//! into an `Actor`; [`tenant_cache`] answers tenant reads from memory, fed by
//! the `tenants` change stream; [`error::ApiError`] renders every failure; [`ops`] holds
//! the token-free health, readiness and metrics routes; [`body`] keeps
//! connections usable after refusals; [`openapi`] describes it all; [`seed`]
//! creates the default tenant; `console` serves the operator console at
//! `/console/`.

pub mod auth;
pub mod body;
mod config;
mod console;
pub mod error;
mod events;
mod fleet;
mod json;
mod membership;
pub mod openapi;
pub mod ops;
mod pagination;
mod requests;
pub mod seed;
mod state;
mod stored;
mod subscriptions;
pub mod tenant_cache;
mod tenants;
mod users;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use dezky_core::store::Store;
use metrics_exporter_prometheus::PrometheusHandle;

pub use config::{ApiConfig, Readiness};
pub use json::BODY_LIMIT;
pub use seed::ensure_default_tenant;

use crate::auth::actors::{self, ActorCache};
use crate::auth::{DiscoveryError, Verifier};
use crate::error::ApiError;
use crate::state::ApiContext;
use crate::tenant_cache::TenantCache;

/// Why the API could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ApiBuildError {
    /// OIDC discovery or the JWKS failed (unreachable, wrong issuer, no keys).
    #[error("OIDC issuer {issuer}: {source}")]
    Oidc {
        issuer: String,
        #[source]
        source: DiscoveryError,
    },
}

/// The built API: its router and the tenant cache behind it (which tests
/// and benchmarks observe).
pub struct Api {
    pub router: Router,
    pub tenant_cache: Arc<TenantCache>,
}

/// The full API router (routes, auth, limits, metrics), ready to serve.
/// Fetches the issuer's discovery document and JWKS first, so a wrong
/// `OIDC_ISSUER` or an HS256-only provider fails here, at start. Starts the
/// change streams of the actor cache and the tenant cache, which run until
/// `config.shutdown` fires.
pub async fn build(
    store: Store,
    config: ApiConfig,
    prometheus: PrometheusHandle,
) -> Result<Router, ApiBuildError> {
    build_api(store, config, prometheus)
        .await
        .map(|api| api.router)
}

/// [`build`], also returning the tenant cache.
pub async fn build_api(
    store: Store,
    config: ApiConfig,
    prometheus: PrometheusHandle,
) -> Result<Api, ApiBuildError> {
    let verifier = Verifier::discover(
        &config.oidc_issuer,
        &config.oidc_audience,
        config.oidc_jwks_url.as_deref(),
        config.http.clone(),
    )
    .await
    .map_err(|source| ApiBuildError::Oidc {
        issuer: config.oidc_issuer.clone(),
        source,
    })?;
    let verifier = match &config.console_client_id {
        Some(client) => verifier.also_accept(client),
        None => verifier,
    };
    let ops = ops::router(store.db.clone(), config.readiness.clone(), prometheus);
    let document = openapi::document(&config.plans);
    let actors = Arc::new(ActorCache::default());
    tokio::spawn(actors::follow_users(
        actors.clone(),
        store.users.clone(),
        config.shutdown.clone(),
    ));
    let tenant_cache = Arc::new(TenantCache::default());
    tokio::spawn(tenant_cache::follow(
        tenant_cache.clone(),
        store.tenants.clone(),
        config.shutdown.clone(),
    ));
    let ctx = ApiContext {
        store,
        config: Arc::new(config),
        verifier: Arc::new(verifier),
        actors,
        tenant_cache: tenant_cache.clone(),
    };
    let resources = Router::new()
        .merge(tenants::router())
        .merge(requests::router())
        .merge(events::router())
        .merge(fleet::router())
        .merge(users::router())
        .merge(subscriptions::router())
        .merge(console::router())
        .with_state(ctx);
    let router = Router::new()
        .merge(resources)
        .merge(ops)
        .merge(openapi::router(document))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(body::finish_unread_body))
        .layer(axum::middleware::from_fn(ops::record_http));
    Ok(Api {
        router,
        tenant_cache,
    })
}
