//! Events and status at the end of passes, stored together: one unordered
//! events insert for the whole batch, then one `update` command with a
//! statement per tenant (its status, only at the generation the pass worked
//! on). Events go first, so a status never refers to history that was not
//! stored. Both are majority writes: events acknowledged by one node only
//! could be rolled back in a failover after the status that follows them
//! was written on the new primary, and a retried pass would not write them
//! again.

use dezky_core::model::TenantEvent;
use dezky_core::store::{Store, StoreError};
use mongodb::bson::{doc, Document};
use tracing::debug;

use super::{update_each, Group};
use crate::slot;

/// One pass's result: its events, then `update` of the tenant `filter` matches.
pub struct PassWrite {
    pub events: Vec<TenantEvent>,
    pub filter: Document,
    pub update: Document,
}

/// Stores pass results in batches; cheap to clone.
#[derive(Clone)]
pub struct Committer(Group<PassWrite, ()>);

impl Committer {
    /// Starts the writer task for `store`.
    pub fn start(store: Store) -> Self {
        Committer(Group::start("commit", move |batch: Vec<PassWrite>| {
            let store = store.clone();
            async move { write(&store, &batch).await }
        }))
    }

    /// Stores `write`, in a batch with whatever else is waiting. A filter
    /// that matches nothing is not an error (the tenant changed meanwhile).
    /// The pass's upstream work is over: it gives its active slot back for
    /// good (see [`slot::release`]), so the next pass starts meanwhile.
    pub async fn commit(&self, write: PassWrite) -> Result<(), StoreError> {
        slot::release().await;
        self.0.call(write).await
    }
}

/// Writes every event of `batch`, then every status update; one outcome per
/// write, in order.
async fn write(store: &Store, batch: &[PassWrite]) -> Vec<Result<(), StoreError>> {
    let events: Vec<&TenantEvent> = batch.iter().flat_map(|w| &w.events).collect();
    if let Err(e) = store.insert_events(&events).await {
        return batch.iter().map(|_| Err(e.clone().into())).collect();
    }
    let statements = batch
        .iter()
        .map(|w| doc! { "q": &w.filter, "u": &w.update })
        .collect();
    let (outcomes, matched) = update_each(store, statements).await;
    let written = outcomes.iter().filter(|o| o.is_ok()).count();
    if matched < written {
        debug!(
            skipped = written - matched,
            "tenants changed during their pass; their status is left to the next pass"
        );
    }
    outcomes
}
