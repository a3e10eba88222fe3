//! One stored tenant that does not decode (hand-edited, or of a foreign
//! schema) fails only itself: lists and the controller go on, `GET` of it
//! names the field, and it is reported once, not retried in a loop.

use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};

use super::harness::Stack;

#[tokio::test]
async fn a_tenant_that_does_not_decode_fails_only_itself() {
    let stack = Stack::start().await;
    let serve = stack.spawn("serve").await;
    let api = stack.admin(&serve).await;
    api.create_tenant("good-one", "Good One", &[]).await;
    api.converged("good-one").await;

    let store = stack.store().await;
    let now = DateTime::now();
    store
        .db
        .collection::<Document>("tenants")
        .insert_one(doc! {
            "_id": ObjectId::new(), "slug": "broken", "name": "Broken", "plan": "team",
            "generation": 1_i64, "status": "active", "createdAt": now, "updatedAt": now,
        })
        .await
        .unwrap();
    // The controller keeps working: a tenant created after it converges.
    api.create_tenant("good-two", "Good Two", &[]).await;
    api.converged("good-two").await;

    let read = api.get("/tenants/broken").await.expect_status(500);
    assert_eq!(read.body["error"]["code"], "undecodable_document");
    assert_eq!(read.body["error"]["field"], "status");
    let message = read.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("slug `broken`"), "{message}");

    let listed = api.get("/tenants").await.expect_status(200);
    let slugs: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["slug"].as_str())
        .collect();
    assert_eq!(slugs, ["good-one", "good-two"]);

    // Reported per read that met it (the tenant cache, the controller's
    // one pass, a list read from MongoDB while a write was pinned), never
    // once per retry of a backoff loop (200 ms in these tests).
    let metrics = reqwest::get(format!("{}/metrics", serve.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let reported: f64 = metrics
        .lines()
        .find(|l| l.starts_with("store_undecodable_documents_total{collection=\"tenants\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("the undecodable-documents counter");
    assert!((1.0..=3.0).contains(&reported), "reported {reported} times");
    // The leader's fleet figures (counted when it starts leading, then
    // every 30 s); the undecodable tenant is counted by its stored phase.
    for series in [
        "tenants{phase=\"active\"}",
        "tenants_paused",
        "tenants_oldest_unconverged_seconds{phase=\"pending\"}",
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
}

#[tokio::test]
async fn a_user_or_subscription_that_does_not_decode_is_left_out_of_lists() {
    let stack = Stack::start().await;
    let serve = stack.spawn("serve").await;
    let api = stack.admin(&serve).await;
    api.create_tenant("kept", "Kept", &[]).await;
    let store = stack.store().await;
    let now = DateTime::now();
    let tenant = store
        .db
        .collection::<Document>("tenants")
        .find_one(doc! { "slug": "kept" })
        .await
        .unwrap()
        .unwrap();
    let tenant_id = tenant.get_object_id("_id").unwrap();
    store
        .db
        .collection::<Document>("users")
        .insert_one(doc! {
            "_id": ObjectId::new(), "authentikSubjectId": "odd-role", "role": "owner",
            "tenantIds": [tenant_id], "createdAt": now, "updatedAt": now,
        })
        .await
        .unwrap();
    let broken_subscription = ObjectId::new();
    store
        .db
        .collection::<Document>("subscriptions")
        .insert_one(doc! {
            "_id": broken_subscription, "tenantId": ObjectId::new(), "plan": "team",
            "status": "incomplete_expired", "createdAt": now, "updatedAt": now,
        })
        .await
        .unwrap();

    let users = api.get("/users?limit=500").await.expect_status(200).body;
    let subjects: Vec<&str> = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["authentikSubjectId"].as_str())
        .collect();
    assert!(subjects.contains(&"e2e-admin"), "{users}");
    assert!(!subjects.contains(&"odd-role"), "{users}");
    let subscriptions = api.get("/subscriptions").await.expect_status(200).body;
    let items = subscriptions["items"].as_array().unwrap();
    assert!(items.iter().any(|s| s["tenantId"] == tenant_id.to_hex()));
    let one = api
        .get(&format!("/subscriptions/{}", broken_subscription.to_hex()))
        .await
        .expect_status(500)
        .body;
    assert_eq!(one["error"]["code"], "undecodable_document");
    assert_eq!(one["error"]["field"], "status");
    // The user whose record does not decode gets the error, naming the field.
    let odd = stack.client(&serve, serde_json::json!({"sub": "odd-role"}));
    let refused = odd.get("/tenants").await.expect_status(500).body;
    assert_eq!(refused["error"]["field"], "role");
}
