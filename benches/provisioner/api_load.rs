//! API read throughput: a few concurrent clients with a platform-admin
//! token hammer one route for a fixed time (and at most a fixed number of
//! requests each), on loopback, while the controller is stopped.

use std::time::{Duration, Instant};

use crate::report::{heading, Percentiles, Summary};
use crate::stack::Stack;

/// Most requests one client sends in one run, whatever the duration.
const MAX_PER_CLIENT: usize = 200_000;

/// Runs `GET /tenants/{slug}` (over `slugs`) and `GET /tenants` for `duration` each.
pub async fn reads(
    stack: &Stack,
    slugs: &[String],
    clients: usize,
    duration: Duration,
    summary: &mut Summary,
) {
    heading(&format!(
        "API reads, {clients} clients, {} s per route, {} tenants stored",
        duration.as_secs(),
        slugs.len()
    ));
    let token = stack.synced_admin_token("bench-admin").await;
    let one: Vec<String> = slugs.iter().map(|s| format!("/tenants/{s}")).collect();
    run(
        stack,
        &token,
        "GET /tenants/{slug}",
        one,
        clients,
        duration,
        summary,
    )
    .await;
    let list = vec!["/tenants".to_string()];
    run(
        stack,
        &token,
        "GET /tenants (first page of 50)",
        list,
        clients,
        duration,
        summary,
    )
    .await;
}

async fn run(
    stack: &Stack,
    token: &str,
    route: &str,
    paths: Vec<String>,
    clients: usize,
    duration: Duration,
    summary: &mut Summary,
) {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let http = stack.api.http.clone();
        let base = stack.api.url.clone();
        let token = token.to_string();
        let paths = paths.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            let mut i = client;
            while Instant::now() < deadline && latencies.len() + failures < MAX_PER_CLIENT {
                let path = &paths[i % paths.len()];
                i += clients;
                let sent = Instant::now();
                let response = http
                    .get(format!("{base}{path}"))
                    .bearer_auth(&token)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                let ok = match response {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                };
                if ok {
                    latencies.push(sent.elapsed());
                } else {
                    failures += 1;
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for task in tasks {
        if let Ok((l, f)) = task.await {
            latencies.extend(l);
            failures += f;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let detail = Percentiles::of(&latencies)
        .map(|p| p.describe())
        .unwrap_or_default();
    summary.add(
        format!("API {route}"),
        format!("{:.0} req/s", latencies.len() as f64 / elapsed),
        format!("{clients} clients, {elapsed:.1} s, {failures} failed; {detail}"),
    );
}
