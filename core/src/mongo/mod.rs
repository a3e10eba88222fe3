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

/// Connects to `uri` with bounded server-selection and connect timeouts
/// ([`SERVER_SELECTION_TIMEOUT`]), so an unreachable database is an error
/// instead of a hang.
pub async fn connect(uri: &str) -> Result<Client, mongodb::error::Error> {
    connect_within(uri, SERVER_SELECTION_TIMEOUT).await
}

/// Connects to `uri`; an operation fails after `selection` without a usable
/// server, and opening a connection takes at most `selection` (and 5 s).
pub async fn connect_within(
    uri: &str,
    selection: Duration,
) -> Result<Client, mongodb::error::Error> {
    let mut options = ClientOptions::parse(uri).await?;
    options.server_selection_timeout = Some(selection);
    options.connect_timeout = Some(selection.min(Duration::from_secs(5)));
    options.app_name = Some("dezky-provisioner".into());
    Client::with_options(options)
}
