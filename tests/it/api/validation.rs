//! Every input rule of DESIGN §4: each rejected request gets the error body
//! with the right status and field, and leaves the database untouched.

use mongodb::bson::doc;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::api::{Client, TestApi};

/// The whole `tenants` collection, to prove a rejection changed nothing.
async fn snapshot(api: &TestApi) -> Vec<mongodb::bson::Document> {
    use futures::TryStreamExt;
    api.store
        .db
        .collection::<mongodb::bson::Document>("tenants")
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

async fn rejected(client: &Client<'_>, body: Value, status: u16, code: &str, field: Option<&str>) {
    let error = client
        .post("/tenants", body.clone())
        .await
        .expect_error(status, code);
    assert_eq!(error["field"].as_str(), field, "{body}");
}

#[tokio::test]
async fn tenant_fields_are_validated_with_the_offending_field_named() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    api.create_tenant(&alice, "acme").await;
    let before = snapshot(&api).await;
    let base = |patch: Value| {
        let mut body = json!({"slug": "new-one", "name": "New", "plan": "free"});
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (base(json!({"slug": "ab"})), "slug"),
        (base(json!({"slug": "-abc"})), "slug"),
        (base(json!({"slug": "Abc"})), "slug"),
        (base(json!({"slug": "a".repeat(64)})), "slug"),
        (base(json!({"name": ""})), "name"),
        (base(json!({"name": "x".repeat(101)})), "name"),
        (base(json!({"name": "bad\u{7}name"})), "name"),
        (base(json!({"plan": "platinum"})), "plan"),
        (base(json!({"domains": ["acme.example"]})), "domains[0]"),
        (
            base(json!({"domains": ["ok.test", "under_score.com"]})),
            "domains[1]",
        ),
        (base(json!({"domains": ["localhost"]})), "domains[0]"),
        (
            base(json!({"billingInfo": {"email": "not-an-email"}})),
            "billingInfo.email",
        ),
        (base(json!({"deletionPolicy": "shred"})), "deletionPolicy"),
        (base(json!({"name": 42})), "name"),
        (base(json!({"domains": "acme.test"})), "domains"),
    ];
    for (body, field) in cases {
        rejected(&alice, body, 400, "validation_failed", Some(field)).await;
    }
    rejected(
        &alice,
        json!({"name": "New", "plan": "free"}),
        400,
        "validation_failed",
        Some("slug"),
    )
    .await;
    assert_eq!(snapshot(&api).await, before);
}

#[tokio::test]
async fn reserved_tlds_and_idn_domains_are_accepted_normalised() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    let t = alice
        .post("/tenants", json!({"slug": "idn", "name": "IDN", "plan": "free",
                                  "domains": ["Bücher.de", "mail.corp", "x.internal", "a.localhost"]}))
        .await
        .expect_status(201)
        .body;
    assert_eq!(
        t["domains"],
        json!(["xn--bcher-kva.de", "mail.corp", "x.internal", "a.localhost"])
    );
}

#[tokio::test]
async fn unknown_fields_are_rejected_at_every_level() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    api.create_tenant(&alice, "acme").await;
    let before = snapshot(&api).await;
    rejected(
        &alice,
        json!({"slug": "x-y", "name": "X", "plan": "free", "color": "red"}),
        400,
        "unknown_field",
        Some("color"),
    )
    .await;
    rejected(&alice, json!({"slug": "x-y", "name": "X", "plan": "free", "billingInfo": {"email": "a@b.test", "iban": "x"}}), 400, "unknown_field", Some("billingInfo.iban")).await;
    rejected(
        &alice,
        json!({"slug": "x-y", "name": "X", "plan": "free", "generation": 7}),
        400,
        "unknown_field",
        Some("generation"),
    )
    .await;
    let error = alice
        .patch("/tenants/acme", json!({"status": {"phase": "active"}}))
        .await
        .expect_error(400, "unknown_field");
    assert_eq!(error["field"], "status");
    assert_eq!(snapshot(&api).await, before);
}

#[tokio::test]
async fn mongo_operators_where_strings_belong_are_rejected() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    api.create_tenant(&alice, "acme").await;
    let before = snapshot(&api).await;
    rejected(
        &alice,
        json!({"slug": {"$gt": ""}, "name": "X", "plan": "free"}),
        400,
        "validation_failed",
        Some("slug"),
    )
    .await;
    rejected(
        &alice,
        json!({"slug": "x-y", "name": {"$ne": null}, "plan": "free"}),
        400,
        "validation_failed",
        Some("name"),
    )
    .await;
    rejected(
        &alice,
        json!({"slug": "x-y", "name": "X", "plan": "free", "domains": [{"$regex": ".*"}]}),
        400,
        "validation_failed",
        Some("domains[0]"),
    )
    .await;
    let error = alice
        .patch(
            "/tenants/acme",
            json!({"name": {"$set": {"generation": 99}}}),
        )
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(error["field"], "name");
    // Operator-looking path segments and queries match nothing.
    alice
        .get("/tenants/%7B%22%24gt%22%3A%22%22%7D")
        .await
        .expect_error(404, "not_found");
    alice
        .get("/users/%7B%22%24gt%22%3A%22%22%7D")
        .await
        .expect_error(404, "not_found");
    assert_eq!(snapshot(&api).await, before);
}

#[tokio::test]
async fn wrong_content_type_is_415_and_bad_json_is_400() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    let body = r#"{"slug": "x-y", "name": "X", "plan": "free"}"#;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = alice.request(Method::POST, "/tenants").body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        alice
            .send(request)
            .await
            .expect_error(415, "unsupported_media_type");
    }
    let invalid = alice
        .request(Method::POST, "/tenants")
        .header("content-type", "application/json")
        .body("{\"slug\": ");
    alice.send(invalid).await.expect_error(400, "invalid_json");
    let trailing = alice
        .request(Method::POST, "/tenants")
        .header("content-type", "application/json")
        .body(format!("{body} []"));
    alice.send(trailing).await.expect_error(400, "invalid_json");
    let charset = alice
        .request(Method::POST, "/tenants")
        .header("content-type", "application/json; charset=utf-8")
        .body(body);
    alice.send(charset).await.expect_status(201);
}

#[tokio::test]
async fn bodies_over_64_kib_are_413_even_without_a_content_length() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    let padding = "x".repeat(dezky_api::BODY_LIMIT);
    let big = json!({"slug": "big", "name": "Big", "plan": "free", "pad": padding});
    alice
        .post("/tenants", big.clone())
        .await
        .expect_error(413, "payload_too_large");
    let bytes = serde_json::to_vec(&big).unwrap();
    let stream = futures::stream::iter(
        bytes
            .chunks(8192)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let chunked = alice
        .request(Method::POST, "/tenants")
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream));
    alice
        .send(chunked)
        .await
        .expect_error(413, "payload_too_large");
    assert_eq!(api.store.tenants.count_documents(doc! {}).await.unwrap(), 0);
}
