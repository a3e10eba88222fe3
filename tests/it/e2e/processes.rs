//! The split deployment: `provisioner api` and `provisioner controller` as
//! separate processes on one database (manual reconcile with `?wait=`), and
//! two controllers handing the lease over on a crash and on SIGTERM.

use std::time::{Duration, Instant};

use dezky_controller::lease::CONTROLLER_LEASE;
use dezky_core::model::Phase;
use dezky_core::store::Store;
use mongodb::bson::{doc, Document};
use serde_json::json;

use super::harness::{Provisioner, Stack, CONVERGE_LIMIT};
use crate::support::tenants::{in_phase, insert, tenant};
use crate::support::wait::until;

#[tokio::test]
async fn reconcile_waits_across_separate_api_and_controller_processes() {
    let stack = Stack::start().await;
    let api_process = stack.spawn("api").await;
    let _controller = stack.spawn("controller").await;
    let api = stack.admin(&api_process).await;
    api.create_tenant("split", "Split Co", &["split.test"])
        .await;
    api.converged("split").await;

    let waited = api
        .post("/tenants/split/reconcile?wait=30s", json!({}))
        .await
        .expect_status(200)
        .body;
    let token = &waited["reconcileRequest"]["token"];
    assert!(token.is_string(), "the tenant carries its token: {waited}");
    assert_eq!(waited["status"]["lastHandledReconcileToken"], *token);

    let queued = api
        .post("/tenants/split/reconcile", json!({}))
        .await
        .expect_status(202)
        .body;
    let token = queued["token"].as_str().expect("a token").to_string();
    assert_ne!(waited["reconcileRequest"]["token"], token.as_str());
    let handled = api.reconcile_handled("split", &token).await;
    assert_eq!(handled["status"]["phase"], "active");
}

/// The lease holder's pid (holder id `host/pid/uuid`), if the lease is held.
async fn leader_pid(store: &Store) -> Option<u32> {
    let lease: Document = store
        .db
        .collection::<Document>("leases")
        .find_one(doc! { "_id": CONTROLLER_LEASE })
        .await
        .expect("read the lease")?;
    lease
        .get_str("holder")
        .ok()?
        .split('/')
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::test]
async fn a_standby_controller_takes_over_and_sigterm_releases_the_lease() {
    let stack = Stack::start().await;
    let store = stack.store().await;
    let first = stack.spawn("controller").await;
    let second = stack.spawn("controller").await;
    let mut controllers = [first, second];

    let leader = until("a leader", CONVERGE_LIMIT, || leader_pid(&store)).await;
    let leader_index = controllers
        .iter()
        .position(|c| c.pid == leader)
        .expect("the leader is one of ours");
    let before = insert(&store, &tenant("before-failover")).await;
    until("the leader converges a tenant", CONVERGE_LIMIT, || {
        in_phase(&store, before, Phase::Active)
    })
    .await;

    let killed_at = Instant::now();
    controllers[leader_index].kill().await;
    let standby: &mut Provisioner = &mut controllers[1 - leader_index];
    let standby_pid = standby.pid;
    until("the standby holds the lease", CONVERGE_LIMIT, || async {
        (leader_pid(&store).await == Some(standby_pid)).then_some(())
    })
    .await;
    let failover = killed_at.elapsed();
    println!("controller failover after SIGKILL: {failover:?} (LEASE_DURATION 2s)");
    assert!(
        failover < Duration::from_secs(5),
        "within the lease (+renew)"
    );

    let after = insert(&store, &tenant("after-failover")).await;
    until("the new leader converges a tenant", CONVERGE_LIMIT, || {
        in_phase(&store, after, Phase::Active)
    })
    .await;

    let status = standby.terminate().await;
    assert!(status.success(), "graceful exit: {status}");
    let lease = store
        .db
        .collection::<Document>("leases")
        .find_one(doc! { "_id": CONTROLLER_LEASE })
        .await
        .expect("read the lease");
    assert!(lease.is_none(), "the lease is released: {lease:?}");
}
