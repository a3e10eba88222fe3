//! Shared test support: a real MongoDB ([`mongo`]) and a running API with an
//! OIDC simulator and per-user clients ([`api`]).

pub mod api;
pub mod fake;
pub mod mongo;
pub mod openapi;
pub mod sse;
pub mod tenants;
pub mod wait;
