//! Requests the API records and the controller answers: `?wait=` on a
//! manual reconcile and the dry-run `GET /tenants/{slug}/plan`.

use std::sync::atomic::Ordering;

use dezky_core::model::Phase;
use serde_json::json;

use super::{config, Running, PATIENCE};
use crate::support::api::TestApi;
use crate::support::fake::Fakes;
use crate::support::tenants::in_phase;
use crate::support::wait::until;

#[tokio::test]
async fn reconcile_with_wait_returns_the_tenant_once_the_controller_handled_the_token() {
    let api = TestApi::start().await;
    let fakes = Fakes::new();
    let running = Running::start_synced(&api.store, fakes.reconcilers(), config()).await;
    let admin = api.admin().await;
    let created = api.create_tenant(&admin, "waited").await;
    let id = created["id"].as_str().unwrap().parse().unwrap();
    until("active", PATIENCE, || {
        in_phase(&api.store, id, Phase::Active)
    })
    .await;

    let reply = admin
        .post("/tenants/waited/reconcile?wait=30s", json!({}))
        .await
        .expect_status(200);
    let token = reply.body["status"]["lastHandledReconcileToken"]
        .as_str()
        .unwrap()
        .to_string();
    let stored = api
        .store
        .tenants
        .find_one(mongodb::bson::doc! { "_id": id })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.reconcile_request.unwrap().token,
        token,
        "the answer is for this request"
    );
    assert_eq!(
        fakes.authentik.applies(id),
        2,
        "the request caused one more pass"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn reconcile_wait_runs_out_with_202_and_the_token_when_no_controller_answers() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    api.create_tenant(&admin, "unanswered").await;
    let reply = admin
        .post("/tenants/unanswered/reconcile?wait=300ms", json!({}))
        .await
        .expect_status(202);
    assert!(reply.body["token"].as_str().is_some_and(|t| !t.is_empty()));
    admin
        .post("/tenants/unanswered/reconcile?wait=soon", json!({}))
        .await
        .expect_error(400, "validation_failed");
}

#[tokio::test]
async fn plan_reports_what_a_dry_run_would_change_without_changing_anything() {
    let api = TestApi::start().await;
    let fakes = Fakes::new();
    let mut paused_config = config();
    paused_config.concurrency = 2;
    let admin = api.admin().await;
    admin
        .post(
            "/tenants",
            json!({ "slug": "planned", "name": "Planned", "plan": "team" }),
        )
        .await
        .expect_status(201);
    // Pause before the controller sees it: nothing may be written upstream.
    admin
        .patch("/tenants/planned", json!({ "paused": true }))
        .await
        .expect_status(200);
    let running = Running::start_synced(&api.store, fakes.reconcilers(), paused_config).await;

    let reply = admin
        .get("/tenants/planned/plan?wait=20s")
        .await
        .expect_status(200);
    let plan = reply.body;
    assert_eq!(plan["slug"], "planned");
    assert_eq!(plan["generation"], 2);
    for system in ["authentik", "stalwart", "ocis"] {
        let actions = &plan["systems"][system]["actions"];
        assert_eq!(actions[0]["action"], "create", "{system}: {plan}");
        assert_eq!(plan["systems"][system]["conflict"], json!(null));
    }
    for fake in fakes.all() {
        assert_eq!(fake.total_applies(), 0, "a plan never writes");
    }
    assert!(fakes.authentik.max_parallel.load(Ordering::SeqCst) >= 1);
    running.shutdown().await;
}
