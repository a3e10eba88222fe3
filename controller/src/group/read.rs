//! Tenant reads at the start of passes, done together: one `update` command
//! that records the finalizers each claiming pass asked for (only on
//! tenants not being deleted), then one `find` of every tenant of the
//! batch. A claim is written before its tenant is read, so a pass that
//! claimed sees its finalizers, exactly as with `findAndModify`.

use std::collections::HashMap;

use dezky_core::model::{System, Tenant};
use dezky_core::store::decode::decode;
use dezky_core::store::{Store, StoreError};
use dezky_core::Id;
use futures::TryStreamExt;
use mongodb::bson::{doc, RawDocumentBuf};

use super::{update_each, Group};
use crate::slot;

/// One pass's read: its tenant and, if not empty, finalizers to record first.
pub struct TenantRead {
    pub id: Id,
    pub claim: Vec<System>,
}

/// Reads tenants in batches; cheap to clone.
#[derive(Clone)]
pub struct TenantReader(Group<TenantRead, Option<Tenant>>);

impl TenantReader {
    /// Starts the reader task for `store`.
    pub fn start(store: Store) -> Self {
        TenantReader(Group::start("read", move |batch: Vec<TenantRead>| {
            let store = store.clone();
            async move { read(&store, &batch).await }
        }))
    }

    /// Records the finalizers of `claim` on tenant `id` unless its deletion
    /// was requested, then reads it; `None` when it does not exist. The pass
    /// gives its active slot back while it waits (see [`slot::idle`]).
    pub async fn read(&self, id: Id, claim: Vec<System>) -> Result<Option<Tenant>, StoreError> {
        slot::idle(self.0.call(TenantRead { id, claim })).await
    }
}

async fn read(store: &Store, batch: &[TenantRead]) -> Vec<Result<Option<Tenant>, StoreError>> {
    let mut claimed: Vec<Result<(), StoreError>> = batch.iter().map(|_| Ok(())).collect();
    let (indexes, statements): (Vec<usize>, Vec<_>) = batch
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.claim.is_empty())
        .map(|(i, r)| {
            let systems: Vec<&str> = r.claim.iter().map(System::as_str).collect();
            let statement = doc! {
                "q": { "_id": r.id, "deletionRequestedAt": null },
                "u": {
                    "$addToSet": { "finalizers": { "$each": systems } },
                    "$inc": { "passClaims": 1 },
                },
            };
            (i, statement)
        })
        .unzip();
    if !statements.is_empty() {
        let (outcomes, _) = update_each(store, statements).await;
        for (i, outcome) in indexes.into_iter().zip(outcomes) {
            claimed[i] = outcome;
        }
    }
    let ids: Vec<Id> = batch.iter().map(|r| r.id).collect();
    let found = match find_all(store, &ids).await {
        Ok(found) => found,
        Err(e) => return batch.iter().map(|_| Err(e.clone().into())).collect(),
    };
    batch
        .iter()
        .zip(claimed)
        .map(|(r, claimed)| {
            claimed?;
            // Each tenant decoded on its own: one that does not decode
            // fails only its own pass, not the batch.
            found
                .get(&r.id)
                .map(|raw| decode::<Tenant>(raw))
                .transpose()
                .map_err(StoreError::from)
        })
        .collect()
}

/// The stored tenants with these ids, undecoded, by id.
async fn find_all(
    store: &Store,
    ids: &[Id],
) -> Result<HashMap<Id, RawDocumentBuf>, mongodb::error::Error> {
    let documents: Vec<RawDocumentBuf> = store
        .tenants
        .clone_with_type::<RawDocumentBuf>()
        .find(doc! { "_id": { "$in": ids } })
        .await?
        .try_collect()
        .await?;
    Ok(documents
        .into_iter()
        .filter_map(|raw| Some((Id(raw.get_object_id("_id").ok()?), raw)))
        .collect())
}
