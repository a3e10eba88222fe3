//! New tenants under the product's default per-upstream rate limits
//! (`dezky_core::http::limits`: Authentik and Stalwart 20 requests/s, burst
//! 40; oCIS 50, burst 100): how long `count` tenants created at once take to
//! converge. The upstream whose requests per new tenant over its rate is
//! highest bounds it.

use std::time::Duration;

use dezky_controller::ControllerConfig;
use dezky_core::http::limits::{DEFAULT_BURST, DEFAULT_QPS, OCIS_DEFAULT_BURST, OCIS_DEFAULT_QPS};

use crate::report::{heading, Summary};
use crate::scale::{insert_and_converge, per_tenant};
use crate::stack::{config, Backend, Limits, Running, Stack};

/// Runs the scenario and adds its figure to `summary`.
pub async fn new_tenants_at_default_limits(count: usize, summary: &mut Summary) {
    let limits = Limits {
        authentik: (DEFAULT_QPS, DEFAULT_BURST),
        stalwart: (DEFAULT_QPS, DEFAULT_BURST),
        ocis: (OCIS_DEFAULT_QPS, OCIS_DEFAULT_BURST),
    };
    heading(&format!(
        "{count} new tenants at once, default rate limits (requests/s, burst: {limits})"
    ));
    let stack = Stack::start(Backend::Simulated).await;
    let reconcilers = stack.reconcilers_limited(Some(limits));
    // The product's defaults: a step may wait its turn at the limiter up to
    // `RECONCILE_TIMEOUT` (60 s), not the 10 s of the other scenarios.
    let config = ControllerConfig {
        reconcile_timeout: Duration::from_secs(60),
        ..config(16)
    };
    let running = Running::start(stack.store(), reconcilers, config);
    running.wait_leader(Duration::from_secs(15)).await;
    let before = stack.traffic();
    let (converged, elapsed) = insert_and_converge(stack.store(), count, "limited").await;
    let traffic = stack.traffic().since(before);
    summary.add(
        "new tenants at the default rate limits",
        format!("{count} in {:.1} s", elapsed.as_secs_f64()),
        format!(
            "{limits}; {converged} active; requests (writes) per tenant: {}",
            per_tenant(traffic, count)
        ),
    );
    running.shutdown().await;
}
