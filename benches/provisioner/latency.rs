//! `POST /tenants` → `status.phase == active`, one tenant at a time: the
//! latency a caller sees with nothing else in flight, and how many
//! reconciler calls each new tenant caused.
//!
//! The moment a tenant turns active is taken from a change stream on
//! `tenants` (push, no polling error), opened before the first POST.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dezky_core::model::Phase;
use dezky_core::store::Store;
use futures::StreamExt;
use mongodb::bson::doc;
use mongodb::options::FullDocumentType;
use tokio::sync::oneshot;

use crate::report::{heading, Percentiles, Summary};
use crate::stack::{Backend, Stack};

/// Longest wait for one tenant to turn active.
const PER_TENANT_LIMIT: Duration = Duration::from_secs(30);

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Instant>>>>;

/// Tells registered waiters when their tenant first shows `phase: active`.
pub struct ActiveWatch {
    waiters: Waiters,
    task: tokio::task::JoinHandle<()>,
}

impl ActiveWatch {
    /// Opens the stream (before the first tenant is created).
    pub async fn open(store: &Store) -> Self {
        let pipeline = [doc! { "$match": {
            "operationType": { "$in": ["insert", "update", "replace"] },
            "fullDocument.status.phase": "active",
        } }];
        let mut stream = store
            .tenants
            .watch()
            .pipeline(pipeline)
            .full_document(FullDocumentType::UpdateLookup)
            .await
            .expect("open a change stream on tenants");
        let waiters = Waiters::default();
        let task = tokio::spawn({
            let waiters = waiters.clone();
            async move {
                while let Some(Ok(event)) = stream.next().await {
                    let seen = Instant::now();
                    let Some(tenant) = event.full_document else {
                        continue;
                    };
                    if tenant.status.phase != Phase::Active {
                        continue;
                    }
                    let waiter = waiters
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&tenant.slug);
                    if let Some(tx) = waiter {
                        let _ = tx.send(seen);
                    }
                }
            }
        });
        ActiveWatch { waiters, task }
    }

    /// Resolves with the moment `slug` first shows `phase: active`.
    pub fn expect(&self, slug: &str) -> oneshot::Receiver<Instant> {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(slug.to_string(), tx);
        rx
    }
}

impl Drop for ActiveWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs the scenario on a fresh stack of `backend` with `count` tenants.
pub async fn post_to_active(backend: Backend, count: usize, summary: &mut Summary) {
    heading(&format!(
        "POST /tenants -> active, {count} tenants one at a time, {}",
        backend.label()
    ));
    let stack = Stack::start(backend).await;
    let controller = stack.leading_controller(16).await;
    let admin = stack.api.admin().await;
    let watch = ActiveWatch::open(stack.store()).await;
    let mut samples = Vec::with_capacity(count);
    let mut missed = 0;
    for i in 0..count {
        let slug = format!("lat{i}");
        let active = watch.expect(&slug);
        let posted = Instant::now();
        stack.api.create_tenant(&admin, &slug).await;
        match tokio::time::timeout(PER_TENANT_LIMIT, active).await {
            Ok(Ok(at)) => samples.push(at.saturating_duration_since(posted)),
            _ => missed += 1,
        }
    }
    // Passes that a status write might wrongly trigger would show up here.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (per_pair, most, pairs) = stack.calls.per_tenant_and_system();
    controller.shutdown().await;

    let setup = format!("{}, n={count}", backend.label());
    match Percentiles::of(&samples) {
        Some(p) => summary.add(
            format!("POST->active p50 / p99 ({})", short(backend)),
            format!(
                "{} / {}",
                crate::report::ms(p.p50),
                crate::report::ms(p.p99)
            ),
            format!("{setup}; {}", p.describe()),
        ),
        None => summary.add("POST->active", "no tenant turned active", setup.clone()),
    }
    if missed > 0 {
        summary.add(
            format!("tenants not active within {PER_TENANT_LIMIT:?}"),
            missed.to_string(),
            setup.clone(),
        );
    }
    summary.add(
        format!("reconciles per created tenant ({})", short(backend)),
        format!("{per_pair:.2}"),
        format!(
            "{setup}; calls per tenant and system over {pairs} pairs, most {most}, 0.5 s settle"
        ),
    );
}

fn short(backend: Backend) -> &'static str {
    match backend {
        Backend::Instant => "instant",
        Backend::Simulated => "simulators",
    }
}
