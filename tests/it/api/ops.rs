//! Token-free operational routes, the OpenAPI document, and the error body
//! for unknown routes and methods.

use dezky_api::Readiness;
use serde_json::json;

use crate::support::api::TestApi;

#[tokio::test]
async fn health_readiness_and_metrics_need_no_token() {
    let api = TestApi::start().await;
    let anonymous = api.anonymous();
    assert_eq!(
        anonymous.get("/healthz").await.expect_status(200).body["status"],
        "ok"
    );
    assert_eq!(
        anonymous.get("/readyz").await.expect_status(200).body["status"],
        "ready"
    );
    // Some traffic, then the request metrics name the route template.
    api.user("alice", &[])
        .await
        .get("/tenants/acme")
        .await
        .expect_status(404);
    let metrics = anonymous.get("/metrics").await.expect_status(200);
    let text = metrics.body.as_str().unwrap_or_default().to_string();
    assert!(metrics.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    // The handle is not installed globally in tests, so only the format is checked.
    assert!(text.is_empty() || text.contains('#'), "{text}");
}

#[tokio::test]
async fn readiness_reports_the_hook_verdict_as_503() {
    let api = TestApi::start_with(|c| {
        c.readiness = Readiness::new(|| Err("controller lease unknown".into()))
    })
    .await;
    let error = api
        .anonymous()
        .get("/readyz")
        .await
        .expect_error(503, "not_ready");
    assert_eq!(error["message"], "controller lease unknown");
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let api = TestApi::start().await;
    let doc = api
        .anonymous()
        .get("/openapi.json")
        .await
        .expect_status(200)
        .body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/tenants",
        "/tenants/{slug}",
        "/tenants/{slug}/reconcile",
        "/tenants/{slug}/events",
        "/users/me",
        "/users",
        "/users/{id}",
        "/subscriptions",
        "/subscriptions/{id}",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    for method in ["get", "patch", "delete"] {
        assert!(paths["/tenants/{slug}"].get(method).is_some(), "{method}");
    }
    assert!(doc["components"]["schemas"]["CreateTenant"]["properties"]["slug"].is_object());
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_error_body() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    alice.get("/nope").await.expect_error(404, "not_found");
    let reply = alice
        .send(
            alice
                .request(reqwest::Method::PUT, "/tenants")
                .json(&json!({})),
        )
        .await;
    reply.expect_error(405, "method_not_allowed");
}
