//! Processes that start together on an older schema (`migrate::ensure_current`):
//! one migrates under the lease, the others wait and migrate nothing.

use dezky_core::migrate::{ensure_current, legacy, recorded_version, SCHEMA_VERSION};
use futures::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};

use crate::support::mongo::fresh_store;

#[tokio::test]
async fn processes_starting_together_migrate_once() {
    let store = fresh_store().await;
    let tenants = store.db.collection::<Document>("tenants");
    let now = DateTime::now();
    let legacy_tenants: Vec<Document> = (0..200)
        .map(|i| {
            doc! {
                "_id": ObjectId::new(), "slug": format!("t{i}"), "name": "T", "status": "active",
                "plan": "team", "createdAt": now, "updatedAt": now, "__v": 0,
            }
        })
        .collect();
    tenants.insert_many(&legacy_tenants).await.unwrap();

    let (a, b, c) = tokio::join!(
        ensure_current(&store, "a"),
        ensure_current(&store, "b"),
        ensure_current(&store, "c"),
    );
    let reports = [a.unwrap(), b.unwrap(), c.unwrap()];
    let ran: Vec<_> = reports.iter().flatten().collect();
    assert_eq!(ran.len(), 1, "exactly one process migrated");
    assert_eq!(ran[0].collections[0].legacy, 200);
    assert_eq!(recorded_version(&store).await.unwrap(), SCHEMA_VERSION);
    let stored: Vec<Document> = tenants
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(stored.iter().all(|d| !legacy::is_legacy_tenant(d)));
    // A later start finds the version recorded and does nothing.
    assert!(ensure_current(&store, "d").await.unwrap().is_none());
}
