//! Tests of the HTTP API against a real mongod, one file per concern.

mod access;
mod actors;
mod apply;
mod auth;
mod connections;
mod console;
mod events;
mod fleet;
mod membership;
mod openapi;
mod ops;
mod outage;
mod seed;
mod subscriptions;
mod tenant_cache;
mod tenants;
mod users;
mod validation;
mod watch;
