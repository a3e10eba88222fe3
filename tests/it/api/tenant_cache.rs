//! The tenant read cache against a real mongod: another client's writes show
//! within a deadline (the change stream's lag), this API's own writes show
//! at once, a read after a `?wait=` answer is never older than the answer,
//! a dropped collection is listed again, and the cluster-time assumption
//! that reads-your-writes rests on holds.

use std::time::Duration;

use futures::StreamExt;
use mongodb::bson::doc;
use serde_json::{json, Value};

use crate::controller::{config, Running};
use crate::support::api::{Client, TestApi};
use crate::support::fake::Fakes;
use crate::support::mongo::{fresh_store, store_on};
use crate::support::tenants;
use crate::support::wait::until;

/// Stream lag plus room for a loaded test machine.
const STREAM_DEADLINE: Duration = Duration::from_secs(5);

/// Waits until the cache answers from memory.
async fn fresh(api: &TestApi) {
    until("the tenant cache answers", STREAM_DEADLINE, || async {
        api.tenant_cache.is_fresh().then_some(())
    })
    .await;
}

/// The slugs of the first page of `client`'s `GET /tenants`.
async fn listed(client: &Client<'_>) -> Vec<String> {
    let page = client.get("/tenants").await.expect_status(200).body;
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["slug"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// `path` as `client` sees it once `check` holds, within the deadline.
async fn eventually(client: &Client<'_>, path: &str, check: impl Fn(u16, &Value) -> bool) {
    until(path, STREAM_DEADLINE, || async {
        let reply = client.get(path).await;
        check(reply.status.as_u16(), &reply.body).then_some(())
    })
    .await;
}

#[tokio::test]
async fn another_clients_writes_show_within_the_stream_deadline() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    api.create_tenant(&admin, "acme").await;
    fresh(&api).await;
    let other = store_on(api.store.db.name()).await;

    other
        .tenants
        .update_one(
            doc! { "slug": "acme" },
            doc! { "$set": { "name": "Renamed" }, "$inc": { "generation": 1 } },
        )
        .await
        .expect("rename");
    eventually(&admin, "/tenants/acme", |status, t| {
        status == 200 && t["name"] == "Renamed" && t["generation"] == 2
    })
    .await;
    assert_eq!(admin.get("/tenants/acme").await.etag(), "\"2\"");

    // A status write (the controller's kind: no generation bump) shows too.
    other
        .tenants
        .update_one(
            doc! { "slug": "acme" },
            doc! { "$set": { "status.phase": "active" } },
        )
        .await
        .expect("status write");
    eventually(&admin, "/tenants?limit=5", |_, page| {
        page["items"][0]["status"]["phase"] == "active"
    })
    .await;

    let beta = tenants::tenant("beta");
    tenants::insert(&other, &beta).await;
    eventually(&admin, "/tenants/beta", |status, _| status == 200).await;
    assert_eq!(listed(&admin).await, ["acme", "beta"]);

    other
        .tenants
        .delete_one(doc! { "_id": beta.id })
        .await
        .expect("delete");
    eventually(&admin, "/tenants/beta", |status, _| status == 404).await;
    assert_eq!(listed(&admin).await, ["acme"]);
    assert!(
        api.tenant_cache.is_fresh(),
        "answered from memory throughout"
    );
}

#[tokio::test]
async fn own_writes_are_visible_at_once_and_stay_visible_once_the_stream_caught_up() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    let admin = api.admin().await;
    fresh(&api).await;

    let created = api.create_tenant(&alice, "acme").await;
    assert_eq!(
        alice.get("/tenants/acme").await.expect_status(200).body,
        created
    );
    assert_eq!(listed(&alice).await, ["acme"]);
    assert_eq!(listed(&admin).await, ["acme"]);

    for round in 2..12 {
        let name = format!("Acme {round}");
        alice
            .patch("/tenants/acme", json!({ "name": name }))
            .await
            .expect_status(200);
        let reply = alice.get("/tenants/acme").await.expect_status(200);
        assert_eq!(reply.body["name"], name.as_str(), "round {round}");
        assert_eq!(reply.etag(), format!("\"{round}\""));
        let page = alice.get("/tenants").await.expect_status(200).body;
        assert_eq!(page["items"][0]["name"], name.as_str());
    }

    let token = alice
        .post("/tenants/acme/reconcile", json!({}))
        .await
        .expect_status(202)
        .body["token"]
        .clone();
    let tenant = alice.get("/tenants/acme").await.expect_status(200).body;
    assert_eq!(tenant["reconcileRequest"]["token"], token);

    alice.delete("/tenants/acme").await.expect_status(202);
    let tenant = alice.get("/tenants/acme").await.expect_status(200).body;
    assert_eq!(tenant["status"]["phase"], "deleting");

    until(
        "the stream caught up with every write",
        STREAM_DEADLINE,
        || async { (api.tenant_cache.pinned() == 0).then_some(()) },
    )
    .await;
    fresh(&api).await;
    let cached = alice.get("/tenants/acme").await.expect_status(200).body;
    assert_eq!(cached, tenant, "the cache holds the last write");
}

#[tokio::test]
async fn a_dropped_collection_is_listed_again() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    api.create_tenant(&admin, "acme").await;
    fresh(&api).await;
    let other = store_on(api.store.db.name()).await;

    other.tenants.drop().await.expect("drop tenants");
    eventually(&admin, "/tenants/acme", |status, _| status == 404).await;
    other.ensure_indexes().await.expect("indexes again");
    tenants::insert(&other, &tenants::tenant("gamma")).await;
    eventually(&admin, "/tenants/gamma", |status, _| status == 200).await;
    fresh(&api).await;
    assert_eq!(listed(&admin).await, ["gamma"]);
}

/// Reads-your-writes pins a written tenant until the stream reaches the
/// write's `operationTime`: that must be its change event's cluster time.
#[tokio::test]
async fn a_writes_operation_time_is_its_change_events_cluster_time() {
    let store = fresh_store().await;
    let mut stream = store.tenants.watch().await.expect("watch");
    let client = store.db.client();
    let tenant = tenants::tenant("acme");

    let mut session = client.start_session().await.expect("session");
    store
        .tenants
        .insert_one(&tenant)
        .session(&mut session)
        .await
        .expect("insert");
    let inserted = session.operation_time();

    let mut session = client.start_session().await.expect("session");
    store
        .tenants
        .find_one_and_update(
            doc! { "_id": tenant.id },
            doc! { "$inc": { "generation": 1 } },
        )
        .session(&mut session)
        .await
        .expect("update");
    let updated = session.operation_time();

    let mut session = client.start_session().await.expect("session");
    store
        .tenants
        .update_one(
            doc! { "_id": tenant.id },
            doc! { "$set": { "reconcileRequest": { "token": "t", "requestedAt": mongodb::bson::DateTime::now() } } },
        )
        .session(&mut session)
        .await
        .expect("request");
    let requested = session.operation_time();

    let mut times = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(STREAM_DEADLINE, stream.next())
            .await
            .expect("an event in time")
            .expect("the stream goes on")
            .expect("an event");
        times.push(event.cluster_time);
    }
    assert!(inserted.is_some());
    assert_eq!(times, [inserted, updated, requested]);
}

#[tokio::test]
async fn a_read_after_a_reconcile_wait_answer_shows_at_least_that_answer() {
    let api = TestApi::start().await;
    let fakes = Fakes::new();
    let _controller = Running::start_synced(&api.store, fakes.reconcilers(), config()).await;
    let admin = api.admin().await;
    api.create_tenant(&admin, "acme").await;
    fresh(&api).await;
    for round in 0..5 {
        let answer = admin
            .post("/tenants/acme/reconcile?wait=20s", json!({}))
            .await
            .expect_status(200)
            .body;
        let token = &answer["status"]["lastHandledReconcileToken"];
        assert!(token.is_string(), "round {round}: {answer}");
        let read = admin.get("/tenants/acme").await.expect_status(200).body;
        assert_eq!(
            &read["status"]["lastHandledReconcileToken"], token,
            "round {round}"
        );
    }
}
