//! `provisioner demo`: the whole service on one machine with nothing
//! configured. Starts a fresh local MongoDB, the upstream simulators, the
//! API and the controller (as `serve` wires them), runs the scripted
//! [`tour`], prints how to call the API, then runs until Ctrl-C (or exits
//! with `--once`).

mod client;
mod table;
mod tour;

use std::time::Duration;

use anyhow::Context;
use dezky_controller::{Controller, ControllerConfig};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{DemoArgs, MongoArgs, OidcArgs, DEFAULT_ADMIN_GROUP};
use crate::database::Database;
use crate::run;
use crate::simulate::{self, Ports, Simulators};
use crate::upstreams::{self, Shared};

use self::client::ApiClient;

/// How long the API may take to answer `/healthz` after start.
const API_START_DEADLINE: Duration = Duration::from_secs(30);

/// `provisioner demo`.
pub async fn demo(args: DemoArgs, prometheus: PrometheusHandle) -> anyhow::Result<()> {
    let stop = run::shutdown_signal();
    wipe(&args)?;
    println!("Starting MongoDB (data in {}) ...", args.data_dir.display());
    let db = Database::open(&MongoArgs {
        mongodb_uri: None,
        mongodb_db: "dezky".into(),
        mongod_bin: args.mongod_bin.clone(),
        mongod_data_dir: args.data_dir.clone(),
        mongod_port: args.mongod_port,
    })
    .await?;
    let result = with_database(&args, &db, prometheus, stop).await;
    db.close().await;
    result
}

/// Removes the previous demo's data, so every demo starts empty.
fn wipe(args: &DemoArgs) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(&args.data_dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot wipe {}", args.data_dir.display())),
    }
}

/// Everything after MongoDB: simulators, API, controller, tour, wait.
async fn with_database(
    args: &DemoArgs,
    db: &Database,
    prometheus: PrometheusHandle,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let sims = Simulators::start(Ports::default()).await?;
    simulate::approve_logins(&sims, args.http.listen_addr);
    println!(
        "Simulators: Authentik {}, Stalwart {}, oCIS {}",
        sims.authentik.url(),
        sims.stalwart.url(),
        sims.ocis.url()
    );
    let http = run::outbound(&args.http)?;
    run::seed(&db.store, &args.tenants).await?;
    let reconcilers = upstreams::reconcilers(
        &simulate::upstream_args(&sims),
        Shared {
            http: http.clone(),
            group_prefix: &args.tenants.group_prefix,
            plans: &args.tenants.plan_quotas,
            oidc_issuer: Some(&sims.oidc_issuer()),
            snapshot_age: args.resync_interval,
        },
    )
    .await?;
    let controller = Controller::new(
        db.store.clone(),
        reconcilers,
        ControllerConfig {
            resync_interval: args.resync_interval,
            ..ControllerConfig::default()
        },
    );
    let oidc = OidcArgs {
        oidc_issuer: sims.oidc_issuer(),
        oidc_audience: sims.oidc_audience(),
        oidc_jwks_url: None,
        platform_admin_group: DEFAULT_ADMIN_GROUP.into(),
        console_client_id: Some(simulate::CONSOLE_CLIENT_ID.into()),
        console_token_paste: true,
    };
    let readiness = run::controller_readiness(controller.health());
    let router = run::api_router(
        &db.api_store,
        &oidc,
        &args.tenants,
        http,
        readiness,
        prometheus,
        stop.clone(),
    )
    .await?;
    let controller = tokio::spawn(controller.run(stop.clone()));
    let token = simulate::admin_token(&sims);
    let api = ApiClient::new(&format!("http://{}", args.http.listen_addr), &token)?;
    let serving = async {
        let served = run::listen(&args.http, router, stop.clone()).await;
        stop.cancel();
        served
    };
    let driving = async {
        let outcome = tokio::select! {
            outcome = tour_and_help(args, &api, &sims, &token) => outcome,
            _ = stop.cancelled() => Ok(()),
        };
        if outcome.is_ok() && !args.once {
            println!();
            println!("The demo keeps running; press Ctrl-C to stop it.");
            stop.cancelled().await;
        }
        stop.cancel();
        outcome
    };
    let (served, outcome) = tokio::join!(serving, driving);
    controller.await.context("controller task")?;
    served?;
    outcome
}

async fn tour_and_help(
    args: &DemoArgs,
    api: &ApiClient,
    sims: &Simulators,
    token: &str,
) -> anyhow::Result<()> {
    api.wait_healthy(API_START_DEADLINE).await?;
    println!("API listening on {}", api.base());
    tour::run(api, sims, &args.tenants).await?;
    println!();
    println!("== Try it ==");
    println!(
        "Console: {} (opens signed in as the demo admin)",
        simulate::console_url(args.http.listen_addr)
    );
    println!("Base URL: {}", api.base());
    print!("{}", simulate::token_help(token, args.http.listen_addr));
    let base = api.base();
    let auth = "-H \"Authorization: Bearer $TOKEN\"";
    println!("  curl -s {auth} {base}/tenants/acme");
    println!("  curl -s {auth} {base}/tenants/acme/events");
    println!("  curl -s {auth} {base}/tenants/acme/plan");
    println!("  curl -s -X POST {auth} '{base}/tenants/acme/reconcile?wait=30s'");
    println!(
        "  curl -s -X PATCH {auth} -H 'Content-Type: application/json' \\\n      \
         -d '{{\"domains\": [\"acme.test\", \"shop.acme.test\"]}}' {base}/tenants/acme"
    );
    println!(
        "  curl -s -X POST {auth} -H 'Content-Type: application/json' \\\n      \
         -d '{{\"slug\": \"umbrella\", \"name\": \"Umbrella\", \"plan\": \"{}\"}}' {base}/tenants",
        args.tenants.plan_quotas.default_plan()
    );
    println!("  curl -s -X DELETE {auth} {base}/tenants/initech");
    print!("{}", simulate::client_help(sims, args.http.listen_addr));
    println!("Other routes: /users, /subscriptions (platform admin), /openapi.json, /healthz, /readyz, /metrics");
    println!(
        "To run `provisioner serve` against simulators of your own, see `provisioner simulate`."
    );
    Ok(())
}
