//! A pass's events are stored exactly once, also when the controller sends
//! them again after an insert whose answer it never got (its client has no
//! retryable writes; `Store::insert_events` is idempotent instead).

use dezky_core::model::{EventAction, System, TenantEvent};
use dezky_core::{Id, Timestamp};
use mongodb::bson::doc;

use crate::support::mongo::fresh_store;

/// An event of `tenant` about `object`, with its own `_id`.
pub(super) fn event(tenant: Id, object: &str) -> TenantEvent {
    TenantEvent {
        id: Id::new(),
        tenant_id: tenant,
        at: Timestamp::now(),
        system: System::Authentik,
        action: EventAction::Created,
        object: object.into(),
        fields: serde_json::Value::Null,
        message: String::new(),
        generation: 1,
    }
}

#[tokio::test]
async fn events_sent_again_after_a_lost_answer_are_stored_once() {
    let store = fresh_store().await;
    let tenant = Id::new();
    let first = vec![event(tenant, "group a"), event(tenant, "group b")];
    store.insert_events(&first).await.expect("first insert");
    // The same events again (the first answer was lost), plus one that the
    // lost insert never stored.
    let mut again = first.clone();
    again.push(event(tenant, "group c"));
    store
        .insert_events(&again)
        .await
        .expect("the repeat succeeds");
    let stored = store
        .events
        .count_documents(doc! { "tenantId": tenant })
        .await
        .expect("count");
    assert_eq!(stored, 3);
}
