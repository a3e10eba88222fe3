//! Provisioner memory per tenant, measured on the real binary alone: a
//! `provisioner controller` process against the simulators (which stay in
//! this bench process, so their objects do not count) converges `count`
//! tenants and resyncs them all once from its snapshots; its `VmRSS` is read
//! from `/proc/<pid>/status` before, then sampled over one more resync
//! interval (median: the figure; largest sample: the peak).

use std::time::{Duration, Instant};

use dezky_simulators::suite::{Ports, Simulators};

use crate::failover::spawn_controller;
use crate::report::{heading, Summary};
use crate::scale::insert_and_converge;
use crate::support::mongo;

/// Longest wait for convergence or for the resync to load every snapshot.
const LIMIT: Duration = Duration::from_secs(900);

/// The resync interval of the measured process: after convergence every
/// tenant resyncs once within it, which loads the three snapshots.
const RESYNC: Duration = Duration::from_secs(20);

/// How often `VmRSS` is sampled over the interval after that resync.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

pub async fn per_tenant(count: usize, summary: &mut Summary) {
    heading(&format!(
        "memory of a `provisioner controller` process with {count} tenants"
    ));
    let sims = Simulators::start(Ports::default())
        .await
        .expect("start the simulators");
    let store = mongo::fresh_store().await;
    let mut env: Vec<(&'static str, String)> = sims.env();
    env.push(("DEFAULT_TENANT_SLUG", String::new()));
    env.push(("RESYNC_INTERVAL", format!("{}s", RESYNC.as_secs())));
    // The default rate limits (oCIS 50 requests/s at 3 per new tenant)
    // would make this a test of the rate limiter.
    for limit in ["AUTHENTIK_QPS", "STALWART_QPS", "OCIS_QPS"] {
        env.push((limit, "100000".into()));
    }
    for burst in ["AUTHENTIK_BURST", "STALWART_BURST", "OCIS_BURST"] {
        env.push((burst, "100000".into()));
    }
    let (mut child, port) = spawn_controller(store.db.name(), env);
    let pid = child.id().unwrap_or(0).to_string();
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while !scrape(&http, &metrics)
        .await
        .lines()
        .any(|l| l.trim() == "controller_leader 1")
    {
        if started.elapsed() > LIMIT {
            println!("  the process did not lead within {LIMIT:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = rss_kib(&pid);
    insert_and_converge(&store, count, "mem").await;
    let converged_at = started.elapsed();
    // Every tenant resynced once (interval +10%), and every snapshot listed
    // (or a little longer, then reported as not listed).
    let resync_done = converged_at + RESYNC.mul_f64(1.1);
    let give_up = resync_done + Duration::from_secs(10);
    let mut listed = false;
    while started.elapsed() < resync_done || (!listed && started.elapsed() < give_up) {
        let body = scrape(&http, &metrics).await;
        listed = ["authentik", "stalwart", "ocis"].iter().all(|s| {
            body.lines().any(|l| {
                l.starts_with("snapshot_objects{") && l.contains(&format!("system=\"{s}\""))
            })
        });
        if started.elapsed() > LIMIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A whole further resync interval, sampled: the median is what the
    // process holds, the largest sample its peak (the resync wave and the
    // snapshot relists of every interval).
    let mut samples = Vec::new();
    let sampled = Instant::now();
    while sampled.elapsed() < RESYNC {
        samples.push(rss_kib(&pid));
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    let _ = child.kill().await;
    samples.sort_unstable();
    let median = samples[samples.len() / 2];
    let peak = samples.last().copied().unwrap_or(0);
    let per = |kib: u64| kib.saturating_sub(before) as f64 / count.max(1) as f64;
    summary.add(
        format!("provisioner RSS per tenant ({count} tenants)"),
        format!("{:.2} KiB", per(median)),
        format!(
            "`provisioner controller` process alone (simulators elsewhere), VmRSS {before} KiB before, median {median} KiB over the resync interval after converging {count} tenants and one resync from the snapshots (listed: {listed}); peak {peak} KiB = {:.2} KiB per tenant",
            per(peak)
        ),
    );
}

async fn scrape(http: &reqwest::Client, url: &str) -> String {
    match http.get(url).timeout(Duration::from_secs(2)).send().await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// `VmRSS` of `process` (a pid, or `self`), KiB.
pub fn rss_kib(process: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
