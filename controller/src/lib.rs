//! The reconciliation controller: turns each tenant's recorded desired state
//! into converged upstream objects (DESIGN §6).

pub mod reconcile;
