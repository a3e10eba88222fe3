//! The grouped reads and writes of passes (`dezky_controller::group`)
//! against a real `mongod`: however requests are batched, each pass gets
//! its own outcome, a claim is recorded before its tenant is read, and a
//! refused status or an undecodable tenant fails only its own pass.

use dezky_controller::group::{PassIo, PassWrite};
use dezky_core::model::{Phase, System};
use dezky_core::store::StoreError;
use dezky_core::{Id, Timestamp};
use mongodb::bson::doc;

use super::history::event;
use crate::support::mongo::fresh_store;
use crate::support::tenants::{insert, tenant};

#[tokio::test]
async fn a_claim_is_recorded_before_its_tenant_is_read() {
    let store = fresh_store().await;
    let io = PassIo::start(&store);
    let claimed = insert(&store, &tenant("claimed")).await;
    let mut deleting = tenant("leaving");
    deleting.deletion_requested_at = Some(Timestamp::now());
    let leaving = insert(&store, &deleting).await;
    let plain = insert(&store, &tenant("plain")).await;
    let (claimed, leaving, plain, missing) = tokio::join!(
        io.reads
            .read(claimed, vec![System::Authentik, System::Ocis]),
        io.reads.read(leaving, vec![System::Authentik]),
        io.reads.read(plain, Vec::new()),
        io.reads.read(Id::new(), vec![System::Authentik]),
    );
    let claimed = claimed.expect("read").expect("exists");
    assert_eq!(claimed.finalizers, [System::Authentik, System::Ocis]);
    let leaving = leaving.expect("read").expect("exists");
    assert!(leaving.finalizers.is_empty(), "no claim while deleting");
    assert_eq!(leaving.slug, "leaving");
    let plain = plain.expect("read").expect("exists");
    assert!(plain.finalizers.is_empty(), "a resync pass only reads");
    assert!(missing.expect("read").is_none());
}

#[tokio::test]
async fn a_refused_status_fails_only_its_own_pass() {
    let store = fresh_store().await;
    let io = PassIo::start(&store);
    let good = insert(&store, &tenant("good")).await;
    let bad = insert(&store, &tenant("bad")).await;
    let write = |id: Id, generation: i64, update| PassWrite {
        events: vec![event(id, "group")],
        filter: doc! { "_id": id, "generation": generation },
        update,
    };
    let (good_done, bad_done, stale_done) = tokio::join!(
        io.commits.commit(write(
            good,
            1,
            doc! { "$set": { "status.phase": "active" } }
        )),
        // `$inc` of a string: MongoDB refuses this statement only.
        io.commits
            .commit(write(bad, 1, doc! { "$inc": { "slug": 1 } })),
        // A tenant that moved on during the pass: nothing written, no error.
        io.commits.commit(write(
            good,
            7,
            doc! { "$set": { "status.phase": "degraded" } }
        )),
    );
    good_done.expect("the good status is written");
    assert!(
        matches!(bad_done, Err(StoreError::Refused { code: 14, .. })),
        "{bad_done:?}"
    );
    stale_done.expect("a status for an older generation is skipped, not an error");
    let stored = store
        .tenants
        .find_one(doc! { "_id": good })
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(stored.status.phase, Phase::Active);
    for (id, events) in [(good, 2), (bad, 1)] {
        let stored = store
            .events
            .count_documents(doc! { "tenantId": id })
            .await
            .expect("count");
        assert_eq!(stored, events, "events go first, each stored once");
    }
}

#[tokio::test]
async fn a_tenant_that_does_not_decode_fails_only_its_own_read() {
    let store = fresh_store().await;
    let io = PassIo::start(&store);
    let good = insert(&store, &tenant("good")).await;
    let broken = Id::new();
    store
        .tenants
        .clone_with_type::<mongodb::bson::Document>()
        .insert_one(doc! { "_id": broken, "slug": 42 })
        .await
        .expect("insert a broken tenant");
    let (good_read, broken_read) = tokio::join!(
        io.reads.read(good, vec![System::Authentik]),
        io.reads.read(broken, Vec::new()),
    );
    let good_read = good_read.expect("read").expect("exists");
    assert_eq!(good_read.finalizers, [System::Authentik]);
    assert!(
        matches!(&broken_read, Err(StoreError::Undecodable(e)) if e.field == "slug"),
        "{broken_read:?}"
    );
}
