//! High availability: exactly one of several controllers acts; a standby
//! takes over within the lease duration when the leader dies; graceful
//! shutdown hands over at once.

use std::time::{Duration, Instant};

use dezky_controller::lease::{Lease, CONTROLLER_LEASE};
use dezky_core::model::Phase;

use super::{config, Running, PATIENCE};
use crate::support::fake::Fakes;
use crate::support::mongo::fresh_store;
use crate::support::tenants::{in_phase, insert, tenant};
use crate::support::wait::until;

#[tokio::test]
async fn only_one_lease_holder_at_a_time() {
    let store = fresh_store().await;
    let a = Lease::new(&store, "test", "a".into(), Duration::from_secs(30));
    let b = Lease::new(&store, "test", "b".into(), Duration::from_secs(30));
    assert!(a.try_acquire().await.unwrap());
    assert!(!b.try_acquire().await.unwrap());
    assert!(a.try_acquire().await.unwrap(), "the holder renews");
    a.release().await.unwrap();
    assert!(
        b.try_acquire().await.unwrap(),
        "released leases are free at once"
    );
    assert!(!a.try_acquire().await.unwrap());
}

#[tokio::test]
async fn exactly_one_controller_acts_and_a_standby_takes_over_when_it_dies() {
    let store = fresh_store().await;
    let (fakes_a, fakes_b) = (Fakes::new(), Fakes::new());
    let cfg = config();
    let lease_duration = cfg.lease_duration;
    let first = Running::start_synced(&store, fakes_a.reconcilers(), cfg.clone()).await;
    let second = Running::start(&store, fakes_b.reconcilers(), cfg);
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = insert(&store, &tenant(&format!("ha-{i}"))).await;
        until("active", PATIENCE, || in_phase(&store, id, Phase::Active)).await;
        ids.push(id);
    }
    let per_tenant: Vec<usize> = ids
        .iter()
        .map(|id| fakes_a.authentik.applies(*id))
        .collect();
    assert_eq!(per_tenant, [1; 5], "one pass per tenant, all by the leader");
    assert_eq!(
        fakes_b.authentik.total_applies(),
        0,
        "the standby never reconciles"
    );
    assert!(!second.health.is_leader());

    let killed_at = Instant::now();
    first.kill().await;
    until("standby leads", PATIENCE, || async {
        second.health.is_leader().then_some(())
    })
    .await;
    let failover = killed_at.elapsed();
    println!("failover after a crash: {failover:?} (lease {lease_duration:?})");
    assert!(failover <= lease_duration + lease_duration / 3 + Duration::from_secs(1));
    let late = insert(&store, &tenant("after-failover")).await;
    until("new leader reconciles", PATIENCE, || {
        in_phase(&store, late, Phase::Active)
    })
    .await;
    assert!(fakes_b.authentik.total_applies() >= 1);
    second.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_releases_the_lease() {
    let store = fresh_store().await;
    let fakes = Fakes::new();
    let running = Running::start(&store, fakes.reconcilers(), config());
    until("leads", PATIENCE, || async {
        running.health.is_leader().then_some(())
    })
    .await;
    running.shutdown().await;
    let probe = Lease::new(
        &store,
        CONTROLLER_LEASE,
        "probe".into(),
        Duration::from_secs(5),
    );
    assert_eq!(probe.current_holder().await.unwrap(), None);
}
