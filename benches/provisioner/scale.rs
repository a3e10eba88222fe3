//! Convergence at scale, resync cost and memory: `count` tenants inserted
//! at once (as many API calls would record them) with the real reconcilers
//! against the simulators; then a forced resync of every converged tenant
//! through the manual-reconcile token; RSS before and after.

use std::time::{Duration, Instant};

use dezky_core::store::Store;
use dezky_core::Timestamp;
use mongodb::bson::{doc, Document};

use crate::report::{heading, Summary};
use crate::stack::{Backend, Stack, Traffic};
use crate::support::tenants::tenant;

/// Longest wait for all tenants to converge (or to handle the resync).
const LIMIT: Duration = Duration::from_secs(300);

/// Runs the scenario; returns the stack with `count` converged tenants for the API load.
pub async fn converge_and_resync(count: usize, concurrency: usize, summary: &mut Summary) -> Stack {
    heading(&format!(
        "{count} tenants inserted at once, concurrency {concurrency}, real reconcilers + simulators"
    ));
    let stack = Stack::start(Backend::Simulated).await;
    let store = stack.store().clone();
    let controller = stack.leading_controller(concurrency).await;
    let rss_before = rss_kib();
    let mongod_before = mongod_resident_mib(&store).await;
    let traffic_before = stack.traffic();

    let tenants: Vec<_> = (0..count)
        .map(|i| {
            let slug = slug(i);
            let mut t = tenant(&slug);
            t.domains = vec![format!("{slug}.test")];
            t
        })
        .collect();
    let started = Instant::now();
    store
        .tenants
        .insert_many(&tenants)
        .await
        .expect("insert tenants");
    let converged = wait_count(&store, doc! { "status.phase": "active" }, count, started).await;
    let elapsed = started.elapsed();
    let convergence = stack.traffic().since(traffic_before);
    let (per_pair, most, _) = stack.calls.per_tenant_and_system();
    let rss_after = rss_kib();
    let mongod_after = mongod_resident_mib(&store).await;

    let setup = format!("n={count}, concurrency {concurrency}, real reconcilers + simulators");
    summary.add(
        "tenants converged per second",
        format!("{:.1} /s", converged as f64 / elapsed.as_secs_f64()),
        format!(
            "{setup}; {converged} active in {:.2} s",
            elapsed.as_secs_f64()
        ),
    );
    summary.add(
        "reconciles per created tenant (at scale)",
        format!("{per_pair:.2}"),
        format!("{setup}; most {most} for one tenant and system"),
    );
    summary.add(
        "upstream calls per tenant creation",
        per_tenant(convergence, count),
        format!("{setup}; requests (writes) per tenant"),
    );
    summary.add(
        "memory per tenant (this process, RSS)",
        format!(
            "{:.1} KiB",
            rss_after.saturating_sub(rss_before) as f64 / count as f64
        ),
        format!(
            "{setup}; VmRSS {rss_before} -> {rss_after} KiB: API + controller + simulators' objects and request logs + mongo driver"
        ),
    );
    summary.add(
        "memory per tenant (mongod, resident)",
        format!(
            "{:.1} KiB",
            (mongod_after - mongod_before) as f64 * 1024.0 / count as f64
        ),
        format!(
            "{setup}; serverStatus mem.resident {mongod_before} -> {mongod_after} MiB (coarse)"
        ),
    );

    resync(&stack, count, summary).await;
    controller.shutdown().await;
    stack
}

/// Slug of the `i`th tenant of the scale run.
pub fn slug(i: usize) -> String {
    format!("scale{i}")
}

/// Forces one pass of every converged tenant and reports the upstream
/// calls that cost (a converged tenant should cost reads only).
async fn resync(stack: &Stack, count: usize, summary: &mut Summary) {
    let store = stack.store();
    let token = format!("bench-resync-{}", uuid::Uuid::new_v4().simple());
    let before = stack.traffic();
    stack.calls.clear();
    let started = Instant::now();
    store
        .tenants
        .update_many(
            doc! {},
            doc! { "$set": { "reconcileRequest": {
            "token": &token, "requestedAt": Timestamp::now().to_bson() } } },
        )
        .await
        .expect("request a reconcile of every tenant");
    let handled = wait_count(
        store,
        doc! { "status.lastHandledReconcileToken": &token },
        count,
        started,
    )
    .await;
    let elapsed = started.elapsed();
    let traffic = stack.traffic().since(before);
    let n = handled.max(1) as f64;
    let setup = format!("resync of {handled} converged tenants via manual reconcile tokens");
    summary.add(
        "resync: Authentik requests (writes) / tenant",
        format!(
            "{:.2} ({:.2})",
            traffic.authentik.0 as f64 / n,
            traffic.authentik.1 as f64 / n
        ),
        setup.clone(),
    );
    summary.add(
        "resync: Stalwart requests (writes) / tenant",
        format!(
            "{:.2} ({:.2})",
            traffic.stalwart.0 as f64 / n,
            traffic.stalwart.1 as f64 / n
        ),
        setup.clone(),
    );
    summary.add(
        "resync: Stalwart JMAP */set calls / tenant",
        format!("{:.2}", traffic.stalwart_sets as f64 / n),
        format!("{setup}; JMAP reads are POSTs too, so this is Stalwart's write count"),
    );
    summary.add(
        "resync: oCIS requests (writes) / tenant",
        format!(
            "{:.2} ({:.2})",
            traffic.ocis.0 as f64 / n,
            traffic.ocis.1 as f64 / n
        ),
        setup.clone(),
    );
    summary.add(
        "resync: oCIS token requests (total)",
        traffic.token_requests.to_string(),
        format!("{setup}; tokens are cached until near expiry"),
    );
    summary.add(
        "resync passes per second",
        format!("{:.1} /s", n / elapsed.as_secs_f64()),
        format!("{setup}; {:.2} s", elapsed.as_secs_f64()),
    );
}

/// `A 3.0 (1.0), S 2.0 (1.0), O 6.0 (3.0), tokens 1`.
fn per_tenant(t: Traffic, count: usize) -> String {
    let n = count.max(1) as f64;
    let f = |(all, writes): (u64, u64)| format!("{:.1} ({:.1})", all as f64 / n, writes as f64 / n);
    format!(
        "Authentik {}, Stalwart {} [{:.1} sets], oCIS {}, tokens {}",
        f(t.authentik),
        f(t.stalwart),
        t.stalwart_sets as f64 / n,
        f(t.ocis),
        t.token_requests
    )
}

/// Polls every 100 ms until `filter` matches `count` tenants or [`LIMIT`]
/// passes since `started`; returns how many matched last.
async fn wait_count(store: &Store, filter: Document, count: usize, started: Instant) -> usize {
    loop {
        let matched = store
            .tenants
            .count_documents(filter.clone())
            .await
            .expect("count tenants") as usize;
        if matched >= count {
            return matched;
        }
        if started.elapsed() > LIMIT {
            println!("  only {matched}/{count} after {LIMIT:?}");
            return matched;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// This process's resident set size (`VmRSS` of /proc/self/status), KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `mongod`'s resident memory in MiB (`serverStatus.mem.resident`).
async fn mongod_resident_mib(store: &Store) -> i64 {
    let status = store
        .db
        .client()
        .database("admin")
        .run_command(doc! { "serverStatus": 1 })
        .await
        .expect("serverStatus");
    status
        .get_document("mem")
        .ok()
        .and_then(|mem| {
            mem.get_i32("resident")
                .map(i64::from)
                .or_else(|_| mem.get_i64("resident"))
                .ok()
        })
        .unwrap_or(0)
}
