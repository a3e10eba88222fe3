//! `PUT /tenants/{slug}` (apply): create-or-replace of the whole desired
//! spec, idempotent (no generation bump when nothing changes), with the
//! validation, conflicts, `If-Match` and authorization of POST and PATCH.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::api::TestApi;

fn spec() -> Value {
    json!({ "name": "Acme Inc", "plan": "team", "domains": ["Acme.TEST"],
            "billingInfo": {"email": "billing@acme.test"}, "deletionPolicy": "orphan", "paused": false })
}

#[tokio::test]
async fn put_creates_then_reapplying_the_same_spec_changes_nothing() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    let created = alice.put("/tenants/acme", spec()).await.expect_status(201);
    assert_eq!(created.etag(), "\"1\"");
    assert_eq!(
        created
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/tenants/acme")
    );
    let t = &created.body;
    assert_eq!(t["slug"], "acme");
    assert_eq!(t["domains"], json!(["acme.test"]));
    assert_eq!(t["deletionPolicy"], "orphan");
    assert_eq!(t["status"]["phase"], "pending");
    let me = alice.get("/users/me").await.expect_status(200).body;
    assert_eq!(
        me["user"]["tenantIds"],
        json!([t["id"]]),
        "the creator is a member"
    );
    assert_eq!(me["subscriptions"][0]["status"], "trialing");

    let again = alice.put("/tenants/acme", spec()).await.expect_status(200);
    assert_eq!(again.etag(), "\"1\"", "no generation bump");
    assert_eq!(again.body["updatedAt"], t["updatedAt"], "nothing written");
    assert_eq!(again.body["generation"], 1);
}

#[tokio::test]
async fn put_replaces_every_desired_field_and_resets_what_the_body_leaves_out() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    alice.put("/tenants/acme", spec()).await.expect_status(201);
    let reply = alice
        .put(
            "/tenants/acme",
            json!({ "name": "Acme Corp", "plan": "business", "paused": true }),
        )
        .await
        .expect_status(200);
    assert_eq!(reply.etag(), "\"2\"");
    let t = &reply.body;
    assert_eq!(t["name"], "Acme Corp");
    assert_eq!(t["plan"], "business");
    assert_eq!(t["domains"], json!([]), "absent domains = none");
    assert_eq!(t["billingInfo"], json!(null));
    assert_eq!(t["deletionPolicy"], "delete", "absent policy = the default");
    assert_eq!(t["paused"], true);
}

#[tokio::test]
async fn put_validates_like_post_and_rejects_unknown_fields() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    let bad = |body: Value| {
        let alice = &alice;
        async move { alice.put("/tenants/acme", body).await }
    };
    let e = bad(json!({"name": "A", "plan": "gold"}))
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(e["field"], "plan");
    let e = bad(json!({"name": "A", "plan": "team", "domains": ["ok.test", "nope"]}))
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(e["field"], "domains[1]");
    let e = bad(json!({"name": "A", "plan": "team", "colour": "red"}))
        .await
        .expect_error(400, "unknown_field");
    assert_eq!(e["field"], "colour");
    let e = bad(json!({"plan": "team"}))
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(e["field"], "name");
    let e = alice
        .put("/tenants/Not_A_Slug", json!({"name": "A", "plan": "team"}))
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(e["field"], "slug");
    assert_eq!(alice.get("/tenants").await.body["items"], json!([]));
}

#[tokio::test]
async fn put_honours_if_match_and_needs_an_existing_tenant_for_it() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    let missing = alice
        .send(
            alice
                .request(Method::PUT, "/tenants/acme")
                .header("If-Match", "*")
                .json(&spec()),
        )
        .await;
    missing.expect_error(412, "precondition_failed");
    alice.put("/tenants/acme", spec()).await.expect_status(201);
    let mut changed = spec();
    changed["name"] = json!("Acme Two");
    let stale = alice
        .request(Method::PUT, "/tenants/acme")
        .header("If-Match", "\"7\"")
        .json(&changed);
    alice
        .send(stale)
        .await
        .expect_error(412, "precondition_failed");
    let fresh = alice
        .request(Method::PUT, "/tenants/acme")
        .header("If-Match", "\"1\"")
        .json(&changed);
    let reply = alice.send(fresh).await.expect_status(200);
    assert_eq!(reply.etag(), "\"2\"");
}

#[tokio::test]
async fn put_conflicts_like_post_and_patch() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    let mallory = api.user("mallory", &[]).await;
    alice.put("/tenants/acme", spec()).await.expect_status(201);

    // Another user's slug is taken (as for POST), and their tenant untouched.
    let e = mallory
        .put("/tenants/acme", json!({"name": "Mine", "plan": "team"}))
        .await
        .expect_error(409, "slug_taken");
    assert_eq!(e["field"], "slug");
    // A domain held by another tenant.
    let e = mallory
        .put(
            "/tenants/other",
            json!({"name": "Other", "plan": "team", "domains": ["acme.test"]}),
        )
        .await
        .expect_error(409, "domain_taken");
    assert_eq!(e["field"], "domains[0]");
    alice
        .put(
            "/tenants/two",
            json!({"name": "Two", "plan": "team", "domains": ["two.test"]}),
        )
        .await
        .expect_status(201);
    alice
        .put(
            "/tenants/two",
            json!({"name": "Two", "plan": "team", "domains": ["two.test", "acme.test"]}),
        )
        .await
        .expect_error(409, "domain_taken");

    // A tenant being deleted can no longer change.
    alice.delete("/tenants/two").await.expect_status(202);
    alice
        .put("/tenants/two", json!({"name": "Two again", "plan": "team"}))
        .await
        .expect_error(409, "tenant_deleting");
    let acme = alice.get("/tenants/acme").await.expect_status(200).body;
    assert_eq!(acme["name"], "Acme Inc");
}

#[tokio::test]
async fn put_on_an_existing_tenant_needs_its_admin() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    alice.put("/tenants/acme", spec()).await.expect_status(201);
    let member = api.user("bob", &["tenant-acme"]).await;
    member
        .put("/tenants/acme", spec())
        .await
        .expect_error(403, "forbidden");
    let admin = api.admin().await;
    let mut changed = spec();
    changed["plan"] = json!("business");
    let reply = admin.put("/tenants/acme", changed).await.expect_status(200);
    assert_eq!(reply.body["plan"], "business");
    api.anonymous()
        .put("/tenants/acme", spec())
        .await
        .expect_error(401, "unauthorized");
}
