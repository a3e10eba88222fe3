//! The Stalwart reconciler against the simulator over real HTTP: creates,
//! adoption, conflicts, drift, removal, DKIM cleanup, errors, dry runs and
//! the JMAP contract of every request.

use std::time::Duration;

use dezky_core::model::{SystemState, SystemStatus};
use dezky_core::Timestamp;
use dezky_simulators::stalwart::{LinkKind, StalwartSim, StalwartSimOptions, DEFAULT_API_KEY};
use dezky_upstream::stalwart::StalwartAuth;
use serde_json::json;

use super::*;

pub(super) fn tenant(slug: &str, domains: &[&str]) -> Tenant {
    Tenant {
        domains: domains.iter().map(|d| d.to_string()).collect(),
        ..Tenant::new(slug, slug, "team", Timestamp::now())
    }
}

pub(super) fn reconciler(sim: &StalwartSim, auth: StalwartAuth) -> StalwartReconciler {
    let http = dezky_core::http::client(None, Duration::from_secs(5)).expect("http client");
    StalwartReconciler::new(
        StalwartClient::new(http, &sim.url(), auth),
        StalwartSettings::default(),
        Duration::from_secs(300),
    )
}

pub(super) async fn setup() -> (StalwartSim, StalwartReconciler) {
    let sim = StalwartSim::start(StalwartSimOptions::default())
        .await
        .expect("simulator starts");
    let reconciler = reconciler(&sim, StalwartAuth::Bearer(DEFAULT_API_KEY.into()));
    (sim, reconciler)
}

/// One applied pass; records `externalId` in the tenant like the runtime.
pub(super) async fn pass(
    r: &StalwartReconciler,
    tenant: &mut Tenant,
) -> Result<Outcome, SystemError> {
    let result = r.reconcile(tenant, Mode::Apply).await;
    if let Ok(outcome) = &result {
        tenant.status.systems.insert(
            System::Stalwart,
            SystemStatus {
                state: outcome.state,
                reason: outcome.reason.clone(),
                external_id: outcome.external_id.clone(),
                ..SystemStatus::default()
            },
        );
    }
    result
}

/// Requests and `/set` method calls the simulator received while `f` ran.
pub(super) async fn cost<T>(
    sim: &StalwartSim,
    f: impl std::future::Future<Output = T>,
) -> (T, u64, usize) {
    sim.recorder().clear();
    let before = sim.faults().requests();
    let result = f.await;
    let sets = sim
        .recorder()
        .requests()
        .iter()
        .filter_map(|r| r.body.as_ref()?.get("methodCalls")?.as_array().cloned())
        .flatten()
        .filter(|call| call[0].as_str().is_some_and(|n| n.ends_with("/set")))
        .count();
    (result, sim.faults().requests() - before, sets)
}

fn kinds(actions: &[Action]) -> Vec<ActionKind> {
    actions.iter().map(|a| a.action).collect()
}

#[tokio::test]
async fn creates_each_domain_marked_with_explicit_manual_management() {
    let (sim, r) = setup().await;
    let mut acme = tenant("acme", &["acme.test", "mail.acme.test"]);
    let outcome = pass(&r, &mut acme).await.unwrap();
    assert_eq!(
        (outcome.state, outcome.reason.as_str()),
        (SystemState::Ok, "Created")
    );
    assert_eq!(kinds(&outcome.actions), vec![ActionKind::Create; 2]);
    let a = sim.domain_named("acme.test").unwrap();
    let b = sim.domain_named("mail.acme.test").unwrap();
    assert_eq!(outcome.external_id, Some(format!("{},{}", a.id, b.id)));
    for d in [&a, &b] {
        assert_eq!(d.description.as_deref(), Some("dezky tenant acme"));
        assert!(d.is_enabled);
        for m in [
            &d.certificate_management,
            &d.dns_management,
            &d.dkim_management,
        ] {
            assert_eq!(m, &json!({"@type": "Manual"}));
        }
    }
    assert!(sim.dkim_signatures().is_empty(), "manual DKIM: no keys");
}

#[tokio::test]
async fn a_converged_tenant_costs_one_request_and_no_write() {
    let (sim, r) = setup().await;
    let mut acme = tenant("acme", &["a.test", "b.test", "c.test"]);
    pass(&r, &mut acme).await.unwrap();
    let (outcome, requests, sets) = cost(&sim, pass(&r, &mut acme)).await;
    let outcome = outcome.unwrap();
    assert_eq!((outcome.reason.as_str(), requests, sets), ("InSync", 1, 0));
    assert!(outcome.actions.is_empty());
}

#[tokio::test]
async fn lookups_beyond_sixteen_calls_are_split_across_requests() {
    let (sim, r) = setup().await;
    // Marker lookup (2 calls) + known ids (1) + 2 per domain.
    for (count, expected_requests) in [(6, 1), (10, 2)] {
        let names: Vec<String> = (0..count).map(|i| format!("d{i}.test")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut big = tenant(&format!("big{count}"), &refs);
        pass(&r, &mut big).await.unwrap();
        let (outcome, requests, sets) = cost(&sim, pass(&r, &mut big)).await;
        assert_eq!(
            (outcome.unwrap().reason.as_str(), requests, sets),
            ("InSync", expected_requests, 0),
            "{count} domains"
        );
        big.domains.clear();
        pass(&r, &mut big).await.unwrap();
    }
    assert!(sim.domains().is_empty());
}

#[tokio::test]
async fn an_unmarked_domain_is_adopted_not_recreated() {
    let (sim, r) = setup().await;
    let existing = sim.create_domain("acme.test", None).unwrap();
    let mut acme = tenant("acme", &["acme.test"]);
    let outcome = pass(&r, &mut acme).await.unwrap();
    assert_eq!(outcome.reason, "Adopted");
    assert_eq!(
        outcome.actions,
        vec![Action::new(ActionKind::Adopt, "domain acme.test").field(
            "description",
            serde_json::Value::Null,
            "dezky tenant acme"
        )]
    );
    let adopted = sim.domain(&existing.id).unwrap();
    assert_eq!(adopted.description.as_deref(), Some("dezky tenant acme"));
    assert_eq!(
        adopted.dkim_management, existing.dkim_management,
        "not ours to change"
    );
    assert_eq!(outcome.external_id, Some(existing.id));
    assert_eq!(sim.domains().len(), 1);
}

#[tokio::test]
async fn a_domain_marked_for_another_tenant_is_a_conflict_and_left_alone() {
    let (sim, r) = setup().await;
    let theirs = sim
        .create_domain("shared.test", Some("dezky tenant other"))
        .unwrap();
    let theirs = sim.set_enabled(&theirs.id, false).unwrap();
    let mut acme = tenant("acme", &["shared.test", "acme.test"]);
    let error = pass(&r, &mut acme).await.unwrap_err();
    assert!(error.conflict);
    assert_eq!(error.reason, "Conflict");
    assert!(
        error.message.contains("dezky tenant other"),
        "{}",
        error.message
    );
    assert_eq!(sim.domain(&theirs.id), Some(theirs));
    assert_eq!(
        kinds(&error.actions),
        vec![ActionKind::Create],
        "others still converge"
    );
    assert!(sim.domain_named("acme.test").is_some());
}

#[tokio::test]
async fn every_drift_kind_is_healed_with_one_write_request() {
    let (sim, r) = setup().await;
    let mut acme = tenant("acme", &["gone.test", "off.test", "renamed.test"]);
    pass(&r, &mut acme).await.unwrap();
    let gone = sim.domain_named("gone.test").unwrap();
    let off = sim.domain_named("off.test").unwrap();
    let renamed = sim.domain_named("renamed.test").unwrap();
    sim.destroy_domain(&gone.id).unwrap();
    sim.set_enabled(&off.id, false).unwrap();
    sim.set_description(&renamed.id, Some("hand edited"))
        .unwrap();

    let (outcome, requests, sets) = cost(&sim, pass(&r, &mut acme)).await;
    let outcome = outcome.unwrap();
    assert_eq!((requests, sets), (2, 1), "one lookup, one x:Domain/set");
    assert_eq!(outcome.reason, "Created");
    let mut done = kinds(&outcome.actions);
    done.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(
        done,
        vec![ActionKind::Create, ActionKind::Restore, ActionKind::Update]
    );
    let off_fix = outcome
        .actions
        .iter()
        .find(|a| a.object == "domain off.test")
        .unwrap();
    assert_eq!(
        off_fix.fields.keys().collect::<Vec<_>>(),
        vec!["isEnabled"],
        "minimal patch"
    );
    assert!(sim.domain(&off.id).unwrap().is_enabled);
    assert_eq!(
        sim.domain(&renamed.id).unwrap().description.as_deref(),
        Some("dezky tenant acme")
    );
    let recreated = sim.domain_named("gone.test").unwrap();
    assert_ne!(recreated.id, gone.id);
    assert!(outcome.external_id.unwrap().contains(&recreated.id));

    let (again, requests, sets) = cost(&sim, pass(&r, &mut acme)).await;
    assert_eq!(
        (again.unwrap().reason.as_str(), requests, sets),
        ("InSync", 1, 0)
    );
}

#[tokio::test]
async fn domains_removed_from_the_spec_are_destroyed_and_others_kept() {
    let (sim, r) = setup().await;
    let foreign = sim
        .create_domain("foreign.test", Some("someone's"))
        .unwrap();
    let mut acme = tenant("acme", &["keep.test", "drop.test"]);
    pass(&r, &mut acme).await.unwrap();
    acme.domains = vec!["keep.test".into()];
    let outcome = pass(&r, &mut acme).await.unwrap();
    assert_eq!(outcome.reason, "Deleted");
    assert_eq!(
        outcome.actions,
        vec![Action::new(ActionKind::Delete, "domain drop.test")]
    );
    assert!(sim.domain_named("drop.test").is_none());
    assert!(sim.domain_named("keep.test").is_some());
    assert!(sim.domain(&foreign.id).is_some());
}

#[tokio::test]
async fn a_domain_still_used_by_accounts_is_not_destroyed() {
    let (sim, r) = setup().await;
    let mut acme = tenant("acme", &["used.test"]);
    pass(&r, &mut acme).await.unwrap();
    let used = sim.domain_named("used.test").unwrap();
    sim.add_dkim_signature(&used.id).unwrap();
    let account = sim.link(LinkKind::Account, &used.id).unwrap();
    acme.domains = vec!["new.test".into()];

    let error = pass(&r, &mut acme).await.unwrap_err();
    assert_eq!(error.reason, "DomainInUse");
    assert!(
        error.message.contains(&format!("Account {account}")),
        "{}",
        error.message
    );
    assert!(
        !error.message.contains("DkimSignature"),
        "{}",
        error.message
    );
    assert_eq!(kinds(&error.actions), vec![ActionKind::Create]);
    assert!(sim.domain(&used.id).is_some());
    assert_eq!(sim.dkim_signatures().len(), 1, "nothing destroyed");

    sim.unlink(&account);
    let outcome = pass(&r, &mut acme).await.unwrap();
    assert_eq!(kinds(&outcome.actions), vec![ActionKind::Delete]);
    assert!(sim.domain(&used.id).is_none());
    assert!(sim.dkim_signatures().is_empty());
}

#[tokio::test]
async fn dkim_keys_go_with_their_domain_in_the_same_request() {
    let (sim, r) = setup().await;
    sim.create_domain("auto.test", None).unwrap();
    assert_eq!(sim.dkim_signatures().len(), 2);
    let mut acme = tenant("acme", &["auto.test"]);
    assert_eq!(pass(&r, &mut acme).await.unwrap().reason, "Adopted");
    acme.domains.clear();
    let (outcome, requests, _) = cost(&sim, pass(&r, &mut acme)).await;
    let outcome = outcome.unwrap();
    assert_eq!(kinds(&outcome.actions), vec![ActionKind::Delete]);
    assert_eq!(
        requests, 3,
        "lookup, destroy refused, keys + domain destroyed"
    );
    assert!(sim.domains().is_empty());
    assert!(sim.dkim_signatures().is_empty());
    assert_eq!(outcome.external_id, None);
}

#[tokio::test]
async fn idn_domains_are_normalised_like_the_server_with_basic_auth() {
    let sim = StalwartSim::start(StalwartSimOptions {
        api_key: None,
        basic: Some(("admin".into(), "secret".into())),
    })
    .await
    .unwrap();
    let r = reconciler(
        &sim,
        StalwartAuth::Basic {
            username: "admin".into(),
            password: "secret".into(),
        },
    );
    let mut books = tenant("books", &[" Bücher.DE "]);
    assert_eq!(pass(&r, &mut books).await.unwrap().reason, "Created");
    assert!(sim.domain_named("xn--bcher-kva.de").is_some());
    let (outcome, requests, sets) = cost(&sim, pass(&r, &mut books)).await;
    assert_eq!(
        (outcome.unwrap().reason.as_str(), requests, sets),
        ("InSync", 1, 0)
    );
}

#[tokio::test]
async fn an_outage_is_an_upstream_error_and_the_next_pass_recovers() {
    let (sim, r) = setup().await;
    let mut acme = tenant("acme", &["acme.test"]);
    sim.faults().set_outage(true);
    let error = pass(&r, &mut acme).await.unwrap_err();
    assert_eq!(error.reason, "UpstreamError");
    assert!(error.message.contains("503"), "{}", error.message);
    sim.faults().clear();
    assert_eq!(pass(&r, &mut acme).await.unwrap().reason, "Created");
}

#[tokio::test]
async fn bad_credentials_and_missing_permissions_are_typed() {
    let (sim, good) = setup().await;
    let bad = reconciler(&sim, StalwartAuth::Bearer("API_wrong".into()));
    let acme = tenant("acme", &["acme.test"]);
    let error = bad.reconcile(&acme, Mode::Apply).await.unwrap_err();
    assert_eq!(error.reason, "Unauthorized");
    sim.revoke_permissions(true);
    assert_eq!(
        good.reconcile(&acme, Mode::Apply).await.unwrap_err().reason,
        "Forbidden"
    );
    sim.revoke_permissions(false);
    sim.deny_method("x:Domain/set", true);
    let error = good.reconcile(&acme, Mode::Apply).await.unwrap_err();
    assert_eq!(error.reason, "Forbidden");
    assert!(error.message.contains("x:Domain/set"), "{}", error.message);
    assert!(sim.domains().is_empty());
}

#[tokio::test]
async fn tenant_deletion_destroys_every_marked_domain_and_nothing_else() {
    let (sim, r) = setup().await;
    let mut acme = tenant("acme", &["a.test", "b.test"]);
    pass(&r, &mut acme).await.unwrap();
    let unrelated = sim
        .create_domain("c.test", Some("dezky tenant other"))
        .unwrap();
    acme.domains.push("c.test".into());
    let outcome = r.cleanup(&acme, Mode::Apply).await.unwrap();
    assert_eq!(
        (outcome.state, outcome.reason.as_str()),
        (SystemState::Ok, "Deleted")
    );
    assert_eq!(kinds(&outcome.actions), vec![ActionKind::Delete; 2]);
    assert_eq!(sim.domains(), vec![unrelated]);
    let again = r.cleanup(&acme, Mode::Apply).await.unwrap();
    assert!(again.actions.is_empty());
    assert_eq!(again.message, "no domain of the tenant is left");
}

#[tokio::test]
async fn dry_run_plans_without_writing() {
    let (sim, r) = setup().await;
    let existing = sim
        .create_domain("old.test", Some("dezky tenant acme"))
        .unwrap();
    let acme = tenant("acme", &["new.test"]);
    let (outcome, requests, sets) = cost(&sim, r.reconcile(&acme, Mode::DryRun)).await;
    let outcome = outcome.unwrap();
    assert_eq!((requests, sets), (1, 0));
    assert_eq!(
        kinds(&outcome.actions),
        vec![ActionKind::Create, ActionKind::Delete]
    );
    assert_eq!(sim.domains(), vec![existing]);
    let (cleanup, _, sets) = cost(&sim, r.cleanup(&acme, Mode::DryRun)).await;
    assert_eq!(
        (kinds(&cleanup.unwrap().actions), sets),
        (vec![ActionKind::Delete], 0)
    );
}

#[tokio::test]
async fn a_desired_domain_used_as_an_alias_elsewhere_is_a_conflict() {
    let (sim, r) = setup().await;
    let owner = sim
        .create_domain_with(json!({"name": "main.test", "aliases": {"alias.test": true}}))
        .unwrap();
    let mut acme = tenant("acme", &["alias.test"]);
    let error = pass(&r, &mut acme).await.unwrap_err();
    assert!(error.conflict);
    assert!(
        error.message.contains("alias of domain main.test"),
        "{}",
        error.message
    );
    assert_eq!(sim.domains(), vec![owner]);
}

/// Checks one recorded request against `shared/upstream/stalwart.md`.
fn assert_follows_contract(request: &dezky_simulators::recording::RecordedRequest) {
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/jmap")
    );
    let body = request.body.as_ref().expect("JSON body");
    assert_eq!(
        body["using"],
        json!(["urn:ietf:params:jmap:core", "urn:stalwart:jmap"])
    );
    let calls = body["methodCalls"].as_array().expect("method calls");
    assert!(
        !calls.is_empty() && calls.len() <= 16,
        "{} calls",
        calls.len()
    );
    let mut names = BTreeMap::new();
    for call in calls {
        let (name, args, id) = (
            call[0].as_str().unwrap(),
            &call[1],
            call[2].as_str().unwrap(),
        );
        assert!(
            [
                "x:Domain/get",
                "x:Domain/query",
                "x:Domain/set",
                "x:DkimSignature/set"
            ]
            .contains(&name),
            "{name}"
        );
        for (key, value) in args.as_object().unwrap() {
            if key.starts_with('#') {
                let target = value["resultOf"].as_str().unwrap();
                assert_eq!(names.get(target), value["name"].as_str().as_ref(), "{call}");
                assert!(!value["name"].as_str().unwrap().ends_with("/set"), "{call}");
            }
        }
        if name == "x:Domain/get" {
            let properties = args["properties"].as_array().expect("explicit properties");
            assert!(!properties.contains(&json!("dnsZoneFile")));
        }
        if name == "x:Domain/query" {
            for key in args["filter"].as_object().unwrap().keys() {
                assert!(["name", "text"].contains(&key.as_str()), "{key}");
            }
        }
        if name == "x:Domain/set" {
            for new in args["create"]
                .as_object()
                .into_iter()
                .flat_map(|c| c.values())
            {
                for key in [
                    "name",
                    "isEnabled",
                    "description",
                    "certificateManagement",
                    "dnsManagement",
                    "dkimManagement",
                ] {
                    assert!(new.get(key).is_some(), "create without {key}: {new}");
                }
            }
            for patch in args["update"]
                .as_object()
                .into_iter()
                .flat_map(|u| u.values())
            {
                for key in patch.as_object().unwrap().keys() {
                    assert!(
                        ["isEnabled", "description"].contains(&key.as_str()),
                        "{key}"
                    );
                }
            }
        }
        names.insert(id, name);
    }
}

#[tokio::test]
async fn every_request_follows_the_stalwart_contract() {
    let (sim, r) = setup().await;
    sim.create_domain("adopt.test", None).unwrap();
    let mut acme = tenant("acme", &["adopt.test", "new.test", "off.test"]);
    pass(&r, &mut acme).await.unwrap();
    let off = sim.domain_named("off.test").unwrap();
    sim.set_enabled(&off.id, false).unwrap();
    sim.set_description(&off.id, Some("edited")).unwrap();
    pass(&r, &mut acme).await.unwrap();
    acme.domains = vec!["new.test".into()];
    pass(&r, &mut acme).await.unwrap();
    r.cleanup(&acme, Mode::Apply).await.unwrap();
    assert!(sim.domains().is_empty());
    let requests = sim.recorder().requests();
    assert!(requests.len() >= 7);
    requests.iter().for_each(assert_follows_contract);
}

/// `tenant` as the first pass that claimed its finalizers reads it.
fn first_pass(mut tenant: Tenant) -> Tenant {
    tenant.pass_claims = 1;
    tenant
}

#[tokio::test]
async fn the_first_pass_creates_with_one_request() {
    let (sim, r) = setup().await;
    let mut acme = first_pass(tenant("acme", &["acme.test", "mail.acme.test"]));
    let (outcome, requests, sets) = cost(&sim, pass(&r, &mut acme)).await;
    assert_eq!(outcome.unwrap().reason, "Created");
    assert_eq!((requests, sets), (1, 1), "the creates alone");
    assert_eq!(sim.domains().len(), 2);
}

#[tokio::test]
async fn a_first_pass_adopts_a_refused_domain_and_respects_another_tenants() {
    let (sim, r) = setup().await;
    let unmarked = sim.create_domain("acme.test", None).unwrap();
    let theirs = sim
        .create_domain("shared.test", Some("dezky tenant other"))
        .unwrap();
    let mut acme = first_pass(tenant("acme", &["acme.test", "shared.test", "new.test"]));
    let error = pass(&r, &mut acme).await.unwrap_err();
    assert!(error.conflict, "shared.test is another tenant's");
    assert_eq!(sim.domain(&theirs.id), Some(theirs));
    let adopted = sim.domain(&unmarked.id).unwrap();
    assert_eq!(adopted.description.as_deref(), Some("dezky tenant acme"));
    assert!(sim.domain_named("new.test").is_some());
    assert_eq!(sim.domains().len(), 3, "never a second domain");
}
