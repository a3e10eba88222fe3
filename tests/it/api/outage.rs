//! MongoDB going away: while it is unreachable, requests that need it are
//! answered 503 `database_unavailable` within about 2 s (not after the
//! driver's default 30 s or the controller's 10 s), the process keeps
//! running, and it answers again by itself once MongoDB is back. A real
//! `mongod` of this test's own is killed and restarted on the same port.
//!
//! A read the tenant cache can answer, by a caller whose user record is
//! cached, may still be answered from memory for up to `FRESH_FOR` (1 s,
//! the same bound as the actor cache) after MongoDB last answered; after
//! that it is a 503 like everything else.

use std::time::{Duration, Instant};

use dezky_api::tenant_cache::FRESH_FOR;
use dezky_core::mongo::{connect_api, find_mongod, EmbeddedMongo};
use dezky_core::store::Store;

use crate::support::api::TestApi;
use crate::support::wait::until;

/// Upper bound checked for a 503: the API's 1.5 s server selection plus
/// room for a loaded test machine, and far below the 10 s it took before.
const ANSWER_LIMIT: Duration = Duration::from_secs(4);

#[tokio::test]
async fn requests_fail_fast_with_503_while_mongodb_is_down_and_recover_when_it_is_back() {
    let bin = find_mongod().expect("a mongod (scripts/install-mongod.sh)");
    let data = tempfile::tempdir().expect("a data directory");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mongo = EmbeddedMongo::start(&bin, data.path(), port)
        .await
        .expect("start mongod");
    let client = connect_api(mongo.uri()).await.expect("a client");
    let store = Store::new(client.database("outage"));
    store.ensure_indexes().await.expect("indexes");
    let api = TestApi::start_on(store, |_| {}).await;
    let admin = api.admin().await;
    api.create_tenant(&admin, "acme").await;
    admin.get("/tenants/acme").await.expect_status(200);

    mongo.kill().await;
    let killed = Instant::now();
    let newcomer = api.with_token(&api.token("newcomer", &[]));
    let started = Instant::now();
    let reply = newcomer.get("/users/me").await;
    let took = started.elapsed();
    reply.expect_error(503, "database_unavailable");
    assert!(took < ANSWER_LIMIT, "a new caller: 503 after {took:?}");

    // A cached caller reading a cached tenant: from memory for FRESH_FOR at
    // most (plus room for the stream task on a loaded machine), then 503.
    let limit = FRESH_FOR + Duration::from_millis(500);
    loop {
        let started = Instant::now();
        let reply = admin.get("/tenants/acme").await;
        let took = started.elapsed();
        assert!(
            took < ANSWER_LIMIT,
            "a cached caller: answered after {took:?}"
        );
        if reply.status == 503 {
            reply.expect_error(503, "database_unavailable");
            break;
        }
        reply.expect_status(200);
        let after = started.duration_since(killed);
        assert!(
            after < limit,
            "answered from memory {after:?} after mongod died"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api.anonymous().get("/healthz").await.expect_status(200);

    let mongo = EmbeddedMongo::start(&bin, data.path(), port)
        .await
        .expect("restart mongod");
    let tenant = until("the API answers again", Duration::from_secs(30), || async {
        let reply = admin.get("/tenants/acme").await;
        (reply.status == 200).then_some(reply.body)
    })
    .await;
    assert_eq!(tenant["slug"], "acme");
    mongo.shutdown().await;
}
