//! Triggers from MongoDB: the `tenants` change stream and full relists.
//!
//! - The server-side pipeline passes inserts, deletes, replaces and updates
//!   that touch a desired field, `generation`, `deletionRequestedAt` or
//!   `reconcileRequest`; the controller's own `status`/`finalizers` writes
//!   never come back as triggers (one create = one pass, no storm).
//! - The resume token is saved in `controller_state` (at most every
//!   [`SAVE_EVERY`], and also while idle from the post-batch token) and used
//!   on restart.
//! - The stream is opened before the relist (watch-then-list), so no change
//!   can fall between the list and the stream; duplicates are harmless.
//! - Relist at start and whenever the stream cannot resume (history lost,
//!   invalidate, a rejected token). A relist spreads the resyncs of
//!   converged tenants over the resync interval (no thundering herd after a
//!   restart); tenants that are not converged are queued as changes, with an
//!   unhandled reconcile request as manual.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dezky_core::store::Store;
use dezky_core::{Id, Timestamp};
use mongodb::bson::{self, doc, Document};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType, ResumeToken};
use mongodb::change_stream::ChangeStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::queue::{Trigger, WorkQueue};
use crate::runtime::ControllerHealth;

/// Tenant fields whose change is a trigger.
pub const TRIGGER_FIELDS: [&str; 11] = [
    "slug",
    "name",
    "plan",
    "domains",
    "billingInfo",
    "deletionPolicy",
    "paused",
    "generation",
    "deletionRequestedAt",
    "reconcileRequest",
    "planRequest",
];

/// How often the resume token is saved at most.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

const STATE_ID: &str = "tenants-watch";

/// Server error codes meaning "this stream cannot be resumed".
const CANNOT_RESUME: [i32; 3] = [
    286, // ChangeStreamHistoryLost
    280, // ChangeStreamFatalError
    260, // InvalidResumeToken
];

/// Watches `tenants` and feeds the work queue.
pub struct TenantWatch {
    store: Store,
    /// Told when the first relist is queued.
    health: Arc<ControllerHealth>,
    /// A relist spreads converged tenants' resyncs over this interval.
    resync_interval: Duration,
}

impl TenantWatch {
    /// A watch over `store.tenants`; relists spread resyncs over `resync_interval`.
    pub fn new(store: Store, health: Arc<ControllerHealth>, resync_interval: Duration) -> Self {
        TenantWatch {
            store,
            health,
            resync_interval,
        }
    }

    /// The change-stream pipeline (see the module doc).
    pub fn pipeline() -> Vec<Document> {
        vec![
            doc! { "$match": { "$expr": { "$or": [
                { "$in": ["$operationType", ["insert", "delete", "replace", "invalidate", "drop", "rename", "dropDatabase"]] },
                { "$and": [
                    { "$eq": ["$operationType", "update"] },
                    { "$gt": [ { "$size": { "$filter": {
                        "input": { "$concatArrays": [
                            { "$map": { "input": { "$objectToArray": "$updateDescription.updatedFields" }, "in": "$$this.k" } },
                            { "$ifNull": ["$updateDescription.removedFields", []] },
                        ]},
                        "cond": { "$in": [ { "$arrayElemAt": [ { "$split": ["$$this", "."] }, 0 ] }, TRIGGER_FIELDS.to_vec() ] },
                    }}}, 0 ] },
                ]},
            ]}}},
            // An event is a trigger carrying an id: an insert's whole document
            // would only cost the server and this process a copy of it.
            doc! { "$project": { "fullDocument": 0 } },
        ]
    }

    /// Runs until `stop` fires, then saves the resume token and returns.
    pub async fn run(&self, queue: &WorkQueue, stop: CancellationToken) {
        // Relist at start, and whenever the stream could not be resumed.
        let mut relist = true;
        while !stop.is_cancelled() {
            let saved = self.load_token().await;
            let opened = match self.open(saved.clone()).await {
                Err(e) if saved.is_some() => {
                    warn!(error = %e.kind, "cannot resume the tenants change stream; relisting");
                    self.clear_token().await;
                    relist = true;
                    self.open(None).await
                }
                other => other,
            };
            let mut stream = match opened {
                Ok(stream) => stream,
                Err(e) => {
                    warn!(error = %e.kind, "cannot open the tenants change stream; retrying");
                    let _ = tokio::time::timeout(Duration::from_secs(1), stop.cancelled()).await;
                    continue;
                }
            };
            let listed_at = if relist || saved.is_none() {
                self.relist(queue).await
            } else {
                None
            };
            self.health.set_synced(true);
            debug!("watch synced");
            relist = self.follow(&mut stream, queue, &stop, listed_at).await;
        }
    }

    async fn open(
        &self,
        token: Option<ResumeToken>,
    ) -> Result<ChangeStream<ChangeStreamEvent<Document>>, mongodb::error::Error> {
        let tenants = self.store.tenants.clone_with_type::<Document>();
        let mut watch = tenants
            .watch()
            .pipeline(Self::pipeline())
            .max_await_time(Duration::from_millis(500));
        if let Some(token) = token {
            watch = watch.start_after(token);
        }
        let stream = watch.await?;
        if let Some(token) = stream.resume_token() {
            self.save_token(&token).await;
        }
        Ok(stream)
    }

    /// Schedules every tenant now. Returns the cluster time the list was read
    /// at: events older than that are already covered by it.
    async fn relist(&self, queue: &WorkQueue) -> Option<bson::Timestamp> {
        let now = tokio::time::Instant::now();
        let tenants = self.store.tenants.clone_with_type::<Document>();
        let mut session = match self.store.db.client().start_session().await {
            Ok(session) => session,
            Err(e) => {
                warn!(error = %e.kind, "relist failed");
                return None;
            }
        };
        let found = tenants
            .find(doc! {})
            .projection(relist_projection())
            .session(&mut session)
            .await;
        // The time of the initial read: every write before it is in the list.
        let read_at = session.operation_time();
        let mut count = 0usize;
        match found {
            Ok(mut cursor) => loop {
                match cursor.next(&mut session).await {
                    Some(Ok(d)) => {
                        if let Ok(id) = d.get_object_id("_id") {
                            let (trigger, due) = match relist_trigger(&d) {
                                Trigger::Resync => {
                                    (Trigger::Resync, now + spread(self.resync_interval))
                                }
                                urgent => (urgent, now),
                            };
                            queue.schedule(Id(id), trigger, due);
                            count += 1;
                        }
                    }
                    None => break,
                    Some(Err(e)) => {
                        warn!(error = %e.kind, "relist interrupted");
                        break;
                    }
                }
            },
            Err(e) => warn!(error = %e.kind, "relist failed"),
        }
        metrics::counter!("controller_relists_total").increment(1);
        info!(tenants = count, "relisted all tenants");
        read_at
    }

    /// Follows the stream until it ends or `stop`; returns whether a relist
    /// is needed before following again.
    async fn follow(
        &self,
        stream: &mut ChangeStream<ChangeStreamEvent<Document>>,
        queue: &WorkQueue,
        stop: &CancellationToken,
        listed_at: Option<bson::Timestamp>,
    ) -> bool {
        let mut last_save = Instant::now();
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => {
                    if let Some(token) = stream.resume_token() {
                        self.save_token(&token).await;
                    }
                    return false;
                }
                next = stream.next_if_any() => next,
            };
            match next {
                Ok(Some(event)) => {
                    if self.handle(&event, queue, listed_at) {
                        self.clear_token().await;
                        return true;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    let code = command_code(&e);
                    if code.is_some_and(|c| CANNOT_RESUME.contains(&c)) {
                        warn!(error = %e.kind, "tenants change stream history lost; relisting");
                        self.clear_token().await;
                        return true;
                    }
                    warn!(error = %e.kind, "tenants change stream failed; reopening");
                    let _ =
                        tokio::time::timeout(Duration::from_millis(500), stop.cancelled()).await;
                    return false;
                }
            }
            if last_save.elapsed() >= SAVE_EVERY {
                if let Some(token) = stream.resume_token() {
                    self.save_token(&token).await;
                }
                last_save = Instant::now();
            }
        }
    }

    /// Schedules the tenant of one event; returns true for `invalidate`.
    /// Events written before `listed_at` are skipped: the relist read their
    /// result already (the stream is opened before the list, so it replays them).
    fn handle(
        &self,
        event: &ChangeStreamEvent<Document>,
        queue: &WorkQueue,
        listed_at: Option<bson::Timestamp>,
    ) -> bool {
        if let Some(at) = event.cluster_time {
            let lag = Timestamp::now().millis() / 1000 - i64::from(at.time);
            metrics::gauge!("change_stream_lag_seconds").set(lag.max(0) as f64);
        }
        if event.operation_type == OperationType::Invalidate {
            return true;
        }
        if let (Some(at), Some(listed)) = (event.cluster_time, listed_at) {
            if at < listed {
                return false;
            }
        }
        let id = event
            .document_key
            .as_ref()
            .and_then(|k| k.get_object_id("_id").ok());
        let Some(id) = id else {
            return false;
        };
        let manual = event.update_description.as_ref().is_some_and(|u| {
            u.updated_fields
                .keys()
                .any(|k| k.starts_with("reconcileRequest") || k.starts_with("planRequest"))
        });
        debug!(tenant_id = %id, op = ?event.operation_type, manual, "tenant changed");
        let trigger = if manual {
            Trigger::Manual
        } else {
            Trigger::Change
        };
        queue.schedule(Id(id), trigger, tokio::time::Instant::now());
        false
    }

    async fn load_token(&self) -> Option<ResumeToken> {
        let state = self
            .store
            .controller_state
            .find_one(doc! { "_id": STATE_ID })
            .await
            .ok()
            .flatten()?;
        let token = state.get("resumeToken")?.clone();
        bson::from_bson(token).ok()
    }

    async fn save_token(&self, token: &ResumeToken) {
        let Ok(token) = bson::to_bson(token) else {
            return;
        };
        let saved = self
            .store
            .controller_state
            .update_one(
                doc! { "_id": STATE_ID },
                doc! { "$set": { "resumeToken": token, "savedAt": Timestamp::now().to_bson() } },
            )
            .upsert(true)
            .await;
        if let Err(e) = saved {
            warn!(error = %e.kind, "cannot save the change-stream resume token");
        }
    }

    async fn clear_token(&self) {
        let _ = self
            .store
            .controller_state
            .delete_one(doc! { "_id": STATE_ID })
            .await;
    }
}

/// The fields a relist reads to tell converged tenants from the rest.
fn relist_projection() -> Document {
    doc! {
        "_id": 1,
        "generation": 1,
        "deletionRequestedAt": 1,
        "reconcileRequest.token": 1,
        "planRequest.token": 1,
        "status.plan.token": 1,
        "status.phase": 1,
        "status.observedGeneration": 1,
        "status.lastHandledReconcileToken": 1,
    }
}

/// How a relisted tenant is queued: `Resync` only when its status says it
/// converged at its current generation and nothing is asked of it.
fn relist_trigger(tenant: &Document) -> Trigger {
    let status = tenant.get_document("status").ok();
    let token = |doc: Option<&Document>, key: &str| {
        doc.and_then(|d| d.get_document(key).ok())
            .and_then(|r| r.get_str("token").ok())
            .map(str::to_owned)
    };
    let unanswered =
        |asked: Option<String>, answered: Option<String>| asked.is_some() && asked != answered;
    let handled = status
        .and_then(|s| s.get_str("lastHandledReconcileToken").ok())
        .map(str::to_owned);
    if unanswered(token(Some(tenant), "reconcileRequest"), handled)
        || unanswered(token(Some(tenant), "planRequest"), token(status, "plan"))
    {
        return Trigger::Manual;
    }
    let generation = tenant.get("generation").and_then(bson_int);
    let observed = status
        .and_then(|s| s.get("observedGeneration"))
        .and_then(bson_int);
    let deleting = tenant
        .get("deletionRequestedAt")
        .is_some_and(|d| d != &bson::Bson::Null);
    let active = status.and_then(|s| s.get_str("phase").ok()) == Some("active");
    if !deleting && active && generation.is_some() && generation == observed {
        Trigger::Resync
    } else {
        Trigger::Change
    }
}

fn bson_int(value: &bson::Bson) -> Option<i64> {
    match value {
        bson::Bson::Int32(n) => Some(i64::from(*n)),
        bson::Bson::Int64(n) => Some(*n),
        _ => None,
    }
}

/// A uniformly random delay in `[0, interval)`.
fn spread(interval: Duration) -> Duration {
    interval.mul_f64(rand::random::<f64>())
}

fn command_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn converged() -> Document {
        doc! {
            "_id": bson::oid::ObjectId::new(),
            "generation": 3_i64,
            "deletionRequestedAt": null,
            "reconcileRequest": { "token": "r1" },
            "planRequest": { "token": "p1" },
            "status": {
                "phase": "active",
                "observedGeneration": 3_i64,
                "lastHandledReconcileToken": "r1",
                "plan": { "token": "p1" },
            },
        }
    }

    #[test]
    fn a_converged_tenant_is_relisted_as_a_resync_spread_over_the_interval() {
        assert_eq!(relist_trigger(&converged()), Trigger::Resync);
        let interval = Duration::from_secs(300);
        for _ in 0..1000 {
            assert!(spread(interval) < interval);
        }
    }

    #[test]
    fn a_changed_failing_or_deleted_tenant_is_relisted_as_a_change() {
        let mut newer = converged();
        newer.insert("generation", 4_i64);
        let mut degraded = converged();
        degraded
            .get_document_mut("status")
            .unwrap()
            .insert("phase", "degraded");
        let mut deleting = converged();
        deleting.insert("deletionRequestedAt", bson::DateTime::now());
        let mut never = converged();
        for key in ["status", "reconcileRequest", "planRequest"] {
            never.remove(key);
        }
        for tenant in [newer, degraded, deleting, never] {
            assert_eq!(relist_trigger(&tenant), Trigger::Change, "{tenant}");
        }
    }

    #[test]
    fn an_unhandled_reconcile_or_plan_request_is_relisted_as_manual() {
        let mut reconcile = converged();
        reconcile.insert("reconcileRequest", doc! { "token": "r2" });
        let mut plan = converged();
        plan.insert("planRequest", doc! { "token": "p2" });
        for tenant in [reconcile, plan] {
            assert_eq!(relist_trigger(&tenant), Trigger::Manual, "{tenant}");
        }
    }
}
