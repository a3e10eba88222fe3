//! Membership where it scales: a creator belongs to what they created
//! through the tenant's `createdBy`, so creating tenants never grows their
//! user document, while every route (and `tenantIds` as the API shows it)
//! treats them as a member exactly as before; memberships stored in
//! `tenantIds` (the `groups` claim, records of the previous service) still
//! count.

use std::collections::BTreeSet;

use dezky_core::model::User;
use dezky_core::{Id, Timestamp};
use mongodb::bson::doc;
use serde_json::{json, Value};

use crate::support::api::TestApi;

fn ids(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|id| id.as_str().expect("an id").to_string())
        .collect()
}

#[tokio::test]
async fn a_creator_is_a_member_without_their_user_document_growing() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    let bob = api.user("bob", &[]).await;
    let mut created = BTreeSet::new();
    for slug in ["acme", "globex", "initech"] {
        let tenant = api.create_tenant(&alice, slug).await;
        created.insert(tenant["id"].as_str().unwrap().to_string());
    }
    let stored = api
        .store
        .users
        .find_one(doc! { "authentikSubjectId": "alice" })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.tenant_ids,
        Vec::<Id>::new(),
        "nothing stored per create"
    );

    // Every route treats her as a member and as the tenants' admin.
    let me = alice.get("/users/me").await.expect_status(200).body;
    assert_eq!(ids(&me["user"]["tenantIds"]), created);
    assert_eq!(me["tenants"].as_array().unwrap().len(), 3);
    assert_eq!(me["subscriptions"].as_array().unwrap().len(), 3);
    let listed = alice.get("/tenants").await.expect_status(200).body;
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);
    alice.get("/tenants/acme").await.expect_status(200);
    alice
        .patch("/tenants/acme", json!({"name": "Acme 2"}))
        .await
        .expect_status(200);
    alice.get("/tenants/acme/events").await.expect_status(200);
    let subscriptions = alice.get("/subscriptions").await.expect_status(200).body;
    let items = subscriptions["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let one = format!("/subscriptions/{}", items[0]["id"].as_str().unwrap());
    alice.get(&one).await.expect_status(200);
    let summary = alice.get("/fleet/summary").await.expect_status(200).body;
    assert_eq!(summary["tenants"], 3);

    // Nobody else is.
    bob.get("/tenants/acme")
        .await
        .expect_error(404, "not_found");
    bob.get(&one).await.expect_error(404, "not_found");
    let theirs = bob.get("/tenants").await.expect_status(200).body;
    assert_eq!(theirs["items"], json!([]));

    // A platform admin reads her record with the same memberships.
    let admin = api.admin().await;
    let id = me["user"]["id"].as_str().unwrap();
    let record = admin
        .get(&format!("/users/{id}"))
        .await
        .expect_status(200)
        .body;
    assert_eq!(ids(&record["tenantIds"]), created);
    let users = admin.get("/users").await.expect_status(200).body;
    let listed = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id)
        .unwrap();
    assert_eq!(ids(&listed["tenantIds"]), created);

    // Deleting a tenant ends the membership with it.
    api.store
        .tenants
        .delete_one(doc! { "slug": "initech" })
        .await
        .unwrap();
    let me = alice.get("/users/me").await.expect_status(200).body;
    assert_eq!(ids(&me["user"]["tenantIds"]).len(), 2);
}

#[tokio::test]
async fn memberships_stored_in_tenant_ids_still_count() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    let globex = api.create_tenant(&admin, "globex").await;
    api.create_tenant(&admin, "acme").await;
    let globex_id: Id = globex["id"].as_str().unwrap().parse().unwrap();
    // A record as the previous service wrote it (read before any sync).
    let record = User {
        tenant_ids: vec![globex_id],
        ..User::new("carol", Timestamp::now())
    };
    api.store.users.insert_one(&record).await.unwrap();
    let carol = api.with_token(&api.token("carol", &[]));
    carol.get("/tenants/globex").await.expect_status(200);
    carol
        .get("/tenants/acme")
        .await
        .expect_error(404, "not_found");
    let listed = carol.get("/tenants").await.expect_status(200).body;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}
