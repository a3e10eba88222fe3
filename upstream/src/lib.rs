//! Typed HTTP clients of the upstream APIs the provisioner manages. Each
//! module follows the real server's API (`shared/upstream/`), not the
//! simulators' convenience; every call goes through
//! [`dezky_core::http::send`] (timeouts, metrics).

pub mod authentik;
mod json_list;
pub mod ocis;
pub mod oidc_token;
pub mod stalwart;
