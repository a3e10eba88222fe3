//! Connecting to MongoDB: either an external replica set (`MONGODB_URI`) or
//! an embedded single-node replica set supervised by this process.

mod embedded;

pub use embedded::{find_mongod, EmbeddedMongo, EmbeddedMongoError, INSTALL_HINT};

use std::time::Duration;

use mongodb::options::ClientOptions;
use mongodb::Client;

/// Connects to `uri` with bounded server-selection and connect timeouts, so
/// an unreachable database is an error instead of a hang.
pub async fn connect(uri: &str) -> Result<Client, mongodb::error::Error> {
    let mut options = ClientOptions::parse(uri).await?;
    options.server_selection_timeout = Some(Duration::from_secs(10));
    options.connect_timeout = Some(Duration::from_secs(5));
    options.app_name = Some("dezky-provisioner".into());
    Client::with_options(options)
}
