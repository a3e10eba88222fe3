//! A tenant: its desired state (written by the API only) and its status
//! (written by the controller only).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::Extra;
use crate::{Id, Timestamp};

/// One workspace of the dezky platform, as stored in `tenants`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    #[serde(rename = "_id")]
    pub id: Id,
    /// Immutable, unique key used in URLs and upstream object names.
    #[cfg_attr(feature = "openapi", schema(example = "acme"))]
    pub slug: String,
    #[cfg_attr(feature = "openapi", schema(example = "Acme Inc"))]
    pub name: String,
    /// One of the configured plan names (`PLAN_QUOTAS` keys).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Plan))]
    pub plan: String,
    /// Mail domains, normalised (lowercase ASCII / punycode), unique across tenants.
    #[cfg_attr(feature = "openapi", schema(example = json!(["acme.example.com"])))]
    #[serde(default)]
    pub domains: Vec<String>,
    /// Stored keys other than the modeled ones are kept, and shown in `extra`.
    #[serde(default, deserialize_with = "stored_billing_info")]
    pub billing_info: Option<BillingInfo>,
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// When true the controller observes and reports but never writes upstream.
    #[serde(default)]
    pub paused: bool,
    /// Bumped on every change of a desired field and on a deletion request.
    #[cfg_attr(feature = "openapi", schema(example = 3))]
    pub generation: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Id of the user that created the tenant (none for the seeded default tenant).
    #[serde(default)]
    pub created_by: Option<Id>,
    #[serde(default)]
    pub deletion_requested_at: Option<Timestamp>,
    /// The latest manual reconcile request; the controller acknowledges it in
    /// `status.lastHandledReconcileToken`.
    #[serde(default)]
    pub reconcile_request: Option<ReconcileRequest>,
    /// The latest dry-run plan request (`GET /tenants/{slug}/plan`); the
    /// controller answers it in `status.plan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_request: Option<ReconcileRequest>,
    /// Systems that still have to clean up before the document may disappear.
    #[serde(default)]
    pub finalizers: Vec<System>,
    /// Passes that claimed the finalizers, which every pass that may create
    /// upstream objects does first (controller bookkeeping, not shown by
    /// the API). At 1, the pass reading it is the first that may have
    /// created anything: see [`Tenant::first_pass_for`].
    #[serde(default, skip_serializing_if = "is_zero")]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub pass_claims: i64,
    #[serde(default)]
    pub status: TenantStatus,
    /// Stored fields this service does not model (read-only; see [`Extra`]).
    #[serde(default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

impl Tenant {
    /// A new tenant at generation 1 with DESIGN's defaults: no domains, no
    /// billing info, deletion policy `delete`, not paused, no status.
    pub fn new(slug: &str, name: &str, plan: &str, now: Timestamp) -> Self {
        Tenant {
            id: Id::new(),
            slug: slug.to_string(),
            name: name.to_string(),
            plan: plan.to_string(),
            domains: Vec::new(),
            billing_info: None,
            deletion_policy: DeletionPolicy::default(),
            paused: false,
            generation: 1,
            created_at: now,
            updated_at: now,
            created_by: None,
            deletion_requested_at: None,
            reconcile_request: None,
            plan_request: None,
            finalizers: Vec::new(),
            pass_claims: 0,
            status: TenantStatus::default(),
            extra: Extra::default(),
        }
    }

    /// Whether deletion was requested.
    pub fn is_deleting(&self) -> bool {
        self.deletion_requested_at.is_some()
    }

    /// The billing e-mail, if any (no billing info and one without an
    /// e-mail are the same desired state).
    pub fn billing_email(&self) -> Option<&str> {
        self.billing_info.as_ref().and_then(|b| b.email.as_deref())
    }

    /// Whether the pass that read this tenant is the first that may create
    /// `system`'s objects: it claimed the finalizers first of all passes
    /// (`pass_claims` is 1), and no status of `system` was recorded. Then no
    /// object of the tenant can exist upstream yet, unless someone made one
    /// by hand with the expected name, which the upstream refuses to
    /// duplicate: a create may go first and a lookup follow only when it is
    /// refused. Errs toward "not first" (a failed or interrupted pass makes
    /// the next one claim again).
    pub fn first_pass_for(&self, system: System) -> bool {
        self.pass_claims == 1 && self.system_status(system).is_none()
    }

    /// Status of one system, if it was ever reconciled.
    pub fn system_status(&self, system: System) -> Option<&SystemStatus> {
        self.status.systems.get(&system)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BillingInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = "billing@acme.example.com"))]
    pub email: Option<String>,
}

/// A stored `billingInfo`: its modeled keys, whatever else it holds (those
/// keys stay in MongoDB and show in the tenant's `extra`).
fn stored_billing_info<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BillingInfo>, D::Error> {
    #[derive(Deserialize)]
    struct Stored {
        #[serde(default)]
        email: Option<String>,
    }
    Ok(Option::<Stored>::deserialize(d)?.map(|b| BillingInfo { email: b.email }))
}

/// What happens upstream when a tenant is deleted.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DeletionPolicy {
    /// Remove the tenant's upstream objects.
    #[default]
    Delete,
    /// Leave them in place; only forget about them.
    Orphan,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ReconcileRequest {
    #[cfg_attr(
        feature = "openapi",
        schema(example = "4b0e7a52-2f7c-4d2b-9a59-3c1f0f6f3e1a")
    )]
    pub token: String,
    pub requested_at: Timestamp,
}

/// The upstream systems a tenant is provisioned in.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum System {
    Authentik,
    Stalwart,
    Ocis,
}

impl System {
    /// Every system, in reconcile order.
    pub const ALL: [System; 3] = [System::Authentik, System::Stalwart, System::Ocis];

    /// The lowercase name used in status keys, finalizers, metrics and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            System::Authentik => "authentik",
            System::Stalwart => "stalwart",
            System::Ocis => "ocis",
        }
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tenant lifecycle phase, derived from the systems' states.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    #[default]
    Pending,
    Active,
    Degraded,
    Deleting,
}

/// Observed state of a tenant, written by the controller only.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    #[serde(default)]
    pub phase: Phase,
    #[serde(default)]
    pub observed_generation: i64,
    #[serde(default)]
    pub last_reconciled_at: Option<Timestamp>,
    #[serde(default)]
    pub last_handled_reconcile_token: Option<String>,
    #[serde(default)]
    pub systems: BTreeMap<System, SystemStatus>,
    /// The latest dry-run plan, computed on request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<TenantPlan>,
}

/// What the controller would change, per system, as observed by a dry run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TenantPlan {
    /// The `planRequest` token this plan answers.
    pub token: String,
    /// The generation the plan was computed for.
    pub generation: i64,
    pub computed_at: Timestamp,
    pub systems: BTreeMap<System, SystemPlan>,
}

/// One system's part of a plan.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SystemPlan {
    /// `{"action": "create|update|delete|adopt|restore|none", "object", "fields"}`.
    pub actions: Vec<PlannedAction>,
    /// Why the system cannot converge without an operator, if so.
    pub conflict: Option<String>,
    /// Why the system could not be observed (e.g. unreachable), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One change a plan foresees.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PlannedAction {
    #[cfg_attr(feature = "openapi", schema(example = "update"))]
    pub action: String,
    #[cfg_attr(feature = "openapi", schema(example = "group tenant-acme"))]
    pub object: String,
    /// `{"field": {"from": ..., "to": ...}}`.
    #[serde(default)]
    pub fields: serde_json::Value,
}

/// Coarse state of one system for one tenant.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SystemState {
    Ok,
    Skipped,
    Error,
    #[default]
    Pending,
}

impl SystemState {
    /// `ok` or `skipped`: nothing left to do for this system.
    pub fn is_settled(&self) -> bool {
        matches!(self, SystemState::Ok | SystemState::Skipped)
    }

    /// The lowercase name, as stored.
    pub fn as_str(&self) -> &'static str {
        match self {
            SystemState::Ok => "ok",
            SystemState::Skipped => "skipped",
            SystemState::Error => "error",
            SystemState::Pending => "pending",
        }
    }
}

/// Status of one system (`status.systems.<name>`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SystemStatus {
    pub state: SystemState,
    /// CamelCase machine reason: `Created`, `InSync`, `DriftCorrected`, ...
    #[cfg_attr(feature = "openapi", schema(example = "InSync"))]
    pub reason: String,
    /// Human-readable detail.
    #[serde(default)]
    pub message: String,
    /// Upstream id(s) of the objects this system manages for the tenant.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(example = "0c9a7c3e-5b1d-4c52-8d8e-1f2a3b4c5d6e")
    )]
    pub external_id: Option<String>,
    #[serde(default)]
    pub observed_generation: i64,
    /// Changes only when `state` changes.
    #[serde(default)]
    pub last_transition_at: Option<Timestamp>,
    #[serde(default)]
    pub last_synced_at: Option<Timestamp>,
    /// Number of out-of-band changes set back so far.
    #[serde(default)]
    pub drift_corrections: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Name of the upstream group (Authentik and oCIS) of a tenant.
pub fn group_name(prefix: &str, slug: &str) -> String {
    format!("{prefix}{slug}")
}
