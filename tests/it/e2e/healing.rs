//! Out-of-band damage and outages, made through the simulators' handles
//! while `provisioner serve` runs: healed by one reconcile, reported in
//! status and events.

use serde_json::{json, Map, Value};

use super::harness::{converged, drift_corrections, has_event, plan_quota, Stack, SYSTEMS};
use super::lifecycle::space;

#[tokio::test]
async fn drift_in_every_system_is_healed_by_one_reconcile() {
    let stack = Stack::start().await;
    let serve = stack.spawn("serve").await;
    let api = stack.admin(&serve).await;
    api.create_tenant(
        "umbrella",
        "Umbrella",
        &["umbrella.test", "mail.umbrella.test"],
    )
    .await;
    let before = api.settled("umbrella").await;
    let sims = &stack.sims;

    // Authentik: renamed, owned attribute changed, a foreign key added.
    let group = sims
        .authentik
        .group_named("tenant-umbrella")
        .expect("group");
    sims.authentik
        .rename_group(group.pk, "hijacked")
        .expect("rename");
    let mut attributes: Map<String, Value> = group.attributes.clone();
    attributes.insert("dezky_tenant_slug".into(), json!("someone-else"));
    attributes.insert("operator_note".into(), json!("keep me"));
    sims.authentik
        .set_attributes(group.pk, attributes)
        .expect("set attributes");
    // Stalwart: one domain disabled, the other destroyed.
    let main = sims.stalwart.domain_named("umbrella.test").expect("domain");
    sims.stalwart.set_enabled(&main.id, false).expect("disable");
    let mail = sims
        .stalwart
        .domain_named("mail.umbrella.test")
        .expect("domain");
    sims.stalwart.destroy_domain(&mail.id).expect("destroy");
    // oCIS: space trashed and its quota changed.
    let drive = space(sims, "umbrella").expect("space");
    assert!(sims.ocis.set_drive_quota(&drive.id, 1));
    assert!(sims.ocis.disable_drive(&drive.id));

    let after = api.reconcile("umbrella").await;
    assert!(converged(&after), "converged after one reconcile: {after}");

    let group = sims.authentik.group(group.pk).expect("the same group");
    assert_eq!(group.name, "tenant-umbrella");
    assert_eq!(group.attributes["dezky_tenant_slug"], "umbrella");
    assert_eq!(group.attributes["operator_note"], "keep me");
    for name in ["umbrella.test", "mail.umbrella.test"] {
        let domain = sims.stalwart.domain_named(name).expect("domain back");
        assert!(domain.is_enabled, "{name} enabled");
    }
    let drive = sims.ocis.drive(&drive.id).expect("the same space");
    assert!(!drive.trashed, "restored");
    assert_eq!(drive.quota_total, plan_quota("team"));
    assert_eq!(sims.ocis.drives().len(), 1, "one space, never a duplicate");

    let events = api.events("umbrella").await;
    for system in SYSTEMS {
        assert!(
            drift_corrections(&after, system) > drift_corrections(&before, system),
            "{system} counted the drift: {}\nbefore: {}\nevents: {events:#?}",
            after["status"]["systems"][system],
            before["status"]["systems"][system]
        );
        assert_eq!(
            after["status"]["systems"][system]["reason"],
            "DriftCorrected"
        );
    }
    for system in SYSTEMS {
        assert!(
            has_event(&events, system, "drift_corrected"),
            "{system} drift event: {events:?}"
        );
    }
    // A restore is recorded as one, not as a drift correction without fields.
    for system in ["stalwart", "ocis"] {
        assert!(
            has_event(&events, system, "restored"),
            "{system} restore event: {events:?}"
        );
    }
}

#[tokio::test]
async fn an_outage_degrades_one_system_and_recovery_is_recorded() {
    let stack = Stack::start().await;
    let serve = stack.spawn("serve").await;
    let api = stack.admin(&serve).await;
    api.create_tenant("hooli", "Hooli", &["hooli.test"]).await;
    api.converged("hooli").await;

    stack.sims.stalwart.faults().set_outage(true);
    api.post("/tenants/hooli/reconcile", json!({}))
        .await
        .expect_status(202);
    let degraded = api
        .tenant_until("hooli", "degraded by the Stalwart outage", |t| {
            t["status"]["phase"] == "degraded"
                && t["status"]["systems"]["stalwart"]["state"] == "error"
        })
        .await;
    for system in ["authentik", "ocis"] {
        assert_eq!(
            degraded["status"]["systems"][system]["state"], "ok",
            "{system} is independent of Stalwart"
        );
    }

    // Backoff retries (BACKOFF_BASE 200ms, max 1s) pick the end of the outage up.
    stack.sims.stalwart.faults().set_outage(false);
    let healed = api.converged("hooli").await;
    assert_eq!(healed["status"]["phase"], "active");
    let events = api.events("hooli").await;
    assert!(has_event(&events, "stalwart", "error"), "{events:?}");
    assert!(has_event(&events, "stalwart", "recovered"), "{events:?}");
    // One log line into the error (with its reason), one out of it, however
    // many retries failed in between.
    let log = std::fs::read_to_string(&serve.log).expect("the serve log");
    let lines = |what: &str| {
        log.lines()
            .filter(|l| l.contains(what) && l.contains("system=stalwart"))
            .count()
    };
    assert_eq!(lines("system failed"), 1, "{log}");
    assert_eq!(lines("system recovered"), 1, "{log}");
}
