//! The fleet summary: how many visible tenants are in each phase, how many
//! systems are in each state, how many need attention, and how many drift
//! corrections the controller made today (UTC), as the top of a fleet view
//! shows them. Counting is a pass over the cache entries' [`Health`]; the
//! drift corrections are a count of today's `drift_corrected` events
//! (index `action_at`).

use std::collections::BTreeMap;

use dezky_core::model::{Phase, System, SystemState};
use dezky_core::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use super::row::Health;

/// `GET /fleet/summary`.
#[derive(Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FleetSummary {
    /// Tenants the caller may see.
    pub tenants: u64,
    pub phases: PhaseCounts,
    /// Tenants with upstream writes paused.
    pub paused: u64,
    /// Tenants `degraded` or with a system in `error`.
    pub needs_attention: u64,
    /// Per system, its tenants by state (a system not yet observed is not counted).
    pub systems: BTreeMap<System, StateCounts>,
    /// `drift_corrected` events of the visible tenants since `since`.
    pub drift_corrections_today: u64,
    /// The start of today, UTC.
    pub since: Timestamp,
}

/// Tenants by phase.
#[derive(Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct PhaseCounts {
    pub pending: u64,
    pub active: u64,
    pub degraded: u64,
    pub deleting: u64,
}

/// Tenants by one system's state.
#[derive(Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct StateCounts {
    pub ok: u64,
    pub skipped: u64,
    pub error: u64,
    pub pending: u64,
}

impl FleetSummary {
    /// Counts `tenants` (today's drift corrections are left to the caller).
    pub fn tally<'a>(tenants: impl IntoIterator<Item = &'a Health>, since: Timestamp) -> Self {
        let mut summary = FleetSummary {
            tenants: 0,
            phases: PhaseCounts::default(),
            paused: 0,
            needs_attention: 0,
            systems: System::ALL
                .into_iter()
                .map(|system| (system, StateCounts::default()))
                .collect(),
            drift_corrections_today: 0,
            since,
        };
        for health in tenants {
            summary.tenants += 1;
            *match health.phase {
                Phase::Pending => &mut summary.phases.pending,
                Phase::Active => &mut summary.phases.active,
                Phase::Degraded => &mut summary.phases.degraded,
                Phase::Deleting => &mut summary.phases.deleting,
            } += 1;
            summary.paused += u64::from(health.paused);
            summary.needs_attention += u64::from(health.needs_attention());
            for (system, state) in System::ALL.iter().zip(health.systems) {
                let (Some(state), Some(counts)) = (state, summary.systems.get_mut(system)) else {
                    continue;
                };
                *match state {
                    SystemState::Ok => &mut counts.ok,
                    SystemState::Skipped => &mut counts.skipped,
                    SystemState::Error => &mut counts.error,
                    SystemState::Pending => &mut counts.pending,
                } += 1;
            }
        }
        summary
    }
}

/// The start of the UTC day of `now`.
pub fn start_of_day(now: Timestamp) -> Timestamp {
    const DAY_MS: i64 = 24 * 60 * 60 * 1000;
    let ms = now.millis();
    Timestamp::from_millis(ms - ms.rem_euclid(DAY_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(phase: Phase, paused: bool, systems: [Option<SystemState>; 3]) -> Health {
        Health {
            phase,
            paused,
            systems,
        }
    }

    #[test]
    fn a_tally_counts_phases_states_pauses_and_tenants_needing_attention() {
        use SystemState::{Error, Ok, Pending};
        let fleet = [
            health(Phase::Active, false, [Some(Ok), Some(Ok), Some(Ok)]),
            health(Phase::Degraded, true, [Some(Ok), Some(Error), None]),
            health(Phase::Pending, false, [Some(Error), None, None]),
            health(Phase::Pending, false, [Some(Pending), None, None]),
        ];
        let summary = FleetSummary::tally(&fleet, Timestamp::now());
        assert_eq!(summary.tenants, 4);
        let phases = PhaseCounts {
            pending: 2,
            active: 1,
            degraded: 1,
            deleting: 0,
        };
        assert_eq!(summary.phases, phases);
        assert_eq!((summary.paused, summary.needs_attention), (1, 2));
        let authentik = StateCounts {
            ok: 2,
            error: 1,
            pending: 1,
            skipped: 0,
        };
        assert_eq!(summary.systems[&System::Authentik], authentik);
        assert_eq!(summary.systems[&System::Ocis].ok, 1);
        assert_eq!(summary.systems[&System::Stalwart].error, 1);
    }

    #[test]
    fn today_starts_at_midnight_utc() {
        let at = Timestamp::from_millis(1_796_568_000_123); // 2026-12-06T14:40:00.123Z
        assert_eq!(start_of_day(at).to_string(), "2026-12-06T00:00:00.000Z");
    }
}
