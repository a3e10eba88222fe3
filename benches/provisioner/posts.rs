//! The write path at fleet size: one platform admin (as a CI account
//! applying a repository of tenants would), then one member (a user
//! without platform rights, a member of what they create), creates `count` tenants with
//! `POST /tenants` from 8 concurrent clients, the controller stopped; the
//! rate over the first and the last 1,000 creates and their ratio. A create
//! that costs more as the fleet grows shows as a ratio below 1.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::report::{heading, Summary};
use crate::stack::{Backend, Stack};

const CLIENTS: usize = 8;
/// The window measured at each end.
const WINDOW: usize = 1000;

/// Runs the scenario and adds its figures to `summary`.
pub async fn creates_by_one(count: usize, admin: bool, summary: &mut Summary) {
    let who = if admin { "platform admin" } else { "member" };
    heading(&format!(
        "{count} POST /tenants by one {who}, {CLIENTS} clients"
    ));
    let stack = Stack::start(Backend::Instant).await;
    let token = match admin {
        true => stack.synced_admin_token("bench-ci").await,
        false => stack.synced_token("bench-member", &[]).await,
    };
    let next = Arc::new(AtomicUsize::new(0));
    // When each create (by its index) finished.
    let done: Arc<Mutex<Vec<(usize, Instant)>>> = Arc::default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (http, base, token) = (stack.api.http.clone(), stack.api.url.clone(), token.clone());
        let (next, done) = (next.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut failures = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    return failures;
                }
                let body =
                    json!({ "slug": format!("post-{i:06}"), "name": "Posted", "plan": "team" });
                let response = http
                    .post(format!("{base}/tenants"))
                    .bearer_auth(&token)
                    .json(&body)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().as_u16() == 201 => done
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((i, Instant::now())),
                    _ => failures += 1,
                }
            }
        }));
    }
    let mut failures = 0;
    for task in tasks {
        failures += task.await.unwrap_or(0);
    }
    let elapsed = started.elapsed();
    let mut finished: Vec<Instant> = done
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(_, at)| *at)
        .collect();
    finished.sort();
    let rate = |from: Instant, to: Instant| WINDOW as f64 / to.duration_since(from).as_secs_f64();
    if finished.len() < 2 * WINDOW {
        println!("  too few creates for the two windows ({})", finished.len());
        return;
    }
    let first = rate(started, finished[WINDOW - 1]);
    let last = rate(
        finished[finished.len() - WINDOW - 1],
        finished[finished.len() - 1],
    );
    summary.add(
        format!("POST /tenants by one {who}, first / last 1,000"),
        format!("{first:.0} / {last:.0} /s (ratio {:.2})", last / first),
        format!(
            "{count} creates by one {who}, {CLIENTS} clients, {:.1} s, {failures} failed; controller stopped",
            elapsed.as_secs_f64()
        ),
    );
}

/// `provisioner tenants apply -f DIR` of `count` manifests (one file each)
/// against the API, run as the real binary: first when every tenant is new,
/// then again when nothing changed (reads only).
pub async fn apply_directory(count: usize, summary: &mut Summary) {
    heading(&format!(
        "provisioner tenants apply -f DIR, {count} manifests"
    ));
    let stack = Stack::start(Backend::Instant).await;
    let token = stack.synced_admin_token("bench-apply").await;
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => return println!("  no temporary directory: {error}"),
    };
    for i in 0..count {
        let manifest = json!({
            "apiVersion": "dezky.io/v1", "kind": "Tenant",
            "metadata": { "slug": format!("applied-{i:05}") },
            "spec": { "name": format!("Applied {i}"), "plan": "team",
                      "domains": [format!("applied-{i:05}.test")] },
        });
        let path = dir.path().join(format!("applied-{i:05}.json"));
        if let Err(error) = std::fs::write(&path, manifest.to_string()) {
            return println!("  cannot write {}: {error}", path.display());
        }
    }
    let mut figures = Vec::new();
    for round in ["new", "unchanged"] {
        let started = Instant::now();
        let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_provisioner"))
            .args(["tenants", "apply", "-f"])
            .arg(dir.path())
            .env("DEZKY_SERVER", &stack.api.url)
            .env("DEZKY_TOKEN", &token)
            .stdout(std::process::Stdio::null())
            .status()
            .await;
        let elapsed = started.elapsed().as_secs_f64();
        match status {
            Ok(status) if status.success() => figures.push(format!("{elapsed:.1} s {round}")),
            other => return println!("  apply ({round}) failed: {other:?}"),
        }
    }
    summary.add(
        format!("apply -f DIR, {count} manifests"),
        figures.join(" / "),
        "the release binary against the API on loopback, controller stopped".to_string(),
    );
}
