//! The integration-test binary: tests that need a real `mongod`, the
//! simulators or the whole HTTP stack. `support` starts one `mongod` per
//! process and gives every test its own database.

mod api;
mod controller;
mod demo;
mod e2e;
mod support;
