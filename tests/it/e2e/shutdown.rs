//! Shutdown with the embedded MongoDB: SIGTERM to the process group of
//! `provisioner serve` (what `timeout`, Ctrl-C in a terminal and container
//! runtimes send) reaches the provisioner only; the embedded `mongod` is in
//! a group of its own and is stopped last, after the controller saved its
//! resume token and released its lease. Nothing is logged as a warning on
//! the way, and no log line carries a raw server document.

use dezky_controller::lease::CONTROLLER_LEASE;
use dezky_core::mongo::{connect, find_mongod, EmbeddedMongo};
use dezky_core::store::Store;
use mongodb::bson::doc;

use super::harness::{Stack, CONVERGE_LIMIT};
use crate::support::wait::until;

#[tokio::test]
async fn sigterm_to_the_process_group_releases_the_lease_before_the_embedded_mongod_stops() {
    let stack = Stack::start().await;
    let data = tempfile::tempdir().expect("a data directory");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut serve = stack.spawn_embedded("serve", data.path(), port).await;
    let uri = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    let store = Store::new(connect(&uri).await.expect("a client").database(&stack.db));
    let holder = until("serve holds the lease", CONVERGE_LIMIT, || async {
        let lease = store
            .leases
            .find_one(doc! { "_id": CONTROLLER_LEASE })
            .await
            .ok()??;
        lease.get_str("holder").ok().map(str::to_owned)
    })
    .await;
    assert!(holder.contains(&format!("/{}/", serve.pid)), "{holder}");
    let api = stack.admin(&serve).await;
    api.create_tenant("before-stop", "Before Stop", &["before-stop.test"])
        .await;
    api.converged("before-stop").await;

    let status = serve.terminate_group().await;
    assert!(status.success(), "clean exit: {status}");
    let log = std::fs::read_to_string(&serve.log).expect("the log");
    let noisy: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("RawDocumentBuf"))
        .collect();
    assert!(
        noisy.is_empty(),
        "warnings during shutdown:\n{}",
        noisy.join("\n")
    );

    // What the provisioner left in its database, seen after a restart.
    let bin = find_mongod().expect("a mongod binary");
    let mongo = EmbeddedMongo::start(&bin, data.path(), port)
        .await
        .expect("restart the embedded mongod");
    let store = Store::new(
        connect(mongo.uri())
            .await
            .expect("a client")
            .database(&stack.db),
    );
    let lease = store
        .leases
        .find_one(doc! { "_id": CONTROLLER_LEASE })
        .await
        .expect("read the lease");
    assert_eq!(lease, None, "the lease was released");
    let resume = store
        .controller_state
        .find_one(doc! { "_id": "tenants-watch" })
        .await
        .expect("read the controller state")
        .expect("a saved resume token");
    assert!(resume.get("resumeToken").is_some(), "{resume}");
    mongo.shutdown().await;
}
