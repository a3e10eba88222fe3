//! Group commit: the MongoDB work of concurrent passes, done together.
//!
//! Every pass reads its tenant at the start and writes events and status at
//! the end. One command per pass and step makes MongoDB's per-command cost
//! (a round trip, a connection thread's wake-up, a journal wait per write)
//! the largest part of a pass. A [`Group`] runs one task that takes every
//! request waiting for it, handles them with one command per step and
//! answers each caller with its own outcome. A lone request is handled at
//! once (no timer, nothing added to its latency); under load, requests
//! gather while the previous batch is in flight, so batches grow by
//! themselves.
//!
//! - [`read`]: tenant reads and finalizer claims at the start of a pass;
//! - [`commit`]: events and status at the end of a pass.

pub mod commit;
pub mod read;

pub use commit::{Committer, PassWrite};
pub use read::TenantReader;

use std::future::Future;
use std::sync::Arc;

use dezky_core::store::{Store, StoreError};
use mongodb::bson::{doc, Bson, Document};
use tokio::sync::{mpsc, oneshot, Mutex};

/// Everything a pass reads and writes through: the grouped tenant reads
/// and result writes of one controller term, and the store for the rest.
#[derive(Clone)]
pub struct PassIo {
    pub store: Store,
    pub reads: TenantReader,
    pub commits: Committer,
}

impl PassIo {
    /// Starts the reader and the writer tasks for `store`.
    pub fn start(store: &Store) -> Self {
        PassIo {
            store: store.clone(),
            reads: TenantReader::start(store.clone()),
            commits: Committer::start(store.clone()),
        }
    }
}

/// Requests handled in one batch at most.
const MAX_BATCH: usize = 64;

/// Batches in flight at once: while one waits for MongoDB, the next gathers.
const LANES: usize = 2;

/// Handle to a group's task; cheap to clone. The task ends when the last
/// handle is dropped, after the batch it is handling.
pub struct Group<T, R> {
    queue: mpsc::Sender<(T, oneshot::Sender<Result<R, StoreError>>)>,
}

impl<T, R> Clone for Group<T, R> {
    fn clone(&self) -> Self {
        Group {
            queue: self.queue.clone(),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Group<T, R> {
    /// Starts the task that handles batches with `handle`, which returns
    /// one outcome per request, in order.
    pub fn start<F, Fut>(name: &'static str, handle: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Result<R, StoreError>>> + Send,
    {
        let (queue, waiting) =
            mpsc::channel::<(T, oneshot::Sender<Result<R, StoreError>>)>(MAX_BATCH * 4);
        let waiting = Arc::new(Mutex::new(waiting));
        let handle = Arc::new(handle);
        for _ in 0..LANES {
            let (waiting, handle) = (waiting.clone(), handle.clone());
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(MAX_BATCH);
                loop {
                    if waiting.lock().await.recv_many(&mut batch, MAX_BATCH).await == 0 {
                        return;
                    }
                    // A caller that is gone (pass aborted: lease lost, timeout) is skipped.
                    batch.retain(|(_, answer)| !answer.is_closed());
                    if batch.is_empty() {
                        continue;
                    }
                    metrics::histogram!("group_batch_size", "group" => name)
                        .record(batch.len() as f64);
                    let (requests, answers): (Vec<T>, Vec<_>) = batch.drain(..).unzip();
                    let mut outcomes = handle(requests).await.into_iter();
                    for answer in answers {
                        let outcome = outcomes.next().unwrap_or(Err(StoreError::Closed));
                        let _ = answer.send(outcome);
                    }
                }
            });
        }
        Group { queue }
    }

    /// Hands `request` to the task and waits for its outcome.
    pub async fn call(&self, request: T) -> Result<R, StoreError> {
        let (answer, outcome) = oneshot::channel();
        self.queue
            .send((request, answer))
            .await
            .map_err(|_| StoreError::Closed)?;
        outcome.await.map_err(|_| StoreError::Closed)?
    }
}

/// Runs `statements` (each `{q, u}`) on the tenants as one unordered
/// `update` command, acknowledged by a majority (and so journaled): a claim
/// must be durable before upstream objects are created. Returns each
/// statement's outcome, in order (a write error fails its statement, a
/// command or write concern error all of them), and how many tenants
/// matched in all: the reply does not say which statements matched.
async fn update_each(
    store: &Store,
    statements: Vec<Document>,
) -> (Vec<Result<(), StoreError>>, usize) {
    let count = statements.len();
    let command = doc! {
        "update": store.tenants.name(),
        "updates": statements,
        "ordered": false,
        "writeConcern": { "w": "majority" },
    };
    match store.db.run_command(command).await {
        Ok(reply) => outcomes(&reply, count),
        Err(e) => ((0..count).map(|_| Err(e.clone().into())).collect(), 0),
    }
}

fn outcomes(reply: &Document, count: usize) -> (Vec<Result<(), StoreError>>, usize) {
    if let Ok(concern) = reply.get_document("writeConcernError") {
        return ((0..count).map(|_| Err(refusal(concern))).collect(), 0);
    }
    let mut outcomes: Vec<Result<(), StoreError>> = (0..count).map(|_| Ok(())).collect();
    if let Ok(errors) = reply.get_array("writeErrors") {
        for error in errors.iter().filter_map(Bson::as_document) {
            let index = error
                .get_i32("index")
                .ok()
                .and_then(|i| usize::try_from(i).ok());
            if let Some(slot) = index.and_then(|i| outcomes.get_mut(i)) {
                *slot = Err(refusal(error));
            }
        }
    }
    let matched = match reply.get("n") {
        Some(Bson::Int32(n)) => usize::try_from(*n).unwrap_or(0),
        Some(Bson::Int64(n)) => usize::try_from(*n).unwrap_or(0),
        _ => 0,
    };
    (outcomes, matched)
}

fn refusal(error: &Document) -> StoreError {
    StoreError::Refused {
        code: error.get_i32("code").unwrap_or_default(),
        message: error.get_str("errmsg").unwrap_or_default().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;
    use tokio::sync::Semaphore;

    type Batches = Arc<StdMutex<Vec<Vec<u32>>>>;

    /// A group that records each batch and finishes a batch only when
    /// `gate` gives it a permit; it answers `n` with `n * 10`.
    fn gated() -> (Group<u32, u32>, Batches, Arc<Semaphore>) {
        let batches = Batches::default();
        let gate = Arc::new(Semaphore::new(0));
        let group = Group::start("test", {
            let (batches, gate) = (batches.clone(), gate.clone());
            move |batch: Vec<u32>| {
                let (batches, gate) = (batches.clone(), gate.clone());
                async move {
                    batches.lock().expect("batches").push(batch.clone());
                    gate.acquire().await.expect("gate").forget();
                    batch.into_iter().map(|n| Ok(n * 10)).collect()
                }
            }
        });
        (group, batches, gate)
    }

    /// Starts one call per lane, each once the previous one is being
    /// handled, and returns once every lane holds one.
    async fn occupy_every_lane(
        group: &Group<u32, u32>,
        batches: &Batches,
    ) -> Vec<tokio::task::JoinHandle<Result<u32, StoreError>>> {
        let mut calls = Vec::new();
        for n in 0..LANES {
            let lane = group.clone();
            calls.push(tokio::spawn(async move { lane.call(n as u32).await }));
            while batches.lock().expect("batches").len() <= n {
                tokio::task::yield_now().await;
            }
        }
        calls
    }

    fn sizes(batches: &Batches) -> Vec<usize> {
        batches
            .lock()
            .expect("batches")
            .iter()
            .map(Vec::len)
            .collect()
    }

    #[tokio::test]
    async fn requests_that_wait_during_a_batch_share_the_next_one() {
        let (group, batches, gate) = gated();
        let first = occupy_every_lane(&group, &batches).await;
        let mut later: Vec<_> = (10..13).map(|n| Box::pin(group.call(n))).collect();
        for call in &mut later {
            assert!(futures::poll!(call.as_mut()).is_pending(), "queued");
        }
        gate.add_permits(LANES + 1);
        for (n, call) in (10..13).zip(later) {
            assert_eq!(call.await.expect("answered"), n * 10, "its own outcome");
        }
        for (n, call) in (0..).zip(first) {
            assert_eq!(call.await.expect("task").expect("answered"), n * 10);
        }
        assert_eq!(sizes(&batches), [vec![1; LANES], vec![3]].concat());
    }

    #[tokio::test]
    async fn a_caller_that_gave_up_is_not_handled() {
        let (group, batches, gate) = gated();
        let first = occupy_every_lane(&group, &batches).await;
        let mut gone = Box::pin(group.call(7));
        assert!(futures::poll!(gone.as_mut()).is_pending(), "queued");
        drop(gone);
        let kept = group.call(8);
        gate.add_permits(LANES + 1);
        assert_eq!(kept.await.expect("answered"), 80);
        for call in first {
            call.await.expect("task").expect("answered");
        }
        let handled = batches.lock().expect("batches").concat();
        assert!(!handled.contains(&7), "handled {handled:?}");
    }
}
