//! Convergence at scale, resync cost and memory: `count` tenants inserted
//! at once (as many API calls would record them) with the real reconcilers
//! against the simulators; then two full periodic resyncs of every
//! converged tenant (snapshot cold, then fresh); RSS before and after.

use std::time::{Duration, Instant};

use dezky_controller::group::PassIo;
use dezky_controller::pass::{self, PassEnd};
use dezky_controller::queue::Trigger;
use dezky_core::store::Store;
use dezky_core::Id;
use futures::{StreamExt, TryStreamExt};
use mongodb::bson::{doc, Document};

use crate::cpu::{server_status, CpuTimes};
use crate::memory::rss_kib;
use crate::report::{heading, Summary};
use crate::stack::{Backend, Stack, Traffic};
use crate::support::tenants::tenant;

/// Longest wait for all tenants to converge (or to handle the resync).
const LIMIT: Duration = Duration::from_secs(900);

/// Runs the scenario; returns the stack with `count` converged tenants for the API load.
pub async fn converge_and_resync(count: usize, concurrency: usize, summary: &mut Summary) -> Stack {
    heading(&format!(
        "{count} tenants inserted at once, concurrency {concurrency}, real reconcilers + simulators"
    ));
    let stack = Stack::start(Backend::Simulated).await;
    let store = stack.store().clone();
    let controller = stack.leading_controller(concurrency).await;
    let rss_before = rss_kib("self");
    let mongod_before = mongod_resident_mib(&store).await;
    let traffic_before = stack.traffic();
    let cpu_before = CpuTimes::now(&store).await;

    let (converged, elapsed) = insert_and_converge(&store, count, "scale").await;
    let cpu = cpu_before.per_tenant(CpuTimes::now(&store).await, count);
    let convergence = stack.traffic().since(traffic_before);
    let (per_pair, most, _) = stack.calls.per_tenant_and_system();
    let rss_after = rss_kib("self");
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
        "CPU per created tenant",
        cpu,
        format!("{setup}; user + system time over the convergence (this process: controller, API tenant cache, simulators, bench)"),
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

    controller.shutdown().await;
    resync(&stack, count, concurrency, summary).await;
    stack
}

/// Convergence with `latency` added to every upstream request: tenants per
/// second against the ceiling `concurrency / (sequential requests × latency)`,
/// where the sequential requests of a pass are those of its slowest system
/// (the systems of a pass run in parallel). For oCIS those are the drive
/// list the create check waits for, the create and the grant; the group's
/// lookup and create run while the list is awaited.
pub async fn converge_with_latency(
    count: usize,
    concurrency: usize,
    latency: Duration,
    summary: &mut Summary,
) {
    heading(&format!(
        "{count} tenants inserted at once, {} ms added per upstream request",
        latency.as_millis()
    ));
    let stack = Stack::start(Backend::Simulated).await;
    if let Some(u) = &stack.upstreams {
        for faults in [u.authentik.faults(), u.stalwart.faults(), u.ocis.faults()] {
            faults.set_latency(latency);
        }
    }
    let controller = stack.leading_controller(concurrency).await;
    let before = stack.traffic();
    let (converged, elapsed) = insert_and_converge(stack.store(), count, "lat").await;
    controller.shutdown().await;
    let t = stack.traffic().since(before);
    // A created space waited for one whole drive list, however many passes
    // shared it: count the list once per create, not once per request.
    let ocis_sequential = t.ocis.0 - t.ocis_group_calls - t.ocis_lists + t.ocis_space_creates;
    let sequential = [t.authentik.0, t.stalwart.0, ocis_sequential]
        .into_iter()
        .max()
        .unwrap_or(0) as f64
        / count.max(1) as f64;
    let rate = converged as f64 / elapsed.as_secs_f64();
    let ceiling = concurrency as f64 / (sequential * latency.as_secs_f64());
    summary.add(
        format!("tenants converged per second, +{} ms per request", latency.as_millis()),
        format!("{rate:.1} /s = {:.0}% of the ceiling {ceiling:.1} /s", 100.0 * rate / ceiling),
        format!(
            "n={count}, concurrency {concurrency}; ceiling = {concurrency} / ({sequential:.2} sequential requests of the slowest system per tenant x {} ms)",
            latency.as_millis()
        ),
    );
}

/// Inserts `count` tenants (one domain each) named `{prefix}{i}` and waits
/// until all are active; returns how many converged and how long it took.
/// Activations are counted from a change stream (status writes that set
/// `phase: active`), not by polling a collection scan: at 10,000 tenants a
/// `count_documents` every 100 ms costs mongod more than the controller.
pub async fn insert_and_converge(store: &Store, count: usize, prefix: &str) -> (usize, Duration) {
    let tenants: Vec<_> = (0..count)
        .map(|i| {
            let slug = format!("{prefix}{i}");
            let mut t = tenant(&slug);
            t.domains = vec![format!("{slug}.test")];
            t
        })
        .collect();
    let mut activations = store
        .tenants
        .clone_with_type::<Document>()
        .watch()
        .pipeline([doc! { "$match": {
            "operationType": "update",
            // `status` written whole, or as a delta naming `status.phase`.
            "$or": [
                { "updateDescription.updatedFields.status.phase": "active" },
                { "$expr": { "$eq": [
                    { "$getField": { "field": "status.phase", "input": "$updateDescription.updatedFields" } },
                    "active",
                ] } },
            ],
        } }, doc! { "$project": { "operationType": 1, "documentKey": 1 } }])
        .await
        .expect("open a change stream on tenants");
    let started = Instant::now();
    for chunk in tenants.chunks(1000) {
        store
            .tenants
            .insert_many(chunk)
            .await
            .expect("insert tenants");
    }
    let active_filter = doc! { "status.phase": "active" };
    let mut active = std::collections::HashSet::with_capacity(count);
    while active.len() < count && started.elapsed() < LIMIT {
        match tokio::time::timeout(Duration::from_secs(5), activations.next()).await {
            Ok(Some(Ok(event))) => {
                if let Some(id) = event.document_key.and_then(|k| k.get_object_id("_id").ok()) {
                    active.insert(id);
                }
            }
            Ok(_) => break,
            // Quiet for 5 s: check that nothing was missed.
            Err(_) => {
                let counted = store.tenants.count_documents(active_filter.clone()).await;
                if counted.is_ok_and(|n| n as usize >= count) {
                    break;
                }
            }
        }
    }
    let elapsed = started.elapsed();
    let converged = wait_count(store, active_filter, count, started).await;
    (converged, elapsed)
}

/// Slug of the `i`th tenant of the scale run.
pub fn slug(i: usize) -> String {
    format!("scale{i}")
}

/// Runs one periodic-resync pass ([`Trigger::Resync`], as the queue hands
/// out) of every converged tenant, twice with the same reconcilers: the
/// first lists each system's snapshot, the second finds it fresh. Reports
/// the upstream requests that cost per system.
async fn resync(stack: &Stack, count: usize, concurrency: usize, summary: &mut Summary) {
    let store = stack.store();
    let reconcilers = stack.reconcilers();
    let io = PassIo::start(store);
    let ids: Vec<Id> = store
        .tenants
        .clone_with_type::<Document>()
        .find(doc! {})
        .projection(doc! { "_id": 1 })
        .await
        .expect("list tenants")
        .try_collect::<Vec<_>>()
        .await
        .expect("read tenants")
        .iter()
        .filter_map(|t| t.get_object_id("_id").ok().map(Id))
        .collect();
    for round in ["first (lists the snapshots)", "second (snapshots fresh)"] {
        let before = stack.traffic();
        let started = Instant::now();
        let converged = futures::stream::iter(ids.iter().copied())
            .map(|id| {
                let (reconcilers, io) = (&reconcilers, &io);
                async move {
                    pass::run(
                        io,
                        reconcilers,
                        id,
                        Trigger::Resync,
                        Duration::from_secs(30),
                    )
                    .await
                }
            })
            .buffer_unordered(concurrency)
            .filter(|end| futures::future::ready(matches!(end, Ok(PassEnd::Converged))))
            .count()
            .await;
        let elapsed = started.elapsed();
        let t = stack.traffic().since(before);
        let setup = format!(
            "{round} full resync of {count} converged tenants, concurrency {concurrency}; \
             {converged} converged, {:.1} passes/s",
            count as f64 / elapsed.as_secs_f64()
        );
        let per = |requests: u64, per: usize| requests as f64 * per as f64 / count.max(1) as f64;
        summary.add(
            format!("resync {}: upstream requests (writes)", &round[..round.find(' ').unwrap_or(0)]),
            format!(
                "Authentik {} ({}) = {:.2} / 100 tenants; Stalwart {} ({} sets) = {:.2} / 1,000 tenants; oCIS {} ({}) = {:.2} / 100 tenants; tokens {}",
                t.authentik.0, t.authentik.1, per(t.authentik.0, 100),
                t.stalwart.0, t.stalwart_sets, per(t.stalwart.0, 1000),
                t.ocis.0, t.ocis.1, per(t.ocis.0, 100),
                t.token_requests
            ),
            setup,
        );
    }
}

/// `A 3.0 (1.0), S 2.0 (1.0), O 6.0 (3.0), tokens 1`.
pub fn per_tenant(t: Traffic, count: usize) -> String {
    let n = count.max(1) as f64;
    let f = |(all, writes): (u64, u64)| format!("{:.2} ({:.2})", all as f64 / n, writes as f64 / n);
    format!(
        "Authentik {}, Stalwart {} [{:.1} sets], oCIS {} [{} drive lists], tokens {}",
        f(t.authentik),
        f(t.stalwart),
        t.stalwart_sets as f64 / n,
        f(t.ocis),
        t.ocis_lists,
        t.token_requests
    )
}

/// Polls every 100 ms until `filter` matches `count` tenants or [`LIMIT`]
/// passes since `started`; returns how many matched last.
pub async fn wait_count(store: &Store, filter: Document, count: usize, started: Instant) -> usize {
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

/// `mongod`'s resident memory in MiB (`serverStatus.mem.resident`).
async fn mongod_resident_mib(store: &Store) -> i64 {
    let status = server_status(store).await.expect("serverStatus");
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
