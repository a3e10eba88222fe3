//! The oCIS reconciler against the oCIS and OIDC simulators over real HTTP,
//! with in-memory tenants (the runtime's status write is imitated by
//! [`Env::pass`] storing the external id).

use std::sync::Arc;
use std::time::Duration;

use dezky_core::model::{SystemStatus, Tenant};
use dezky_core::Timestamp;
use dezky_simulators::ocis::{OcisSim, OcisSimOptions};
use dezky_simulators::oidc::OidcSim;
use dezky_upstream::ocis::Invite;
use dezky_upstream::oidc_token::TokenSource;
use reqwest::StatusCode;

use super::*;

pub(super) const CLIENT_ID: &str = "ocis-provisioner";
const SECRET: &str = "s3cret";

/// Another client of `env`'s oCIS, with a token source of its own (it
/// fetches its first token on its first call).
pub(super) fn fresh_client(env: &Env) -> OcisClient {
    let http = dezky_core::http::client(None, Duration::from_secs(5)).expect("HTTP client builds");
    let tokens = TokenSource::new(
        http.clone(),
        env.oidc.token_url(),
        CLIENT_ID,
        SECRET,
        "openid profile email",
    );
    OcisClient::new(http, &env.ocis.url(), Arc::new(tokens))
}
pub(super) const SERVICE_USER: &str = "svc-user-1";
const GIB: u64 = 1024 * 1024 * 1024;

pub(super) struct Env {
    pub oidc: OidcSim,
    pub ocis: OcisSim,
    pub client: Arc<OcisClient>,
    pub reconciler: OcisReconciler,
}

pub(super) async fn env_with(settings: OcisSettings) -> Env {
    let oidc = OidcSim::start().await.expect("OIDC simulator starts");
    oidc.register_client(CLIENT_ID, SECRET, SERVICE_USER);
    let ocis = OcisSim::start(OcisSimOptions {
        jwks_url: oidc.jwks_url(),
        issuer: Some(oidc.issuer()),
        // The client must cope with the `null` body some oCIS versions send.
        null_empty_list: true,
    })
    .await
    .expect("oCIS simulator starts");
    let http = dezky_core::http::client(None, Duration::from_secs(5)).expect("HTTP client builds");
    let token_url = dezky_upstream::oidc_token::discover_token_endpoint(&http, &oidc.issuer())
        .await
        .expect("discovery works");
    let tokens = Arc::new(TokenSource::new(
        http.clone(),
        token_url,
        CLIENT_ID,
        SECRET,
        "openid profile email",
    ));
    let client = Arc::new(OcisClient::new(http, &ocis.url(), tokens));
    let reconciler = OcisReconciler::new(client.clone(), settings, Duration::from_secs(300));
    Env {
        oidc,
        ocis,
        client,
        reconciler,
    }
}

async fn env() -> Env {
    env_with(OcisSettings::default()).await
}

pub(super) fn tenant(slug: &str, name: &str, plan: &str) -> Tenant {
    Tenant::new(slug, name, plan, Timestamp::now())
}

impl Env {
    /// One Apply pass whose outcome is recorded as the runtime would.
    pub(super) async fn pass(&self, tenant: &mut Tenant) -> Outcome {
        let outcome = self
            .reconciler
            .reconcile(tenant, Mode::Apply)
            .await
            .expect("pass succeeds");
        tenant.status.systems.insert(
            System::Ocis,
            SystemStatus {
                state: outcome.state,
                reason: outcome.reason.clone(),
                external_id: outcome.external_id.clone(),
                ..SystemStatus::default()
            },
        );
        outcome
    }

    pub(super) fn space(&self, tenant: &Tenant) -> dezky_simulators::ocis::SimDrive {
        let id = tenant
            .system_status(System::Ocis)
            .and_then(|s| s.external_id.clone())
            .expect("an external id is recorded");
        self.ocis.drive(&id).expect("the space exists")
    }

    pub(super) fn group_role(&self, drive_id: &str, group: &str) -> Option<Vec<String>> {
        let gid = self.ocis.group_id(group)?;
        self.ocis
            .permissions(drive_id)
            .into_iter()
            .find(|p| p.id == format!("g:{gid}"))
            .map(|p| p.roles)
    }

    /// (requests, writes) the oCIS simulator received so far.
    pub(super) fn traffic(&self) -> (u64, u64) {
        (self.ocis.faults().requests(), self.ocis.faults().writes())
    }
}

fn field_names(outcome: &Outcome) -> Vec<String> {
    outcome
        .actions
        .iter()
        .flat_map(|a| a.fields.keys().cloned())
        .collect()
}

#[tokio::test]
async fn creates_one_marked_space_with_plan_quota_and_group_editor_grant() {
    let env = env().await;
    env.ocis.create_group("tenant-acme");
    let mut acme = tenant("acme", "Acme: R&D / Ops.", "team");
    let outcome = env.pass(&mut acme).await;
    assert_eq!(
        (outcome.state, outcome.reason.as_str()),
        (SystemState::Ok, "Created")
    );
    let space = env.space(&acme);
    assert_eq!(space.name, "Acme R&D Ops");
    assert_eq!(space.description, "dezky tenant acme");
    assert_eq!(space.drive_alias.as_deref(), Some("project/tenant-acme"));
    assert_eq!(space.quota_total, 100 * GIB);
    assert_eq!(
        env.group_role(&space.id, "tenant-acme"),
        Some(vec![roles::SPACE_EDITOR.to_string()])
    );
    let service_grant = env
        .ocis
        .permissions(&space.id)
        .into_iter()
        .find(|p| p.id == format!("u:{SERVICE_USER}"));
    assert_eq!(
        service_grant.map(|p| p.roles),
        Some(vec![roles::MANAGER.to_string()])
    );
}

#[tokio::test]
async fn a_space_the_pass_created_is_granted_without_reading_its_grants() {
    let env = env().await;
    env.ocis.create_group("tenant-acme");
    let mut acme = tenant("acme", "Acme", "team");
    assert_eq!(env.pass(&mut acme).await.reason, "Created");
    let route = "/graph/v1beta1/drives/{id}/root/permissions";
    assert_eq!(env.ocis.recorder().count("GET", route), 0);
    let space = env.space(&acme);
    assert_eq!(
        env.group_role(&space.id, "tenant-acme"),
        Some(vec![roles::SPACE_EDITOR.to_string()])
    );
    // A later pass of the existing space does read them.
    env.pass(&mut acme).await;
    assert_eq!(env.ocis.recorder().count("GET", route), 1);
}

#[tokio::test]
async fn a_crash_between_create_and_status_write_never_makes_a_second_space() {
    let env = env().await;
    env.ocis.create_group("tenant-acme");
    let acme = tenant("acme", "Acme", "free");
    // The first pass creates, but its status write is lost.
    let first = env
        .reconciler
        .reconcile(&acme, Mode::Apply)
        .await
        .expect("pass succeeds");
    assert_eq!(first.reason, "Created");
    let second = env
        .reconciler
        .reconcile(&acme, Mode::Apply)
        .await
        .expect("pass succeeds");
    assert_eq!(second.reason, "InSync");
    assert_eq!(second.external_id, first.external_id);
    assert_eq!(env.ocis.drives().len(), 1);
}

#[tokio::test]
async fn every_drifted_field_is_set_back_with_one_patch_of_only_those_fields() {
    let env = env().await;
    env.ocis.create_group("tenant-acme");
    let mut acme = tenant("acme", "Acme", "team");
    env.pass(&mut acme).await;
    let id = env.space(&acme).id;

    env.ocis.rename_drive(&id, "Hijacked");
    let before = env.traffic();
    let outcome = env.pass(&mut acme).await;
    assert_eq!(outcome.reason, "Updated");
    assert_eq!(field_names(&outcome), ["name"]);
    assert_eq!(env.traffic().1 - before.1, 1, "one PATCH");
    let patch = env
        .ocis
        .recorder()
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PATCH");
    assert_eq!(
        patch.and_then(|r| r.body),
        Some(serde_json::json!({"name": "Acme"}))
    );

    env.ocis.rename_drive(&id, "Other");
    env.ocis.set_drive_description(&id, "mine now");
    env.ocis.set_drive_quota(&id, 1);
    let before = env.traffic();
    let outcome = env.pass(&mut acme).await;
    assert_eq!(outcome.reason, "Updated");
    assert_eq!(field_names(&outcome), ["description", "name", "quota"]);
    assert_eq!(env.traffic().1 - before.1, 1, "still one PATCH");
    let space = env.space(&acme);
    assert_eq!(
        (
            space.name.as_str(),
            space.description.as_str(),
            space.quota_total
        ),
        ("Acme", "dezky tenant acme", 100 * GIB)
    );

    // A plan change is a quota change.
    acme.plan = "business".into();
    let outcome = env.pass(&mut acme).await;
    assert_eq!(field_names(&outcome), ["quota"]);
    assert_eq!(env.space(&acme).quota_total, 1024 * GIB);
}

#[tokio::test]
async fn a_disabled_space_is_restored_then_patched() {
    let env = env().await;
    env.ocis.create_group("tenant-acme");
    let mut acme = tenant("acme", "Acme", "free");
    env.pass(&mut acme).await;
    let id = env.space(&acme).id;
    env.ocis.disable_drive(&id);
    env.ocis.rename_drive(&id, "Gone");
    let outcome = env.pass(&mut acme).await;
    assert_eq!(outcome.reason, "Restored");
    let kinds: Vec<ActionKind> = outcome.actions.iter().map(|a| a.action).collect();
    assert_eq!(kinds, [ActionKind::Restore, ActionKind::Update]);
    let space = env.space(&acme);
    assert!(!space.trashed);
    assert_eq!(space.name, "Acme");
    assert_eq!(space.id, id);
}

#[tokio::test]
async fn a_missing_group_waits_and_is_granted_once_it_appears() {
    let env = env().await;
    let mut acme = tenant("acme", "Acme", "free");
    let outcome = env.pass(&mut acme).await;
    assert_eq!(
        (outcome.state, outcome.reason.as_str()),
        (SystemState::Pending, "WaitingForGroup")
    );
    assert!(outcome.message.contains("tenant-acme"));
    let id = env.space(&acme).id;

    env.ocis.create_group("tenant-acme");
    let outcome = env.pass(&mut acme).await;
    assert_eq!(
        (outcome.state, outcome.reason.as_str()),
        (SystemState::Ok, "Updated")
    );
    assert_eq!(
        env.group_role(&id, "tenant-acme"),
        Some(vec![roles::SPACE_EDITOR.to_string()])
    );
    assert_eq!(env.ocis.drives().len(), 1);
}

#[tokio::test]
async fn a_missing_group_is_created_when_configured() {
    let env = env_with(OcisSettings {
        create_groups: true,
        group_role_id: roles::SPACE_VIEWER.into(),
        ..OcisSettings::default()
    })
    .await;
    let mut acme = tenant("acme", "Acme", "free");
    let outcome = env.pass(&mut acme).await;
    assert_eq!(
        (outcome.state, outcome.reason.as_str()),
        (SystemState::Ok, "Created")
    );
    let id = env.space(&acme).id;
    assert_eq!(
        env.group_role(&id, "tenant-acme"),
        Some(vec![roles::SPACE_VIEWER.to_string()])
    );
}

#[tokio::test]
async fn a_new_tenants_group_is_created_while_its_create_check_waits_for_the_list() {
    let env = env_with(OcisSettings {
        create_groups: true,
        ..OcisSettings::default()
    })
    .await;
    let acme = tenant("acme", "Acme", "free");
    let held = env.reconciler.drive_lists.hold().await;
    let pass = env.reconciler.reconcile(&acme, Mode::Apply);
    tokio::pin!(pass);
    let group_first = async {
        while env.ocis.group_id("tenant-acme").is_none() {
            tokio::select! {
                _ = &mut pass => panic!("the pass cannot finish while no list may start"),
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), group_first)
        .await
        .expect("the group is created before any drive list");
    assert_eq!(env.ocis.recorder().count("GET", "/graph/v1.0/drives"), 0);
    drop(held);
    let outcome = pass.await.expect("pass succeeds");
    assert_eq!(outcome.reason, "Created");
    let created: Vec<_> = outcome.actions.iter().map(|a| a.object.as_str()).collect();
    assert!(created.contains(&"group tenant-acme"), "{created:?}");
    let drive = env.ocis.drives().pop().expect("the space");
    assert_eq!(
        env.group_role(&drive.id, "tenant-acme"),
        Some(vec![roles::SPACE_EDITOR.to_string()])
    );
}

#[tokio::test]
async fn a_changed_or_removed_group_grant_is_repaired_and_the_manager_grant_kept() {
    let env = env().await;
    let gid = env.ocis.create_group("tenant-acme");
    let mut acme = tenant("acme", "Acme", "free");
    env.pass(&mut acme).await;
    let id = env.space(&acme).id;
    let grant = format!("g:{gid}");

    env.ocis.set_permission_role(&id, &grant, roles::MANAGER);
    let before = env.traffic();
    let outcome = env.pass(&mut acme).await;
    assert_eq!(outcome.reason, "Updated");
    assert_eq!(env.traffic().1 - before.1, 1, "one role PATCH");
    assert_eq!(
        env.group_role(&id, "tenant-acme"),
        Some(vec![roles::SPACE_EDITOR.to_string()])
    );

    env.ocis.remove_permission(&id, &grant);
    let outcome = env.pass(&mut acme).await;
    assert_eq!(outcome.reason, "Updated");
    assert!(env.group_role(&id, "tenant-acme").is_some());
    let manager = env
        .ocis
        .permissions(&id)
        .into_iter()
        .find(|p| p.id == format!("u:{SERVICE_USER}"));
    assert_eq!(
        manager.map(|p| p.roles),
        Some(vec![roles::MANAGER.to_string()])
    );
}

#[tokio::test]
async fn a_converged_pass_costs_three_reads_no_write_and_no_token_request() {
    let env = env().await;
    env.ocis.create_group("tenant-acme");
    let mut acme = tenant("acme", "Acme", "free");
    env.pass(&mut acme).await;
    let (requests, writes) = env.traffic();
    let tokens = env.oidc.token_requests();
    let outcome = env.pass(&mut acme).await;
    assert_eq!(outcome.reason, "InSync");
    assert!(outcome.actions.is_empty());
    // The space, its grants, and the group (its grant is matched by id).
    assert_eq!(env.traffic(), (requests + 3, writes));
    assert_eq!(env.oidc.token_requests(), tokens);
}

#[tokio::test]
async fn many_tenants_share_one_token_which_is_renewed_on_expiry_and_on_401() {
    let env = env().await;
    let mut tenants: Vec<Tenant> = (0..12)
        .map(|i| tenant(&format!("t{i}"), &format!("Tenant {i}"), "free"))
        .collect();
    for t in &tenants {
        env.ocis.create_group(&format!("tenant-{}", t.slug));
    }
    let passes = tenants
        .iter()
        .map(|t| env.reconciler.reconcile(t, Mode::Apply));
    for outcome in futures::future::join_all(passes).await {
        assert_eq!(outcome.map(|o| o.reason).ok().as_deref(), Some("Created"));
    }
    assert_eq!(env.oidc.token_requests(), 1);
    assert_eq!(env.ocis.drives().len(), 12);

    // A 401 (e.g. a revoked token) renews the token once and retries.
    env.ocis.faults().fail_next(1, StatusCode::UNAUTHORIZED);
    env.pass(&mut tenants[0]).await;
    assert_eq!(env.oidc.token_requests(), 2);

    // A short-lived token is renewed shortly before it expires: the source
    // keeps it for half of a 4 s lifetime, so 2 s after it was fetched it is
    // renewed (a deadline the cache guarantees, not a race).
    env.oidc.set_token_lifetime(Duration::from_secs(4));
    env.ocis.faults().fail_next(1, StatusCode::UNAUTHORIZED);
    let fetched = tokio::time::Instant::now();
    env.pass(&mut tenants[0]).await;
    assert_eq!(env.oidc.token_requests(), 3);
    tokio::time::sleep_until(fetched + Duration::from_millis(2500)).await;
    let outcome = env.pass(&mut tenants[1]).await;
    assert_eq!(outcome.reason, "InSync");
    assert_eq!(env.oidc.token_requests(), 4);
}

#[tokio::test]
async fn outages_fail_the_pass_with_a_reason_and_the_next_pass_recovers() {
    let env = env().await;
    env.ocis.create_group("tenant-acme");
    let mut acme = tenant("acme", "Acme", "free");
    env.oidc.faults().set_outage(true);
    let error = env
        .reconciler
        .reconcile(&acme, Mode::Apply)
        .await
        .expect_err("the token endpoint is down");
    assert_eq!(error.reason, "UpstreamError");
    env.oidc.faults().clear();

    env.ocis.faults().set_outage(true);
    let error = env
        .reconciler
        .reconcile(&acme, Mode::Apply)
        .await
        .expect_err("oCIS is down");
    assert_eq!(error.reason, "UpstreamError");
    env.ocis.faults().clear();

    assert_eq!(env.pass(&mut acme).await.reason, "Created");
    assert_eq!(env.ocis.drives().len(), 1);
}

#[tokio::test]
async fn wrong_client_credentials_are_unauthorized() {
    let env = env().await;
    env.oidc.register_client(CLIENT_ID, "rotated", SERVICE_USER);
    let error = env
        .reconciler
        .reconcile(&tenant("acme", "Acme", "free"), Mode::Apply)
        .await
        .expect_err("credentials are refused");
    assert_eq!(error.reason, "Unauthorized");
}

#[tokio::test]
async fn an_unmarked_space_with_our_alias_is_adopted_and_a_foreign_one_is_a_conflict() {
    let env = env().await;
    env.ocis.create_group("tenant-acme");
    let mut acme = tenant("acme", "Acme", "free");
    let foreign = NewDrive::project("Acme".into(), String::new(), 5 * GIB, space_alias("acme"));
    let created = env
        .client
        .create_drive(&foreign)
        .await
        .expect("space created");
    let outcome = env.pass(&mut acme).await;
    assert_eq!(outcome.reason, "Adopted");
    assert_eq!(outcome.external_id.as_deref(), Some(created.id.as_str()));
    assert_eq!(env.space(&acme).description, "dezky tenant acme");

    let other = tenant("beta", "Beta", "free");
    let squatter = NewDrive::project("Beta".into(), marker("gamma"), 0, space_alias("beta"));
    env.client
        .create_drive(&squatter)
        .await
        .expect("space created");
    let (_, writes) = env.traffic();
    let error = env
        .reconciler
        .reconcile(&other, Mode::Apply)
        .await
        .expect_err("the space is someone else's");
    assert!(error.conflict);
    assert_eq!(env.traffic().1, writes, "a foreign space is never touched");
}

#[tokio::test]
async fn deletion_disables_the_space_and_purges_only_when_configured() {
    for purge in [false, true] {
        let env = env_with(OcisSettings {
            purge_on_delete: purge,
            ..OcisSettings::default()
        })
        .await;
        env.ocis.create_group("tenant-acme");
        let mut acme = tenant("acme", "Acme", "free");
        env.pass(&mut acme).await;
        let id = env.space(&acme).id;
        let outcome = env
            .reconciler
            .cleanup(&acme, Mode::Apply)
            .await
            .expect("cleanup succeeds");
        assert_eq!(
            (outcome.state, outcome.reason.as_str()),
            (SystemState::Ok, "Deleted")
        );
        match env.ocis.drive(&id) {
            Some(space) => assert!(!purge && space.trashed),
            None => assert!(purge),
        }
        // Cleanup is idempotent.
        let again = env.reconciler.cleanup(&acme, Mode::Apply).await;
        assert_eq!(again.map(|o| o.actions.len()).ok(), Some(0));
    }
}

#[tokio::test]
async fn dry_runs_report_the_plan_and_write_nothing() {
    let env = env().await;
    env.ocis.create_group("tenant-acme");
    let mut acme = tenant("acme", "Acme", "free");
    let outcome = env
        .reconciler
        .reconcile(&acme, Mode::DryRun)
        .await
        .expect("dry run succeeds");
    assert_eq!(
        (outcome.state, outcome.reason.as_str()),
        (SystemState::Pending, "ChangesPending")
    );
    assert_eq!(outcome.actions[0].action, ActionKind::Create);
    assert_eq!((env.traffic().1, env.ocis.drives().len()), (0, 0));

    env.pass(&mut acme).await;
    let id = env.space(&acme).id;
    env.ocis.rename_drive(&id, "Drifted");
    let (_, writes) = env.traffic();
    let cleanup = env
        .reconciler
        .cleanup(&acme, Mode::DryRun)
        .await
        .expect("dry cleanup succeeds");
    assert_eq!(cleanup.state, SystemState::Pending);
    assert_eq!(cleanup.actions[0].action, ActionKind::Delete);
    env.ocis.disable_drive(&id);
    let outcome = env
        .reconciler
        .reconcile(&acme, Mode::DryRun)
        .await
        .expect("dry run succeeds");
    let kinds: Vec<ActionKind> = outcome.actions.iter().map(|a| a.action).collect();
    assert_eq!(kinds, [ActionKind::Restore, ActionKind::Update]);
    assert_eq!(env.traffic().1, writes);
    assert_eq!(env.space(&acme).name, "Drifted");
}

#[test]
fn space_names_drop_forbidden_characters_and_fit_255_chars() {
    assert_eq!(space_name("  Acme Inc. ", "acme"), "Acme Inc");
    assert_eq!(
        space_name("a/b\\c:d?e*f\"g>h<i|j", "x"),
        "a b c d e f g h i j"
    );
    assert_eq!(space_name("...", "acme"), "acme");
    assert_eq!(space_name(&"é".repeat(300), "x").chars().count(), 255);
}

#[tokio::test]
async fn a_second_invite_of_a_group_is_reported_as_already_member() {
    let env = env().await;
    let gid = env.ocis.create_group("tenant-acme");
    let new = NewDrive::project("Acme".into(), marker("acme"), 0, space_alias("acme"));
    let drive = env.client.create_drive(&new).await.expect("space created");
    let first = env
        .client
        .invite_group(&drive.id, &gid, roles::SPACE_EDITOR)
        .await
        .expect("invite succeeds");
    assert!(matches!(first, Invite::Granted(ref grants) if grants[0].id == format!("g:{gid}")));
    let second = env
        .client
        .invite_group(&drive.id, &gid, roles::SPACE_VIEWER)
        .await
        .expect("a re-invite is not an error");
    assert_eq!(second, Invite::AlreadyMember);
}

#[tokio::test]
async fn concurrent_creates_share_the_list_that_confirms_their_spaces_are_missing() {
    let env = env_with(OcisSettings {
        create_groups: true,
        ..OcisSettings::default()
    })
    .await;
    let tenants: Vec<Tenant> = (0..16)
        .map(|i| tenant(&format!("c{i}"), &format!("C{i}"), "team"))
        .collect();
    let passes = tenants
        .iter()
        .map(|t| env.reconciler.reconcile(t, Mode::Apply));
    for outcome in futures::future::join_all(passes).await {
        assert_eq!(outcome.expect("created").reason, "Created");
    }
    let lists = env.ocis.recorder().count("GET", "/graph/v1.0/drives");
    assert!(
        (1..16).contains(&lists),
        "16 concurrent creates sent {lists} drive lists"
    );
    assert_eq!(env.ocis.drives().len(), 16, "one space each, no twin");
}
