//! Keyset pagination shared by every list: `?limit=` (default 50, capped at
//! 500) and an opaque `?cursor=` that encodes the last `_id` returned, so
//! pages stay stable while documents are added. Answers are
//! `{"items": [...], "nextCursor": "..." | null}`.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dezky_core::store::decode::{decode, Stored, Undecodable};
use dezky_core::Id;
use futures::TryStreamExt;
use mongodb::bson::{doc, Document, RawDocumentBuf};
use mongodb::Collection;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// Walking direction over `_id` (ids are time-ordered).
#[derive(Clone, Copy)]
pub enum Order {
    OldestFirst,
    NewestFirst,
}

/// The `?limit=&cursor=` of a list request.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    limit: u32,
    after: Option<Id>,
}

impl<S: Send + Sync> FromRequestParts<S> for PageRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(params) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("query", e.body_text()))?;
        let limit = match params.get("limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if n >= 1 => n.min(MAX_LIMIT),
                _ => return Err(ApiError::invalid("limit", "must be a positive integer")),
            },
        };
        let after = match params.get("cursor").filter(|c| !c.is_empty()) {
            None => None,
            Some(cursor) => Some(decode_cursor(cursor)?),
        };
        Ok(PageRequest { limit, after })
    }
}

impl utoipa::IntoParams for PageRequest {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let limit = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .default(Some(DEFAULT_LIMIT.into()));
        let cursor = ObjectBuilder::new().schema_type(Type::String);
        vec![
            ParameterBuilder::new()
                .name("limit")
                .parameter_in(ParameterIn::Query)
                .description(Some(format!(
                    "page size (default {DEFAULT_LIMIT}, larger values are capped at {MAX_LIMIT})"
                )))
                .schema(Some(limit))
                .build(),
            ParameterBuilder::new()
                .name("cursor")
                .parameter_in(ParameterIn::Query)
                .description(Some("`nextCursor` of the previous page"))
                .schema(Some(cursor))
                .build(),
        ]
    }
}

impl PageRequest {
    /// The page size, at most [`MAX_LIMIT`].
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The id of the last item of the previous page.
    pub fn after(&self) -> Option<Id> {
        self.after
    }
}

/// The `nextCursor` of a page whose last item is `id`.
pub fn encode_cursor(id: Id) -> String {
    URL_SAFE_NO_PAD.encode(id.0.bytes())
}

fn decode_cursor(cursor: &str) -> Result<Id, ApiError> {
    let bad = || ApiError::invalid("cursor", "is not a cursor returned by this API");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let bytes: [u8; 12] = bytes.try_into().map_err(|_| bad())?;
    Ok(Id(mongodb::bson::oid::ObjectId::from_bytes(bytes)))
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    #[schema(example = "ZlDA_-4BI0VniavN")]
    pub next_cursor: Option<String>,
}

/// One page of `collection` matching `filter`; `projection` leaves out
/// fields a list does not show. Each document is decoded on its own: one
/// that does not decode is left out and reported (see
/// `dezky_core::store::decode`), so it never fails the page.
pub async fn list<T>(
    collection: &Collection<T>,
    mut filter: Document,
    projection: Option<Document>,
    order: Order,
    page: PageRequest,
) -> Result<Page<T>, ApiError>
where
    T: Stored + Serialize + Send + Sync,
{
    let (op, direction) = match order {
        Order::OldestFirst => ("$gt", 1),
        Order::NewestFirst => ("$lt", -1),
    };
    if let Some(after) = page.after {
        let keyset = doc! { "_id": { op: after } };
        filter = if filter.is_empty() {
            keyset
        } else {
            doc! { "$and": [filter, keyset] }
        };
    }
    let raw_collection = collection.clone_with_type::<RawDocumentBuf>();
    let mut find = raw_collection
        .find(filter)
        .sort(doc! { "_id": direction })
        .limit(i64::from(page.limit) + 1);
    if let Some(projection) = projection {
        find = find.projection(projection);
    }
    let raw: Vec<RawDocumentBuf> = find.await?.try_collect().await?;
    let more = raw.len() > page.limit as usize;
    let mut items: Vec<T> = raw
        .iter()
        .take(page.limit as usize)
        .filter_map(|raw| decode::<T>(raw).inspect_err(Undecodable::report).ok())
        .collect();
    let last = raw
        .get(page.limit as usize - 1)
        .and_then(|raw| raw.get_object_id("_id").ok());
    items.truncate(page.limit as usize);
    // The cursor is the last document read, decoded or not.
    let next = more.then(|| last.map(|id| encode_cursor(Id(id)))).flatten();
    Ok(Page {
        items,
        next_cursor: next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_a_field_error() {
        let id = Id::new();
        assert_eq!(decode_cursor(&encode_cursor(id)).unwrap(), id);
        for bad in ["%%%", "abc", "AAAA"] {
            assert!(matches!(
                decode_cursor(bad),
                Err(ApiError::Validation { field: Some(f), .. }) if f == "cursor"
            ));
        }
    }
}
