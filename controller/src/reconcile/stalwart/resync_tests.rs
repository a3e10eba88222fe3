//! Resyncs answered from the snapshot of every domain: a converged tenant
//! costs no request, and the snapshot's correctness rules hold (a stale
//! snapshot never creates a duplicate, drift seen in it is confirmed
//! upstream before it is corrected).

use dezky_simulators::stalwart::StalwartSim;

use super::tests::{cost, pass, setup, tenant};
use super::*;

async fn resync(r: &StalwartReconciler, tenant: &mut Tenant) -> Outcome {
    let outcome = r
        .resync(tenant, Mode::Apply)
        .await
        .expect("resync succeeds");
    tenant
        .status
        .systems
        .entry(System::Stalwart)
        .or_default()
        .external_id = outcome.external_id.clone();
    outcome
}

/// A second reconciler over the same server, with its own snapshot.
fn other_reconciler(sim: &StalwartSim) -> StalwartReconciler {
    super::tests::reconciler(
        sim,
        dezky_upstream::stalwart::StalwartAuth::Bearer(
            dezky_simulators::stalwart::DEFAULT_API_KEY.into(),
        ),
    )
}

#[tokio::test]
async fn a_converged_resync_is_answered_from_the_snapshot_without_a_request() {
    let (sim, r) = setup().await;
    let mut tenants: Vec<Tenant> = (0..20)
        .map(|i| {
            tenant(
                &format!("t{i}"),
                &[&format!("t{i}.test"), &format!("mail.t{i}.test")],
            )
        })
        .collect();
    for t in &mut tenants {
        pass(&r, t).await.expect("created");
    }
    let (_, requests, sets) = cost(&sim, async {
        for t in &mut tenants {
            let outcome = resync(&r, t).await;
            assert_eq!(outcome.reason, "InSync");
            assert!(outcome.actions.is_empty());
        }
    })
    .await;
    assert_eq!((requests, sets), (1, 0), "one request lists all 40 domains");
    let mut late = tenant("late", &["late.test"]);
    pass(&r, &mut late).await.expect("created");
    tenants.push(late);
    let (_, requests, _) = cost(&sim, async {
        for t in &mut tenants {
            assert_eq!(resync(&r, t).await.reason, "InSync");
        }
    })
    .await;
    assert_eq!(requests, 0, "the pass's own writes are in the snapshot");
}

#[tokio::test]
async fn a_stale_snapshot_never_creates_a_duplicate() {
    let (sim, r) = setup().await;
    let mut first = tenant("first", &["first.test"]);
    pass(&r, &mut first).await.expect("created");
    resync(&r, &mut first).await; // lists: the snapshot knows only first.test
    let mut late = tenant("late", &["late.test"]);
    let existing = sim
        .create_domain("late.test", Some(&marker("late")))
        .expect("domain");
    let (outcome, _, sets) = cost(&sim, resync(&r, &mut late)).await;
    assert_eq!(sets, 0, "no create of a second domain");
    assert_eq!(outcome.external_id, Some(existing.id.clone()));
    assert_eq!(
        sim.domains()
            .iter()
            .filter(|d| d.name == "late.test")
            .count(),
        1
    );
}

#[tokio::test]
async fn drift_seen_in_the_snapshot_is_confirmed_upstream_before_it_is_corrected() {
    let (sim, r) = setup().await;
    let mut acme = tenant("acme", &["acme.test"]);
    pass(&r, &mut acme).await.expect("created");
    let id = sim.domain_named("acme.test").expect("domain").id;
    sim.set_enabled(&id, false).expect("disable");
    let lister = other_reconciler(&sim);
    let mut other = tenant("other", &["other.test"]);
    pass(&lister, &mut other).await.expect("created");
    resync(&lister, &mut other).await; // its snapshot shows acme.test disabled
    sim.set_enabled(&id, true).expect("re-enabled meanwhile");
    let (outcome, requests, sets) = cost(&sim, resync(&lister, &mut acme)).await;
    assert_eq!(outcome.reason, "InSync");
    assert_eq!(sets, 0, "the stale drift is not corrected again");
    assert_eq!(requests, 1, "one lookup confirmed the domain upstream");
}

#[tokio::test]
async fn drift_listed_in_the_snapshot_is_healed_by_the_direct_pass() {
    let (sim, r) = setup().await;
    let mut acme = tenant("acme", &["acme.test"]);
    pass(&r, &mut acme).await.expect("created");
    let id = sim.domain_named("acme.test").expect("domain").id;
    sim.set_enabled(&id, false).expect("disable");
    let fresh = other_reconciler(&sim);
    let (healed, _, sets) = cost(&sim, resync(&fresh, &mut acme)).await;
    assert_eq!(healed.reason, "Restored");
    assert_eq!(sets, 1);
    assert!(sim.domain(&id).expect("domain").is_enabled);
    let (again, requests, _) = cost(&sim, resync(&fresh, &mut acme)).await;
    assert_eq!((again.reason.as_str(), requests), ("InSync", 0));
}
