//! Opens the store: an external replica set (`MONGODB_URI`) or an embedded
//! `mongod` this process starts and stops. A server opens it with
//! [`Database::open`], which first brings the stored schema to this
//! build's version (see `dezky_core::migrate`: one process migrates, the
//! others wait), then ensures the indexes.

use anyhow::{bail, Context};
use dezky_core::migrate;
use dezky_core::mongo::{self, EmbeddedMongo, INSTALL_HINT};
use dezky_core::store::Store;
use tracing::info;

use crate::config::MongoArgs;

/// An open store, and the embedded server behind it if there is one.
pub struct Database {
    /// The controller's (and start-up's) store: operations wait up to
    /// [`mongo::SERVER_SELECTION_TIMEOUT`] for a server, riding out elections.
    pub store: Store,
    /// The API's store, on its own client: a request fails with 503 after
    /// [`mongo::API_SERVER_SELECTION_TIMEOUT`] without a server.
    pub api_store: Store,
    embedded: Option<EmbeddedMongo>,
}

impl Database {
    /// Connects (starting the embedded `mongod` if no URI is set),
    /// migrates the schema if it is older than this build's, and ensures
    /// the indexes.
    pub async fn open(args: &MongoArgs) -> anyhow::Result<Self> {
        let db = Database::connect(args).await?;
        let holder = format!("{}/{}", std::process::id(), uuid::Uuid::new_v4());
        let migrated = migrate::ensure_current(&db.store, &holder)
            .await
            .context("migrating the stored schema (see `provisioner migrate --dry-run`)")?;
        if let Some(report) = migrated {
            for line in report.to_string().lines() {
                info!("{line}");
            }
        }
        db.store
            .ensure_indexes()
            .await
            .with_context(|| format!("creating the indexes of database `{}`", args.mongodb_db))?;
        Ok(db)
    }

    /// Connects (starting the embedded `mongod` if no URI is set), and
    /// checks that MongoDB answers; writes nothing.
    pub async fn connect(args: &MongoArgs) -> anyhow::Result<Self> {
        let (uri, embedded) = match &args.mongodb_uri {
            Some(uri) => (uri.clone(), None),
            None => {
                let bin = match args.mongod_bin.clone().or_else(mongo::find_mongod) {
                    Some(bin) => bin,
                    None => bail!("{INSTALL_HINT}"),
                };
                info!(bin = %bin.display(), data = %args.mongod_data_dir.display(), port = args.mongod_port, "starting embedded mongod");
                let server = EmbeddedMongo::start(&bin, &args.mongod_data_dir, args.mongod_port)
                    .await
                    .context("starting the embedded mongod")?;
                (server.uri().to_string(), Some(server))
            }
        };
        let client = mongo::connect(&uri).await.context("parsing MONGODB_URI")?;
        let store = Store::new(client.database(&args.mongodb_db));
        store
            .db
            .run_command(mongodb::bson::doc! { "ping": 1 })
            .await
            .with_context(|| format!("cannot reach MongoDB at {}", redact(&uri)))?;
        let api_client = mongo::connect_api(&uri)
            .await
            .context("parsing MONGODB_URI")?;
        let api_store = Store::new(api_client.database(&args.mongodb_db));
        Ok(Database {
            store,
            api_store,
            embedded,
        })
    }

    /// Stops the embedded `mongod`, if any, cleanly. Call it last, once
    /// nothing uses the database any more.
    pub async fn close(self) {
        if let Some(server) = self.embedded {
            server.shutdown().await;
        }
    }
}

/// The URI without its password, for messages.
fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &uri[..scheme + 3], &uri[at..])
        }
        _ => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(super::redact("mongodb://u:p@h:1/x"), "mongodb://***@h:1/x");
        assert_eq!(super::redact("mongodb://h:1/x"), "mongodb://h:1/x");
    }
}
