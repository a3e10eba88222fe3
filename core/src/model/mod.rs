//! The documents the provisioner stores, in the shape DESIGN §3 fixes.
//! Field names are camelCase in MongoDB and in the API alike.

mod event;
mod extra;
mod spec;
mod subscription;
mod tenant;
mod user;

pub use event::{EventAction, TenantEvent};
pub use extra::Extra;
pub use spec::TenantSpec;
pub use subscription::{Subscription, SubscriptionStatus};
pub use tenant::{
    group_name, BillingInfo, DeletionPolicy, Phase, PlannedAction, ReconcileRequest, System,
    SystemPlan, SystemState, SystemStatus, Tenant, TenantPlan, TenantStatus,
};
pub use user::{Role, User};
