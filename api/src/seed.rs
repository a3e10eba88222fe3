//! The default tenant (`DEFAULT_TENANT_SLUG`) and its subscription, created
//! at start. Idempotent and race-safe: both writes are upserts keyed by a
//! unique index, so two processes starting at once end with one tenant and
//! one subscription, and an existing tenant is never modified.

use dezky_core::model::{Subscription, SubscriptionStatus, Tenant};
use dezky_core::store::{is_duplicate_key, Store, StoreError};
use dezky_core::{Id, Timestamp};
use mongodb::bson::{doc, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::de::DeserializeOwned;
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
    let subscription = Subscription {
        id: Id::new(),
        tenant_id: tenant.id,
        plan: tenant.plan.clone(),
        status: SubscriptionStatus::Active,
        stripe_customer_id: None,
        stripe_subscription_id: None,
        current_period_end: None,
        created_at: now,
        updated_at: now,
    };
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
    T: Serialize + DeserializeOwned + Send + Sync,
{
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
    stored.ok_or_else(|| {
        StoreError::Mongo(mongodb::error::Error::custom(
            "the upserted document vanished",
        ))
    })
}
