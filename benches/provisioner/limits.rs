//! New tenants under the product's default per-upstream rate limits (20
//! requests/s, burst 40: `DEFAULT_QPS`/`DEFAULT_BURST` of `src/config.rs`):
//! how long `count` tenants created at once take to converge. The upstream
//! that needs the most requests per new tenant bounds it: at 20 requests/s,
//! one request per tenant is 20 tenants/s after the burst.

use std::time::Duration;

use crate::report::{heading, Summary};
use crate::scale::{insert_and_converge, per_tenant};
use crate::stack::{config, Backend, Running, Stack};

/// `AUTHENTIK_QPS`, `STALWART_QPS`, `OCIS_QPS` and their bursts, by default.
const DEFAULT_LIMIT: (u32, u32) = (20, 40);

/// Runs the scenario and adds its figure to `summary`.
pub async fn new_tenants_at_default_limits(count: usize, summary: &mut Summary) {
    heading(&format!(
        "{count} new tenants at once, default rate limits ({} requests/s, burst {} per upstream)",
        DEFAULT_LIMIT.0, DEFAULT_LIMIT.1
    ));
    let stack = Stack::start(Backend::Simulated).await;
    let reconcilers = stack.reconcilers_limited(Some(DEFAULT_LIMIT));
    let running = Running::start(stack.store(), reconcilers, config(16));
    running.wait_leader(Duration::from_secs(15)).await;
    let before = stack.traffic();
    let (converged, elapsed) = insert_and_converge(stack.store(), count, "limited").await;
    let traffic = stack.traffic().since(before);
    summary.add(
        "new tenants at the default rate limits",
        format!("{count} in {:.1} s", elapsed.as_secs_f64()),
        format!(
            "{converged} active; requests (writes) per tenant: {}",
            per_tenant(traffic, count)
        ),
    );
    running.shutdown().await;
}
