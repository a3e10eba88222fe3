//! Tenant lifecycle through the API: create, read with ETag, list with
//! pagination, PATCH with generation and If-Match semantics, DELETE, and
//! manual reconcile requests.

use std::time::Duration;

use mongodb::bson::doc;
use reqwest::Method;
use serde_json::json;

use crate::support::api::TestApi;
use crate::support::wait::until;

#[tokio::test]
async fn create_returns_a_pending_tenant_with_id_and_etag_and_makes_the_creator_a_member() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    let reply = alice
        .post(
            "/tenants",
            json!({"slug": "acme", "name": "Acme Inc", "plan": "team",
                   "domains": ["Acme.Example.COM"], "billingInfo": {"email": "billing@acme.example.com"},
                   "deletionPolicy": "orphan"}),
        )
        .await
        .expect_status(201);
    assert_eq!(reply.etag(), "\"1\"");
    let t = &reply.body;
    assert!(t["id"].as_str().is_some_and(|id| id.len() == 24), "{t}");
    assert!(t.get("_id").is_none());
    assert_eq!(t["slug"], "acme");
    assert_eq!(t["domains"], json!(["acme.example.com"]));
    assert_eq!(t["billingInfo"]["email"], "billing@acme.example.com");
    assert_eq!(t["deletionPolicy"], "orphan");
    assert_eq!(t["paused"], false);
    assert_eq!(t["generation"], 1);
    assert_eq!(t["status"]["phase"], "pending");
    assert_eq!(t["deletionRequestedAt"], json!(null));

    let me = alice.get("/users/me").await.expect_status(200).body;
    assert_eq!(t["createdBy"], me["user"]["id"]);
    assert_eq!(me["user"]["tenantIds"], json!([t["id"]]));
    assert_eq!(me["tenants"][0]["slug"], "acme");
    assert_eq!(me["subscriptions"][0]["tenantId"], t["id"]);
    assert_eq!(me["subscriptions"][0]["plan"], "team");

    // The creator administers the tenant even though their role is `member`.
    assert_eq!(me["user"]["role"], "member");
    alice
        .patch("/tenants/acme", json!({"name": "Acme"}))
        .await
        .expect_status(200);
}

#[tokio::test]
async fn get_returns_the_tenant_with_its_generation_as_etag() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    let created = api.create_tenant(&alice, "acme").await;
    let reply = alice.get("/tenants/acme").await.expect_status(200);
    assert_eq!(reply.etag(), "\"1\"");
    assert_eq!(reply.body, created);
    alice
        .get("/tenants/nope")
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn duplicate_slug_and_taken_domains_are_conflicts_that_change_nothing() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    api.create_tenant(&alice, "acme").await;
    let error = alice
        .post(
            "/tenants",
            json!({"slug": "acme", "name": "Other", "plan": "free"}),
        )
        .await
        .expect_error(409, "slug_taken");
    assert_eq!(error["field"], "slug");
    let error = alice
        .post(
            "/tenants",
            json!({"slug": "other", "name": "Other", "plan": "free",
                   "domains": ["free.test", "ACME.test"]}),
        )
        .await
        .expect_error(409, "domain_taken");
    assert_eq!(error["field"], "domains[1]");
    assert_eq!(api.store.tenants.count_documents(doc! {}).await.unwrap(), 1);

    api.create_tenant(&alice, "beta").await;
    let error = alice
        .patch(
            "/tenants/beta",
            json!({"domains": ["beta.test", "acme.test"]}),
        )
        .await
        .expect_error(409, "domain_taken");
    assert_eq!(error["field"], "domains[1]");
    let beta = alice.get("/tenants/beta").await.body;
    assert_eq!(
        (beta["generation"].clone(), beta["domains"].clone()),
        (json!(1), json!(["beta.test"]))
    );
}

#[tokio::test]
async fn list_pages_through_every_visible_tenant_with_an_opaque_cursor() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    for i in 0..5 {
        api.create_tenant(&admin, &format!("t-{i:02}")).await;
    }
    let mut slugs = Vec::new();
    let mut path = "/tenants?limit=2".to_string();
    let mut pages = 0;
    loop {
        let page = admin.get(&path).await.expect_status(200).body;
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        slugs.extend(
            items
                .iter()
                .map(|t| t["slug"].as_str().unwrap().to_string()),
        );
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/tenants?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(slugs, ["t-00", "t-01", "t-02", "t-03", "t-04"]);

    let all = admin.get("/tenants").await.body;
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
    assert_eq!(all["nextCursor"], json!(null));
    let capped = admin
        .get("/tenants?limit=100000")
        .await
        .expect_status(200)
        .body;
    assert_eq!(capped["items"].as_array().unwrap().len(), 5);
    for bad in [
        "/tenants?limit=0",
        "/tenants?limit=-1",
        "/tenants?limit=ten",
    ] {
        assert_eq!(
            admin.get(bad).await.expect_error(400, "validation_failed")["field"],
            "limit"
        );
    }
    assert_eq!(
        admin
            .get("/tenants?cursor=garbage")
            .await
            .expect_error(400, "validation_failed")["field"],
        "cursor"
    );
}

#[tokio::test]
async fn patch_bumps_generation_only_when_a_desired_field_really_changes() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    api.create_tenant(&alice, "acme").await;

    // Same values (domains normalised to the same list): no change, no bump.
    let same = alice
        .patch("/tenants/acme", json!({"name": "Tenant acme", "plan": "team", "domains": ["ACME.test"], "paused": false}))
        .await
        .expect_status(200);
    assert_eq!(
        (same.body["generation"].clone(), same.etag()),
        (json!(1), "\"1\"".to_string())
    );

    let changed = alice
        .patch(
            "/tenants/acme",
            json!({"name": "Acme", "plan": "business", "paused": true,
                                        "domains": ["acme.test", "mail.acme.test"],
                                        "billingInfo": {"email": "b@acme.test"}}),
        )
        .await
        .expect_status(200);
    let t = &changed.body;
    assert_eq!(t["generation"], 2);
    assert_eq!(changed.etag(), "\"2\"");
    assert_eq!(
        (
            t["name"].as_str(),
            t["plan"].as_str(),
            t["paused"].as_bool()
        ),
        (Some("Acme"), Some("business"), Some(true))
    );
    assert_eq!(t["domains"], json!(["acme.test", "mail.acme.test"]));

    let cleared = alice
        .patch(
            "/tenants/acme",
            json!({"billingInfo": null, "deletionPolicy": "orphan"}),
        )
        .await
        .expect_status(200)
        .body;
    assert_eq!(cleared["generation"], 3);
    assert_eq!(cleared["billingInfo"], json!(null));

    // A status write by the controller does not touch generation. It is
    // another writer's change: the API shows it once its tenant cache has it.
    api.store
        .tenants
        .update_one(
            doc! {"slug": "acme"},
            doc! {"$set": {"status.phase": "active"}},
        )
        .await
        .unwrap();
    let read = until("the status write shows", Duration::from_secs(5), || async {
        let read = alice.get("/tenants/acme").await.body;
        (read["status"]["phase"] == "active").then_some(read)
    })
    .await;
    assert_eq!(read["generation"], 3);

    // A change takes the generation past the observed one: no longer active.
    let renamed = alice
        .patch("/tenants/acme", json!({"name": "Acme Renamed"}))
        .await
        .expect_status(200)
        .body;
    assert_eq!(renamed["generation"], 4);
    assert_eq!(renamed["status"]["phase"], "pending");

    let error = alice
        .patch("/tenants/acme", json!({"slug": "renamed"}))
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(error["field"], "slug");
}

#[tokio::test]
async fn if_match_guards_patch_and_delete_against_stale_generations() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    api.create_tenant(&alice, "acme").await;
    let ok = alice
        .send(
            alice
                .request(Method::PATCH, "/tenants/acme")
                .header("If-Match", "\"1\"")
                .json(&json!({"name": "A"})),
        )
        .await
        .expect_status(200);
    assert_eq!(ok.etag(), "\"2\"");
    alice
        .send(
            alice
                .request(Method::PATCH, "/tenants/acme")
                .header("If-Match", "\"1\"")
                .json(&json!({"name": "B"})),
        )
        .await
        .expect_error(412, "precondition_failed");
    alice
        .send(
            alice
                .request(Method::DELETE, "/tenants/acme")
                .header("If-Match", "\"1\""),
        )
        .await
        .expect_error(412, "precondition_failed");
    let t = alice.get("/tenants/acme").await.body;
    assert_eq!(
        (t["name"].as_str(), t["generation"].as_i64()),
        (Some("A"), Some(2))
    );
    alice
        .send(
            alice
                .request(Method::DELETE, "/tenants/acme")
                .header("If-Match", "W/\"2\""),
        )
        .await
        .expect_status(202);
}

#[tokio::test]
async fn delete_marks_the_tenant_deleting_once_and_freezes_its_desired_state() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    api.create_tenant(&alice, "acme").await;
    let reply = alice.delete("/tenants/acme").await.expect_status(202);
    let t = &reply.body;
    assert_eq!(t["status"]["phase"], "deleting");
    assert_eq!(t["generation"], 2);
    assert!(t["deletionRequestedAt"].as_str().is_some());
    assert_eq!(reply.etag(), "\"2\"");

    let again = alice.delete("/tenants/acme").await.expect_status(202).body;
    assert_eq!(again["generation"], 2, "a repeated DELETE is idempotent");
    assert_eq!(again["deletionRequestedAt"], t["deletionRequestedAt"]);
    alice
        .patch("/tenants/acme", json!({"name": "Zombie"}))
        .await
        .expect_error(409, "tenant_deleting");
    assert!(
        api.store
            .tenants
            .find_one(doc! {"slug": "acme"})
            .await
            .unwrap()
            .is_some(),
        "the controller removes the document, not the API"
    );
}

#[tokio::test]
async fn reconcile_records_a_fresh_token_each_time() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    api.create_tenant(&alice, "acme").await;
    let first = alice
        .post("/tenants/acme/reconcile", json!({}))
        .await
        .expect_status(202)
        .body;
    let token = first["token"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&token).is_ok());
    let stored = api
        .store
        .tenants
        .find_one(doc! {"slug": "acme"})
        .await
        .unwrap()
        .unwrap();
    let request = stored.reconcile_request.unwrap();
    assert_eq!(request.token, token);
    assert_eq!(
        stored.generation, 1,
        "a reconcile request is not a desired-state change"
    );

    let second = alice
        .send(alice.request(Method::POST, "/tenants/acme/reconcile"))
        .await
        .expect_status(202)
        .body;
    assert_ne!(second["token"], first["token"]);
}

#[tokio::test]
async fn tenants_without_domains_do_not_conflict() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    for slug in ["no-mail-1", "no-mail-2"] {
        alice
            .post(
                "/tenants",
                json!({"slug": slug, "name": slug, "plan": "free"}),
            )
            .await
            .expect_status(201);
    }
}
