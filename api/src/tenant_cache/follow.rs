//! The informer loop that keeps a [`TenantCache`] current: list every tenant
//! in one snapshot read, open the `tenants` change stream at that snapshot's
//! cluster time (so nothing falls between the two and nothing is applied
//! twice), then apply events as they come. Any stream error or invalidation
//! drops the view, and the loop lists again, with a growing pause while
//! MongoDB keeps failing.
//!
//! The stream's idle polls return every [`MAX_AWAIT`]; each reply counts as
//! MongoDB having answered at the moment it was asked, which is what keeps
//! the cache fresh. The driver
//! resumes a broken stream once by itself (no event is lost); while it
//! tries, nobody answers and the cache stops answering after
//! [`FRESH_FOR`](super::FRESH_FOR).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dezky_core::model::Tenant;
use dezky_core::Id;
use mongodb::bson::{doc, Document, RawDocumentBuf, Timestamp};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType};
use mongodb::options::FullDocumentType;
use mongodb::Collection;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::state::Change;
use super::{CachedTenant, EntryError, TenantCache};
use crate::tenants::api_view;

/// How long an idle poll of the change stream waits on the server.
pub const MAX_AWAIT: Duration = Duration::from_millis(250);

/// Pause before the first relist after a failure; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Why a view ended.
#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error("database error: {}", .0.kind)]
    Mongo(#[from] mongodb::error::Error),
    #[error(transparent)]
    Entry(#[from] EntryError),
    #[error("the snapshot read reported no snapshot time")]
    NoSnapshotTime,
    #[error("a change event without {0}")]
    Incomplete(&'static str),
    #[error("the change stream was invalidated ({0:?})")]
    Invalidated(OperationType),
    #[error("the cache was invalidated by a write")]
    Superseded,
    #[error("the change stream ended")]
    Ended,
}

/// Keeps `cache` equal to `tenants` until `stop` fires.
pub async fn follow(cache: Arc<TenantCache>, tenants: Collection<Tenant>, stop: CancellationToken) {
    // Undecoded: each document is decoded on its own (see `CachedTenant::stored`).
    let tenants = tenants.clone_with_type::<RawDocumentBuf>();
    // Unsynced until the first list: exported from the start, so an alert
    // sees a cache that never synced.
    metrics::gauge!("tenant_cache_synced").set(0.0);
    let mut retry = RETRY_FIRST;
    while !stop.is_cancelled() {
        let mut synced = false;
        let ended = tokio::select! {
            _ = stop.cancelled() => break,
            result = run(&cache, &tenants, &mut synced) => match result {
                Ok(never) => match never {},
                Err(e) => e,
            },
        };
        cache.write().invalidate();
        metrics::gauge!("tenant_cache_synced").set(0.0);
        if synced {
            retry = RETRY_FIRST;
        }
        if !matches!(ended, FollowError::Superseded) {
            warn!(error = %ended, retry = ?retry, "tenant cache unsynced; reads go to MongoDB until it relists");
        }
        let _ = tokio::time::timeout(retry, stop.cancelled()).await;
        retry = (retry * 2).min(RETRY_MAX);
    }
    cache.write().invalidate();
}

/// One view: list, open the stream, apply events until something fails.
async fn run(
    cache: &TenantCache,
    tenants: &Collection<RawDocumentBuf>,
    synced: &mut bool,
) -> Result<Infallible, FollowError> {
    let ticket = cache.read().begin_list();
    let started = Instant::now();
    let (listed, at) = list(tenants).await?;
    let mut stream = tenants
        .watch()
        .pipeline([doc! { "$project": projection() }])
        .full_document(FullDocumentType::UpdateLookup)
        .start_at_operation_time(at)
        .max_await_time(MAX_AWAIT)
        .await?;
    let count = listed.len();
    if !cache.write().synced(ticket, listed, at, started) {
        return Err(FollowError::Superseded);
    }
    *synced = true;
    metrics::counter!("tenant_cache_relists_total").increment(1);
    metrics::gauge!("tenant_cache_synced").set(1.0);
    metrics::gauge!("tenant_cache_tenants").set(count as f64);
    info!(tenants = count, "tenant cache synced");
    loop {
        // What MongoDB answers is at least as new as the moment it was asked.
        let asked = Instant::now();
        let event = stream.next_if_any().await?;
        let change = event.map(change_of).transpose()?;
        let mut state = cache.write();
        if !state.is_synced() {
            return Err(FollowError::Superseded);
        }
        match change {
            Some((at, Some(change))) => {
                state.apply(at, change, asked);
                let len = state.len().unwrap_or_default();
                metrics::gauge!("tenant_cache_tenants").set(len as f64);
            }
            None | Some((_, None)) => state.heard(asked),
        }
        drop(state);
        if !stream.is_alive() {
            return Err(FollowError::Ended);
        }
    }
}

/// Every tenant in the API view, read in one snapshot; and its cluster time.
async fn list(
    tenants: &Collection<RawDocumentBuf>,
) -> Result<(Vec<CachedTenant>, Timestamp), FollowError> {
    let mut session = tenants.client().start_session().snapshot(true).await?;
    let mut cursor = tenants
        .find(Document::new())
        .projection(api_view())
        .session(&mut session)
        .await?;
    let mut listed = Vec::new();
    while let Some(tenant) = cursor.next(&mut session).await {
        listed.extend(CachedTenant::stored(&tenant?)?);
    }
    let at = session.snapshot_time().ok_or(FollowError::NoSnapshotTime)?;
    Ok((listed, at))
}

/// The stream's `$project`: the API view of `fullDocument`, and not the
/// update description, which the cache does not use.
fn projection() -> Document {
    let mut projection = doc! { "updateDescription": 0 };
    for (field, value) in api_view() {
        projection.insert(format!("fullDocument.{field}"), value);
    }
    projection
}

/// The cluster time of `event` and what it changes (`None`: nothing cached).
fn change_of(
    event: ChangeStreamEvent<RawDocumentBuf>,
) -> Result<(Timestamp, Option<Change>), FollowError> {
    let at = event
        .cluster_time
        .ok_or(FollowError::Incomplete("clusterTime"))?;
    let id = event
        .document_key
        .as_ref()
        .and_then(|key| key.get_object_id("_id").ok())
        .map(Id);
    let id = || id.ok_or(FollowError::Incomplete("documentKey"));
    let change = match event.operation_type {
        OperationType::Insert => {
            let tenant = event
                .full_document
                .ok_or(FollowError::Incomplete("fullDocument"))?;
            match CachedTenant::stored(&tenant)? {
                Some(tenant) => Change::Insert(tenant),
                None => return Ok((at, None)),
            }
        }
        OperationType::Update | OperationType::Replace => Change::Update {
            id: id()?,
            current: match &event.full_document {
                Some(tenant) => CachedTenant::stored(tenant)?,
                None => None,
            },
        },
        OperationType::Delete => Change::Delete(id()?),
        op @ (OperationType::Drop
        | OperationType::Rename
        | OperationType::DropDatabase
        | OperationType::Invalidate) => return Err(FollowError::Invalidated(op)),
        // Events of kinds this stream does not ask for (DDL).
        _ => return Ok((at, None)),
    };
    Ok((at, Some(change)))
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{self, Bson};

    use super::*;
    use crate::tenant_cache::entry::tests::full_tenant;

    fn event(op: &str, extra: Document) -> ChangeStreamEvent<RawDocumentBuf> {
        let mut raw = doc! {
            "_id": { "_data": "00" },
            "operationType": op,
            "clusterTime": Timestamp { time: 5, increment: 1 },
        };
        raw.extend(extra);
        // As the driver reads it: raw bytes (a raw document needs them).
        bson::from_slice(&bson::to_vec(&raw).unwrap()).unwrap()
    }

    fn stored(tenant: &Tenant) -> Bson {
        Bson::Document(dezky_core::store::encode::to_document(tenant).unwrap())
    }

    #[test]
    fn events_become_changes_and_invalidations_end_the_view() {
        let acme = full_tenant("acme");
        let key = doc! { "documentKey": { "_id": acme.id.0 } };
        let insert = event("insert", doc! { "fullDocument": stored(&acme) });
        assert!(matches!(change_of(insert), Ok((_, Some(Change::Insert(t)))) if t.id() == acme.id));

        let mut lookup = key.clone();
        lookup.insert("fullDocument", stored(&acme));
        let update = event("update", lookup);
        assert!(matches!(
            change_of(update),
            Ok((at, Some(Change::Update { current: Some(_), .. }))) if at == Timestamp { time: 5, increment: 1 }
        ));
        let mut gone = key.clone();
        gone.insert("fullDocument", Bson::Null);
        assert!(matches!(
            change_of(event("update", gone)),
            Ok((_, Some(Change::Update { current: None, .. })))
        ));
        assert!(matches!(
            change_of(event("delete", key.clone())),
            Ok((_, Some(Change::Delete(id)))) if id == acme.id
        ));
        for op in ["invalidate", "drop", "rename", "dropDatabase"] {
            assert!(matches!(
                change_of(event(op, Document::new())),
                Err(FollowError::Invalidated(_))
            ));
        }
        assert!(matches!(
            change_of(event("delete", Document::new())),
            Err(FollowError::Incomplete("documentKey"))
        ));
    }

    #[test]
    fn the_stream_projects_the_api_view() {
        assert_eq!(
            projection(),
            doc! {
                "updateDescription": 0,
                "fullDocument.planRequest": 0,
                "fullDocument.status.plan": 0,
                "fullDocument.passClaims": 0,
            }
        );
    }
}
