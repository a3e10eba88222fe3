//! The long-running modes: `serve` (API + controller), `api`, `controller`.
//! Each waits for SIGINT/SIGTERM, then stops taking work, finishes what is
//! in flight (the controller saves its resume token and releases its
//! lease) and only then closes the database and stops the embedded
//! `mongod`, which runs in its own process group so that a signal to ours
//! does not stop it early.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use dezky_api::{ApiConfig, Readiness};
use dezky_controller::{Controller, ControllerConfig, ControllerHealth};
use dezky_core::store::{Store, StoreError};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::{
    ApiArgs, ControllerArgs, ControllerTuning, HttpArgs, OidcArgs, ServeArgs, TenantArgs,
    UpstreamArgs,
};
use crate::database::Database;
use crate::upstreams::{self, Shared};

/// `provisioner serve`.
pub async fn serve(args: ServeArgs, prometheus: PrometheusHandle) -> anyhow::Result<()> {
    let stop = shutdown_signal();
    let db = Database::open(&args.mongo).await?;
    let http = outbound(&args.http)?;
    seed(&db.store, &args.tenants).await?;
    let controller = build_controller(
        &db.store,
        &args.upstreams,
        &args.tenants,
        &args.controller,
        http.clone(),
        Some(&args.oidc.oidc_issuer),
    )
    .await?;
    let readiness = controller_readiness(controller.health());
    let router = api_router(
        &db.api_store,
        &args.oidc,
        &args.tenants,
        http,
        readiness,
        prometheus,
        stop.clone(),
    )
    .await?;
    run_until_signal(db, &args.http, router, Some(controller), stop).await
}

/// `provisioner api`.
pub async fn api(args: ApiArgs, prometheus: PrometheusHandle) -> anyhow::Result<()> {
    let stop = shutdown_signal();
    let db = Database::open(&args.mongo).await?;
    let http = outbound(&args.http)?;
    seed(&db.store, &args.tenants).await?;
    let router = api_router(
        &db.api_store,
        &args.oidc,
        &args.tenants,
        http,
        Readiness::default(),
        prometheus,
        stop.clone(),
    )
    .await?;
    run_until_signal(db, &args.http, router, None, stop).await
}

/// `provisioner controller`.
pub async fn controller(args: ControllerArgs, prometheus: PrometheusHandle) -> anyhow::Result<()> {
    let stop = shutdown_signal();
    let db = Database::open(&args.mongo).await?;
    let http = outbound(&args.http)?;
    let controller = build_controller(
        &db.store,
        &args.upstreams,
        &args.tenants,
        &args.controller,
        http,
        args.oidc_issuer.as_deref(),
    )
    .await?;
    let readiness = controller_readiness(controller.health());
    let router = dezky_api::ops::router(db.store.db.clone(), readiness, prometheus);
    run_until_signal(db, &args.http, router, Some(controller), stop).await
}

/// The controller with one reconciler per configured upstream.
async fn build_controller(
    store: &Store,
    upstreams: &UpstreamArgs,
    tenants: &TenantArgs,
    tuning: &ControllerTuning,
    http: reqwest::Client,
    oidc_issuer: Option<&str>,
) -> anyhow::Result<Controller> {
    let shared = Shared {
        http,
        group_prefix: &tenants.group_prefix,
        plans: &tenants.plan_quotas,
        oidc_issuer,
        snapshot_age: tuning.resync_interval,
    };
    let reconcilers = upstreams::reconcilers(upstreams, shared).await?;
    Ok(Controller::new(
        store.clone(),
        reconcilers,
        controller_config(tuning),
    ))
}

/// Serves `router` (and runs `controller`) until `stop` (SIGINT/SIGTERM),
/// then lets both finish and closes the database.
async fn run_until_signal(
    db: Database,
    http: &HttpArgs,
    router: Router,
    controller: Option<Controller>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let controller = controller.map(|c| tokio::spawn(c.run(stop.clone())));
    listen(http, router, stop).await?;
    if let Some(controller) = controller {
        controller.await.context("controller task")?;
    }
    db.close().await;
    Ok(())
}

/// The outbound HTTP client (timeout, extra roots) of every upstream call.
pub fn outbound(args: &HttpArgs) -> anyhow::Result<reqwest::Client> {
    Ok(dezky_core::http::client(
        args.extra_ca_certs.as_deref(),
        args.upstream_timeout,
    )?)
}

/// Creates the default tenant (`DEFAULT_TENANT_SLUG`) if it is set and missing.
pub async fn seed(store: &Store, tenants: &TenantArgs) -> anyhow::Result<()> {
    if tenants.default_tenant_slug.is_empty() {
        return Ok(());
    }
    dezky_core::validate::slug(&tenants.default_tenant_slug).context("DEFAULT_TENANT_SLUG")?;
    let plan = tenants.plan_quotas.default_plan();
    match dezky_api::ensure_default_tenant(store, &tenants.default_tenant_slug, plan).await {
        // It exists but cannot be read: reported, and no reason not to serve the others.
        Err(StoreError::Undecodable(e)) => {
            e.report();
            Ok(())
        }
        result => result.map(|_| ()).context("creating the default tenant"),
    }
}

/// The API router for the given settings; its background work ends with `stop`.
pub async fn api_router(
    store: &Store,
    oidc: &OidcArgs,
    tenants: &TenantArgs,
    http: reqwest::Client,
    readiness: Readiness,
    prometheus: PrometheusHandle,
    stop: CancellationToken,
) -> anyhow::Result<Router> {
    let mut config = ApiConfig::new(&oidc.oidc_issuer, &oidc.oidc_audience, http);
    config.oidc_jwks_url = oidc.oidc_jwks_url.clone();
    config.platform_admin_group = oidc.platform_admin_group.clone();
    config.console_client_id = oidc.console_client_id.clone().filter(|id| !id.is_empty());
    config.console_token_paste = oidc.console_token_paste;
    config.group_prefix = tenants.group_prefix.clone();
    config.plans = tenants.plan_quotas.clone();
    config.readiness = readiness;
    config.shutdown = stop;
    Ok(dezky_api::build(store.clone(), config, prometheus).await?)
}

/// The controller settings from the command line.
pub fn controller_config(t: &ControllerTuning) -> ControllerConfig {
    ControllerConfig {
        resync_interval: t.resync_interval,
        concurrency: t.reconcile_concurrency,
        backoff_base: t.backoff_base,
        backoff_max: t.backoff_max,
        reconcile_timeout: t.reconcile_timeout,
        lease_duration: t.lease_duration,
        ..ControllerConfig::default()
    }
}

/// Ready while the controller loop runs (as leader or standby).
pub fn controller_readiness(health: Arc<ControllerHealth>) -> Readiness {
    Readiness::new(move || {
        if health.is_running() {
            Ok(())
        } else {
            Err("controller is not running".to_string())
        }
    })
}

/// Serves `router` on the listen address until `stop` fires.
pub async fn listen(
    args: &HttpArgs,
    router: Router,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen_addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen_addr))?;
    info!(addr = %args.listen_addr, "listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .context("HTTP server")?;
    Ok(())
}

/// A token cancelled on SIGINT or SIGTERM.
pub fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let fire = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        fire.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        info!("shutdown requested");
        fire.cancel();
    });
    token
}
