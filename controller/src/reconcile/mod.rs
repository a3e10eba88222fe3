//! The contract between the controller runtime and the per-system
//! reconcilers (one file per upstream system).
//!
//! A [`Reconciler`] does observe → diff → act for one system and reports an
//! [`Outcome`]. It is stateless between passes: everything it needs is in the
//! tenant document (desired fields, and its own `status.systems.<name>`,
//! e.g. the stored `externalId`) and in the upstream itself. Every
//! create/update/delete it sends is idempotent, so replaying a pass is
//! harmless. In [`Mode::DryRun`] (paused tenants, plans) it only observes
//! and diffs, and reports the actions it would take.

pub mod authentik;
pub mod ocis;
pub mod stalwart;

use std::collections::BTreeMap;

use async_trait::async_trait;
use dezky_core::model::{System, SystemState, Tenant};
use serde::Serialize;

/// Whether a pass may write upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Observe, diff and act.
    Apply,
    /// Observe and diff only; report what would be done.
    DryRun,
}

impl Mode {
    /// Whether writes are allowed.
    pub fn may_write(self) -> bool {
        self == Mode::Apply
    }
}

/// Kind of change to one upstream object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Create,
    Update,
    Delete,
    /// Mark an existing unmarked object as ours.
    Adopt,
    /// Re-enable a disabled object (e.g. a trashed oCIS space).
    Restore,
}

/// One owned field that differs: observed `from`, desired `to`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    pub from: serde_json::Value,
    pub to: serde_json::Value,
}

/// A change to one upstream object, done (in [`Mode::Apply`]) or planned
/// (in [`Mode::DryRun`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Action {
    pub action: ActionKind,
    /// Human-readable object, e.g. `group tenant-acme`, `domain acme.test`.
    pub object: String,
    /// Changed owned fields (empty for create/delete of a whole object).
    pub fields: BTreeMap<String, FieldChange>,
}

impl Action {
    /// An action without field detail.
    pub fn new(action: ActionKind, object: impl Into<String>) -> Self {
        Action {
            action,
            object: object.into(),
            fields: BTreeMap::new(),
        }
    }

    /// Adds one changed field.
    pub fn field(
        mut self,
        name: impl Into<String>,
        from: impl Into<serde_json::Value>,
        to: impl Into<serde_json::Value>,
    ) -> Self {
        self.fields.insert(
            name.into(),
            FieldChange {
                from: from.into(),
                to: to.into(),
            },
        );
        self
    }
}

/// What one reconciler pass (or cleanup pass) found and did for one system.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// `Ok` when the upstream matches the desired state (after acting),
    /// `Pending` when waiting for something outside our control, `Error` when
    /// it could not converge (the runtime then backs off and retries).
    pub state: SystemState,
    /// CamelCase reason: `Created`, `InSync`, `Updated`, `Adopted`,
    /// `Restored`, `Deleted`, `Conflict`, `UpstreamError`, ... (the runtime
    /// turns a correction of a converged system into `DriftCorrected`).
    pub reason: String,
    /// Human-readable detail for `status.systems.<name>.message`.
    pub message: String,
    /// Upstream id(s) of the managed objects (`status.systems.<name>.externalId`).
    pub external_id: Option<String>,
    /// Changes done (or, in dry-run, to be done); empty when in sync.
    pub actions: Vec<Action>,
    /// For plans: why the system cannot converge without an operator
    /// (an object owned by another tenant), if so.
    pub conflict: Option<String>,
}

impl Outcome {
    /// A converged outcome.
    pub fn ok(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Outcome {
            state: SystemState::Ok,
            reason: reason.into(),
            message: message.into(),
            external_id: None,
            actions: Vec::new(),
            conflict: None,
        }
    }

    /// Sets the external id.
    pub fn with_external_id(mut self, id: impl Into<String>) -> Self {
        self.external_id = Some(id.into());
        self
    }

    /// Sets the actions.
    pub fn with_actions(mut self, actions: Vec<Action>) -> Self {
        self.actions = actions;
        self
    }
}

/// A pass that failed as a whole. `reason` is a CamelCase status reason
/// (`UpstreamError`, `Unauthorized`, `Conflict`, `DomainInUse`, `InvalidResponse`, ...).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct SystemError {
    pub reason: String,
    pub message: String,
    /// Set for conflicts: the pass must not touch the object, and plans show it.
    pub conflict: bool,
    /// Actions that did succeed before the failure (they are still recorded as events).
    pub actions: Vec<Action>,
}

impl SystemError {
    /// An error with a reason and message.
    pub fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        SystemError {
            reason: reason.into(),
            message: message.into(),
            conflict: false,
            actions: Vec::new(),
        }
    }

    /// An ownership conflict: the object belongs to someone else.
    pub fn conflict(message: impl Into<String>) -> Self {
        SystemError {
            conflict: true,
            ..SystemError::new("Conflict", message)
        }
    }
}

/// Reconciles one upstream system for one tenant at a time. Implementations
/// are shared by all workers (`Send + Sync`) and must be safe to run for
/// different tenants concurrently.
#[async_trait]
pub trait Reconciler: Send + Sync + 'static {
    /// The system this reconciler manages.
    fn system(&self) -> System;

    /// Observe the tenant's objects, diff them against `tenant`'s desired
    /// state, and (in [`Mode::Apply`]) converge them.
    async fn reconcile(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError>;

    /// A periodic resync: like [`Reconciler::reconcile`], but a tenant that
    /// the system's snapshot shows converged may be answered from it without
    /// a request. Anything else (a miss, drift) falls back to `reconcile`,
    /// which observes directly before it writes.
    async fn resync(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError> {
        self.reconcile(tenant, mode).await
    }

    /// Remove the tenant's objects after a deletion request (only called when
    /// `deletionPolicy = delete`). `Ok` with state `Ok` means nothing of the
    /// tenant is left upstream and the finalizer may go.
    async fn cleanup(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError>;
}
