//! How a dry run becomes a plan (`GET /tenants/{slug}/plan`).
//!
//! The API never calls upstreams, so it records a `planRequest`; the next
//! pass of the tenant is a plan pass: it runs every system in
//! [`Mode::DryRun`](crate::reconcile::Mode::DryRun), stores the result in
//! `status.plan` under the request's token and writes nothing else, upstream
//! or in the status. Converging is left to the pass after it.

use std::collections::BTreeMap;

use dezky_core::model::{Phase, PlannedAction, System, SystemPlan, Tenant, TenantPlan};
use dezky_core::Timestamp;

use crate::reconcile::Action;
use crate::status::SystemResult;

/// The unanswered plan request token of `tenant`, if any.
pub fn pending_request(tenant: &Tenant) -> Option<&str> {
    let requested = tenant.plan_request.as_ref()?;
    let answered = tenant.status.plan.as_ref().map(|p| p.token.as_str());
    (answered != Some(requested.token.as_str())).then_some(requested.token.as_str())
}

/// Whether a tenant whose plan was just answered should converge at once:
/// anything but a tenant known to be converged at its generation with no
/// request pending (that one waits for its resync, so the drift a plan
/// shows stays until someone reconciles).
pub fn needs_converging(tenant: &Tenant) -> bool {
    let status = &tenant.status;
    let unhandled = tenant
        .reconcile_request
        .as_ref()
        .is_some_and(|r| status.last_handled_reconcile_token.as_deref() != Some(&r.token));
    tenant.is_deleting()
        || unhandled
        || status.phase != Phase::Active
        || status.observed_generation != tenant.generation
}

/// Folds dry-run results into the plan answering `token`.
pub fn from_dry_run(
    tenant: &Tenant,
    token: &str,
    results: BTreeMap<System, SystemResult>,
) -> TenantPlan {
    let systems = results
        .into_iter()
        .map(|(system, result)| (system, system_plan(system, result)))
        .collect();
    TenantPlan {
        token: token.to_string(),
        generation: tenant.generation,
        computed_at: Timestamp::now(),
        systems,
    }
}

fn system_plan(system: System, result: SystemResult) -> SystemPlan {
    match result {
        SystemResult::NotConfigured => SystemPlan {
            actions: vec![none(format!("{system} (not configured)"))],
            ..SystemPlan::default()
        },
        SystemResult::Ran(_, Ok(outcome)) => SystemPlan {
            actions: if outcome.actions.is_empty() {
                vec![none(format!("{system} (in sync)"))]
            } else {
                outcome.actions.iter().map(planned).collect()
            },
            conflict: outcome.conflict,
            error: None,
        },
        SystemResult::Ran(_, Err(error)) if error.conflict => SystemPlan {
            actions: vec![none(format!("{system} (conflict)"))],
            conflict: Some(error.message),
            error: None,
        },
        SystemResult::Ran(_, Err(error)) => SystemPlan {
            actions: Vec::new(),
            conflict: None,
            error: Some(format!("{}: {}", error.reason, error.message)),
        },
    }
}

fn none(object: String) -> PlannedAction {
    PlannedAction {
        action: "none".into(),
        object,
        fields: serde_json::json!({}),
    }
}

fn planned(action: &Action) -> PlannedAction {
    let kind = serde_json::to_value(action.action)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    PlannedAction {
        action: kind,
        object: action.object.clone(),
        fields: serde_json::to_value(&action.fields).unwrap_or_else(|_| serde_json::json!({})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::{ActionKind, Mode, Outcome, SystemError};

    #[test]
    fn a_plan_lists_actions_none_conflicts_and_errors_per_system() {
        let mut tenant_results = BTreeMap::new();
        let rename =
            Action::new(ActionKind::Update, "group tenant-acme").field("name", "x", "tenant-acme");
        tenant_results.insert(
            System::Authentik,
            SystemResult::Ran(
                Mode::DryRun,
                Ok(Outcome::ok("Updated", "").with_actions(vec![rename])),
            ),
        );
        tenant_results.insert(
            System::Stalwart,
            SystemResult::Ran(
                Mode::DryRun,
                Err(SystemError::conflict(
                    "domain acme.test belongs to tenant other",
                )),
            ),
        );
        tenant_results.insert(
            System::Ocis,
            SystemResult::Ran(Mode::DryRun, Err(SystemError::new("UpstreamError", "503"))),
        );
        let tenant = crate::status::tests_support::tenant(4);
        let plan = from_dry_run(&tenant, "tok", tenant_results);
        assert_eq!(plan.generation, 4);
        let a = &plan.systems[&System::Authentik];
        assert_eq!(a.actions[0].action, "update");
        assert_eq!(a.actions[0].fields["name"]["to"], "tenant-acme");
        let s = &plan.systems[&System::Stalwart];
        assert_eq!(s.actions[0].action, "none");
        assert!(s.conflict.as_deref().unwrap().contains("other"));
        assert_eq!(
            plan.systems[&System::Ocis].error.as_deref(),
            Some("UpstreamError: 503")
        );
    }

    #[test]
    fn only_unanswered_requests_are_pending() {
        let mut tenant = crate::status::tests_support::tenant(1);
        assert_eq!(pending_request(&tenant), None);
        tenant.plan_request = Some(dezky_core::model::ReconcileRequest {
            token: "t1".into(),
            requested_at: Timestamp::now(),
        });
        assert_eq!(pending_request(&tenant), Some("t1"));
        tenant.status.plan = Some(from_dry_run(&tenant, "t1", BTreeMap::new()));
        assert_eq!(pending_request(&tenant), None);
    }
}
