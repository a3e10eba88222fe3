//! `/users`: `GET /users/me` syncs claims into MongoDB (idempotently, also
//! when called concurrently), and the CRUD routes are for platform admins
//! while anyone may read their own record.

use mongodb::bson::doc;
use serde_json::json;

use crate::support::api::{TestApi, ADMIN_GROUP};

#[tokio::test]
async fn users_me_upserts_the_caller_from_the_token_and_returns_their_tenants() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    api.create_tenant(&alice, "acme").await;
    api.create_tenant(&alice, "beta").await;

    let erin = api.with_token(&api.oidc.mint(json!({
        "sub": "erin", "email": "erin@example.com", "preferred_username": "erin",
        "groups": ["tenant-beta", "tenant-nope", "tenant-", "acme"],
    })));
    let me = erin.get("/users/me").await.expect_status(200).body;
    let user = &me["user"];
    assert!(user["id"].as_str().is_some() && user.get("_id").is_none());
    assert_eq!(user["authentikSubjectId"], "erin");
    assert_eq!(user["email"], "erin@example.com");
    assert_eq!(user["name"], "erin", "falls back to preferred_username");
    assert_eq!(
        (user["role"].as_str(), user["platformAdmin"].as_bool()),
        (Some("member"), Some(false))
    );
    let tenants: Vec<_> = me["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].clone())
        .collect();
    assert_eq!(tenants, [json!("beta")]);
    assert_eq!(me["subscriptions"].as_array().unwrap().len(), 1);
    assert_eq!(me["subscriptions"][0]["tenantId"], me["tenants"][0]["id"]);

    // A second sync with new claims updates the same record.
    let erin = api
        .with_token(&api.oidc.mint(
            json!({"sub": "erin", "name": "Erin E", "groups": ["tenant-acme", ADMIN_GROUP]}),
        ));
    let again = erin.get("/users/me").await.body;
    assert_eq!(again["user"]["id"], user["id"]);
    assert_eq!(again["user"]["name"], "Erin E");
    assert_eq!(
        again["user"]["email"], "erin@example.com",
        "an absent email claim keeps the stored one"
    );
    assert_eq!(again["user"]["platformAdmin"], true);
    assert_eq!(again["tenants"][0]["slug"], "acme");
    assert_eq!(
        api.store
            .users
            .count_documents(doc! {"authentikSubjectId": "erin"})
            .await
            .unwrap(),
        1
    );

    // Tenants the user created stay theirs without a group.
    let alice_me = alice.get("/users/me").await.body;
    assert_eq!(alice_me["tenants"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn concurrent_first_calls_create_one_user() {
    let api = TestApi::start().await;
    let frank = api.with_token(&api.token("frank", &[]));
    let replies = futures::future::join_all((0..8).map(|_| frank.get("/users/me"))).await;
    for reply in replies {
        reply.expect_status(200);
    }
    // The bare record an unsynced caller gets is race-safe too.
    let gina = api.with_token(&api.token("gina", &[]));
    let replies = futures::future::join_all((0..8).map(|_| gina.get("/tenants"))).await;
    assert!(replies.iter().all(|r| r.status == 200));
    for sub in ["frank", "gina"] {
        assert_eq!(
            api.store
                .users
                .count_documents(doc! {"authentikSubjectId": sub})
                .await
                .unwrap(),
            1
        );
    }
}

#[tokio::test]
async fn platform_admins_manage_users_with_validation_and_conflicts() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    let acme = api.create_tenant(&admin, "acme").await;
    let created = admin
        .post(
            "/users",
            json!({"authentikSubjectId": "svc-1", "email": "svc@example.com", "name": "Service",
                                "role": "admin", "tenantIds": [acme["id"], acme["id"]]}),
        )
        .await
        .expect_status(201)
        .body;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["tenantIds"], json!([acme["id"]]));
    assert_eq!(created["role"], "admin");

    let error = admin
        .post("/users", json!({"authentikSubjectId": "svc-1"}))
        .await
        .expect_error(409, "subject_taken");
    assert_eq!(error["field"], "authentikSubjectId");
    let cases = [
        (json!({"authentikSubjectId": ""}), "authentikSubjectId"),
        (json!({"authentikSubjectId": "x", "email": "nope"}), "email"),
        (json!({"authentikSubjectId": "x", "role": "owner"}), "role"),
        (
            json!({"authentikSubjectId": "x", "tenantIds": ["not-an-id"]}),
            "tenantIds[0]",
        ),
        (
            json!({"authentikSubjectId": "x", "tenantIds": [acme["id"], "0123456789abcdef01234567"]}),
            "tenantIds[1]",
        ),
    ];
    for (body, field) in cases {
        let error = admin
            .post("/users", body.clone())
            .await
            .expect_error(400, "validation_failed");
        assert_eq!(error["field"], field, "{body}");
    }

    admin.get(&format!("/users/{id}")).await.expect_status(200);
    let patched = admin
        .patch(
            &format!("/users/{id}"),
            json!({"name": "Renamed", "platformAdmin": true, "tenantIds": []}),
        )
        .await
        .expect_status(200)
        .body;
    assert_eq!(
        (patched["name"].as_str(), patched["platformAdmin"].as_bool()),
        (Some("Renamed"), Some(true))
    );
    assert_eq!(patched["tenantIds"], json!([]));
    admin
        .patch(
            &format!("/users/{id}"),
            json!({"authentikSubjectId": "other"}),
        )
        .await
        .expect_error(400, "unknown_field");

    let listed = admin.get("/users?limit=1").await.expect_status(200).body;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(listed["nextCursor"].is_string());

    admin
        .delete(&format!("/users/{id}"))
        .await
        .expect_status(204);
    admin
        .get(&format!("/users/{id}"))
        .await
        .expect_error(404, "not_found");
    admin
        .delete(&format!("/users/{id}"))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn ordinary_users_read_only_themselves() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    let bob = api.user("bob", &[]).await;
    let alice_id = alice.get("/users/me").await.body["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let bob_id = bob.get("/users/me").await.body["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    alice
        .get(&format!("/users/{alice_id}"))
        .await
        .expect_status(200);
    alice
        .get(&format!("/users/{bob_id}"))
        .await
        .expect_error(404, "not_found");
    alice.get("/users").await.expect_error(403, "forbidden");
    alice
        .post("/users", json!({"authentikSubjectId": "x"}))
        .await
        .expect_error(403, "forbidden");
    alice
        .patch(
            &format!("/users/{alice_id}"),
            json!({"platformAdmin": true}),
        )
        .await
        .expect_error(403, "forbidden");
    alice
        .delete(&format!("/users/{bob_id}"))
        .await
        .expect_error(403, "forbidden");
    let me = alice.get("/users/me").await.body;
    assert_eq!(me["user"]["platformAdmin"], false);
}

#[tokio::test]
async fn a_platform_admins_creates_do_not_grow_their_user_record() {
    let api = TestApi::start().await;
    let root = api.admin().await;
    for slug in ["one", "two", "three"] {
        api.create_tenant(&root, slug).await;
    }
    let me = root.get("/users/me").await.expect_status(200).body;
    assert_eq!(me["user"]["platformAdmin"], true);
    assert_eq!(me["user"]["tenantIds"], json!([]), "{me}");
    // They still see and administer every one of them.
    let listed = root.get("/tenants").await.expect_status(200).body;
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);
    root.patch("/tenants/two", json!({"name": "Two"}))
        .await
        .expect_status(200);
}
