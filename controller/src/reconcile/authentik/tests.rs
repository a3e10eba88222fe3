//! The Authentik reconciler against the simulator over real HTTP, with
//! tenants built in memory (the runtime's status handling is played by
//! [`remember`]).

use std::time::Duration;

use dezky_core::model::{System, SystemState, SystemStatus, Tenant};
use dezky_core::Timestamp;
use dezky_simulators::authentik::{AuthentikSim, AuthentikSimOptions, SimGroup};
use dezky_upstream::authentik::AuthentikClient;
use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::*;

pub(super) const PREFIX: &str = "tenant-";

async fn start(options: AuthentikSimOptions) -> AuthentikSim {
    AuthentikSim::start(options).await.expect("start simulator")
}

pub(super) async fn sim() -> AuthentikSim {
    start(AuthentikSimOptions::default()).await
}

pub(super) fn reconciler(sim: &AuthentikSim, token: &str) -> AuthentikReconciler {
    let http = dezky_core::http::client(None, Duration::from_secs(5)).expect("http client");
    let client = AuthentikClient::new(http, &sim.url(), token).expect("client");
    AuthentikReconciler::new(client, PREFIX, Duration::from_secs(300))
}

pub(super) fn tenant(slug: &str) -> Tenant {
    Tenant::new(slug, &format!("{slug} Inc"), "team", Timestamp::now())
}

/// Records an outcome in the tenant's status, as the runtime does.
pub(super) fn remember(tenant: &mut Tenant, outcome: &Outcome) {
    tenant.status.systems.insert(
        System::Authentik,
        SystemStatus {
            state: outcome.state,
            reason: outcome.reason.clone(),
            external_id: outcome.external_id.clone(),
            ..SystemStatus::default()
        },
    );
}

pub(super) fn attributes(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

pub(super) fn marker(tenant: &Tenant) -> Map<String, Value> {
    attributes(json!({
        "dezky_tenant_slug": tenant.slug,
        "dezky_tenant_id": tenant.id.to_string(),
        "dezky_managed_by": "dezky-provisioner",
    }))
}

pub(super) fn pk(outcome: &Outcome) -> Uuid {
    let id = outcome.external_id.as_deref().expect("external id");
    Uuid::parse_str(id).expect("uuid")
}

/// Reconciles and records, expecting success.
pub(super) async fn pass(r: &AuthentikReconciler, tenant: &mut Tenant) -> Outcome {
    let outcome = r
        .reconcile(tenant, Mode::Apply)
        .await
        .expect("reconcile succeeds");
    remember(tenant, &outcome);
    outcome
}

/// (requests, writes) the simulator received while `f` ran.
pub(super) async fn counted<T>(
    sim: &AuthentikSim,
    f: impl std::future::Future<Output = T>,
) -> (T, u64, u64) {
    let (requests, writes) = (sim.faults().requests(), sim.faults().writes());
    let value = f.await;
    (
        value,
        sim.faults().requests() - requests,
        sim.faults().writes() - writes,
    )
}

fn group(sim: &AuthentikSim, outcome: &Outcome) -> SimGroup {
    sim.group(pk(outcome)).expect("group exists")
}

#[tokio::test]
async fn creates_the_group_then_a_converged_pass_costs_one_get_and_no_write() {
    let sim = sim().await;
    let r = reconciler(&sim, sim.api_token());
    let mut acme = tenant("acme");

    let created = pass(&r, &mut acme).await;
    assert_eq!(
        (created.state, created.reason.as_str()),
        (SystemState::Ok, "Created")
    );
    assert_eq!(created.actions[0].action, ActionKind::Create);
    let g = group(&sim, &created);
    assert_eq!(g.name, "tenant-acme");
    assert_eq!(g.attributes, marker(&acme));

    let (converged, requests, writes) = counted(&sim, pass(&r, &mut acme)).await;
    assert_eq!(converged.reason, "InSync");
    assert!(converged.actions.is_empty());
    assert_eq!(converged.external_id, created.external_id);
    assert_eq!(
        (requests, writes),
        (1, 0),
        "one GET, no write per converged resync"
    );
}

#[tokio::test]
async fn adopts_an_unmarked_group_with_the_right_name_keeping_foreign_keys() {
    let sim = sim().await;
    let r = reconciler(&sim, sim.api_token());
    let mut acme = tenant("acme");
    let existing = sim
        .create_group("tenant-acme", attributes(json!({"color": "blue"})))
        .expect("group");

    let (adopted, _, writes) = counted(&sim, pass(&r, &mut acme)).await;
    assert_eq!(adopted.reason, "Adopted");
    assert_eq!(adopted.actions[0].action, ActionKind::Adopt);
    assert_eq!(pk(&adopted), existing.pk);
    assert_eq!(writes, 1);
    let mut want = marker(&acme);
    want.insert("color".into(), json!("blue"));
    assert_eq!(group(&sim, &adopted).attributes, want);
    assert_eq!(pass(&r, &mut acme).await.reason, "InSync");
}

#[tokio::test]
async fn a_group_marked_for_another_tenant_is_a_conflict_and_never_modified() {
    let sim = sim().await;
    let r = reconciler(&sim, sim.api_token());
    let acme = tenant("acme");
    let other = tenant("other");
    let mut foreign = marker(&other);
    foreign.insert("dezky_tenant_slug".into(), json!("acme"));
    let before = sim.create_group("tenant-acme", foreign).expect("group");

    for mode in [Mode::Apply, Mode::DryRun] {
        let (result, _, writes) = counted(&sim, r.reconcile(&acme, mode)).await;
        let error = result.expect_err("conflict");
        assert_eq!(error.reason, "Conflict");
        assert!(error.conflict);
        assert!(
            error.message.contains(&other.id.to_string()),
            "{}",
            error.message
        );
        assert_eq!(writes, 0);
    }
    let (cleaned, _, writes) = counted(&sim, r.cleanup(&acme, Mode::Apply)).await;
    assert_eq!(cleaned.expect("cleanup").state, SystemState::Ok);
    assert_eq!(writes, 0, "cleanup never deletes another tenant's group");
    assert_eq!(sim.group(before.pk), Some(before));
}

#[tokio::test]
async fn recreates_a_group_deleted_out_of_band() {
    let sim = sim().await;
    let r = reconciler(&sim, sim.api_token());
    let mut acme = tenant("acme");
    let first = pass(&r, &mut acme).await;
    sim.delete_group(pk(&first)).expect("delete");

    let (healed, requests, writes) = counted(&sim, pass(&r, &mut acme)).await;
    assert_eq!(healed.reason, "Created");
    assert_ne!(healed.external_id, first.external_id);
    // GET by id (404), list by name, list by marker, POST.
    assert_eq!((requests, writes), (4, 1));
    assert_eq!(group(&sim, &healed).attributes, marker(&acme));
    assert_eq!(pass(&r, &mut acme).await.reason, "InSync");
}

#[tokio::test]
async fn renames_a_renamed_group_back_with_a_patch_of_the_name_only() {
    let sim = sim().await;
    let r = reconciler(&sim, sim.api_token());
    let mut acme = tenant("acme");
    let first = pass(&r, &mut acme).await;
    sim.rename_group(pk(&first), "acme-renamed")
        .expect("rename");
    sim.recorder().clear();

    let (healed, requests, writes) = counted(&sim, pass(&r, &mut acme)).await;
    assert_eq!(healed.reason, "Updated");
    assert_eq!((requests, writes), (2, 1));
    let fields = &healed.actions[0].fields;
    assert_eq!(fields.keys().collect::<Vec<_>>(), vec!["name"]);
    assert_eq!(fields["name"].from, json!("acme-renamed"));
    let patch = sim
        .recorder()
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("a PATCH");
    assert_eq!(patch.body, Some(json!({"name": "tenant-acme"})));
    assert_eq!(group(&sim, &healed).name, "tenant-acme");
}

#[tokio::test]
async fn restores_changed_attributes_and_keeps_foreign_keys() {
    let sim = sim().await;
    let r = reconciler(&sim, sim.api_token());
    let mut acme = tenant("acme");
    let first = pass(&r, &mut acme).await;
    sim.set_attributes(
        pk(&first),
        attributes(json!({
            "dezky_tenant_slug": "tampered",
            "dezky_tenant_id": acme.id.to_string(),
            "quota": 5,
        })),
    )
    .expect("tamper");
    sim.recorder().clear();

    let healed = pass(&r, &mut acme).await;
    assert_eq!(healed.reason, "Updated");
    let fields = &healed.actions[0].fields;
    assert_eq!(
        fields.keys().collect::<Vec<_>>(),
        vec![
            "attributes.dezky_managed_by",
            "attributes.dezky_tenant_slug"
        ]
    );
    assert_eq!(fields["attributes.dezky_managed_by"].from, Value::Null);
    let mut want = marker(&acme);
    want.insert("quota".into(), json!(5));
    assert_eq!(group(&sim, &healed).attributes, want);
    let patch = sim
        .recorder()
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("a PATCH");
    assert_eq!(patch.body, Some(json!({ "attributes": want })));
    assert_eq!(pass(&r, &mut acme).await.reason, "InSync");
}

#[tokio::test]
async fn finds_a_renamed_group_by_its_marker_when_the_stored_id_is_lost() {
    let sim = sim().await;
    let r = reconciler(&sim, sim.api_token());
    let mut acme = tenant("acme");
    let first = pass(&r, &mut acme).await;
    sim.rename_group(pk(&first), "somewhere-else")
        .expect("rename");
    acme.status.systems.clear();

    let healed = pass(&r, &mut acme).await;
    assert_eq!(healed.reason, "Updated");
    assert_eq!(healed.external_id, first.external_id, "no second group");
    assert_eq!(sim.groups().len(), 1);
    assert_eq!(group(&sim, &healed).name, "tenant-acme");
}

#[tokio::test]
async fn upstream_503_is_an_upstream_error_then_the_next_pass_recovers() {
    let sim = sim().await;
    let r = reconciler(&sim, sim.api_token());
    let mut acme = tenant("acme");
    sim.faults().fail_next(1, StatusCode::SERVICE_UNAVAILABLE);
    let error = r.reconcile(&acme, Mode::Apply).await.expect_err("503");
    assert_eq!(error.reason, "UpstreamError");
    assert!(error.message.contains("503"), "{}", error.message);
    assert!(sim.groups().is_empty());

    sim.faults().set_outage(true);
    let error = r.reconcile(&acme, Mode::Apply).await.expect_err("outage");
    assert_eq!(error.reason, "UpstreamError");
    sim.faults().set_outage(false);

    assert_eq!(pass(&r, &mut acme).await.reason, "Created");
    assert_eq!(pass(&r, &mut acme).await.reason, "InSync");
}

#[tokio::test]
async fn a_bad_token_is_unauthorized_with_a_readable_message() {
    let sim = sim().await;
    let r = reconciler(&sim, "wrong-token");
    let error = r
        .reconcile(&tenant("acme"), Mode::Apply)
        .await
        .expect_err("403");
    assert_eq!(error.reason, "Unauthorized");
    assert!(
        error.message.contains("Token invalid/expired"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("AUTHENTIK_TOKEN"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn unreachable_authentik_is_an_upstream_error() {
    let sim = sim().await;
    let r = reconciler(&sim, sim.api_token());
    drop(sim);
    let error = r
        .reconcile(&tenant("acme"), Mode::Apply)
        .await
        .expect_err("connection refused");
    assert_eq!(error.reason, "UpstreamError");
}

#[tokio::test]
async fn works_among_hundreds_of_groups_and_float_pagination() {
    let sim = start(AuthentikSimOptions {
        float_pagination: true,
        ..AuthentikSimOptions::default()
    })
    .await;
    for i in 0..260 {
        let attrs = attributes(json!({"dezky_managed_by": "dezky-provisioner", "n": i}));
        sim.create_group(&format!("tenant-t{i:03}"), attrs)
            .expect("group");
    }
    let r = reconciler(&sim, sim.api_token());
    // Sorts after every other group: the last of three pages in a full listing.
    let mut zulu = tenant("zulu");
    sim.create_group("tenant-zulu", Map::new()).expect("group");
    assert_eq!(pass(&r, &mut zulu).await.reason, "Adopted");
    let mut fresh = tenant("fresh");
    let created = pass(&r, &mut fresh).await;
    assert_eq!(created.reason, "Created");
    // Lost id and renamed: found by marker among 262 groups.
    sim.rename_group(pk(&created), "zzz-renamed")
        .expect("rename");
    fresh.status.systems.clear();
    assert_eq!(pass(&r, &mut fresh).await.reason, "Updated");
    assert_eq!(sim.groups().len(), 262);
}

#[tokio::test]
async fn legacy_parent_shape_parses_and_the_parent_survives() {
    let sim = start(AuthentikSimOptions {
        legacy_parent_shape: true,
        ..AuthentikSimOptions::default()
    })
    .await;
    let r = reconciler(&sim, sim.api_token());
    let parent = sim.create_group("all-tenants", Map::new()).expect("parent");
    let existing = sim.create_group("tenant-acme", Map::new()).expect("group");
    sim.set_parents(existing.pk, vec![parent.pk])
        .expect("parent");
    let mut acme = tenant("acme");

    assert_eq!(pass(&r, &mut acme).await.reason, "Adopted");
    sim.rename_group(existing.pk, "renamed").expect("rename");
    assert_eq!(pass(&r, &mut acme).await.reason, "Updated");
    let (converged, requests, writes) = counted(&sim, pass(&r, &mut acme)).await;
    assert_eq!(
        (converged.reason.as_str(), requests, writes),
        ("InSync", 1, 0)
    );
    assert_eq!(
        sim.group(existing.pk).expect("group").parents,
        vec![parent.pk]
    );
}

#[tokio::test]
async fn cleanup_deletes_the_group_and_a_missing_group_counts_as_gone() {
    let sim = sim().await;
    let r = reconciler(&sim, sim.api_token());
    let mut acme = tenant("acme");
    let created = pass(&r, &mut acme).await;

    let deleted = r.cleanup(&acme, Mode::Apply).await.expect("cleanup");
    assert_eq!(
        (deleted.state, deleted.reason.as_str()),
        (SystemState::Ok, "Deleted")
    );
    assert_eq!(deleted.actions[0].action, ActionKind::Delete);
    assert!(sim.group(pk(&created)).is_none());

    let again = r.cleanup(&acme, Mode::Apply).await.expect("cleanup again");
    assert_eq!((again.state, again.actions.len()), (SystemState::Ok, 0));
}

#[tokio::test]
async fn cleanup_keeps_an_unadopted_group_with_our_name() {
    let sim = sim().await;
    let r = reconciler(&sim, sim.api_token());
    let stranger = sim.create_group("tenant-acme", Map::new()).expect("group");
    let (outcome, _, writes) = counted(&sim, r.cleanup(&tenant("acme"), Mode::Apply)).await;
    assert_eq!(outcome.expect("cleanup").state, SystemState::Ok);
    assert_eq!(writes, 0);
    assert!(sim.group(stranger.pk).is_some());
}

#[tokio::test]
async fn dry_run_reports_every_action_and_writes_nothing() {
    let sim = sim().await;
    let r = reconciler(&sim, sim.api_token());
    let mut acme = tenant("acme");

    let (planned, _, writes) = counted(&sim, r.reconcile(&acme, Mode::DryRun)).await;
    let planned = planned.expect("plan");
    assert_eq!(
        (planned.state, planned.reason.as_str()),
        (SystemState::Pending, "ChangesPending")
    );
    assert_eq!(planned.actions[0].action, ActionKind::Create);
    assert_eq!(writes, 0);
    assert!(sim.groups().is_empty());

    let created = pass(&r, &mut acme).await;
    sim.rename_group(pk(&created), "drifted").expect("rename");
    let (planned, _, writes) = counted(&sim, r.reconcile(&acme, Mode::DryRun)).await;
    let planned = planned.expect("plan");
    assert_eq!(planned.actions[0].action, ActionKind::Update);
    assert_eq!(planned.actions[0].fields["name"].to, json!("tenant-acme"));
    assert_eq!(writes, 0);
    assert_eq!(group(&sim, &created).name, "drifted");

    let (planned, _, writes) = counted(&sim, r.cleanup(&acme, Mode::DryRun)).await;
    assert_eq!(planned.expect("plan").actions[0].action, ActionKind::Delete);
    assert_eq!(writes, 0);
    assert!(sim.group(pk(&created)).is_some());
}

#[tokio::test]
async fn prefix_is_configurable() {
    let sim = sim().await;
    let http = dezky_core::http::client(None, Duration::from_secs(5)).expect("http");
    let client = AuthentikClient::new(http, &sim.url(), sim.api_token()).expect("client");
    let r = AuthentikReconciler::new(client, "ws-", Duration::from_secs(300));
    let mut acme = tenant("acme");
    let created = pass(&r, &mut acme).await;
    assert_eq!(group(&sim, &created).name, "ws-acme");
}

/// `tenant` as the first pass that claimed its finalizers reads it.
fn first_pass(mut tenant: Tenant) -> Tenant {
    tenant.pass_claims = 1;
    tenant
}

#[tokio::test]
async fn the_first_pass_creates_with_one_request() {
    let sim = sim().await;
    let r = reconciler(&sim, sim.api_token());
    let mut acme = first_pass(tenant("acme"));
    let (created, requests, writes) = counted(&sim, pass(&r, &mut acme)).await;
    assert_eq!(created.reason, "Created");
    assert_eq!((requests, writes), (1, 1), "the create alone");
    assert_eq!(group(&sim, &created).attributes, marker(&acme));
}

#[tokio::test]
async fn a_first_pass_whose_create_is_refused_adopts_the_group_with_the_name() {
    let sim = sim().await;
    let r = reconciler(&sim, sim.api_token());
    let existing = sim
        .create_group("tenant-acme", attributes(json!({"tenantSlug": "acme"})))
        .expect("group");
    let mut acme = first_pass(tenant("acme"));
    let adopted = pass(&r, &mut acme).await;
    assert_eq!(adopted.reason, "Adopted");
    assert_eq!(pk(&adopted), existing.pk);
    let named = sim.groups().into_iter().filter(|g| g.name == "tenant-acme");
    assert_eq!(named.count(), 1, "never a second group");
    assert_eq!(group(&sim, &adopted).attributes["tenantSlug"], "acme");
}

#[tokio::test]
async fn a_pass_after_a_lost_create_finds_the_renamed_group_and_never_duplicates() {
    let sim = sim().await;
    let r = reconciler(&sim, sim.api_token());
    let acme = first_pass(tenant("acme"));
    // The first pass creates, and its status write is lost (kill -9).
    let created = r.reconcile(&acme, Mode::Apply).await.expect("created");
    // An operator renames the group meanwhile: its name is free again.
    sim.rename_group(pk(&created), "renamed-by-hand")
        .expect("rename");
    // The next pass claimed again (`pass_claims` 2): it looks up by marker.
    let mut again = acme.clone();
    again.pass_claims = 2;
    let found = pass(&r, &mut again).await;
    assert_eq!(pk(&found), pk(&created), "the same group, renamed back");
    assert_eq!(sim.groups().len(), 1, "never a second group");
    assert_eq!(group(&sim, &found).name, "tenant-acme");
}
