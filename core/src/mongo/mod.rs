//! Connecting to MongoDB: either an external replica set (`MONGODB_URI`) or
//! an embedded single-node replica set supervised by this process.

mod embedded;

pub use embedded::{find_mongod, EmbeddedMongo, EmbeddedMongoError, INSTALL_HINT};

use std::time::Duration;

use mongodb::options::ClientOptions;
use mongodb::Client;

/// How long an operation of the controller (and of start-up) waits for a
/// usable server: long enough to ride out a replica-set election.
pub const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an API request waits for a usable server, so that a caller gets
/// its 503 within 2 s while MongoDB is unreachable (DESIGN §4).
pub const API_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_millis(1500);

/// Connects the controller (and start-up) to `uri` with bounded
/// server-selection and connect timeouts ([`SERVER_SELECTION_TIMEOUT`]), so
/// an unreachable database is an error instead of a hang.
///
/// Without retryable writes: every write of the controller is idempotent
/// (status guarded by generation, `$addToSet` finalizers, the lease upsert
/// by holder, events under ids chosen before the insert and inserted with
/// [`crate::store::Store::insert_events`]), and a failed pass is retried
/// whole. A retryable write costs mongod a session record per write: at
/// 10,000 new tenants, turning them off saved 0.38 ms of mongod's CPU per
/// tenant (docs/benchmarks.md).
pub async fn connect(uri: &str) -> Result<Client, mongodb::error::Error> {
    let mut options = options(uri, SERVER_SELECTION_TIMEOUT).await?;
    options.retry_writes = Some(false);
    Client::with_options(options)
}

/// Connects the API to `uri`: an operation fails after
/// [`API_SERVER_SELECTION_TIMEOUT`] without a usable server, and writes are
/// retryable, as the driver defaults (a client's create must not fail or
/// duplicate over a lost answer).
pub async fn connect_api(uri: &str) -> Result<Client, mongodb::error::Error> {
    Client::with_options(options(uri, API_SERVER_SELECTION_TIMEOUT).await?)
}

/// Options with a `selection` server-selection timeout and a connect
/// timeout of at most `selection` (and 5 s).
async fn options(uri: &str, selection: Duration) -> Result<ClientOptions, mongodb::error::Error> {
    let mut options = ClientOptions::parse(uri).await?;
    options.server_selection_timeout = Some(selection);
    options.connect_timeout = Some(selection.min(Duration::from_secs(5)));
    options.app_name = Some("dezky-provisioner".into());
    Ok(options)
}
