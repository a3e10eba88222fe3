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
//!   invalidate, a rejected token).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dezky_core::store::Store;
use dezky_core::{Id, Timestamp};
use mongodb::bson::{self, doc, Document};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType, ResumeToken};
use mongodb::change_stream::ChangeStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::queue::WorkQueue;
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
}

impl TenantWatch {
    /// A watch over `store.tenants`.
    pub fn new(store: Store, health: Arc<ControllerHealth>) -> Self {
        TenantWatch { store, health }
    }

    /// The change-stream pipeline (see the module doc).
    pub fn pipeline() -> Vec<Document> {
        vec![doc! { "$match": { "$expr": { "$or": [
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
        ]}}}]
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
            .projection(doc! { "_id": 1 })
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
                            queue.schedule(Id(id), now);
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
        if manual {
            queue.schedule_manual(Id(id));
        } else {
            queue.schedule(Id(id), tokio::time::Instant::now());
        }
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

fn command_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}
