//! The fleet row of a tenant: the few fields a fleet list shows (identity,
//! plan, phase, each system's state), which `GET /tenants?watch=true&view=fleet`
//! streams instead of the whole tenant. Everything that moves on a routine
//! resync (`lastReconciledAt`, `lastSyncedAt`, retry messages) is left
//! out, so a pass that changes nothing else changes no row and sends no
//! event. [`Health`] is the part of a row the [summary](super::summary)
//! counts, kept typed in each cache entry.

use std::collections::BTreeMap;

use dezky_core::model::{Phase, System, SystemState, Tenant};
use dezky_core::schema::Plan;
use dezky_core::{Id, Timestamp};
use serde::Serialize;
use utoipa::ToSchema;

/// One tenant as the fleet list shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FleetRow<'a> {
    #[schema(value_type = String)]
    pub id: Id,
    pub slug: &'a str,
    pub name: &'a str,
    #[schema(value_type = Plan)]
    pub plan: &'a str,
    pub paused: bool,
    pub generation: i64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// Present once deletion was requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deletion_requested_at: Option<Timestamp>,
    pub status: RowStatus<'a>,
}

/// The status part of a [`FleetRow`].
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RowStatus<'a> {
    pub phase: Phase,
    pub observed_generation: i64,
    /// The systems observed so far.
    pub systems: BTreeMap<System, RowSystem<'a>>,
}

/// One system of a [`FleetRow`]: its state and the reason code of that state.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowSystem<'a> {
    pub state: SystemState,
    pub reason: &'a str,
}

impl<'a> FleetRow<'a> {
    /// The row of `tenant`.
    pub fn of(tenant: &'a Tenant) -> Self {
        let status = &tenant.status;
        FleetRow {
            id: tenant.id,
            slug: &tenant.slug,
            name: &tenant.name,
            plan: &tenant.plan,
            paused: tenant.paused,
            generation: tenant.generation,
            created_at: tenant.created_at,
            updated_at: tenant.updated_at,
            deletion_requested_at: tenant.deletion_requested_at,
            status: RowStatus {
                phase: status.phase,
                observed_generation: status.observed_generation,
                systems: status
                    .systems
                    .iter()
                    .map(|(system, s)| {
                        let row = RowSystem {
                            state: s.state,
                            reason: &s.reason,
                        };
                        (*system, row)
                    })
                    .collect(),
            },
        }
    }
}

/// What the fleet summary counts of one tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    pub phase: Phase,
    pub paused: bool,
    /// Each of [`System::ALL`]'s state, `None` while not observed.
    pub systems: [Option<SystemState>; System::ALL.len()],
}

impl Health {
    pub fn of(tenant: &Tenant) -> Self {
        Health {
            phase: tenant.status.phase,
            paused: tenant.paused,
            systems: System::ALL.map(|system| tenant.status.systems.get(&system).map(|s| s.state)),
        }
    }

    /// Degraded, or a system in error: the fleet view lists these first.
    pub fn needs_attention(&self) -> bool {
        self.phase == Phase::Degraded || self.systems.contains(&Some(SystemState::Error))
    }
}
