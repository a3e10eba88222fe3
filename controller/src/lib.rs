//! The reconciliation controller: turns each tenant's recorded desired state
//! into converged upstream objects (DESIGN §6).

pub mod backoff;
pub mod fleet;
pub mod group;
pub use dezky_core::store::lease;
pub mod pass;
pub mod plan;
pub mod queue;
pub mod reconcile;
pub mod runtime;
pub mod slot;
pub mod snapshot;
pub mod status;
pub mod watch;

pub use runtime::{Controller, ControllerConfig, ControllerHealth};
