//! The fleet view's API: `GET /tenants?watch=true&view=fleet` streams light
//! rows and stays silent for changes a row does not show; `GET /fleet/summary`
//! counts what the caller may see, with today's drift corrections.

use std::collections::BTreeSet;

use dezky_core::model::{EventAction, System, TenantEvent};
use dezky_core::{Id, Timestamp};
use mongodb::bson::doc;
use reqwest::Method;
use serde_json::json;

use crate::support::api::{Client, TestApi};
use crate::support::sse::SseStream;

async fn watch(client: &Client<'_>, query: &str) -> SseStream {
    let request = client.request(Method::GET, &format!("/tenants?watch=true{query}"));
    let response = request.send().await.expect("the API answers");
    assert_eq!(response.status(), 200);
    SseStream::new(response)
}

/// Writes `set` into tenant `slug`'s document, as the controller would.
async fn set_status(api: &TestApi, slug: &str, set: mongodb::bson::Document) {
    api.store
        .tenants
        .update_one(doc! { "slug": slug }, doc! { "$set": set })
        .await
        .unwrap();
}

fn drift(tenant: Id, at: Timestamp) -> TenantEvent {
    TenantEvent {
        id: Id::new(),
        tenant_id: tenant,
        at,
        system: System::Stalwart,
        action: EventAction::DriftCorrected,
        object: "domain acme.test".into(),
        fields: json!({}),
        message: String::new(),
        generation: 1,
    }
}

#[tokio::test]
async fn a_fleet_watch_sends_rows_and_nothing_for_a_resync_that_moves_only_timestamps() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    api.create_tenant(&admin, "acme").await;
    api.create_tenant(&admin, "globex").await;
    let mut fleet = watch(&admin, "&view=fleet").await;
    let mut full = watch(&admin, "").await;
    let start = fleet.until_synced().await;
    full.until_synced().await;

    let rows: Vec<_> = start.iter().filter(|e| e.event == "added").collect();
    let slugs: BTreeSet<String> = rows.iter().map(|e| e.slug()).collect();
    assert!(slugs.is_superset(&["acme".into(), "globex".into()].into()));
    let row = rows.iter().find(|e| e.slug() == "acme").unwrap().json();
    let keys: BTreeSet<&str> = row
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let expected = [
        "id",
        "slug",
        "name",
        "plan",
        "paused",
        "generation",
        "createdAt",
        "updatedAt",
        "status",
    ];
    assert_eq!(keys, expected.into(), "{row}");
    assert_eq!(row["status"]["phase"], "pending");

    // A pass observes acme's group (a row change), then a routine resync
    // moves only timestamps: the full watch shows both, the fleet watch
    // only the first, and its next event is globex degrading after it.
    let now = Timestamp::now();
    set_status(
        &api,
        "acme",
        doc! { "status.lastReconciledAt": now, "status.systems.authentik": {
        "state": "ok", "reason": "Created", "lastSyncedAt": now } },
    )
    .await;
    let resynced = full.event().await;
    assert_eq!(
        (resynced.event.as_str(), resynced.slug()),
        ("modified", "acme".into())
    );
    set_status(
        &api,
        "acme",
        doc! { "status.lastReconciledAt": Timestamp::now() },
    )
    .await;
    let again = full.event().await;
    assert_eq!(
        again.json()["status"]["systems"]["authentik"]["state"],
        "ok"
    );
    set_status(
        &api,
        "globex",
        doc! { "status.phase": "degraded", "status.systems.ocis": {
        "state": "error", "reason": "UpstreamUnavailable", "message": "503 (retry in 4s)" } },
    )
    .await;
    let first = fleet.event().await;
    assert_eq!(
        (first.event.as_str(), first.slug()),
        ("modified", "acme".into())
    );
    assert_eq!(
        first.json()["status"]["systems"]["authentik"]["state"],
        "ok"
    );
    let second = fleet.event().await;
    assert_eq!(
        (second.event.as_str(), second.slug()),
        ("modified", "globex".into())
    );
    let status = &second.json()["status"];
    assert_eq!(status["phase"], "degraded");
    assert_eq!(
        status["systems"]["ocis"],
        json!({"state": "error", "reason": "UpstreamUnavailable"}),
        "no message, no timestamps"
    );
}

#[tokio::test]
async fn the_view_is_checked_and_applies_only_to_a_watch() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    let error = admin
        .get("/tenants?view=fleet")
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(error["field"], "view", "{error}");
    let error = admin
        .get("/tenants?watch=true&view=rows")
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(error["field"], "view", "{error}");
}

#[tokio::test]
async fn the_summary_counts_the_visible_fleet_and_todays_drift_corrections() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    let alice = api.user("alice", &[]).await;
    let id = |tenant: serde_json::Value| -> Id { tenant["id"].as_str().unwrap().parse().unwrap() };
    let acme = id(api.create_tenant(&alice, "acme").await);
    let globex = id(api.create_tenant(&admin, "globex").await);
    api.create_tenant(&admin, "initech").await;
    admin
        .patch("/tenants/initech", json!({"paused": true}))
        .await
        .expect_status(200);
    let mut fleet = watch(&admin, "&view=fleet").await;
    fleet.until_synced().await;
    set_status(
        &api,
        "acme",
        doc! { "status.phase": "active", "status.systems": {
        "authentik": {"state": "ok", "reason": "Created"},
        "stalwart": {"state": "ok", "reason": "Created"},
        "ocis": {"state": "skipped", "reason": "Disabled"} } },
    )
    .await;
    set_status(
        &api,
        "globex",
        doc! { "status.phase": "degraded", "status.systems.stalwart": {
        "state": "error", "reason": "UpstreamUnavailable" } },
    )
    .await;
    for _ in 0..2 {
        fleet.event().await; // the cache applied both
    }
    let yesterday = Timestamp::from_millis(Timestamp::now().millis() - 25 * 3600 * 1000);
    let events = [
        drift(acme, Timestamp::now()),
        drift(globex, Timestamp::now()),
        drift(acme, yesterday),
    ];
    api.store.events.insert_many(events).await.unwrap();

    let summary = admin.get("/fleet/summary").await.expect_status(200).body;
    assert_eq!(summary["tenants"], 3, "{summary}");
    let phases = json!({"pending": 1, "active": 1, "degraded": 1, "deleting": 0});
    assert_eq!(summary["phases"], phases);
    assert_eq!(
        (
            summary["paused"].as_u64(),
            summary["needsAttention"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(
        summary["systems"]["stalwart"],
        json!({"ok": 1, "skipped": 0, "error": 1, "pending": 0})
    );
    assert_eq!(summary["systems"]["ocis"]["skipped"], 1);
    assert_eq!(summary["driftCorrectionsToday"], 2);
    let since = summary["since"].as_str().unwrap();
    assert!(since.ends_with("T00:00:00.000Z"), "{since}");

    // Alice sees only acme, and only its drift correction of today.
    let mine = alice.get("/fleet/summary").await.expect_status(200).body;
    assert_eq!(mine["tenants"], 1, "{mine}");
    assert_eq!(mine["phases"]["active"], 1);
    assert_eq!(
        (
            mine["needsAttention"].as_u64(),
            mine["driftCorrectionsToday"].as_u64()
        ),
        (Some(0), Some(1))
    );
}
