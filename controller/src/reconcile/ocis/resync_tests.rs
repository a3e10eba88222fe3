//! Resyncs answered from the snapshot of project spaces: a converged tenant
//! costs no request, and the snapshot's correctness rules hold (a stale
//! snapshot never creates a second space, drift seen in it is confirmed
//! upstream before it is corrected).

use std::time::Duration;

use dezky_core::model::SystemStatus;

use super::tests::{env_with, tenant, Env};
use super::*;

fn settings() -> OcisSettings {
    OcisSettings {
        create_groups: true,
        ..OcisSettings::default()
    }
}

/// Another reconciler over the same server, with its own snapshot.
fn other(env: &Env) -> OcisReconciler {
    OcisReconciler::new(env.client.clone(), settings(), Duration::from_secs(300))
}

async fn resync(r: &OcisReconciler, tenant: &mut Tenant) -> Outcome {
    let outcome = r
        .resync(tenant, Mode::Apply)
        .await
        .expect("resync succeeds");
    tenant.status.systems.insert(
        System::Ocis,
        SystemStatus {
            external_id: outcome.external_id.clone(),
            ..SystemStatus::default()
        },
    );
    outcome
}

/// (outcome, requests, writes) of one resync.
async fn counted(env: &Env, r: &OcisReconciler, tenant: &mut Tenant) -> (Outcome, u64, u64) {
    let (requests, writes) = env.traffic();
    let outcome = resync(r, tenant).await;
    let (after_requests, after_writes) = env.traffic();
    (outcome, after_requests - requests, after_writes - writes)
}

#[tokio::test]
async fn a_converged_resync_is_answered_from_the_snapshot_without_a_request() {
    let env = env_with(settings()).await;
    let mut tenants: Vec<Tenant> = (0..10)
        .map(|i| tenant(&format!("t{i}"), &format!("T{i}"), "team"))
        .collect();
    for t in &mut tenants {
        env.pass(t).await;
    }
    let mut total = (0, 0);
    for t in &mut tenants {
        let (outcome, requests, writes) = counted(&env, &env.reconciler, t).await;
        assert_eq!(outcome.state, SystemState::Ok);
        assert!(outcome.actions.is_empty(), "{:?}", outcome.actions);
        total = (total.0 + requests, total.1 + writes);
    }
    assert_eq!(total, (1, 0), "one list answers every tenant");
    let mut late = tenant("late", "Late", "team");
    env.pass(&mut late).await;
    tenants.push(late);
    for t in &mut tenants {
        let (_, requests, _) = counted(&env, &env.reconciler, t).await;
        assert_eq!(requests, 0, "the pass's own writes are in the snapshot");
    }
}

#[tokio::test]
async fn a_stale_snapshot_never_creates_a_second_space() {
    let env = env_with(settings()).await;
    let mut first = tenant("first", "First", "team");
    env.pass(&mut first).await;
    resync(&env.reconciler, &mut first).await; // lists: only first's space
    let mut late = tenant("late", "Late", "team");
    let created = other(&env)
        .reconcile(&late, Mode::Apply)
        .await
        .expect("created elsewhere");
    let (outcome, _, writes) = counted(&env, &env.reconciler, &mut late).await;
    assert_eq!(writes, 0, "no second POST /drives");
    assert_eq!(outcome.external_id, created.external_id);
    let spaces = env
        .ocis
        .drives()
        .into_iter()
        .filter(|d| d.drive_alias.as_deref() == Some("project/tenant-late"))
        .count();
    assert_eq!(spaces, 1);
}

#[tokio::test]
async fn drift_seen_in_the_snapshot_is_confirmed_upstream_before_it_is_corrected() {
    let env = env_with(settings()).await;
    let mut acme = tenant("acme", "Acme", "team");
    env.pass(&mut acme).await;
    let id = env.space(&acme).id;
    assert!(env.ocis.rename_drive(&id, "Renamed"));
    let lister = other(&env);
    let mut second = tenant("second", "Second", "team");
    env.pass(&mut second).await;
    resync(&lister, &mut second).await; // its snapshot shows acme renamed
    assert!(env.ocis.rename_drive(&id, "Acme"));
    let (outcome, requests, writes) = counted(&env, &lister, &mut acme).await;
    assert!(outcome.actions.is_empty());
    assert_eq!(writes, 0, "the stale drift is not corrected again");
    assert_eq!(
        requests, 3,
        "the space, its grants and its group were read upstream"
    );
}

#[tokio::test]
async fn a_lost_grant_listed_in_the_snapshot_is_healed_by_the_direct_pass() {
    let env = env_with(settings()).await;
    let mut acme = tenant("acme", "Acme", "team");
    env.pass(&mut acme).await;
    let id = env.space(&acme).id;
    let gid = env.ocis.group_id("tenant-acme").expect("group");
    assert!(env.ocis.remove_permission(&id, &format!("g:{gid}")));
    let fresh = other(&env);
    let (healed, _, writes) = counted(&env, &fresh, &mut acme).await;
    assert_eq!(writes, 1, "one invite");
    assert!(!healed.actions.is_empty());
    let (again, requests, _) = counted(&env, &fresh, &mut acme).await;
    assert!(again.actions.is_empty());
    assert_eq!(requests, 0);
}
