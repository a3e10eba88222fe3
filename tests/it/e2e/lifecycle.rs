//! A tenant's life through `provisioner serve`: create, change, delete, and
//! what each step leaves in the (simulated) upstreams.

use dezky_simulators::ocis::SimDrive;
use dezky_simulators::suite::Simulators;
use dezky_upstream::ocis::roles::SPACE_EDITOR;
use serde_json::{json, Value};

use super::harness::{has_event, plan_quota, Stack, CONVERGE_LIMIT, SYSTEMS};
use crate::support::wait::until;

/// The tenant's project space (by alias).
pub fn space(sims: &Simulators, slug: &str) -> Option<SimDrive> {
    let alias = format!("project/tenant-{slug}");
    sims.ocis
        .drives()
        .into_iter()
        .find(|d| d.drive_alias.as_deref() == Some(alias.as_str()))
}

/// Asserts the domain exists, enabled and marked for `slug`.
#[track_caller]
fn assert_domain(sims: &Simulators, name: &str, slug: &str) {
    let domain = sims
        .stalwart
        .domain_named(name)
        .unwrap_or_else(|| panic!("domain {name} exists"));
    assert!(domain.is_enabled, "{name} enabled");
    assert_eq!(
        domain.description.as_deref(),
        Some(format!("dezky tenant {slug}").as_str())
    );
}

#[tokio::test]
async fn create_converges_every_system() {
    let stack = Stack::start().await;
    let serve = stack.spawn("serve").await;
    let api = stack.admin(&serve).await;
    let created = api
        .create_tenant("acme", "Acme Inc", &["acme.test", "mail.acme.test"])
        .await;
    assert_eq!(created["status"]["phase"], "pending");

    let tenant = api.converged("acme").await;
    let sims = &stack.sims;
    let group = sims
        .authentik
        .group_named("tenant-acme")
        .expect("the Authentik group exists");
    assert_eq!(group.attributes["dezky_tenant_slug"], "acme");
    assert_eq!(group.attributes["dezky_tenant_id"], tenant["id"]);
    assert_eq!(group.attributes["dezky_managed_by"], "dezky-provisioner");
    let systems = &tenant["status"]["systems"];
    assert_eq!(systems["authentik"]["externalId"], group.pk.to_string());

    assert_domain(sims, "acme.test", "acme");
    assert_domain(sims, "mail.acme.test", "acme");

    let drive = space(sims, "acme").expect("the project space exists");
    assert_eq!(drive.name, "Acme Inc");
    assert_eq!(drive.description, "dezky tenant acme");
    assert_eq!(drive.quota_total, plan_quota("team"));
    assert!(!drive.trashed);
    assert_eq!(systems["ocis"]["externalId"], drive.id);
    let group_id = sims.ocis.group_id("tenant-acme").expect("the oCIS group");
    let grant = sims
        .ocis
        .permissions(&drive.id)
        .into_iter()
        .find(|p| p.id == format!("g:{group_id}"))
        .expect("the group has access to the space");
    assert_eq!(grant.roles, [SPACE_EDITOR]);

    let events = api.events("acme").await;
    for system in SYSTEMS {
        assert!(
            has_event(&events, system, "created"),
            "{system} created: {events:?}"
        );
    }
}

#[tokio::test]
async fn patch_is_followed_upstream() {
    let stack = Stack::start().await;
    let serve = stack.spawn("serve").await;
    let api = stack.admin(&serve).await;
    api.create_tenant("globex", "Globex", &["globex.test", "old.globex.test"])
        .await;
    let before = api.converged("globex").await;

    let patched = api
        .patch(
            "/tenants/globex",
            json!({ "name": "Globex: Worldwide", "plan": "business",
                    "domains": ["globex.test", "new.globex.test"] }),
        )
        .await
        .expect_status(200)
        .body;
    let generation = patched["generation"].as_i64().expect("a generation");
    assert_eq!(generation, before["generation"].as_i64().unwrap_or(0) + 1);

    let after = api.converged("globex").await;
    assert_eq!(after["generation"], generation);
    assert_eq!(after["status"]["observedGeneration"], generation);
    for system in SYSTEMS {
        assert_eq!(
            after["status"]["systems"][system]["observedGeneration"], generation,
            "{system}"
        );
    }
    let sims = &stack.sims;
    let drive = space(sims, "globex").expect("the space");
    assert_eq!(drive.name, "Globex Worldwide", "':' is forbidden in oCIS");
    assert_eq!(drive.quota_total, plan_quota("business"));
    assert_domain(sims, "globex.test", "globex");
    assert_domain(sims, "new.globex.test", "globex");
    assert!(
        sims.stalwart.domain_named("old.globex.test").is_none(),
        "the removed domain is destroyed"
    );
    assert!(sims.authentik.group_named("tenant-globex").is_some());
}

#[tokio::test]
async fn delete_cleans_up_then_the_tenant_is_gone() {
    let stack = Stack::start().await;
    let serve = stack.spawn("serve").await;
    let api = stack.admin(&serve).await;
    api.create_tenant("initech", "Initech", &["initech.test", "mail.initech.test"])
        .await;
    api.converged("initech").await;
    let drive_id = space(&stack.sims, "initech").expect("the space").id;

    let deleting = api.delete("/tenants/initech").await.expect_status(202).body;
    assert_eq!(deleting["status"]["phase"], "deleting");
    until("the tenant is gone", CONVERGE_LIMIT, || async {
        let reply = api.get("/tenants/initech").await;
        (reply.status == 404).then_some(reply.body)
    })
    .await;

    let sims = &stack.sims;
    assert!(sims.authentik.group_named("tenant-initech").is_none());
    for name in ["initech.test", "mail.initech.test"] {
        assert!(sims.stalwart.domain_named(name).is_none(), "{name} gone");
    }
    let drive = sims.ocis.drive(&drive_id).expect("disabled, not purged");
    assert!(drive.trashed, "the space is disabled: {drive:?}");
    let listed: Value = api.get("/tenants").await.expect_status(200).body;
    assert_eq!(listed["items"], json!([]));
}
