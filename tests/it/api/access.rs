//! Authorization from MongoDB: non-members get 404 (existence does not
//! leak), members without the admin role get 403, platform admins see and
//! change everything, and token claims only count once `/users/me` synced
//! them.

use mongodb::bson::doc;
use serde_json::json;

use crate::support::api::{TestApi, ADMIN_GROUP};

#[tokio::test]
async fn non_members_get_404_on_every_tenant_route() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    api.create_tenant(&alice, "acme").await;
    let bob = api.user("bob", &[]).await;
    bob.get("/tenants/acme")
        .await
        .expect_error(404, "not_found");
    bob.patch("/tenants/acme", json!({"name": "Pwned"}))
        .await
        .expect_error(404, "not_found");
    bob.delete("/tenants/acme")
        .await
        .expect_error(404, "not_found");
    bob.post("/tenants/acme/reconcile", json!({}))
        .await
        .expect_error(404, "not_found");
    bob.get("/tenants/acme/events")
        .await
        .expect_error(404, "not_found");
    let listed = bob.get("/tenants").await.expect_status(200).body;
    assert_eq!(listed["items"], json!([]));
    let t = api
        .store
        .tenants
        .find_one(doc! {"slug": "acme"})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (t.name.as_str(), t.generation, t.reconcile_request.is_none()),
        ("Tenant acme", 1, true)
    );
}

#[tokio::test]
async fn members_without_the_admin_role_may_read_and_reconcile_but_not_change() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    api.create_tenant(&alice, "acme").await;
    api.create_tenant(&alice, "other").await;
    let carol = api.user("carol", &["tenant-acme", "unrelated-group"]).await;
    carol.get("/tenants/acme").await.expect_status(200);
    carol.get("/tenants/acme/events").await.expect_status(200);
    carol
        .post("/tenants/acme/reconcile", json!({}))
        .await
        .expect_status(202);
    carol
        .patch("/tenants/acme", json!({"name": "Carol's"}))
        .await
        .expect_error(403, "forbidden");
    carol
        .delete("/tenants/acme")
        .await
        .expect_error(403, "forbidden");
    carol
        .get("/tenants/other")
        .await
        .expect_error(404, "not_found");
    let listed = carol.get("/tenants").await.body;
    let slugs: Vec<_> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].clone())
        .collect();
    assert_eq!(slugs, [json!("acme")]);

    // A tenant admin by role administers every tenant they are a member of.
    let admin = api.admin().await;
    let carol_id = carol.get("/users/me").await.body["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin
        .patch(&format!("/users/{carol_id}"), json!({"role": "admin"}))
        .await
        .expect_status(200);
    carol
        .patch("/tenants/acme", json!({"name": "Carol's"}))
        .await
        .expect_status(200);
    carol.delete("/tenants/acme").await.expect_status(202);
}

#[tokio::test]
async fn platform_admins_see_and_change_every_tenant() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    api.create_tenant(&alice, "acme").await;
    let admin = api.admin().await;
    admin.get("/tenants/acme").await.expect_status(200);
    assert_eq!(
        admin.get("/tenants").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    admin
        .patch("/tenants/acme", json!({"plan": "enterprise"}))
        .await
        .expect_status(200);
    admin.delete("/tenants/acme").await.expect_status(202);
}

#[tokio::test]
async fn claims_count_only_after_users_me_synced_them() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    api.create_tenant(&alice, "acme").await;

    // Group claims in the token alone grant nothing.
    let dave = api.with_token(&api.token("dave", &["tenant-acme", ADMIN_GROUP]));
    dave.get("/tenants/acme")
        .await
        .expect_error(404, "not_found");
    dave.get("/users").await.expect_error(403, "forbidden");

    let me = dave.get("/users/me").await.expect_status(200).body;
    assert_eq!(me["user"]["platformAdmin"], true);
    dave.get("/tenants/acme").await.expect_status(200);
    dave.get("/users").await.expect_status(200);

    // Leaving the groups and syncing again revokes both.
    let dave = api.with_token(&api.token("dave", &[]));
    let me = dave.get("/users/me").await.body;
    assert_eq!(
        (
            me["user"]["platformAdmin"].clone(),
            me["user"]["tenantIds"].clone()
        ),
        (json!(false), json!([]))
    );
    dave.get("/tenants/acme")
        .await
        .expect_error(404, "not_found");
    dave.get("/users").await.expect_error(403, "forbidden");
}
