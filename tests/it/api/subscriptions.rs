//! `/subscriptions`: platform admins manage them (one per tenant), members
//! read their tenants' subscriptions, everyone else sees nothing.

use serde_json::json;

use crate::support::api::TestApi;

#[tokio::test]
async fn every_new_tenant_starts_with_a_trialing_subscription_on_its_plan() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    let acme = api.create_tenant(&alice, "acme").await;
    let list = alice.get("/subscriptions").await.expect_status(200).body;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["tenantId"], acme["id"]);
    assert_eq!(
        (items[0]["plan"].as_str(), items[0]["status"].as_str()),
        (Some("team"), Some("trialing"))
    );
}

#[tokio::test]
async fn platform_admins_manage_subscriptions_and_members_only_read_theirs() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    let alice = api.user("alice", &[]).await;
    let acme = api.create_tenant(&alice, "acme").await;
    let other = api.create_tenant(&admin, "other").await;
    let bob = api.user("bob", &[]).await;

    // One per tenant: creating another for acme conflicts.
    let error = admin
        .post(
            "/subscriptions",
            json!({"tenantId": acme["id"], "plan": "team"}),
        )
        .await
        .expect_error(409, "subscription_exists");
    assert_eq!(error["field"], "tenantId");

    let acme_sub = alice.get("/subscriptions").await.body["items"][0].clone();
    let id = acme_sub["id"].as_str().unwrap();
    let patched = admin
        .patch(
            &format!("/subscriptions/{id}"),
            json!({"status": "active", "plan": "business",
               "stripeCustomerId": "cus_123", "currentPeriodEnd": "2030-01-01T00:00:00Z"}),
        )
        .await
        .expect_status(200)
        .body;
    assert_eq!(
        (patched["status"].as_str(), patched["plan"].as_str()),
        (Some("active"), Some("business"))
    );
    assert_eq!(patched["currentPeriodEnd"], "2030-01-01T00:00:00.000Z");
    let cleared = admin
        .patch(
            &format!("/subscriptions/{id}"),
            json!({"stripeCustomerId": null}),
        )
        .await
        .expect_status(200)
        .body;
    assert_eq!(cleared["stripeCustomerId"], json!(null));

    alice
        .get(&format!("/subscriptions/{id}"))
        .await
        .expect_status(200);
    alice
        .patch(
            &format!("/subscriptions/{id}"),
            json!({"status": "canceled"}),
        )
        .await
        .expect_error(403, "forbidden");
    alice
        .delete(&format!("/subscriptions/{id}"))
        .await
        .expect_error(403, "forbidden");
    bob.get(&format!("/subscriptions/{id}"))
        .await
        .expect_error(404, "not_found");
    bob.patch(
        &format!("/subscriptions/{id}"),
        json!({"status": "canceled"}),
    )
    .await
    .expect_error(404, "not_found");
    assert_eq!(bob.get("/subscriptions").await.body["items"], json!([]));
    bob.post(
        "/subscriptions",
        json!({"tenantId": acme["id"], "plan": "team"}),
    )
    .await
    .expect_error(403, "forbidden");
    assert_eq!(
        admin.get("/subscriptions").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let cases = [
        (
            json!({"tenantId": "0123456789abcdef01234567", "plan": "team"}),
            "tenantId",
        ),
        (json!({"tenantId": "zzz", "plan": "team"}), "tenantId"),
        (json!({"tenantId": other["id"], "plan": "gold"}), "plan"),
        (
            json!({"tenantId": other["id"], "plan": "team", "status": "unpaid"}),
            "status",
        ),
        (
            json!({"tenantId": other["id"], "plan": "team", "currentPeriodEnd": "tomorrow"}),
            "currentPeriodEnd",
        ),
        (
            json!({"tenantId": other["id"], "plan": "team", "stripeCustomerId": ""}),
            "stripeCustomerId",
        ),
    ];
    for (body, field) in cases {
        let error = admin
            .post("/subscriptions", body.clone())
            .await
            .expect_error(400, "validation_failed");
        assert_eq!(error["field"], field, "{body}");
    }
    admin
        .patch(
            &format!("/subscriptions/{id}"),
            json!({"tenantId": other["id"]}),
        )
        .await
        .expect_error(400, "unknown_field");

    let other_sub = admin.get("/subscriptions").await.body["items"][1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin
        .delete(&format!("/subscriptions/{other_sub}"))
        .await
        .expect_status(204);
    let recreated = admin
        .post("/subscriptions", json!({"tenantId": other["id"], "plan": "free", "status": "past_due", "stripeSubscriptionId": "sub_1"}))
        .await
        .expect_status(201)
        .body;
    assert_eq!(
        (
            recreated["status"].as_str(),
            recreated["stripeSubscriptionId"].as_str()
        ),
        (Some("past_due"), Some("sub_1"))
    );
    admin
        .get("/subscriptions/not-an-id")
        .await
        .expect_error(404, "not_found");
}
