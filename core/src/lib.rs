//! Shared core of the dezky provisioner.
//!
//! Everything both halves of the service agree on lives here: the tenant,
//! user and subscription model as stored in MongoDB ([`model`]), the store
//! that owns collections and indexes ([`store`]), input validation
//! ([`validate`]), plan quotas ([`plans`]), the embedded `mongod`
//! supervisor ([`mongo`]) and the outbound HTTP client every upstream call
//! goes through ([`http`]). With feature `openapi`, [`schema`] and the
//! models' derived schemas describe the JSON forms for the API's document.

pub mod http;
pub mod id;
pub mod migrate;
pub mod model;
pub mod mongo;
pub mod plans;
#[cfg(feature = "openapi")]
pub mod schema;
pub mod secret;
pub mod store;
pub mod validate;

pub use id::{Id, Timestamp};
