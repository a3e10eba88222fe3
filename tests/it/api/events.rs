//! `GET /tenants/{slug}/events`: the controller's history of a tenant,
//! newest first, paginated, and only the tenant's own events.

use dezky_core::model::{EventAction, System, TenantEvent};
use dezky_core::{Id, Timestamp};
use mongodb::bson::doc;
use serde_json::json;

use crate::support::api::TestApi;

fn event(tenant: Id, n: i64) -> TenantEvent {
    TenantEvent {
        id: Id::new(),
        tenant_id: tenant,
        at: Timestamp::from_millis(1_700_000_000_000 + n),
        system: System::Authentik,
        action: EventAction::Created,
        object: format!("group tenant-{n}"),
        fields: json!({"name": {"from": null, "to": format!("n{n}")}}),
        message: String::new(),
        generation: n,
    }
}

#[tokio::test]
async fn events_are_listed_newest_first_in_pages_for_that_tenant_only() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    api.create_tenant(&alice, "acme").await;
    api.create_tenant(&alice, "other").await;
    let acme = api
        .store
        .tenants
        .find_one(doc! {"slug": "acme"})
        .await
        .unwrap()
        .unwrap();
    let other = api
        .store
        .tenants
        .find_one(doc! {"slug": "other"})
        .await
        .unwrap()
        .unwrap();
    for n in 0..5 {
        api.store
            .events
            .insert_one(event(acme.id, n))
            .await
            .unwrap();
    }
    api.store
        .events
        .insert_one(event(other.id, 99))
        .await
        .unwrap();

    let first = alice
        .get("/tenants/acme/events?limit=3")
        .await
        .expect_status(200)
        .body;
    let generations: Vec<_> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["generation"].as_i64().unwrap())
        .collect();
    assert_eq!(generations, [4, 3, 2]);
    let e = &first["items"][0];
    assert_eq!(
        (
            e["system"].as_str(),
            e["action"].as_str(),
            e["object"].as_str()
        ),
        (Some("authentik"), Some("created"), Some("group tenant-4"))
    );
    assert_eq!(e["at"], "2023-11-14T22:13:20.004Z");
    assert_eq!(e["fields"]["name"]["to"], "n4");
    let cursor = first["nextCursor"].as_str().unwrap();
    let second = alice
        .get(&format!("/tenants/acme/events?limit=3&cursor={cursor}"))
        .await
        .body;
    let generations: Vec<_> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["generation"].as_i64().unwrap())
        .collect();
    assert_eq!(generations, [1, 0]);
    assert_eq!(second["nextCursor"], json!(null));
}
