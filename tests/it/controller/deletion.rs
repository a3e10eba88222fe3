//! Deletion with finalizers: cleanup per system, orphan policy, retries,
//! and removal of the document, memberships and subscription.

use std::sync::atomic::Ordering;

use dezky_core::model::{
    DeletionPolicy, Phase, Role, Subscription, SubscriptionStatus, SystemState, User,
};
use dezky_core::{Id, Timestamp};
use mongodb::bson::doc;

use super::{config, Running, PATIENCE};
use crate::support::fake::Fakes;
use crate::support::mongo::fresh_store;
use crate::support::tenants::{get, in_phase, insert, request_deletion, tenant};
use crate::support::wait::until;

async fn member_and_subscription(store: &dezky_core::store::Store, tenant: Id) -> Id {
    let now = Timestamp::now();
    let user = User {
        email: "a@acme.test".into(),
        name: "A".into(),
        role: Role::Admin,
        tenant_ids: vec![tenant],
        ..User::new(&format!("sub-{tenant}"), now)
    };
    store.users.insert_one(&user).await.unwrap();
    let sub = Subscription::new(tenant, "team", SubscriptionStatus::Active, now);
    store.subscriptions.insert_one(&sub).await.unwrap();
    user.id
}

#[tokio::test]
async fn deletion_cleans_up_every_system_then_removes_the_tenant_and_its_links() {
    let store = fresh_store().await;
    let fakes = Fakes::new();
    let running = Running::start(&store, fakes.reconcilers(), config());
    let a = insert(&store, &tenant("doomed")).await;
    let user = member_and_subscription(&store, a).await;
    until("active", PATIENCE, || in_phase(&store, a, Phase::Active)).await;
    request_deletion(&store, a).await;
    until("document gone", PATIENCE, || async {
        get(&store, a).await.is_none().then_some(())
    })
    .await;
    for fake in fakes.all() {
        assert_eq!(fake.cleanups(a), 1, "{:?}", fake.system);
    }
    let user = store
        .users
        .find_one(doc! { "_id": user })
        .await
        .unwrap()
        .unwrap();
    assert!(user.tenant_ids.is_empty(), "membership removed");
    assert_eq!(
        store
            .subscriptions
            .count_documents(doc! { "tenantId": a })
            .await
            .unwrap(),
        0
    );
    running.shutdown().await;
}

#[tokio::test]
async fn the_orphan_policy_removes_the_tenant_without_touching_upstreams() {
    let store = fresh_store().await;
    let fakes = Fakes::new();
    let running = Running::start(&store, fakes.reconcilers(), config());
    let mut t = tenant("orphaned");
    t.deletion_policy = DeletionPolicy::Orphan;
    let a = insert(&store, &t).await;
    until("active", PATIENCE, || in_phase(&store, a, Phase::Active)).await;
    request_deletion(&store, a).await;
    until("document gone", PATIENCE, || async {
        get(&store, a).await.is_none().then_some(())
    })
    .await;
    for fake in fakes.all() {
        assert_eq!(fake.cleanups(a), 0);
    }
    running.shutdown().await;
}

#[tokio::test]
async fn failed_cleanup_keeps_the_finalizer_is_visible_and_is_retried() {
    let store = fresh_store().await;
    let fakes = Fakes::new();
    let running = Running::start(&store, fakes.reconcilers(), config());
    let a = insert(&store, &tenant("stubborn")).await;
    until("active", PATIENCE, || in_phase(&store, a, Phase::Active)).await;
    fakes.stalwart.fail_next.store(2, Ordering::SeqCst);
    request_deletion(&store, a).await;
    let blocked = until("cleanup error visible", PATIENCE, || async {
        get(&store, a).await.filter(|t| {
            t.system_status(dezky_core::model::System::Stalwart)
                .is_some_and(|s| s.state == SystemState::Error)
        })
    })
    .await;
    assert_eq!(blocked.status.phase, Phase::Deleting);
    assert!(blocked
        .finalizers
        .contains(&dezky_core::model::System::Stalwart));
    until("document gone after retries", PATIENCE, || async {
        get(&store, a).await.is_none().then_some(())
    })
    .await;
    assert_eq!(fakes.stalwart.cleanups(a), 3);
    assert_eq!(
        fakes.authentik.cleanups(a),
        1,
        "a cleaned system is not cleaned again"
    );
    running.shutdown().await;
}
