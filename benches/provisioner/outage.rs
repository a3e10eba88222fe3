//! Upstream load during an outage: `count` converged tenants, then every
//! simulator answers 503 for `window` while every tenant is asked to
//! reconcile (so all of them fail and retry with backoff). The figure is the
//! request rate each upstream received meanwhile: the circuit breaker of
//! each shared client should hold it near one probe a second, whatever the
//! number of tenants. Then the outage ends and the time until every tenant
//! handled the request is measured.

use std::time::{Duration, Instant};

use dezky_core::Timestamp;
use mongodb::bson::doc;

use crate::report::{heading, Summary};
use crate::scale::{insert_and_converge, wait_count};
use crate::stack::{Backend, Stack};

pub async fn during_outage(count: usize, window: Duration, summary: &mut Summary) {
    heading(&format!(
        "{}s outage of every upstream with {count} tenants",
        window.as_secs()
    ));
    let stack = Stack::start(Backend::Simulated).await;
    let controller = stack.leading_controller(16).await;
    insert_and_converge(stack.store(), count, "out").await;
    let Some(upstreams) = &stack.upstreams else {
        return;
    };
    let all = [
        upstreams.authentik.faults(),
        upstreams.stalwart.faults(),
        upstreams.ocis.faults(),
    ];
    for faults in all {
        faults.set_outage(true);
    }
    let before = stack.traffic();
    let token = format!("bench-outage-{}", uuid::Uuid::new_v4().simple());
    stack
        .store()
        .tenants
        .update_many(
            doc! {},
            doc! { "$set": { "reconcileRequest": {
            "token": &token, "requestedAt": Timestamp::now().to_bson() } } },
        )
        .await
        .expect("request a reconcile of every tenant");
    tokio::time::sleep(window).await;
    let during = stack.traffic().since(before);
    for faults in all {
        faults.set_outage(false);
    }
    let ended = Instant::now();
    let handled = wait_count(
        stack.store(),
        doc! { "status.lastHandledReconcileToken": &token, "status.phase": "active" },
        count,
        ended,
    )
    .await;
    let recovered = ended.elapsed();
    controller.shutdown().await;
    let rate = |requests: u64| requests as f64 / window.as_secs_f64();
    summary.add(
        "requests/s to an upstream during an outage",
        format!(
            "Authentik {:.2}, Stalwart {:.2}, oCIS {:.2}",
            rate(during.authentik.0),
            rate(during.stalwart.0),
            rate(during.ocis.0)
        ),
        format!(
            "{count} tenants all asked to reconcile, every upstream 503 for {}s; backoff 200 ms..5 s; afterwards {handled}/{count} active again in {:.1} s",
            window.as_secs(),
            recovered.as_secs_f64()
        ),
    );
}
