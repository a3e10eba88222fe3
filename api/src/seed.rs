//! The default tenant (`DEFAULT_TENANT_SLUG`) and its subscription, created
//! at start. Idempotent and race-safe: both writes are upserts keyed by a
//! unique index, so two processes starting at once end with one tenant and
//! one subscription, and an existing tenant is never modified (one the
//! previous service left is recognised by its slug, once migrated).

use dezky_core::model::{Subscription, SubscriptionStatus, Tenant};
use dezky_core::store::decode::{decode, Stored};
use dezky_core::store::{is_duplicate_key, Store, StoreError};
use dezky_core::Timestamp;
use mongodb::bson::{doc, Document, RawDocumentBuf};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::Serialize;

use dezky_core::store::encode::to_document;

/// Ensures tenant `slug` (plan `plan`, for a new tenant only) and its
/// subscription exist; returns the tenant as stored.
pub async fn ensure_default_tenant(
    store: &Store,
    slug: &str,
    plan: &str,
) -> Result<Tenant, StoreError> {
    let now = Timestamp::now();
    let fresh = Tenant::new(slug, slug, plan, now);
    let tenant = upsert(&store.tenants, doc! { "slug": slug }, &fresh).await?;
    let subscription = Subscription::new(tenant.id, &tenant.plan, SubscriptionStatus::Active, now);
    upsert(
        &store.subscriptions,
        doc! { "tenantId": tenant.id },
        &subscription,
    )
    .await?;
    Ok(tenant)
}

/// Inserts `fresh` unless a document matches `key`; returns the stored one.
/// A concurrent upsert of the same key loses with a duplicate-key error
/// (the other process inserted first), after which the document is read.
async fn upsert<T>(collection: &Collection<T>, key: Document, fresh: &T) -> Result<T, StoreError>
where
    T: Serialize + Stored + Send + Sync,
{
    let collection = collection.clone_with_type::<RawDocumentBuf>();
    let mut insert = to_document(fresh)?;
    for field in key.keys() {
        insert.remove(field);
    }
    let result = collection
        .find_one_and_update(key.clone(), doc! { "$setOnInsert": insert })
        .upsert(true)
        .return_document(ReturnDocument::After)
        .await;
    let stored = match result {
        Ok(stored) => stored,
        Err(e) if is_duplicate_key(&e) => collection.find_one(key).await?,
        Err(e) => return Err(e.into()),
    };
    let stored = stored.map(|raw| decode::<T>(&raw)).transpose()?;
    stored.ok_or_else(|| {
        StoreError::Mongo(mongodb::error::Error::custom(
            "the upserted document vanished",
        ))
    })
}
