//! Tests of the HTTP API against a real mongod, one file per concern.

mod access;
mod auth;
mod events;
mod openapi;
mod ops;
mod seed;
mod subscriptions;
mod tenants;
mod users;
mod validation;
