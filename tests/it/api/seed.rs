//! The default tenant seed: idempotent, never modifies an existing tenant,
//! and two processes seeding at once end with one tenant and one
//! subscription.

use dezky_api::ensure_default_tenant;
use mongodb::bson::doc;

use crate::support::mongo::{fresh_store, store_on};

#[tokio::test]
async fn seeding_twice_creates_one_tenant_with_one_subscription_and_changes_nothing_after() {
    let store = fresh_store().await;
    let first = ensure_default_tenant(&store, "dezky", "free")
        .await
        .unwrap();
    assert_eq!(
        (first.slug.as_str(), first.plan.as_str(), first.generation),
        ("dezky", "free", 1)
    );
    assert_eq!(first.created_by, None);
    store
        .tenants
        .update_one(
            doc! {"slug": "dezky"},
            doc! {"$set": {"name": "Dezky HQ", "plan": "enterprise"}},
        )
        .await
        .unwrap();
    let second = ensure_default_tenant(&store, "dezky", "free")
        .await
        .unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(
        (second.name.as_str(), second.plan.as_str()),
        ("Dezky HQ", "enterprise"),
        "an existing tenant is left alone"
    );
    assert_eq!(store.tenants.count_documents(doc! {}).await.unwrap(), 1);
    let subscription = store
        .subscriptions
        .find_one(doc! {"tenantId": first.id})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(subscription.plan, "free");
    assert_eq!(
        store.subscriptions.count_documents(doc! {}).await.unwrap(),
        1
    );
}

#[tokio::test]
async fn two_processes_seeding_at_once_neither_fail_nor_duplicate() {
    for _ in 0..5 {
        let name = fresh_store().await.db.name().to_string();
        // Separate clients, like two provisioner processes starting together.
        let (a, b) = tokio::join!(store_on(&name), store_on(&name));
        let (ta, tb) = tokio::join!(
            ensure_default_tenant(&a, "dezky", "free"),
            ensure_default_tenant(&b, "dezky", "team")
        );
        let (ta, tb) = (ta.unwrap(), tb.unwrap());
        assert_eq!(ta.id, tb.id);
        assert_eq!(a.tenants.count_documents(doc! {}).await.unwrap(), 1);
        assert_eq!(
            a.subscriptions
                .count_documents(doc! {"tenantId": ta.id})
                .await
                .unwrap(),
            1
        );
    }
}
