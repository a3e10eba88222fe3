//! Reads of stored documents that never let one bad document fail more
//! than itself: a single read answers 500 `undecodable_document` naming the
//! field; a read of many leaves the bad ones out and reports them (see
//! `dezky_core::store::decode`).

use dezky_core::store::decode::{decode, Stored, Undecodable};
use futures::TryStreamExt;
use mongodb::bson::{Document, RawDocumentBuf};
use mongodb::Collection;

use crate::error::{ApiError, ApiResult};

/// The document matching `filter` (projected), decoded; 500 naming the
/// field if it does not decode.
pub async fn find_one<T: Stored + Send + Sync>(
    collection: &Collection<T>,
    filter: Document,
    projection: Option<Document>,
) -> ApiResult<Option<T>> {
    let found = collection
        .clone_with_type::<RawDocumentBuf>()
        .find_one(filter)
        .with_options(
            mongodb::options::FindOneOptions::builder()
                .projection(projection)
                .build(),
        )
        .await?;
    decoded(found)
}

/// A document a single read or write returned (read it from the
/// collection's `clone_with_type::<RawDocumentBuf>()`), decoded; 500
/// naming the field if it does not decode.
pub fn decoded<T: Stored>(found: Option<RawDocumentBuf>) -> ApiResult<Option<T>> {
    found
        .map(|raw| decode::<T>(&raw).map_err(ApiError::Undecodable))
        .transpose()
}

/// Every document matching `filter` (projected, sorted by `_id`) that
/// decodes; the others are reported and left out.
pub async fn find_all<T: Stored + Send + Sync>(
    collection: &Collection<T>,
    filter: Document,
    projection: Option<Document>,
) -> ApiResult<Vec<T>> {
    let raw: Vec<RawDocumentBuf> = collection
        .clone_with_type::<RawDocumentBuf>()
        .find(filter)
        .sort(mongodb::bson::doc! { "_id": 1 })
        .with_options(
            mongodb::options::FindOptions::builder()
                .projection(projection)
                .build(),
        )
        .await?
        .try_collect()
        .await?;
    Ok(raw
        .iter()
        .filter_map(|raw| decode::<T>(raw).inspect_err(Undecodable::report).ok())
        .collect())
}
