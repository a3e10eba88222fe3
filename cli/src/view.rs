//! What the client reads from the API's answers, typed: a tenant (desired
//! fields and status, with the model's own status types) and an event.
//! Everything else of an answer is kept only in its JSON form.

use dezky_core::model::{BillingInfo, DeletionPolicy, Phase, System, SystemState, TenantStatus};
use dezky_core::Timestamp;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::error::CliError;

/// A tenant as `GET /tenants/{slug}` returns it (the fields the client uses).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantView {
    pub slug: String,
    pub name: String,
    pub plan: String,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub billing_info: Option<BillingInfo>,
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    #[serde(default)]
    pub paused: bool,
    pub generation: i64,
    pub created_at: Timestamp,
    #[serde(default)]
    pub deletion_requested_at: Option<Timestamp>,
    #[serde(default)]
    pub status: TenantStatus,
}

/// One entry of `GET /tenants/{slug}/events`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub at: Timestamp,
    pub system: System,
    pub action: String,
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub message: String,
    pub generation: i64,
}

/// `value` as a `T`, or an error saying the server answered something else.
pub fn parse<T: DeserializeOwned>(value: &Value, what: &str) -> Result<T, CliError> {
    T::deserialize(value).map_err(|e| CliError::Http {
        context: what.to_string(),
        message: format!("unexpected answer: {e}"),
    })
}

/// How far the controller got with a tenant at `generation`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Every system `ok`/`skipped` at the generation, phase `active`.
    Active,
    /// A system recorded an error at the generation.
    Failed(Vec<SystemFailure>),
    /// Still converging.
    Pending,
}

/// One system in `error`, with the controller's reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemFailure {
    pub system: System,
    pub reason: String,
    pub message: String,
}

impl TenantView {
    /// Where the tenant stands with respect to `generation` (the one applied).
    pub fn progress(&self, generation: i64) -> Progress {
        let systems = &self.status.systems;
        let failures: Vec<SystemFailure> = systems
            .iter()
            .filter(|(_, s)| s.state == SystemState::Error && s.observed_generation >= generation)
            .map(|(system, s)| SystemFailure {
                system: *system,
                reason: s.reason.clone(),
                message: s.message.clone(),
            })
            .collect();
        if !failures.is_empty() {
            return Progress::Failed(failures);
        }
        let settled = !systems.is_empty()
            && systems
                .values()
                .all(|s| s.state.is_settled() && s.observed_generation >= generation);
        if self.status.phase == Phase::Active
            && self.status.observed_generation >= generation
            && settled
        {
            Progress::Active
        } else {
            Progress::Pending
        }
    }

    /// `ok Created`-style summary of one system, `-` before its first pass.
    pub fn system_cell(&self, system: System) -> String {
        match self.status.systems.get(&system) {
            Some(s) => format!("{} {}", s.state.as_str(), s.reason),
            None => "-".to_string(),
        }
    }
}

/// The lowercase name of a phase, as the API writes it.
pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Pending => "pending",
        Phase::Active => "active",
        Phase::Degraded => "degraded",
        Phase::Deleting => "deleting",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tenant(phase: &str, observed: i64, systems: Value) -> TenantView {
        parse(
            &json!({"slug": "acme", "name": "A", "plan": "team", "generation": 2,
                    "createdAt": "2026-01-01T00:00:00Z",
                    "status": {"phase": phase, "observedGeneration": observed, "systems": systems}}),
            "test",
        )
        .unwrap()
    }

    fn system(state: &str, generation: i64) -> Value {
        json!({"state": state, "reason": "R", "message": "m", "observedGeneration": generation})
    }

    #[test]
    fn progress_counts_only_the_applied_generation() {
        let ok = json!({"authentik": system("ok", 2), "ocis": system("skipped", 2)});
        assert_eq!(tenant("active", 2, ok).progress(2), Progress::Active);
        let old = json!({"authentik": system("ok", 1)});
        assert_eq!(tenant("active", 1, old).progress(2), Progress::Pending);
        assert_eq!(
            tenant("pending", 0, json!({})).progress(1),
            Progress::Pending
        );
        let stale_error = json!({"authentik": system("error", 1), "ocis": system("pending", 2)});
        assert_eq!(
            tenant("pending", 2, stale_error).progress(2),
            Progress::Pending
        );
        let failed = json!({"authentik": system("ok", 2), "stalwart": system("error", 2)});
        assert_eq!(
            tenant("degraded", 2, failed).progress(2),
            Progress::Failed(vec![SystemFailure {
                system: System::Stalwart,
                reason: "R".into(),
                message: "m".into()
            }])
        );
    }
}
