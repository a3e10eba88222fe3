//! Resyncs answered from the snapshot of managed groups: a converged
//! tenant costs no request, and the snapshot's correctness rules hold (a
//! stale snapshot never creates a duplicate, drift seen in it is confirmed
//! upstream before it is corrected).

use std::time::Duration;

use dezky_core::model::Tenant;
use dezky_simulators::authentik::AuthentikSim;
use dezky_upstream::authentik::AuthentikClient;

use super::tests::{counted, marker, pass, pk, remember, sim, tenant, PREFIX};
use super::*;

fn reconciler_with_age(sim: &AuthentikSim, age: Duration) -> AuthentikReconciler {
    let http = dezky_core::http::client(None, Duration::from_secs(5)).expect("http client");
    let client = AuthentikClient::new(http, &sim.url(), sim.api_token()).expect("client");
    AuthentikReconciler::new(client, PREFIX, age)
}

async fn resync(r: &AuthentikReconciler, tenant: &mut Tenant) -> Outcome {
    let outcome = r
        .resync(tenant, Mode::Apply)
        .await
        .expect("resync succeeds");
    remember(tenant, &outcome);
    outcome
}

#[tokio::test]
async fn a_converged_resync_is_answered_from_the_snapshot_without_a_request() {
    let sim = sim().await;
    let r = reconciler_with_age(&sim, Duration::from_secs(300));
    let mut tenants: Vec<Tenant> = (0..30).map(|i| tenant(&format!("t{i:02}"))).collect();
    for t in &mut tenants {
        pass(&r, t).await;
    }
    let (_, requests, writes) = counted(&sim, async {
        for t in &mut tenants {
            let outcome = resync(&r, t).await;
            assert_eq!(outcome.reason, "InSync");
            assert!(outcome.actions.is_empty());
        }
    })
    .await;
    assert_eq!(
        (requests, writes),
        (1, 0),
        "one page lists every managed group"
    );
    let mut late = tenant("late");
    pass(&r, &mut late).await;
    tenants.push(late);
    let (_, requests, _) = counted(&sim, async {
        for t in &mut tenants {
            assert_eq!(resync(&r, t).await.reason, "InSync");
        }
    })
    .await;
    assert_eq!(
        requests, 0,
        "the listed groups and the group a pass wrote are in the snapshot"
    );
}

#[tokio::test]
async fn a_stale_snapshot_never_creates_a_duplicate() {
    let sim = sim().await;
    let r = reconciler_with_age(&sim, Duration::from_secs(300));
    let mut first = tenant("first");
    pass(&r, &mut first).await;
    resync(&r, &mut first).await; // lists: the snapshot knows only `first`
    let mut late = tenant("late");
    // Created meanwhile by someone else (a previous leader), unseen by the snapshot.
    let existing = sim
        .create_group("tenant-late", marker(&late))
        .expect("group");
    let (outcome, _, writes) = counted(&sim, resync(&r, &mut late)).await;
    assert_eq!(outcome.reason, "InSync");
    assert_eq!(outcome.external_id, Some(existing.pk.to_string()));
    assert_eq!(writes, 0, "no POST of a second group");
    let named: Vec<_> = sim
        .groups()
        .into_iter()
        .filter(|g| g.name == "tenant-late")
        .collect();
    assert_eq!(named.len(), 1);
}

#[tokio::test]
async fn drift_seen_in_the_snapshot_is_confirmed_upstream_before_it_is_corrected() {
    let sim = sim().await;
    let r = reconciler_with_age(&sim, Duration::from_secs(300));
    let mut acme = tenant("acme");
    let created = pass(&r, &mut acme).await;
    sim.rename_group(pk(&created), "acme-renamed")
        .expect("rename");
    let lister = reconciler_with_age(&sim, Duration::from_secs(300));
    let mut other = tenant("other");
    pass(&lister, &mut other).await;
    resync(&lister, &mut other).await; // its snapshot now shows acme renamed
                                       // The drift was healed meanwhile (by a direct pass, another writer).
    sim.rename_group(pk(&created), "tenant-acme")
        .expect("rename back");
    let (outcome, requests, writes) = counted(&sim, resync(&lister, &mut acme)).await;
    assert_eq!(outcome.reason, "InSync");
    assert_eq!(writes, 0, "the stale drift is not 'corrected' again");
    assert_eq!(requests, 1, "one GET confirmed the group upstream");
}

#[tokio::test]
async fn drift_is_healed_by_the_resync_after_the_next_list() {
    let sim = sim().await;
    // Age zero: every resync lists again, as the first resync after an interval does.
    let r = reconciler_with_age(&sim, Duration::ZERO);
    let mut acme = tenant("acme");
    let created = pass(&r, &mut acme).await;
    sim.rename_group(pk(&created), "acme-renamed")
        .expect("rename");
    let healed = resync(&r, &mut acme).await;
    assert_eq!(healed.reason, "Updated");
    let group = sim.group(pk(&created)).expect("group");
    assert_eq!(group.name, "tenant-acme");
    let (again, _, writes) = counted(&sim, resync(&r, &mut acme)).await;
    assert_eq!((again.reason.as_str(), writes), ("InSync", 0));
}

#[tokio::test]
async fn a_tenant_without_a_stored_id_is_observed_directly() {
    let sim = sim().await;
    let r = reconciler_with_age(&sim, Duration::from_secs(300));
    let mut acme = tenant("acme");
    let created = pass(&r, &mut acme).await;
    acme.status.systems.clear();
    let (outcome, requests, _) = counted(&sim, resync(&r, &mut acme)).await;
    assert_eq!(outcome.external_id, created.external_id);
    assert!(requests >= 1, "status and snapshot disagree: ask upstream");
}

#[tokio::test]
async fn foreign_attributes_do_not_change_the_entry_and_still_answer_in_sync() {
    let sim = sim().await;
    let r = reconciler_with_age(&sim, Duration::from_secs(300));
    let mut t = tenant("compact");
    let created = pass(&r, &mut t).await;
    let group = sim.group(pk(&created)).expect("created");
    let mut attributes = group.attributes.clone();
    attributes.insert("operator_note".into(), "kept upstream".into());
    sim.set_attributes(group.pk, attributes)
        .expect("foreign attribute set out of band");

    let (outcome, requests, writes) = counted(&sim, resync(&r, &mut t)).await;
    assert_eq!(
        (outcome.reason.as_str(), requests, writes),
        ("InSync", 1, 0),
        "one list, answered in sync from it"
    );
    let upstream = sim.group(group.pk).expect("still there");
    assert_eq!(upstream.attributes["operator_note"], "kept upstream");
}

#[test]
fn an_entry_reads_only_the_name_and_the_owned_attributes() {
    let t = tenant("entry");
    let group = Group {
        pk: "7f1c".into(),
        name: format!("{PREFIX}entry"),
        is_superuser: false,
        parents: Vec::new(),
        users: Vec::new(),
        attributes: owned_attributes(&t).into_iter().collect(),
    };
    let mut busy = group.clone();
    busy.users = vec![1, 2, 3];
    busy.parents = vec!["parent".into()];
    busy.attributes.insert("operator_note".into(), "x".into());
    assert_eq!(entry(&busy), entry(&group));
    let mut renamed = group.clone();
    renamed.name.push('x');
    let mut remarked = group.clone();
    remarked
        .attributes
        .insert(ATTR_TENANT_SLUG.into(), "other".into());
    assert_ne!(entry(&renamed), entry(&group));
    assert_ne!(entry(&remarked), entry(&group));
}
