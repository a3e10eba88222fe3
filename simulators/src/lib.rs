//! Faithful simulators of the upstream HTTP APIs the provisioner uses
//! (same paths, JSON shapes, status codes, pagination, auth and error
//! bodies as the real servers; see `shared/upstream/`). Tests and
//! `provisioner demo` / `provisioner simulate` run them on loopback, wired
//! together by [`suite`].
//!
//! Each simulator exposes a Rust handle for what a real server's operator
//! could do: inject faults ([`faults`]) and change objects out of band.

pub mod authentik;
mod endpoint;
pub mod faults;
pub mod ocis;
pub mod oidc;
mod ranked;
pub mod recording;
pub mod stalwart;
pub mod suite;
