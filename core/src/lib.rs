//! Shared core of the dezky provisioner.
//!
//! Everything both halves of the service agree on lives here: the tenant,
//! user and subscription model as stored in MongoDB ([`model`]), the store
//! that owns collections and indexes ([`store`]), input validation
//! ([`validate`]), plan quotas ([`plans`]), the embedded `mongod`
//! supervisor ([`mongo`]) and the outbound HTTP client every upstream call
//! goes through ([`http`]).

pub mod http;
pub mod id;
pub mod model;
pub mod mongo;
pub mod plans;
pub mod store;
pub mod validate;

pub use id::{Id, Timestamp};
