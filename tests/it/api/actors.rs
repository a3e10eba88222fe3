//! The actor cache never outlives a change of the user record: a change by
//! another process takes effect within `MAX_AGE` (1 s; the `users` change
//! stream usually makes it milliseconds), and a change through this API at
//! once.

use std::time::Duration;

use dezky_api::auth::actors::MAX_AGE;
use mongodb::bson::doc;

use crate::support::api::{TestApi, ADMIN_GROUP};
use crate::support::wait::until;

/// Room for the requests of the check itself on a loaded test machine.
const REQUEST_SLACK: Duration = Duration::from_millis(500);

#[tokio::test]
async fn a_membership_removed_by_another_process_takes_effect_within_a_second() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    api.create_tenant(&admin, "acme").await;
    let bob = api.user("bob", &["tenant-acme"]).await;
    bob.get("/tenants/acme").await.expect_status(200);

    api.store
        .users
        .update_one(
            doc! { "authentikSubjectId": "bob" },
            doc! { "$set": { "tenantIds": [] } },
        )
        .await
        .expect("remove bob's membership directly");
    until(
        "bob no longer sees acme",
        MAX_AGE + REQUEST_SLACK,
        || async { (bob.get("/tenants/acme").await.status == 404).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_platform_admin_flag_removed_through_the_api_takes_effect_at_once() {
    let api = TestApi::start().await;
    let root = api.admin().await;
    let eve = api.user("eve", &[ADMIN_GROUP]).await;
    eve.get("/users").await.expect_status(200);
    let me = eve.get("/users/me").await.expect_status(200).body;
    let eve_id = me["user"]["id"].as_str().unwrap();

    root.patch(
        &format!("/users/{eve_id}"),
        serde_json::json!({ "platformAdmin": false }),
    )
    .await
    .expect_status(200);
    eve.get("/users").await.expect_error(403, "forbidden");
}
