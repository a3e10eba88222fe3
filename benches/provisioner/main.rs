//! `cargo bench --bench provisioner` (`make bench`): the benchmark report
//! of DESIGN §9, against a real `mongod` (started like the integration
//! tests start it, or `MONGODB_URI`) and the API, controller and
//! simulators in this process on loopback. It prints figures and ratios,
//! never asserts on timings; `docs/benchmarks.md` explains each figure.
//!
//! `BENCH_QUICK=1` (or the argument `quick`) runs smaller numbers;
//! `BENCH_ONLY=scale,ttfr` runs only the named scenarios (`latency`,
//! `scale`, `latency20`, `api`, `ttfr`, `memory`, `outage`, `limits`, `posts`, `apply`,
//! `failover`;
//! `api` and `ttfr` run on the tenants `scale` converged);
//! `BENCH_CONCURRENCY=64` sets the reconcile concurrency of `scale`, `ttfr`
//! and `latency20` (default 16, the product's default).
//! Under `cargo test --all-targets` (no `--bench` argument) it does nothing.

mod api_load;
mod cpu;
mod failover;
mod latency;
mod limits;
mod memory;
mod outage;
mod posts;
mod report;
mod scale;
mod stack;
mod ttfr;

#[allow(dead_code)]
#[path = "../../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use report::Summary;
use stack::Backend;

/// How big each scenario is.
struct Scale {
    name: &'static str,
    /// Tenants created one at a time per latency run.
    latency_tenants: usize,
    /// Tenants inserted at once for throughput, resync and memory.
    scale_tenants: usize,
    /// Reconcile concurrency of the scale run.
    concurrency: usize,
    /// Concurrent API clients and time per route.
    api_clients: usize,
    api_duration: Duration,
    /// Leader crashes.
    failover_rounds: usize,
    /// New tenants timed while the scale run's tenants are all due.
    ttfr_tenants: usize,
    /// Tenants converged with 20 ms added per upstream request.
    latency_scale_tenants: usize,
    /// Tenants, and how long every upstream is down, in the outage run.
    outage_tenants: usize,
    outage: Duration,
    /// New tenants created at once under the default rate limits.
    limits_tenants: usize,
}

const DEFAULT: Scale = Scale {
    name: "default",
    latency_tenants: 200,
    scale_tenants: 10_000,
    concurrency: 16,
    api_clients: 4,
    api_duration: Duration::from_secs(5),
    failover_rounds: 3,
    ttfr_tenants: 200,
    latency_scale_tenants: 2000,
    outage_tenants: 1000,
    outage: Duration::from_secs(30),
    limits_tenants: 300,
};

const QUICK: Scale = Scale {
    name: "quick",
    latency_tenants: 50,
    scale_tenants: 200,
    concurrency: 16,
    api_clients: 4,
    api_duration: Duration::from_secs(2),
    failover_rounds: 1,
    ttfr_tenants: 50,
    latency_scale_tenants: 200,
    outage_tenants: 200,
    outage: Duration::from_secs(10),
    limits_tenants: 300,
};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("provisioner benchmark: not run under `cargo test`; use `cargo bench --bench provisioner`");
        return;
    }
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
        || args.iter().any(|a| a == "quick" || a == "--quick");
    let scale = if quick { QUICK } else { DEFAULT };
    let started = Instant::now();
    println!(
        "dezky provisioner benchmark ({} scale; {} cores; mongod {})",
        scale.name,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if std::env::var("MONGODB_URI").is_ok_and(|v| !v.is_empty()) {
            "from MONGODB_URI"
        } else {
            "embedded, single-node replica set"
        }
    );
    let mut summary = Summary::default();
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let runs = |scenario: &str| only.is_empty() || only.split(',').any(|s| s.trim() == scenario);

    if runs("latency") {
        latency::post_to_active(Backend::Instant, scale.latency_tenants, &mut summary).await;
        latency::post_to_active(Backend::Simulated, scale.latency_tenants, &mut summary).await;
    }
    let concurrency = match std::env::var("BENCH_CONCURRENCY") {
        Ok(value) => match value.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                println!("BENCH_CONCURRENCY={value}: expected a positive number");
                return;
            }
        },
        Err(_) => scale.concurrency,
    };
    let tenants = scale.scale_tenants;
    if runs("scale") || runs("api") || runs("ttfr") {
        let stack = scale::converge_and_resync(tenants, concurrency, &mut summary).await;
        if runs("api") {
            let slugs: Vec<String> = (0..tenants).map(scale::slug).collect();
            let (clients, duration) = (scale.api_clients, scale.api_duration);
            api_load::reads(&stack, &slugs, clients, duration, &mut summary).await;
        }
        if runs("ttfr") {
            let new = scale.ttfr_tenants;
            ttfr::during_full_resync(&stack, tenants, concurrency, new, &mut summary).await;
        }
    }
    if runs("latency20") {
        let (count, latency) = (scale.latency_scale_tenants, Duration::from_millis(20));
        scale::converge_with_latency(count, concurrency, latency, &mut summary).await;
    }
    if runs("memory") {
        memory::per_tenant(tenants, &mut summary).await;
    }
    if let (true, Ok(big)) = (runs("memory"), std::env::var("BENCH_SCALE")) {
        match big
            .to_ascii_lowercase()
            .trim_end_matches('k')
            .parse::<usize>()
        {
            Ok(thousands) => memory::per_tenant(thousands * 1000, &mut summary).await,
            Err(_) => println!("BENCH_SCALE={big}: expected e.g. 100k"),
        }
    }
    if runs("outage") {
        outage::during_outage(scale.outage_tenants, scale.outage, &mut summary).await;
    }
    if runs("posts") {
        let count = scale.scale_tenants.max(2000);
        posts::creates_by_one(count, true, &mut summary).await;
        posts::creates_by_one(count, false, &mut summary).await;
    }
    if runs("apply") {
        posts::apply_directory(1000, &mut summary).await;
    }
    if runs("limits") {
        limits::new_tenants_at_default_limits(scale.limits_tenants, &mut summary).await;
    }
    if runs("failover") {
        failover::failover(scale.failover_rounds, &mut summary).await;
    }

    summary.print();
    println!("\ntotal time {:.1} s", started.elapsed().as_secs_f64());
}
