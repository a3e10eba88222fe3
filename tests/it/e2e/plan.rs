//! `GET /tenants/{slug}/plan` against the simulators: a plan is a dry run
//! of every system, its own pass, whose only write is its answer; and that
//! answer stays through the passes after it.

use mongodb::bson::{doc, Document};
use serde_json::Value;

use super::harness::{converged, Stack};
use super::lifecycle::space;

/// The actions a plan foresees for `system`, as `(action, fields)`.
fn actions(plan: &Value, system: &str) -> Vec<(String, Value)> {
    plan["systems"][system]["actions"]
        .as_array()
        .unwrap_or_else(|| panic!("{system} actions in {plan}"))
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap_or_default().to_string(),
                a["fields"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_plan_writes_nothing_upstream_and_its_answer_stays() {
    let stack = Stack::start().await;
    let serve = stack.spawn("serve").await;
    let api = stack.admin(&serve).await;
    api.create_tenant("planned", "Planned", &["planned.test"])
        .await;
    api.settled("planned").await;

    // Drift in every system, out of band.
    let sims = &stack.sims;
    let group = sims.authentik.group_named("tenant-planned").expect("group");
    sims.authentik
        .rename_group(group.pk, "renamed-by-hand")
        .expect("rename");
    let domain = sims.stalwart.domain_named("planned.test").expect("domain");
    sims.stalwart
        .set_enabled(&domain.id, false)
        .expect("disable");
    let drive = space(sims, "planned").expect("space");
    assert!(sims.ocis.set_drive_quota(&drive.id, 777));

    // Two plans: passes of one tenant never overlap, so the second runs
    // after the first pass ended; a pass that converged would have left
    // the second nothing to plan.
    for round in ["first", "second"] {
        let plan = api
            .get("/tenants/planned/plan?wait=20s")
            .await
            .expect_status(200)
            .body;
        for system in ["authentik", "stalwart", "ocis"] {
            let planned = actions(&plan, system);
            assert!(
                planned
                    .iter()
                    .any(|(action, _)| action == "update" || action == "restore"),
                "{round} plan, {system}: {plan}"
            );
        }
        let quota = actions(&plan, "ocis")
            .into_iter()
            .find_map(|(_, fields)| fields.get("quota").cloned())
            .unwrap_or_else(|| panic!("a quota change in {plan}"));
        assert_eq!(quota["from"], 777, "{plan}");
        assert_eq!(
            sims.authentik.group(group.pk).unwrap().name,
            "renamed-by-hand"
        );
        assert!(
            !sims
                .stalwart
                .domain_named("planned.test")
                .unwrap()
                .is_enabled
        );
        assert_eq!(sims.ocis.drive(&drive.id).unwrap().quota_total, 777);
    }

    // A normal pass converges, and the plan stays answered after it (it
    // is not computed again by every later pass).
    let reconciled = api.reconcile("planned").await;
    assert!(converged(&reconciled), "{reconciled}");
    assert_ne!(sims.ocis.drive(&drive.id).unwrap().quota_total, 777);
    let stored: Document = stack
        .store()
        .await
        .db
        .collection::<Document>("tenants")
        .find_one(doc! { "slug": "planned" })
        .await
        .unwrap()
        .unwrap();
    let asked = stored.get_document("planRequest").unwrap().get_str("token");
    let answered = stored
        .get_document("status")
        .and_then(|s| s.get_document("plan"))
        .map(|p| p.get_str("token"));
    assert_eq!(answered.ok().and_then(Result::ok), asked.ok());
}
