//! One real `mongod` per test process (or `MONGODB_URI` if set) and a fresh
//! database per test, so tests run in parallel without seeing each other.
//!
//! Every `#[tokio::test]` has its own runtime, so the `mongod` child lives on
//! a dedicated thread with its own runtime for the life of the process; each
//! test connects with its own client. At process exit an `atexit` hook kills
//! the `mongod` and removes its temporary data directory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use dezky_core::mongo::{connect, find_mongod, EmbeddedMongo, INSTALL_HINT};
use dezky_core::store::Store;
use mongodb::bson::doc;

static URI: OnceLock<String> = OnceLock::new();
/// `(pid, data dir)` of the embedded mongod, for the exit hook.
static EMBEDDED: Mutex<Option<(i32, PathBuf)>> = Mutex::new(None);

extern "C" {
    fn atexit(callback: extern "C" fn()) -> i32;
    fn kill(pid: i32, signal: i32) -> i32;
}

extern "C" fn stop_embedded_mongod() {
    let taken = EMBEDDED.lock().ok().and_then(|mut e| e.take());
    if let Some((pid, dir)) = taken {
        // SAFETY: plain libc call on the pid of the mongod this process started.
        unsafe { kill(pid, 9) };
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The URI of the shared MongoDB, starting the embedded one on first use.
pub fn uri() -> &'static str {
    URI.get_or_init(|| match std::env::var("MONGODB_URI") {
        Ok(uri) if !uri.is_empty() => uri,
        _ => start_embedded(),
    })
}

fn start_embedded() -> String {
    let bin = find_mongod().unwrap_or_else(|| panic!("{INSTALL_HINT}"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("test-mongod".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the test mongod");
            runtime.block_on(async move {
                let dir = tempfile::Builder::new()
                    .prefix("dezky-test-mongod-")
                    .tempdir()
                    .expect("a temporary data directory")
                    .keep();
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .expect("a free port")
                    .port();
                let mongo = match EmbeddedMongo::start(&bin, &dir, port).await {
                    Ok(mongo) => mongo,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let pid = server_pid(mongo.uri()).await;
                *EMBEDDED.lock().expect("not poisoned") = Some((pid, dir));
                // SAFETY: registers a plain extern "C" fn without captures.
                unsafe { atexit(stop_embedded_mongod) };
                let _ = tx.send(Ok(mongo.uri().to_string()));
                // Keep the child (and this runtime) alive until the process exits.
                std::future::pending::<()>().await;
                drop(mongo);
            });
        })
        .expect("spawn the mongod thread");
    match rx.recv() {
        Ok(Ok(uri)) => uri,
        Ok(Err(e)) => panic!("cannot start the test mongod: {e}"),
        Err(_) => panic!("the test mongod thread died during start-up"),
    }
}

async fn server_pid(uri: &str) -> i32 {
    let client = connect(uri).await.expect("connect to the test mongod");
    let status = client
        .database("admin")
        .run_command(doc! { "serverStatus": 1 })
        .await
        .expect("serverStatus");
    status
        .get_i64("pid")
        .map(|p| p as i32)
        .or_else(|_| status.get_i32("pid"))
        .expect("serverStatus has a pid")
}

/// A store on a database no other test uses, with the indexes created.
pub async fn fresh_store() -> Store {
    // Logs of the code under test, shown for failing tests (`RUST_LOG=debug`).
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "dezky_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    store_on(&name).await
}

/// A store on database `name` through a new client (as a second process would).
pub async fn store_on(name: &str) -> Store {
    let client = connect(uri()).await.expect("connect to the test MongoDB");
    let store = Store::new(client.database(name));
    store.ensure_indexes().await.expect("create indexes");
    store
}
