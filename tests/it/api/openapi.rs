//! The OpenAPI document describes what the API really answers: every
//! operation is called, each answer's status must be listed for its route
//! and its body must validate against the documented schema. A controller
//! with fake reconcilers runs alongside, so `?wait=`, the plan and the
//! event history answer too. Also: the committed `docs/openapi.json` is the
//! document `provisioner openapi` prints.

use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};

use crate::controller::{config, Running};
use crate::support::api::TestApi;
use crate::support::fake::Fakes;
use crate::support::openapi::Conformance;
use crate::support::wait::until;

#[tokio::test]
async fn every_route_answers_as_the_openapi_document_says() {
    let api = TestApi::start().await;
    let fakes = Fakes::new();
    let running = Running::start_synced(&api.store, fakes.reconcilers(), config()).await;
    let anonymous = api.anonymous();
    let doc = anonymous.get("/openapi.json").await.expect_status(200).body;
    let mut spec = Conformance::new(doc.clone());
    spec.check(
        "get",
        "/openapi.json",
        &anonymous.get("/openapi.json").await,
    );
    for route in ["/healthz", "/readyz", "/metrics"] {
        spec.check("get", route, &anonymous.get(route).await);
    }
    spec.check("get", "/tenants", &anonymous.get("/tenants").await);

    let admin = api.with_token(&api.token("root", &[crate::support::api::ADMIN_GROUP]));
    spec.check("get", "/users/me", &admin.get("/users/me").await);
    let create = |slug: &str| {
        json!({ "slug": slug, "name": "Acme Inc", "plan": "team",
        "domains": [format!("{slug}.test")], "billingInfo": { "email": "billing@acme.test" } })
    };
    let created = admin
        .post("/tenants", create("acme"))
        .await
        .expect_status(201);
    spec.check("post", "/tenants", &created);
    spec.check(
        "post",
        "/tenants",
        &admin
            .post("/tenants", create("acme"))
            .await
            .expect_status(409),
    );
    spec.check(
        "post",
        "/tenants",
        &admin
            .post("/tenants", json!({"slug": "x"}))
            .await
            .expect_status(400),
    );
    let text = admin
        .request(Method::POST, "/tenants")
        .header(CONTENT_TYPE, "text/plain")
        .body("hi");
    spec.check(
        "post",
        "/tenants",
        &admin.send(text).await.expect_status(415),
    );
    let big = admin
        .request(Method::POST, "/tenants")
        .header(CONTENT_TYPE, "application/json")
        .body(vec![b' '; 100 * 1024]);
    spec.check(
        "post",
        "/tenants",
        &admin.send(big).await.expect_status(413),
    );

    spec.check(
        "get",
        "/tenants",
        &admin.get("/tenants?limit=1").await.expect_status(200),
    );
    spec.check(
        "get",
        "/tenants",
        &admin.get("/tenants?limit=0").await.expect_status(400),
    );
    let id = created.body["id"].as_str().unwrap().parse().unwrap();
    until("acme active", crate::controller::PATIENCE, || {
        crate::support::tenants::in_phase(&api.store, id, dezky_core::model::Phase::Active)
    })
    .await;
    spec.check(
        "get",
        "/tenants/{slug}",
        &admin.get("/tenants/acme").await.expect_status(200),
    );
    spec.check(
        "get",
        "/tenants/{slug}",
        &admin.get("/tenants/nope").await.expect_status(404),
    );
    let patch = json!({ "name": "Acme Corporation" });
    spec.check(
        "patch",
        "/tenants/{slug}",
        &admin
            .patch("/tenants/acme", patch.clone())
            .await
            .expect_status(200),
    );
    let stale = admin
        .request(Method::PATCH, "/tenants/acme")
        .header("If-Match", "\"99\"")
        .json(&patch);
    spec.check(
        "patch",
        "/tenants/{slug}",
        &admin.send(stale).await.expect_status(412),
    );
    let member = api.user("bob", &["tenant-acme"]).await;
    spec.check(
        "patch",
        "/tenants/{slug}",
        &member
            .patch("/tenants/acme", patch)
            .await
            .expect_status(403),
    );
    let apply = json!({ "name": "Acme Corporation", "plan": "team", "domains": ["acme.test"],
        "billingInfo": { "email": "billing@acme.test" } });
    spec.check(
        "put",
        "/tenants/{slug}",
        &admin
            .put("/tenants/acme", apply.clone())
            .await
            .expect_status(200),
    );
    spec.check(
        "put",
        "/tenants/{slug}",
        &member
            .put("/tenants/acme", apply.clone())
            .await
            .expect_status(403),
    );
    let stale = admin
        .request(Method::PUT, "/tenants/acme")
        .header("If-Match", "\"99\"")
        .json(&apply);
    spec.check(
        "put",
        "/tenants/{slug}",
        &admin.send(stale).await.expect_status(412),
    );
    spec.check(
        "put",
        "/tenants/{slug}",
        &admin
            .put("/tenants/applied", apply.clone())
            .await
            .expect_status(409),
    );
    spec.check(
        "put",
        "/tenants/{slug}",
        &admin
            .put(
                "/tenants/applied",
                json!({ "name": "Applied", "plan": "team" }),
            )
            .await
            .expect_status(201),
    );
    spec.check(
        "put",
        "/tenants/{slug}",
        &admin
            .put("/tenants/applied", json!({ "name": "Applied" }))
            .await
            .expect_status(400),
    );
    spec.check(
        "get",
        "/users",
        &member.get("/users").await.expect_status(403),
    );

    let reconcile = "/tenants/{slug}/reconcile";
    spec.check(
        "post",
        reconcile,
        &admin
            .post("/tenants/acme/reconcile", json!({}))
            .await
            .expect_status(202),
    );
    spec.check(
        "post",
        reconcile,
        &admin
            .post("/tenants/acme/reconcile?wait=20s", json!({}))
            .await
            .expect_status(200),
    );
    spec.check(
        "post",
        reconcile,
        &admin
            .post("/tenants/acme/reconcile?wait=soon", json!({}))
            .await
            .expect_status(400),
    );
    spec.check(
        "get",
        "/tenants/{slug}/plan",
        &admin
            .get("/tenants/acme/plan?wait=20s")
            .await
            .expect_status(200),
    );
    let events = admin.get("/tenants/acme/events").await.expect_status(200);
    assert!(
        !events.body["items"].as_array().unwrap().is_empty(),
        "{}",
        events.body
    );
    spec.check("get", "/tenants/{slug}/events", &events);
    spec.check(
        "get",
        "/fleet/summary",
        &admin.get("/fleet/summary").await.expect_status(200),
    );

    spec.check(
        "get",
        "/users",
        &admin.get("/users").await.expect_status(200),
    );
    let user = json!({ "authentikSubjectId": "carol", "email": "carol@acme.test", "tenantIds": [id.to_string()] });
    let carol = admin.post("/users", user.clone()).await.expect_status(201);
    spec.check("post", "/users", &carol);
    spec.check(
        "post",
        "/users",
        &admin.post("/users", user).await.expect_status(409),
    );
    let carol = format!("/users/{}", carol.body["id"].as_str().unwrap());
    spec.check(
        "get",
        "/users/{id}",
        &admin.get(&carol).await.expect_status(200),
    );
    spec.check(
        "get",
        "/users/{id}",
        &admin.get("/users/nope").await.expect_status(404),
    );
    spec.check(
        "patch",
        "/users/{id}",
        &admin
            .patch(&carol, json!({"role": "admin"}))
            .await
            .expect_status(200),
    );
    spec.check(
        "delete",
        "/users/{id}",
        &admin.delete(&carol).await.expect_status(204),
    );

    let subscriptions = admin.get("/subscriptions").await.expect_status(200);
    spec.check("get", "/subscriptions", &subscriptions);
    let subscription = format!(
        "/subscriptions/{}",
        subscriptions.body["items"][0]["id"].as_str().unwrap()
    );
    spec.check(
        "get",
        "/subscriptions/{id}",
        &admin.get(&subscription).await.expect_status(200),
    );
    let patch = json!({ "status": "past_due", "currentPeriodEnd": "2027-01-01T00:00:00.000Z" });
    spec.check(
        "patch",
        "/subscriptions/{id}",
        &admin.patch(&subscription, patch).await.expect_status(200),
    );
    spec.check(
        "delete",
        "/subscriptions/{id}",
        &admin.delete(&subscription).await.expect_status(204),
    );
    spec.check(
        "get",
        "/subscriptions/{id}",
        &admin.get(&subscription).await.expect_status(404),
    );
    let fresh = json!({ "tenantId": id.to_string(), "plan": "team", "stripeCustomerId": "cus_1" });
    spec.check(
        "post",
        "/subscriptions",
        &admin
            .post("/subscriptions", fresh.clone())
            .await
            .expect_status(201),
    );
    spec.check(
        "post",
        "/subscriptions",
        &admin.post("/subscriptions", fresh).await.expect_status(409),
    );

    spec.check(
        "delete",
        "/tenants/{slug}",
        &admin.delete("/tenants/acme").await.expect_status(202),
    );
    assert_eq!(
        spec.unchecked(),
        Vec::<String>::new(),
        "operations never called"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn the_document_types_every_body_and_lists_the_configured_plans() {
    let api = TestApi::start().await;
    let doc = api
        .anonymous()
        .get("/openapi.json")
        .await
        .expect_status(200)
        .body;
    let schemas = &doc["components"]["schemas"];
    for name in [
        "Tenant",
        "TenantStatus",
        "SystemStatus",
        "User",
        "Subscription",
        "TenantEvent",
        "PlanAnswer",
        "Page_Tenant",
        "Page_User",
        "Page_Subscription",
        "Page_TenantEvent",
        "ErrorBody",
        "Me",
        "CreateTenant",
        "PatchTenant",
        "TenantSpec",
    ] {
        assert!(schemas[name].is_object(), "schema {name} missing");
    }
    let names = |schema: &str| -> Vec<Value> {
        schemas[schema]["enum"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(names("Plan"), ["business", "enterprise", "free", "team"]);
    assert_eq!(
        names("Phase"),
        ["pending", "active", "degraded", "deleting"]
    );
    assert_eq!(names("SystemState"), ["ok", "skipped", "error", "pending"]);
    assert!(names("ErrorCode").contains(&json!("database_unavailable")));
    assert!(
        schemas["Tenant"]["properties"]["id"].is_object(),
        "stored `_id` is served as `id`"
    );
    assert!(schemas["Tenant"]["properties"].get("_id").is_none());
    assert!(!doc["paths"]["/tenants/{slug}"]["get"]["responses"]["503"].is_null());
}

#[tokio::test]
async fn the_committed_openapi_json_is_what_provisioner_openapi_prints() {
    let printed = tokio::process::Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .arg("openapi")
        .env_remove("PLAN_QUOTAS")
        .output()
        .await
        .expect("run provisioner openapi");
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let committed = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    let committed = std::fs::read_to_string(committed).unwrap_or_default();
    assert!(
        committed == String::from_utf8_lossy(&printed.stdout),
        "docs/openapi.json is stale: run `cargo run -- openapi > docs/openapi.json`"
    );
}
