//! End-to-end tests: the real `provisioner` binary (`serve`, or `api` and
//! `controller` as separate processes) driven over HTTP, against the test
//! `mongod` (a fresh database per test) and the three upstream simulators
//! running in this test process, so a test can break things out of band
//! through the simulators' Rust handles and watch the binary heal them.
//! [`cli`] runs the binary's client commands against a running `serve`.

mod cli;
mod harness;
mod healing;
mod interrupted;
mod lifecycle;
mod plan;
mod processes;
mod secrets;
mod shutdown;
mod takeover;
mod undecodable;
