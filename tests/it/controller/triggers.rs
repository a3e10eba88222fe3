//! Triggers and passes: change stream filter, one pass per change, manual
//! reconcile, resume and relist, concurrency, panics, pause.

use std::sync::atomic::Ordering;
use std::time::Duration;

use dezky_controller::watch::TenantWatch;
use dezky_core::model::{Phase, System, SystemState};
use dezky_core::store::Store;
use dezky_core::Timestamp;
use futures::StreamExt;
use mongodb::bson::{doc, Document};
use mongodb::change_stream::event::ChangeStreamEvent;
use mongodb::change_stream::ChangeStream;

use super::{config, Running, PATIENCE};
use crate::support::fake::Fakes;
use crate::support::mongo::fresh_store;
use crate::support::tenants::{get, in_phase, insert, tenant};
use crate::support::wait::until;

/// A change stream on `tenants` with the controller's pipeline.
async fn controller_stream(store: &Store) -> ChangeStream<ChangeStreamEvent<Document>> {
    store
        .tenants
        .clone_with_type::<Document>()
        .watch()
        .pipeline(TenantWatch::pipeline())
        .await
        .expect("open the controller's change stream")
}

#[tokio::test]
async fn status_writes_never_pass_the_change_stream_filter() {
    let store = fresh_store().await;
    let t = tenant("filter");
    insert(&store, &t).await;
    let mut stream = controller_stream(&store).await;
    let id = t.id;
    store
        .tenants
        .update_one(
            doc! { "_id": id },
            doc! { "$set": { "status.phase": "active", "status.observedGeneration": 1 } },
        )
        .await
        .unwrap();
    store
        .tenants
        .update_one(
            doc! { "_id": id },
            doc! { "$addToSet": { "finalizers": "authentik" } },
        )
        .await
        .unwrap();
    store
        .tenants
        .update_one(
            doc! { "_id": id },
            doc! { "$set": { "name": "Renamed" }, "$inc": { "generation": 1 } },
        )
        .await
        .unwrap();
    let first = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let fields = first.update_description.expect("an update").updated_fields;
    assert!(
        fields.contains_key("name"),
        "the first event is the desired change, got {fields:?}"
    );
}

#[tokio::test]
async fn an_insert_event_carries_the_tenant_id_not_the_document() {
    let store = fresh_store().await;
    let mut stream = controller_stream(&store).await;
    let t = tenant("id-only");
    insert(&store, &t).await;
    let event = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let key = event.document_key.expect("a document key");
    assert_eq!(key.get_object_id("_id").unwrap(), t.id.0);
    assert!(event.full_document.is_none(), "{:?}", event.full_document);
}

#[tokio::test]
async fn one_created_tenant_costs_exactly_one_pass() {
    let store = fresh_store().await;
    let fakes = Fakes::new();
    let running = Running::start_synced(&store, fakes.reconcilers(), config()).await;
    let a = insert(&store, &tenant("one-pass")).await;
    let done = until("tenant active", PATIENCE, || {
        in_phase(&store, a, Phase::Active)
    })
    .await;
    assert_eq!(
        done.finalizers,
        [System::Authentik, System::Stalwart, System::Ocis]
    );
    assert_eq!(
        done.status.systems[&System::Ocis].external_id.as_deref(),
        Some("ocis-one-pass")
    );
    // A sentinel created after A's status write: once it is done, every
    // trigger A's own writes could have caused has been seen and handled.
    let sentinel = insert(&store, &tenant("sentinel")).await;
    until("sentinel active", PATIENCE, || {
        in_phase(&store, sentinel, Phase::Active)
    })
    .await;
    for fake in fakes.all() {
        assert_eq!(fake.applies(a), 1, "{:?} ran more than once", fake.system);
    }
    running.shutdown().await;
}

#[tokio::test]
async fn a_desired_change_leads_to_a_new_pass_at_the_new_generation() {
    let store = fresh_store().await;
    let fakes = Fakes::new();
    let running = Running::start(&store, fakes.reconcilers(), config());
    let a = insert(&store, &tenant("changed")).await;
    until("active", PATIENCE, || in_phase(&store, a, Phase::Active)).await;
    store
        .tenants
        .update_one(
            doc! { "_id": a },
            doc! { "$set": { "plan": "business" }, "$inc": { "generation": 1 } },
        )
        .await
        .unwrap();
    let t = until("generation 2 observed", PATIENCE, || async {
        get(&store, a)
            .await
            .filter(|t| t.status.observed_generation == 2)
    })
    .await;
    assert_eq!(t.status.phase, Phase::Active);
    assert_eq!(fakes.stalwart.applies(a), 2);
    running.shutdown().await;
}

#[tokio::test]
async fn a_manual_reconcile_request_is_handled_and_acknowledged() {
    let store = fresh_store().await;
    let fakes = Fakes::new();
    let running = Running::start(&store, fakes.reconcilers(), config());
    let a = insert(&store, &tenant("manual")).await;
    until("active", PATIENCE, || in_phase(&store, a, Phase::Active)).await;
    store
        .tenants
        .update_one(
            doc! { "_id": a },
            doc! { "$set": { "reconcileRequest": { "token": "tok-1", "requestedAt": Timestamp::now().to_bson() } } },
        )
        .await
        .unwrap();
    until("token handled", PATIENCE, || async {
        get(&store, a)
            .await
            .filter(|t| t.status.last_handled_reconcile_token.as_deref() == Some("tok-1"))
    })
    .await;
    assert_eq!(fakes.authentik.applies(a), 2);
    running.shutdown().await;
}

#[tokio::test]
async fn tenants_created_while_the_controller_was_down_are_reconciled_after_restart() {
    let store = fresh_store().await;
    let fakes = Fakes::new();
    let first = Running::start(&store, fakes.reconcilers(), config());
    let a = insert(&store, &tenant("before")).await;
    until("active", PATIENCE, || in_phase(&store, a, Phase::Active)).await;
    first.shutdown().await;
    let saved = store
        .controller_state
        .find_one(doc! { "_id": "tenants-watch" })
        .await
        .unwrap();
    assert!(
        saved.is_some_and(|d| d.contains_key("resumeToken")),
        "the resume token was saved"
    );

    let b = insert(&store, &tenant("while-down")).await;
    let second = Running::start(&store, fakes.reconcilers(), config());
    until("created-while-down tenant active", PATIENCE, || {
        in_phase(&store, b, Phase::Active)
    })
    .await;
    second.shutdown().await;
}

#[tokio::test]
async fn a_lost_change_stream_history_falls_back_to_a_relist_and_watches_again() {
    let store = fresh_store().await;
    let a = insert(&store, &tenant("relisted")).await;
    // A well-formed resume token from a time long before the oplog starts.
    let ancient = doc! { "_data": "82000000010000000129295A1004AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA463C5F6964003C000004" };
    store
        .controller_state
        .insert_one(doc! { "_id": "tenants-watch", "resumeToken": ancient.clone() })
        .await
        .unwrap();
    let fakes = Fakes::new();
    let running = Running::start(&store, fakes.reconcilers(), config());
    until("relisted tenant active", PATIENCE, || {
        in_phase(&store, a, Phase::Active)
    })
    .await;
    let b = insert(&store, &tenant("after-relist")).await;
    until("the stream works again", PATIENCE, || {
        in_phase(&store, b, Phase::Active)
    })
    .await;
    running.shutdown().await;
    let saved = store
        .controller_state
        .find_one(doc! { "_id": "tenants-watch" })
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        saved.get_document("resumeToken").unwrap(),
        &ancient,
        "a fresh token replaced the dead one"
    );
}

#[tokio::test]
async fn passes_respect_the_concurrency_cap_and_never_overlap_for_one_tenant() {
    let store = fresh_store().await;
    let fakes = Fakes::slow(Duration::from_millis(30));
    let mut cfg = config();
    cfg.concurrency = 3;
    let running = Running::start(&store, fakes.reconcilers(), cfg);
    let mut ids = Vec::new();
    for i in 0..12 {
        let id = insert(&store, &tenant(&format!("cap-{i}"))).await;
        // Extra triggers while it may be running.
        store
            .tenants
            .update_one(doc! { "_id": id }, doc! { "$inc": { "generation": 1 } })
            .await
            .unwrap();
        ids.push(id);
    }
    for id in &ids {
        until("all active", PATIENCE, || {
            in_phase(&store, *id, Phase::Active)
        })
        .await;
    }
    for fake in fakes.all() {
        assert!(
            fake.max_parallel.load(Ordering::SeqCst) <= 3,
            "cap exceeded"
        );
        assert!(
            !fake.overlapped.load(Ordering::SeqCst),
            "two passes of one tenant overlapped"
        );
    }
    running.shutdown().await;
}

#[tokio::test]
async fn a_panicking_reconciler_fails_only_its_system_and_is_retried() {
    let store = fresh_store().await;
    let fakes = Fakes::new();
    fakes.stalwart.panic_next.store(true, Ordering::SeqCst);
    let running = Running::start(&store, fakes.reconcilers(), config());
    let a = insert(&store, &tenant("panics")).await;
    let t = until("the panic is recorded", PATIENCE, || async {
        get(&store, a)
            .await
            .filter(|t| t.system_status(System::Stalwart).is_some())
    })
    .await;
    let stalwart = &t.status.systems[&System::Stalwart];
    assert_eq!(
        (stalwart.state, stalwart.reason.as_str()),
        (SystemState::Error, "Panic")
    );
    assert_eq!(
        t.status.systems[&System::Authentik].state,
        SystemState::Ok,
        "other systems unaffected"
    );
    until("healed after backoff", PATIENCE, || {
        in_phase(&store, a, Phase::Active)
    })
    .await;
    running.shutdown().await;
}

#[tokio::test]
async fn failures_back_off_and_recover_with_events() {
    let store = fresh_store().await;
    let fakes = Fakes::new();
    fakes.ocis.fail_next.store(3, Ordering::SeqCst);
    let running = Running::start(&store, fakes.reconcilers(), config());
    let a = insert(&store, &tenant("flaky")).await;
    until("recovered", PATIENCE, || in_phase(&store, a, Phase::Active)).await;
    assert_eq!(fakes.ocis.applies(a), 4, "three failures, then success");
    let events: Vec<String> = store
        .events
        .find(doc! { "tenantId": a, "system": "ocis" })
        .await
        .unwrap()
        .map(|e| {
            serde_json::to_value(e.unwrap().action)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
        .await;
    assert_eq!(
        events.iter().filter(|e| *e == "error").count(),
        1,
        "one error event, not one per retry: {events:?}"
    );
    assert!(events.contains(&"recovered".to_string()), "{events:?}");
    running.shutdown().await;
}

#[tokio::test]
async fn a_paused_tenant_is_observed_but_never_written() {
    let store = fresh_store().await;
    let fakes = Fakes::new();
    let running = Running::start(&store, fakes.reconcilers(), config());
    let mut t = tenant("paused");
    t.paused = true;
    let a = insert(&store, &t).await;
    let t = until("paused status", PATIENCE, || async {
        get(&store, a)
            .await
            .filter(|t| t.system_status(System::Authentik).is_some())
    })
    .await;
    let s = &t.status.systems[&System::Authentik];
    assert_eq!(
        (s.state, s.reason.as_str()),
        (SystemState::Pending, "Paused")
    );
    assert!(s.message.contains("would create"), "{}", s.message);
    assert_eq!(fakes.authentik.applies(a), 0);
    assert!(fakes.authentik.dry_runs(a) >= 1);
    running.shutdown().await;
}

// Multi-threaded, so passes start while the watcher is still reading events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_replayed_from_the_resume_token_and_seen_by_the_relist_cost_one_pass() {
    let store = fresh_store().await;
    // A resume token from before the inserts, as a stopped controller leaves it.
    let stream = controller_stream(&store).await;
    let token = mongodb::bson::to_bson(&stream.resume_token().unwrap()).unwrap();
    store
        .controller_state
        .insert_one(doc! { "_id": "tenants-watch", "resumeToken": token })
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(insert(&store, &tenant(&format!("replayed-{i}"))).await);
    }
    // The controller resumes (replaying the inserts) and relists (finding
    // them); slow passes make replayed events arrive while passes still run.
    let fakes = Fakes::slow(Duration::from_millis(100));
    let running = Running::start_synced(&store, fakes.reconcilers(), config()).await;
    for id in &ids {
        until("active", PATIENCE, || in_phase(&store, *id, Phase::Active)).await;
    }
    let sentinel = insert(&store, &tenant("replayed-sentinel")).await;
    until("sentinel active", PATIENCE, || {
        in_phase(&store, sentinel, Phase::Active)
    })
    .await;
    let passes: Vec<usize> = ids.iter().map(|id| fakes.ocis.applies(*id)).collect();
    assert_eq!(passes, [1; 10], "passes per tenant");
    running.shutdown().await;
}
