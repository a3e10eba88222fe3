//! One reconcile pass of one tenant: re-read the tenant, run every system
//! (each isolated: its own task, timeout and panic boundary, so one failing
//! never blocks the others), fold the results into status and history, and
//! for a deleted tenant run cleanups, drop finalizers and finally the
//! document itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use dezky_core::model::{DeletionPolicy, EventAction, System, Tenant};
use dezky_core::store::{encode, Store, StoreError};
use dezky_core::{Id, Timestamp};
use futures::future::join_all;
use mongodb::bson::doc;
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, info, warn, Instrument};

use crate::group::{Committer, PassIo, PassWrite};
use crate::plan;
use crate::queue::Trigger;
use crate::reconcile::{Mode, Outcome, Reconciler, SystemError};
use crate::slot;
use crate::status::{self, PassReport, SystemResult};

/// The configured reconcilers, by system; a missing system is `skipped`.
pub type Reconcilers = BTreeMap<System, Arc<dyn Reconciler>>;

/// What a pass ended with, for scheduling the next one.
#[derive(Debug, PartialEq, Eq)]
pub enum PassEnd {
    /// Everything settled: requeue after the resync interval.
    Converged,
    /// Some system is in error or pending: retry with backoff.
    Retry,
    /// The tenant document is gone (never existed or deleted now), or
    /// cannot be read until it changes.
    Gone,
    /// Only a plan was answered: converge at once if the tenant is not
    /// known to be converged, else at the next resync.
    Planned { converge_now: bool },
}

/// Runs one pass for the tenant `id`, its tenant read and its results
/// written through `io`. Only a [`Trigger::Resync`] pass may be answered
/// from the systems' snapshots; every other pass observes directly.
pub async fn run(
    io: &PassIo,
    reconcilers: &Reconcilers,
    id: Id,
    trigger: Trigger,
    system_timeout: Duration,
) -> Result<PassEnd, StoreError> {
    let Some(tenant) = read(io, reconcilers, id, trigger).await? else {
        return Ok(PassEnd::Gone);
    };
    let span = tracing::info_span!(
        "reconcile",
        tenant = %tenant.slug,
        generation = tenant.generation,
        trigger = trigger.as_str()
    );
    let tenant = Arc::new(tenant);
    async move {
        // A plan is its own kind of pass: a dry run of every system whose
        // only write is its answer. Converging waits for the next pass.
        if let Some(token) = plan::pending_request(&tenant) {
            answer_plan(&io.store, reconcilers, &tenant, token, system_timeout).await?;
            return Ok(PassEnd::Planned {
                converge_now: plan::needs_converging(&tenant),
            });
        }
        if tenant.is_deleting() {
            delete(io, reconcilers, tenant, system_timeout).await
        } else {
            converge(io, reconcilers, tenant, trigger, system_timeout).await
        }
    }
    .instrument(span)
    .await
}

/// Reads the tenant. A pass that a change or a person triggered is the one
/// that may create upstream objects, so it records the finalizers of every
/// configured system first, in the same batch (a no-op write when they are
/// recorded already, and none for a tenant being deleted); a resync pass
/// only reads. [`converge`] still adds any finalizer that is missing.
async fn read(
    io: &PassIo,
    reconcilers: &Reconcilers,
    id: Id,
    trigger: Trigger,
) -> Result<Option<Tenant>, StoreError> {
    let claim = if trigger == Trigger::Resync {
        Vec::new()
    } else {
        reconcilers.keys().copied().collect()
    };
    io.reads.read(id, claim).await
}

async fn converge(
    io: &PassIo,
    reconcilers: &Reconcilers,
    tenant: Arc<Tenant>,
    trigger: Trigger,
    system_timeout: Duration,
) -> Result<PassEnd, StoreError> {
    // Finalizers first: nothing is created upstream before its cleanup is guaranteed.
    let missing: Vec<&str> = reconcilers
        .keys()
        .filter(|s| !tenant.finalizers.contains(s))
        .map(System::as_str)
        .collect();
    if !missing.is_empty() {
        let added = io
            .store
            .tenants
            .update_one(
                doc! { "_id": tenant.id, "deletionRequestedAt": null },
                doc! {
                    "$addToSet": { "finalizers": { "$each": missing } },
                    "$inc": { "passClaims": 1 },
                },
            )
            .await?;
        if added.matched_count == 0 {
            debug!("deletion requested meanwhile; the next pass cleans up");
            return Ok(PassEnd::Retry);
        }
    }
    let mode = if tenant.paused {
        Mode::DryRun
    } else {
        Mode::Apply
    };
    let call: SystemCall = if trigger == Trigger::Resync {
        |r, t, m| Box::pin(async move { r.resync(&t, m).await })
    } else {
        |r, t, m| Box::pin(async move { r.reconcile(&t, m).await })
    };
    let results = run_systems(reconcilers, &tenant, mode, system_timeout, call).await;
    let report = status::report(&tenant, results, Timestamp::now(), handled_token(&tenant));
    let needs_retry = report.needs_retry;
    record(&io.commits, &tenant, report, &[]).await?;
    Ok(if needs_retry {
        PassEnd::Retry
    } else {
        PassEnd::Converged
    })
}

async fn delete(
    io: &PassIo,
    reconcilers: &Reconcilers,
    tenant: Arc<Tenant>,
    system_timeout: Duration,
) -> Result<PassEnd, StoreError> {
    let mode = if tenant.paused {
        Mode::DryRun
    } else {
        Mode::Apply
    };
    let mut results = BTreeMap::new();
    let mut cleaned = Vec::new();
    let mut to_clean = Reconcilers::new();
    for system in &tenant.finalizers {
        match (tenant.deletion_policy, reconcilers.get(system)) {
            (DeletionPolicy::Orphan, _) => {
                let outcome = Outcome::ok("Orphaned", "left in place (deletionPolicy = orphan)");
                results.insert(*system, SystemResult::Ran(Mode::Apply, Ok(outcome)));
                cleaned.push(*system);
            }
            (DeletionPolicy::Delete, Some(r)) => {
                to_clean.insert(*system, r.clone());
            }
            (DeletionPolicy::Delete, None) => {
                // Configured once, not any more: nothing can be cleaned; do not block deletion.
                warn!(system = %system, "system no longer configured; its objects are left in place");
                results.insert(*system, SystemResult::NotConfigured);
                cleaned.push(*system);
            }
        }
    }
    let ran = run_systems(&to_clean, &tenant, mode, system_timeout, |r, t, m| {
        Box::pin(async move { r.cleanup(&t, m).await })
    })
    .await;
    for (system, result) in ran {
        if mode == Mode::Apply
            && matches!(&result, SystemResult::Ran(_, Ok(o)) if o.state.is_settled())
        {
            cleaned.push(system);
        }
        results.insert(system, result);
    }
    let report = status::report(&tenant, results, Timestamp::now(), handled_token(&tenant));
    let needs_retry = report.needs_retry;
    record(&io.commits, &tenant, report, &cleaned).await?;
    if cleaned.len() == tenant.finalizers.len() {
        remove(&io.store, &tenant).await?;
        return Ok(PassEnd::Gone);
    }
    Ok(if needs_retry || mode == Mode::DryRun {
        PassEnd::Retry
    } else {
        PassEnd::Converged
    })
}

/// Runs every system in dry-run mode and stores the plan answering `token`.
async fn answer_plan(
    store: &Store,
    reconcilers: &Reconcilers,
    tenant: &Arc<Tenant>,
    token: &str,
    system_timeout: Duration,
) -> Result<(), StoreError> {
    let results = if tenant.is_deleting() {
        run_systems(
            reconcilers,
            tenant,
            Mode::DryRun,
            system_timeout,
            |r, t, m| Box::pin(async move { r.cleanup(&t, m).await }),
        )
        .await
    } else {
        run_systems(
            reconcilers,
            tenant,
            Mode::DryRun,
            system_timeout,
            |r, t, m| Box::pin(async move { r.reconcile(&t, m).await }),
        )
        .await
    };
    let answer = plan::from_dry_run(tenant, token, results);
    store
        .tenants
        .update_one(
            doc! { "_id": tenant.id },
            doc! { "$set": { "status.plan": encode::to_bson(&answer)? } },
        )
        .await?;
    debug!("plan answered");
    Ok(())
}

type SystemCall = fn(
    Arc<dyn Reconciler>,
    Arc<Tenant>,
    Mode,
) -> futures::future::BoxFuture<'static, Result<Outcome, SystemError>>;

/// Runs `call` for every system at once, each in its own task with a timeout.
async fn run_systems(
    reconcilers: &Reconcilers,
    tenant: &Arc<Tenant>,
    mode: Mode,
    timeout: Duration,
    call: SystemCall,
) -> BTreeMap<System, SystemResult> {
    let mut results: BTreeMap<System, SystemResult> = BTreeMap::new();
    let mut tasks = Vec::new();
    for system in System::ALL {
        match reconcilers.get(&system) {
            None => {
                results.insert(system, SystemResult::NotConfigured);
            }
            Some(reconciler) => {
                let fut = call(reconciler.clone(), tenant.clone(), mode);
                let span = tracing::Span::current();
                let task = AbortOnDropHandle::new(tokio::spawn(
                    slot::scope(slot::current(), async move {
                        tokio::time::timeout(timeout, fut).await
                    })
                    .instrument(span),
                ));
                tasks.push((system, task));
            }
        }
    }
    let (systems, handles): (Vec<_>, Vec<_>) = tasks.into_iter().unzip();
    for (system, joined) in systems.into_iter().zip(join_all(handles).await) {
        let result = match joined {
            Ok(Ok(result)) => result,
            Ok(Err(_elapsed)) => Err(SystemError::new(
                "Timeout",
                format!(
                    "{system} did not finish within {}",
                    humantime::format_duration(timeout)
                ),
            )),
            Err(join) => {
                warn!(system = %system, error = %join, "reconciler panicked");
                Err(SystemError::new(
                    "Panic",
                    format!("{system} reconciler failed unexpectedly: {join}"),
                ))
            }
        };
        metrics::counter!("reconciles_total", "system" => system.as_str(), "result" => match &result {
            Ok(o) => o.state.as_str(),
            Err(_) => "error",
        })
        .increment(1);
        results.insert(system, SystemResult::Ran(mode, result));
    }
    results
}

fn handled_token(tenant: &Tenant) -> Option<String> {
    tenant.reconcile_request.as_ref().map(|r| r.token.clone())
}

/// Writes the new status (only if the tenant is still at the generation the
/// pass worked on), appends the events and drops cleaned-up finalizers.
async fn record(
    commits: &Committer,
    tenant: &Tenant,
    report: PassReport,
    cleaned: &[System],
) -> Result<(), StoreError> {
    for (system, count) in &report.drift {
        metrics::counter!("drift_corrections_total", "system" => system.as_str())
            .increment(u64::from(*count));
        info!(system = %system, "drift corrected");
    }
    // Once per transition (the history records the same): into error, out of it.
    for event in &report.events {
        match event.action {
            EventAction::Error => {
                warn!(system = %event.system, error = %event.message, "system failed")
            }
            EventAction::Recovered => info!(system = %event.system, "system recovered"),
            _ => {}
        }
    }
    // Field by field, and never `status.plan`: a plan answered while this
    // pass ran stays answered.
    let mut status = encode::to_document(&report.status)?;
    status.remove("plan");
    let set: mongodb::bson::Document = status
        .into_iter()
        .map(|(key, value)| (format!("status.{key}"), value))
        .collect();
    let mut update = doc! { "$set": set };
    if !cleaned.is_empty() {
        let names: Vec<&str> = cleaned.iter().map(System::as_str).collect();
        update.insert("$pullAll", doc! { "finalizers": names });
    }
    commits
        .commit(PassWrite {
            events: report.events,
            filter: doc! { "_id": tenant.id, "generation": tenant.generation },
            update,
        })
        .await
}

/// Deletes a tenant whose finalizers are all gone: its memberships and
/// subscription first, the document last (its disappearance means "done").
async fn remove(store: &Store, tenant: &Tenant) -> Result<(), StoreError> {
    let done = doc! {
        "_id": tenant.id,
        "deletionRequestedAt": { "$ne": null },
        "finalizers": { "$size": 0 },
    };
    if store.tenants.count_documents(done.clone()).await? == 0 {
        return Ok(());
    }
    store
        .users
        .update_many(
            doc! { "$or": [ { "tenantIds": tenant.id }, { "grantedTenantIds": tenant.id } ] },
            doc! { "$pull": { "tenantIds": tenant.id, "grantedTenantIds": tenant.id } },
        )
        .await?;
    store
        .subscriptions
        .delete_many(doc! { "tenantId": tenant.id })
        .await?;
    if store.tenants.delete_one(done).await?.deleted_count == 1 {
        info!("tenant deleted");
    }
    Ok(())
}
