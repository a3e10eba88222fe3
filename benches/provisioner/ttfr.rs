//! Time to first reconcile (TTFR) of a new tenant while every existing
//! tenant is due for its periodic resync: a controller whose resync
//! interval is 1 ms keeps all converged tenants permanently due (their
//! passes are answered from the snapshots), and new tenants are inserted one
//! at a time; the figure is insert → `phase: active` (the first pass ends
//! with the tenant active at 0 ms simulator latency).

use std::time::{Duration, Instant};

use crate::latency::ActiveWatch;
use crate::report::{heading, ms, Percentiles, Summary};
use crate::stack::{config, Stack};
use crate::support::tenants::tenant;

/// Longest wait for one new tenant.
const PER_TENANT_LIMIT: Duration = Duration::from_secs(30);

/// Runs the scenario on `stack`, whose `due` tenants are converged.
pub async fn during_full_resync(
    stack: &Stack,
    due: usize,
    concurrency: usize,
    count: usize,
    summary: &mut Summary,
) {
    heading(&format!(
        "TTFR of {count} new tenants while {due} tenants are due for resync"
    ));
    let controller = stack
        .leading_controller_with(dezky_controller::ControllerConfig {
            resync_interval: Duration::from_millis(1),
            ..config(concurrency)
        })
        .await;
    let watch = ActiveWatch::open(stack.store()).await;
    // Let the relist queue every tenant and the resync storm start.
    while !controller.health.is_synced() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let passes_before = stack.calls.total();
    let storm_started = Instant::now();
    let mut samples = Vec::with_capacity(count);
    let mut missed = 0;
    for i in 0..count {
        let slug = format!("ttfr{i}");
        let active = watch.expect(&slug);
        let inserted = Instant::now();
        stack
            .store()
            .tenants
            .insert_one(tenant(&slug))
            .await
            .expect("insert tenant");
        match tokio::time::timeout(PER_TENANT_LIMIT, active).await {
            Ok(Ok(at)) => samples.push(at.saturating_duration_since(inserted)),
            _ => missed += 1,
        }
    }
    let storm = stack.calls.total() - passes_before;
    let storm_rate = storm as f64 / storm_started.elapsed().as_secs_f64() / 3.0;
    controller.shutdown().await;
    let setup = format!(
        "{due} tenants due all the time (resync interval 1 ms), concurrency {concurrency}; \
         {storm_rate:.0} resync passes/s ran meanwhile; {missed} not active within {PER_TENANT_LIMIT:?}"
    );
    match Percentiles::of(&samples) {
        Some(p) => summary.add(
            "TTFR p50 / p99 during a full resync",
            format!("{} / {}", ms(p.p50), ms(p.p99)),
            format!("{setup}; {}", p.describe()),
        ),
        None => summary.add(
            "TTFR during a full resync",
            "no tenant turned active",
            setup,
        ),
    }
}
