//! How one reconcile pass becomes status and history.
//!
//! Pure functions: given the tenant as read at the start of the pass and
//! what each system reported, compute the next `status` and the events to
//! append. Rules (DESIGN §3, §6):
//! - `lastTransitionAt` changes only when a system's `state` changes;
//! - a correction of a system that was `ok` at the same generation is drift:
//!   counted in `driftCorrections`, reason `DriftCorrected`, event
//!   `drift_corrected`;
//! - an `error` event is written when a system enters `error`, a
//!   `recovered` event when it leaves it for `ok`, not on every retry;
//! - `phase` is `deleting` once deletion was requested, else `active` when
//!   every system is `ok|skipped`, `degraded` when a formerly active tenant
//!   has a system in `error`, else `pending`.

use std::collections::BTreeMap;

use dezky_core::model::{
    EventAction, Phase, System, SystemState, SystemStatus, Tenant, TenantEvent, TenantStatus,
};
use dezky_core::{Id, Timestamp};

use crate::reconcile::{Action, ActionKind, Mode, Outcome, SystemError};

/// What happened to one system in a pass.
#[derive(Debug)]
pub enum SystemResult {
    /// The system's URL is not configured: `skipped`.
    NotConfigured,
    /// The reconciler ran (or its cleanup did) in the given mode.
    Ran(Mode, Result<Outcome, SystemError>),
}

/// The next status of a tenant after a pass, and what to record.
#[derive(Debug)]
pub struct PassReport {
    pub status: TenantStatus,
    pub events: Vec<TenantEvent>,
    /// Drift corrections made in this pass, per system.
    pub drift: BTreeMap<System, u32>,
    /// Whether some system is not settled (`error` or `pending`): retry with backoff.
    pub needs_retry: bool,
}

/// Folds a pass's results into the tenant's next status.
pub fn report(
    tenant: &Tenant,
    results: BTreeMap<System, SystemResult>,
    now: Timestamp,
    handled_token: Option<String>,
) -> PassReport {
    let mut systems = tenant.status.systems.clone();
    let mut events = Vec::new();
    let mut drift = BTreeMap::new();
    for (system, result) in results {
        let prior = tenant.system_status(system);
        let next = next_system_status(tenant, system, prior, result, now, &mut events);
        if next.drift_corrections > prior.map_or(0, |p| p.drift_corrections) {
            drift.insert(system, 1);
        }
        systems.insert(system, next);
    }
    let needs_retry = systems.values().any(|s| !s.state.is_settled());
    let status = TenantStatus {
        phase: phase(tenant, &systems),
        observed_generation: tenant.generation,
        last_reconciled_at: Some(now),
        last_handled_reconcile_token: handled_token
            .or_else(|| tenant.status.last_handled_reconcile_token.clone()),
        systems,
        plan: tenant.status.plan.clone(),
    };
    PassReport {
        status,
        events,
        drift,
        needs_retry,
    }
}

fn phase(tenant: &Tenant, systems: &BTreeMap<System, SystemStatus>) -> Phase {
    if tenant.is_deleting() {
        Phase::Deleting
    } else if systems.values().all(|s| s.state.is_settled()) {
        Phase::Active
    } else if systems.values().any(|s| s.state == SystemState::Error)
        && matches!(tenant.status.phase, Phase::Active | Phase::Degraded)
    {
        Phase::Degraded
    } else {
        Phase::Pending
    }
}

fn next_system_status(
    tenant: &Tenant,
    system: System,
    prior: Option<&SystemStatus>,
    result: SystemResult,
    now: Timestamp,
    events: &mut Vec<TenantEvent>,
) -> SystemStatus {
    let prior_state = prior.map(|p| p.state);
    let prior_external_id = prior.and_then(|p| p.external_id.clone());
    let mut drift_corrections = prior.map_or(0, |p| p.drift_corrections);
    let event = |action: EventAction,
                 object: String,
                 fields: serde_json::Value,
                 message: String| TenantEvent {
        id: Id::new(),
        tenant_id: tenant.id,
        at: now,
        system,
        action,
        object,
        fields,
        message,
        generation: tenant.generation,
    };

    let (state, reason, message, external_id) = match result {
        SystemResult::NotConfigured => (
            SystemState::Skipped,
            "NotConfigured".to_string(),
            format!("{} is not configured", system),
            prior_external_id,
        ),
        SystemResult::Ran(Mode::DryRun, Ok(outcome)) if !outcome.actions.is_empty() => (
            SystemState::Pending,
            "Paused".to_string(),
            format!("paused; would {}", describe(&outcome.actions)),
            outcome.external_id.or(prior_external_id),
        ),
        SystemResult::Ran(mode, Ok(outcome)) => {
            let is_drift = mode == Mode::Apply
                && !tenant.is_deleting()
                && !outcome.actions.is_empty()
                && prior.is_some_and(|p| {
                    p.state == SystemState::Ok && p.observed_generation == tenant.generation
                });
            if mode == Mode::Apply {
                for action in &outcome.actions {
                    // A restore says so, drift or not (it has no fields to show).
                    let kind = if is_drift && action.action != ActionKind::Restore {
                        EventAction::DriftCorrected
                    } else {
                        event_action(action.action)
                    };
                    events.push(event(
                        kind,
                        action.object.clone(),
                        fields_json(action),
                        outcome.message.clone(),
                    ));
                }
            }
            let reason = if is_drift {
                drift_corrections += 1;
                "DriftCorrected".to_string()
            } else {
                outcome.reason
            };
            (
                outcome.state,
                reason,
                outcome.message,
                outcome.external_id.or(prior_external_id),
            )
        }
        SystemResult::Ran(mode, Err(error)) => {
            if mode == Mode::Apply {
                for action in &error.actions {
                    events.push(event(
                        event_action(action.action),
                        action.object.clone(),
                        fields_json(action),
                        String::new(),
                    ));
                }
            }
            (
                SystemState::Error,
                error.reason,
                error.message,
                prior_external_id,
            )
        }
    };

    if state == SystemState::Error && prior_state != Some(SystemState::Error) {
        events.push(event(
            EventAction::Error,
            system.to_string(),
            serde_json::Value::Null,
            format!("{reason}: {message}"),
        ));
    }
    if state == SystemState::Ok && prior_state == Some(SystemState::Error) {
        events.push(event(
            EventAction::Recovered,
            system.to_string(),
            serde_json::Value::Null,
            message.clone(),
        ));
    }

    let changed = prior_state != Some(state);
    SystemStatus {
        state,
        reason,
        message,
        external_id,
        observed_generation: tenant.generation,
        last_transition_at: if changed {
            Some(now)
        } else {
            prior.and_then(|p| p.last_transition_at)
        },
        last_synced_at: if state == SystemState::Ok {
            Some(now)
        } else {
            prior.and_then(|p| p.last_synced_at)
        },
        drift_corrections,
    }
}

fn event_action(kind: ActionKind) -> EventAction {
    match kind {
        ActionKind::Create => EventAction::Created,
        ActionKind::Update => EventAction::Updated,
        ActionKind::Delete => EventAction::Deleted,
        ActionKind::Adopt => EventAction::Adopted,
        ActionKind::Restore => EventAction::Restored,
    }
}

fn fields_json(action: &Action) -> serde_json::Value {
    serde_json::to_value(&action.fields).unwrap_or(serde_json::Value::Null)
}

/// `update group tenant-acme (name, attributes); create domain acme.test`.
fn describe(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|a| {
            let verb = serde_json::to_value(a.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            if a.fields.is_empty() {
                format!("{verb} {}", a.object)
            } else {
                let fields: Vec<&str> = a.fields.keys().map(String::as_str).collect();
                format!("{verb} {} ({})", a.object, fields.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
pub(crate) mod tests_support {
    use dezky_core::model::Tenant;
    use dezky_core::Timestamp;

    /// A tenant at `generation` with no status, for unit tests.
    pub fn tenant(generation: i64) -> Tenant {
        Tenant {
            generation,
            ..Tenant::new("acme", "Acme", "team", Timestamp::from_millis(1_000))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::tenant;
    use super::*;

    fn ok(reason: &str, actions: Vec<Action>) -> SystemResult {
        SystemResult::Ran(
            Mode::Apply,
            Ok(Outcome::ok(reason, "").with_actions(actions)),
        )
    }

    fn all(result: impl Fn() -> SystemResult) -> BTreeMap<System, SystemResult> {
        System::ALL.into_iter().map(|s| (s, result())).collect()
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn a_tenant_is_active_once_every_system_is_ok_or_skipped() {
        let t = tenant(1);
        let mut results = all(|| ok("Created", vec![Action::new(ActionKind::Create, "x")]));
        results.insert(System::Ocis, SystemResult::NotConfigured);
        let r = report(&t, results, at(5), None);
        assert_eq!(r.status.phase, Phase::Active);
        assert_eq!(r.status.observed_generation, 1);
        assert_eq!(r.status.systems[&System::Ocis].state, SystemState::Skipped);
        assert_eq!(r.status.systems[&System::Ocis].reason, "NotConfigured");
        assert_eq!(r.events.len(), 2, "one created event per action");
        assert!(r.drift.is_empty(), "first creation is not drift");
        assert!(!r.needs_retry);
    }

    #[test]
    fn corrections_at_the_same_generation_count_as_drift() {
        let mut t = tenant(2);
        t.status = report(&t, all(|| ok("InSync", vec![])), at(5), None).status;
        let fix =
            Action::new(ActionKind::Update, "group tenant-acme").field("name", "x", "tenant-acme");
        let r = report(&t, all(|| ok("Updated", vec![fix.clone()])), at(9), None);
        let s = &r.status.systems[&System::Authentik];
        assert_eq!(
            (s.reason.as_str(), s.drift_corrections),
            ("DriftCorrected", 1)
        );
        assert_eq!(s.last_transition_at, Some(at(5)), "state stayed ok");
        assert_eq!(s.last_synced_at, Some(at(9)));
        assert_eq!(r.drift.len(), 3);
        assert!(r
            .events
            .iter()
            .all(|e| e.action == EventAction::DriftCorrected));
        assert_eq!(r.events[0].fields["name"]["to"], "tenant-acme");
    }

    #[test]
    fn changes_after_a_spec_change_are_updates_not_drift() {
        let mut t = tenant(2);
        t.status = report(&t, all(|| ok("InSync", vec![])), at(5), None).status;
        t.generation = 3;
        let r = report(
            &t,
            all(|| ok("Updated", vec![Action::new(ActionKind::Update, "g")])),
            at(9),
            None,
        );
        assert_eq!(r.status.systems[&System::Authentik].reason, "Updated");
        assert_eq!(r.status.systems[&System::Authentik].drift_corrections, 0);
        assert_eq!(r.events[0].action, EventAction::Updated);
    }

    #[test]
    fn last_transition_changes_only_with_state_and_errors_are_logged_once() {
        let mut t = tenant(1);
        t.status = report(&t, all(|| ok("InSync", vec![])), at(5), None).status;
        t.status.phase = Phase::Active;
        let fail = || SystemResult::Ran(Mode::Apply, Err(SystemError::new("UpstreamError", "503")));
        let r1 = report(&t, all(fail), at(6), None);
        assert_eq!(r1.status.phase, Phase::Degraded);
        assert!(r1.needs_retry);
        assert_eq!(
            r1.events
                .iter()
                .filter(|e| e.action == EventAction::Error)
                .count(),
            3
        );
        t.status = r1.status;
        let r2 = report(&t, all(fail), at(7), None);
        assert!(r2.events.is_empty(), "a repeated error is not a new event");
        let s = &r2.status.systems[&System::Stalwart];
        assert_eq!(
            (s.last_transition_at, s.last_synced_at),
            (Some(at(6)), Some(at(5)))
        );
        t.status = r2.status;
        let r3 = report(&t, all(|| ok("InSync", vec![])), at(8), None);
        assert_eq!(r3.status.phase, Phase::Active);
        assert_eq!(
            r3.events
                .iter()
                .filter(|e| e.action == EventAction::Recovered)
                .count(),
            3
        );
        assert_eq!(
            r3.status.systems[&System::Ocis].last_transition_at,
            Some(at(8))
        );
    }

    #[test]
    fn a_new_tenant_with_errors_is_pending_not_degraded() {
        let t = tenant(1);
        let r = report(
            &t,
            all(|| SystemResult::Ran(Mode::Apply, Err(SystemError::new("UpstreamError", "x")))),
            at(1),
            None,
        );
        assert_eq!(r.status.phase, Phase::Pending);
    }

    #[test]
    fn a_paused_tenant_reports_what_would_change_and_records_no_action_events() {
        let t = tenant(1);
        let would = Action::new(ActionKind::Create, "group tenant-acme");
        let r = report(
            &t,
            all(|| {
                SystemResult::Ran(
                    Mode::DryRun,
                    Ok(Outcome::ok("Created", "").with_actions(vec![would.clone()])),
                )
            }),
            at(1),
            None,
        );
        let s = &r.status.systems[&System::Authentik];
        assert_eq!(
            (s.state, s.reason.as_str()),
            (SystemState::Pending, "Paused")
        );
        assert_eq!(s.message, "paused; would create group tenant-acme");
        assert!(r.events.is_empty());
    }

    #[test]
    fn the_handled_token_is_recorded_and_kept_until_the_next_one() {
        let mut t = tenant(1);
        t.status = report(
            &t,
            all(|| ok("InSync", vec![])),
            at(1),
            Some("tok-1".into()),
        )
        .status;
        assert_eq!(
            t.status.last_handled_reconcile_token.as_deref(),
            Some("tok-1")
        );
        let r = report(&t, all(|| ok("InSync", vec![])), at(2), None);
        assert_eq!(
            r.status.last_handled_reconcile_token.as_deref(),
            Some("tok-1")
        );
    }

    #[test]
    fn a_deleting_tenant_is_in_phase_deleting() {
        let mut t = tenant(1);
        t.deletion_requested_at = Some(at(1));
        let r = report(
            &t,
            all(|| ok("Deleted", vec![Action::new(ActionKind::Delete, "g")])),
            at(2),
            None,
        );
        assert_eq!(r.status.phase, Phase::Deleting);
        assert_eq!(r.events[0].action, EventAction::Deleted);
        assert!(r.drift.is_empty());
    }
}
