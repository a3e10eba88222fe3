//! Tenants written straight into the store, as the API would record them.

use dezky_core::model::{Phase, Tenant};
use dezky_core::store::Store;
use dezky_core::{Id, Timestamp};
use mongodb::bson::doc;

/// A new tenant document at generation 1.
pub fn tenant(slug: &str) -> Tenant {
    Tenant::new(slug, &format!("Tenant {slug}"), "team", Timestamp::now())
}

/// Inserts `tenant` and returns its id.
pub async fn insert(store: &Store, tenant: &Tenant) -> Id {
    store
        .tenants
        .insert_one(tenant)
        .await
        .expect("insert tenant");
    tenant.id
}

/// Reads a tenant.
pub async fn get(store: &Store, id: Id) -> Option<Tenant> {
    store
        .tenants
        .find_one(doc! { "_id": id })
        .await
        .expect("read tenant")
}

/// The tenant if its phase is `phase` at its current generation.
pub async fn in_phase(store: &Store, id: Id, phase: Phase) -> Option<Tenant> {
    get(store, id)
        .await
        .filter(|t| t.status.phase == phase && t.status.observed_generation == t.generation)
}

/// Requests deletion like `DELETE /tenants/{slug}`.
pub async fn request_deletion(store: &Store, id: Id) {
    store
        .tenants
        .update_one(
            doc! { "_id": id },
            doc! {
                "$set": { "deletionRequestedAt": Timestamp::now().to_bson(), "status.phase": "deleting" },
                "$inc": { "generation": 1 },
            },
        )
        .await
        .expect("request deletion");
}
