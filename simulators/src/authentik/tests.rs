//! The simulated groups API over real HTTP: auth, CRUD, listing, both
//! group shapes, faults and the request log.

use axum::http::StatusCode;
use reqwest::{Client, Method};
use serde_json::{json, Map, Value};

use super::{AuthentikSim, AuthentikSimOptions};

async fn sim(legacy: bool) -> AuthentikSim {
    AuthentikSim::start(AuthentikSimOptions {
        legacy_parent_shape: legacy,
        ..AuthentikSimOptions::default()
    })
    .await
    .expect("start simulator")
}

/// Sends one authenticated call; returns status and JSON body (Null when
/// empty, a string when not JSON).
async fn call(sim: &AuthentikSim, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = Client::new()
        .request(method, format!("{}/api/v3/core/groups/{path}", sim.url()))
        .bearer_auth(sim.api_token());
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = match text.as_str() {
        "" => Value::Null,
        text => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())),
    };
    (status, body)
}

#[tokio::test]
async fn bad_or_missing_token_is_403_with_detail() {
    let sim = sim(false).await;
    let url = format!("{}/api/v3/core/groups/", sim.url());
    let missing = Client::new().get(&url).send().await.expect("send");
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let body: Value = missing.json().await.expect("json");
    assert_eq!(
        body["detail"],
        "Authentication credentials were not provided."
    );
    let wrong = Client::new()
        .get(&url)
        .bearer_auth("nope")
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let body: Value = wrong.json().await.expect("json");
    assert_eq!(body["detail"], "Token invalid/expired");
}

#[tokio::test]
async fn group_lifecycle_matches_the_real_api() {
    let sim = sim(false).await;
    let (status, created) = call(
        &sim,
        Method::POST,
        "",
        Some(json!({"name": "tenant-acme", "attributes": {"a": 1, "b": 2}})),
    )
    .await;
    assert_eq!(status, 201);
    let pk = created["pk"].as_str().expect("pk").to_owned();
    assert_eq!(created["parents"], json!([]));
    assert_eq!(created["children"], json!([]));

    let (status, duplicate) =
        call(&sim, Method::POST, "", Some(json!({"name": "tenant-acme"}))).await;
    assert_eq!(status, 400);
    assert!(duplicate["name"].is_array());

    let (status, patched) = call(
        &sim,
        Method::PATCH,
        &format!("{pk}/"),
        Some(json!({"attributes": {"c": 3}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        patched["attributes"],
        json!({"c": 3}),
        "attributes are replaced whole"
    );
    assert_eq!(patched["name"], "tenant-acme");

    let (status, fetched) = call(
        &sim,
        Method::GET,
        &format!("{pk}/?include_users=false"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(fetched["users_obj"], Value::Null);
    assert_eq!(fetched["parents_obj"], Value::Null);

    let (status, _) = call(&sim, Method::DELETE, &format!("{pk}/"), None).await;
    assert_eq!(status, 204);
    let (status, gone) = call(&sim, Method::GET, &format!("{pk}/"), None).await;
    assert_eq!(status, 404);
    assert!(gone["detail"].is_string());
    let (status, _) = call(&sim, Method::DELETE, &format!("{pk}/"), None).await;
    assert_eq!(status, 404);
    let (status, _) = call(&sim, Method::GET, "not-a-uuid/", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn put_without_parents_wipes_them() {
    let sim = sim(false).await;
    let parent = sim.create_group("parent", Map::new()).expect("parent");
    let child = sim.create_group("child", Map::new()).expect("child");
    sim.set_parents(child.pk, vec![parent.pk]).expect("parents");
    let (status, body) = call(
        &sim,
        Method::PUT,
        &format!("{}/", child.pk),
        Some(json!({"name": "child"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["parents"], json!([]));
    let (status, body) = call(
        &sim,
        Method::PUT,
        &format!("{}/", child.pk),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["name"], json!(["This field is required."]));
}

#[tokio::test]
async fn list_filters_by_exact_name_and_paginates() {
    let sim = sim(false).await;
    for i in 0..120 {
        sim.create_group(&format!("g-{i:03}"), Map::new())
            .expect("group");
    }
    let (status, page) = call(&sim, Method::GET, "?name=g-007&include_users=false", None).await;
    assert_eq!(status, 200);
    assert_eq!(page["pagination"]["count"], 1);
    assert_eq!(page["results"][0]["name"], "g-007");
    assert_eq!(page["results"][0]["users_obj"], Value::Null);
    assert_eq!(page["autocomplete"], json!({}));

    let (_, second) = call(&sim, Method::GET, "?page=2", None).await;
    assert_eq!(second["results"].as_array().map(Vec::len), Some(20));
    assert_eq!(second["pagination"]["next"], 0);
    assert_eq!(second["pagination"]["previous"], 1);
    assert_eq!(
        second["results"][0]["users_obj"],
        json!([]),
        "include_users defaults to true"
    );
    let (status, invalid) = call(&sim, Method::GET, "?page=3", None).await;
    assert_eq!(
        (status, invalid["detail"].as_str()),
        (404, Some("Invalid page."))
    );
}

#[tokio::test]
async fn legacy_shape_has_single_parent_and_parent_name() {
    let sim = sim(true).await;
    let parent = sim.create_group("parent", Map::new()).expect("parent");
    let (status, child) = call(
        &sim,
        Method::POST,
        "",
        Some(json!({"name": "child", "parent": parent.pk.to_string()})),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(child["parent"], json!(parent.pk));
    assert_eq!(child["parent_name"], "parent");
    assert!(child.get("parents").is_none());
    let (_, parent_json) = call(&sim, Method::GET, &format!("{}/", parent.pk), None).await;
    assert_eq!(parent_json["parent"], Value::Null);
    assert_eq!(parent_json["children"], json!([child["pk"]]));
}

#[tokio::test]
async fn faults_and_recorder_see_every_request() {
    let sim = sim(false).await;
    sim.faults().fail_next(1, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = call(&sim, Method::GET, "", None).await;
    assert_eq!(status, 503);
    let (status, _) = call(&sim, Method::POST, "", Some(json!({"name": "x"}))).await;
    assert_eq!(status, 201);
    assert_eq!((sim.faults().requests(), sim.faults().writes()), (2, 1));
    let log = sim.recorder().requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].method, "POST");
    assert_eq!(log[1].path, "/api/v3/core/groups/");
    assert_eq!(log[1].body, Some(json!({"name": "x"})));

    let _ = call(&sim, Method::GET, "not-a-uuid/", None).await;
    let recorder = sim.recorder();
    assert_eq!(recorder.total(), 3);
    assert_eq!(recorder.count("GET", "/api/v3/core/groups/"), 1);
    assert_eq!(recorder.count("POST", "/api/v3/core/groups/"), 1);
    assert_eq!(
        recorder.count("GET", "/api/v3/core/groups/{group_uuid}/"),
        1,
        "counted by route template, not by concrete path"
    );
    let _ = Client::new()
        .get(format!("{}/elsewhere", sim.url()))
        .send()
        .await;
    assert_eq!(recorder.count("GET", crate::recording::UNMATCHED_ROUTE), 1);
}

#[tokio::test]
async fn serves_the_oidc_provider_on_the_same_port() {
    let sim = sim(false).await;
    assert!(sim.oidc().issuer().starts_with(&sim.url()));
    let discovery: Value = Client::new()
        .get(sim.oidc().discovery_url())
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(discovery["issuer"], json!(sim.oidc().issuer()));
    let jwks = Client::new()
        .get(sim.oidc().jwks_url())
        .send()
        .await
        .expect("send");
    assert_eq!(
        jwks.status(),
        StatusCode::OK,
        "OIDC routes need no API token"
    );
}

/// `?key=value&...` with the values percent-encoded.
fn encoded_query(pairs: &[(&str, &str)]) -> String {
    let url = reqwest::Url::parse_with_params("http://x/", pairs).expect("url");
    format!("?{}", url.query().unwrap_or_default())
}

#[tokio::test]
async fn lookups_by_name_attribute_and_page_work_among_100_000_groups() {
    let sim = sim(false).await;
    for i in 0..100_000 {
        let mut attributes = Map::new();
        attributes.insert("dezky_managed_by".into(), json!("dezky-provisioner"));
        attributes.insert("dezky_tenant_id".into(), json!(format!("tenant-{i:06}")));
        sim.create_group(&format!("dezky-{i:06}"), attributes)
            .expect("group");
    }
    let path = encoded_query(&[("name", "dezky-054321"), ("include_users", "false")]);
    let (status, by_name) = call(&sim, Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(by_name["pagination"]["count"], 1);
    assert_eq!(by_name["results"][0]["name"], "dezky-054321");

    let tenant = r#"{"dezky_tenant_id": "tenant-099999"}"#;
    let (_, by_tenant) = call(
        &sim,
        Method::GET,
        &encoded_query(&[("attributes", tenant)]),
        None,
    )
    .await;
    assert_eq!(by_tenant["pagination"]["count"], 1);
    assert_eq!(by_tenant["results"][0]["name"], "dezky-099999");

    let managed = r#"{"dezky_managed_by": "dezky-provisioner"}"#;
    let path = encoded_query(&[
        ("attributes", managed),
        ("page_size", "100"),
        ("page", "1000"),
    ]);
    let (_, last) = call(&sim, Method::GET, &path, None).await;
    assert_eq!(last["pagination"]["count"], 100_000);
    assert_eq!(last["pagination"]["next"], 0);
    assert_eq!(last["results"].as_array().map(Vec::len), Some(100));
    assert_eq!(last["results"][99]["name"], "dezky-099999");
}
