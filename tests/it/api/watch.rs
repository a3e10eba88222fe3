//! `GET /tenants?watch=true`: the current state first, then every change,
//! filtered by authorization exactly like `GET /tenants`; resumable with
//! `Last-Event-ID`; heartbeats; a slow client is dropped.

use std::collections::BTreeSet;
use std::time::Duration;

use dezky_core::model::Tenant;
use dezky_core::Timestamp;
use mongodb::bson::doc;
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::api::{Client, TestApi};
use crate::support::sse::{SseEvent, SseStream};

async fn open(client: &Client<'_>, query: &str, last_id: Option<&str>) -> SseStream {
    let mut request = client.request(Method::GET, &format!("/tenants?watch=true{query}"));
    if let Some(id) = last_id {
        request = request.header("Last-Event-ID", id);
    }
    let response = request.send().await.expect("the API answers");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    SseStream::new(response)
}

fn slugs(events: &[SseEvent], kind: &str) -> BTreeSet<String> {
    events
        .iter()
        .filter(|e| e.event == kind)
        .map(SseEvent::slug)
        .collect()
}

/// The stream position of an event id (`time.increment.ordinal-scope`), comparable.
fn position(event: &SseEvent) -> (u32, u32, u32) {
    let id = event.id.as_deref().expect("an id");
    let (position, _) = id.rsplit_once('-').expect("position-scope");
    let parts: Vec<u32> = position.split('.').map(|p| p.parse().unwrap()).collect();
    (parts[0], parts[1], parts[2])
}

fn set(slugs: &[&str]) -> BTreeSet<String> {
    slugs.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn a_watch_sends_the_current_state_then_every_change_with_ids() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    api.create_tenant(&admin, "acme").await;
    api.create_tenant(&admin, "globex").await;

    let mut watch = open(&admin, "", None).await;
    let start = watch.until_synced().await;
    assert_eq!(start[0].event, "reset");
    assert_eq!(
        start[0].id.as_deref(),
        Some(""),
        "a reset clears the last id"
    );
    assert!(slugs(&start, "added").is_superset(&set(&["acme", "globex"])));
    assert!(start[1..start.len() - 1]
        .iter()
        .all(|e| e.event == "added" && e.id.is_none()));
    let synced = start.last().unwrap();
    assert!(synced.id.as_deref().is_some_and(|id| !id.is_empty()));

    api.create_tenant(&admin, "initech").await;
    let added = watch.event().await;
    assert_eq!(
        (added.event.as_str(), added.slug()),
        ("added", "initech".into())
    );
    assert_eq!(added.json()["status"]["phase"], "pending");

    admin
        .patch("/tenants/initech", json!({"name": "Initech LLC"}))
        .await
        .expect_status(200);
    let modified = watch.event().await;
    assert_eq!(modified.event, "modified");
    assert_eq!(modified.json()["name"], "Initech LLC");
    assert_eq!(modified.json()["generation"], 2);
    assert!(
        position(&modified) > position(&added),
        "{:?} after {:?}",
        modified.id,
        added.id
    );

    api.store
        .tenants
        .delete_one(doc! { "slug": "initech" })
        .await
        .unwrap();
    let deleted = watch.event().await;
    assert_eq!(
        (deleted.event.as_str(), deleted.slug()),
        ("deleted", "initech".into())
    );
    assert_eq!(deleted.json()["name"], "Initech LLC", "the last state");
}

#[tokio::test]
async fn a_member_watches_only_their_tenants_and_follows_membership_changes() {
    let api = TestApi::start().await;
    let alice = api.user("alice", &[]).await;
    let bob = api.user("bob", &[]).await;
    api.create_tenant(&alice, "acme").await;
    api.create_tenant(&bob, "globex").await;

    let mut watch = open(&alice, "", None).await;
    let start = watch.until_synced().await;
    assert_eq!(slugs(&start, "added"), set(&["acme"]));

    // Another caller's tenant changes: nothing for alice; her own does.
    bob.patch("/tenants/globex", json!({"name": "Globex 2"}))
        .await
        .expect_status(200);
    alice
        .patch("/tenants/acme", json!({"name": "Acme 2"}))
        .await
        .expect_status(200);
    let next = watch.event().await;
    assert_eq!(
        (next.event.as_str(), next.slug()),
        ("modified", "acme".into())
    );

    // Alice joins globex (out of band, like another process would): it appears.
    let globex = api
        .store
        .tenants
        .find_one(doc! {"slug": "globex"})
        .await
        .unwrap()
        .unwrap();
    api.store
        .users
        .update_one(
            doc! {"authentikSubjectId": "alice"},
            doc! {"$addToSet": {"tenantIds": globex.id.0}},
        )
        .await
        .unwrap();
    let joined = watch.event().await;
    assert_eq!(
        (joined.event.as_str(), joined.slug()),
        ("added", "globex".into())
    );
    assert!(joined.id.as_deref().is_some_and(|id| !id.is_empty()));

    // And leaves it: it disappears.
    api.store
        .users
        .update_one(
            doc! {"authentikSubjectId": "alice"},
            doc! {"$pull": {"tenantIds": globex.id.0}},
        )
        .await
        .unwrap();
    let left = watch.event().await;
    assert_eq!(
        (left.event.as_str(), left.slug()),
        ("deleted", "globex".into())
    );
}

#[tokio::test]
async fn last_event_id_resumes_without_gaps_and_an_unknown_one_starts_fresh() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    api.create_tenant(&admin, "acme").await;
    let mut watch = open(&admin, "", None).await;
    let synced = watch.until_synced().await.pop().unwrap();
    drop(watch);

    // Changes while disconnected.
    api.create_tenant(&admin, "globex").await;
    for name in ["Acme 2", "Acme 3"] {
        admin
            .patch("/tenants/acme", json!({ "name": name }))
            .await
            .expect_status(200);
    }
    let mut resumed = open(&admin, "", synced.id.as_deref()).await;
    let first = resumed.event().await;
    assert_eq!(
        (first.event.as_str(), first.slug()),
        ("added", "globex".into())
    );
    let second = resumed.event().await;
    assert_eq!(second.json()["name"], "Acme 2");
    let third = resumed.event().await;
    assert_eq!(third.json()["name"], "Acme 3");
    assert!(position(&first) < position(&second) && position(&second) < position(&third));

    // Resuming from the middle replays only what followed.
    drop(resumed);
    let mut again = open(&admin, "", second.id.as_deref()).await;
    assert_eq!(again.event().await.json()["name"], "Acme 3");

    // A position older than the history, or garbage: a fresh full state.
    let scope = synced.id.as_deref().unwrap().rsplit_once('-').unwrap().1;
    for stale in [format!("1.1.0-{scope}"), "nonsense".to_string()] {
        let mut fresh = open(&admin, "", Some(&stale)).await;
        let start = fresh.until_synced().await;
        assert_eq!(start[0].event, "reset", "{stale}");
        assert!(slugs(&start, "added").is_superset(&set(&["acme", "globex"])));
    }

    // An id issued for another visibility (here: another slug filter) too.
    let mut narrowed = open(&admin, "&slug=acme", synced.id.as_deref()).await;
    assert_eq!(narrowed.event().await.event, "reset");
}

#[tokio::test]
async fn slug_narrows_the_watch_to_one_tenant() {
    let api = TestApi::start().await;
    let admin = api.admin().await;
    api.create_tenant(&admin, "acme").await;
    api.create_tenant(&admin, "globex").await;
    let mut watch = open(&admin, "&slug=globex", None).await;
    let start = watch.until_synced().await;
    assert_eq!(slugs(&start, "added"), set(&["globex"]));
    admin
        .patch("/tenants/acme", json!({"name": "Acme 2"}))
        .await
        .expect_status(200);
    admin
        .patch("/tenants/globex", json!({"name": "Globex 2"}))
        .await
        .expect_status(200);
    let next = watch.event().await;
    assert_eq!(
        (next.event.as_str(), next.json()["name"].clone()),
        ("modified", json!("Globex 2"))
    );

    // A member cannot watch a tenant they do not see: an empty state.
    let eve = api.user("eve", &[]).await;
    let mut theirs = open(&eve, "&slug=globex", None).await;
    let start = theirs.until_synced().await;
    assert!(slugs(&start, "added").is_empty());
}

#[tokio::test]
async fn a_watch_needs_a_token_and_rejects_bad_parameters() {
    let api = TestApi::start().await;
    api.anonymous()
        .get("/tenants?watch=true")
        .await
        .expect_error(401, "unauthorized");
    let admin = api.admin().await;
    let error = admin
        .get("/tenants?watch=yes")
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(error["field"], "watch");
    let error = admin
        .get("/tenants?slug=acme")
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(error["field"], "slug");
}

#[tokio::test]
async fn an_idle_watch_gets_heartbeats() {
    let api =
        TestApi::start_with(|config| config.watch_heartbeat = Duration::from_millis(200)).await;
    let admin = api.admin().await;
    let mut watch = open(&admin, "", None).await;
    watch.until_synced().await;
    let beat = watch
        .next_within(Duration::from_secs(5))
        .await
        .expect("the stream goes on");
    assert_eq!(
        (beat.event.as_str(), beat.data.as_str()),
        ("comment", "heartbeat")
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_not_buffered_for() {
    let api = TestApi::start().await;
    let token = api.token("root", &[crate::support::api::ADMIN_GROUP]);
    api.with_token(&token)
        .get("/users/me")
        .await
        .expect_status(200);

    // A client with a tiny receive window that never reads.
    let addr: std::net::SocketAddr = api.url.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!(
        "GET /tenants?watch=true HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();

    // Far more changes than the feed's backlog.
    let now = Timestamp::now();
    let tenants: Vec<Tenant> = (0..4000)
        .map(|i| {
            let mut tenant = Tenant::new(&format!("bulk-{i:05}"), &"x".repeat(90), "team", now);
            tenant.domains = (0..4).map(|d| format!("d{d}-{i}.bulk.test")).collect();
            tenant
        })
        .collect();
    api.store.tenants.insert_many(tenants).await.unwrap();

    // The server ends the stream: reading what was buffered reaches EOF.
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        let mut total = 0usize;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    })
    .await
    .expect("the server drops the slow client");
    // It got the start and some changes, not all 4000 (about 2.5 MB).
    assert!(drained < 2_000_000, "read {drained} bytes");
}
