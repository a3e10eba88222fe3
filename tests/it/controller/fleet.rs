//! The fleet by phase (`dezky_controller::fleet`), counted from a real
//! `tenants` collection.

use dezky_controller::fleet::count;
use dezky_core::model::Phase;
use dezky_core::Timestamp;

use crate::support::mongo::fresh_store;
use crate::support::tenants::{insert, tenant};

#[tokio::test]
async fn tenants_are_counted_by_phase_with_the_oldest_unconverged_age() {
    let store = fresh_store().await;
    let now = Timestamp::now();
    let at = |seconds_ago: i64| Timestamp::from_millis(now.millis() - seconds_ago * 1000);
    let cases = [
        ("a", Phase::Active, 10, false),
        ("b", Phase::Active, 20, true),
        ("c", Phase::Pending, 30, false),
        ("d", Phase::Pending, 90, false),
        // Paused: waits for a person, so it does not age the pending figure.
        ("p", Phase::Pending, 5000, true),
        ("e", Phase::Degraded, 600, false),
        ("f", Phase::Deleting, 5, false),
    ];
    for (slug, phase, age, paused) in cases {
        let mut t = tenant(slug);
        t.status.phase = phase;
        t.updated_at = at(age);
        t.paused = paused;
        if phase == Phase::Deleting {
            t.deletion_requested_at = Some(at(age + 3600));
        }
        insert(&store, &t).await;
    }
    let fleet = count(&store, now).await.expect("count");
    assert_eq!(
        fleet.by_phase,
        [
            ("pending", 3),
            ("active", 2),
            ("degraded", 1),
            ("deleting", 1)
        ]
    );
    assert_eq!(fleet.paused, 2);
    assert_eq!(fleet.oldest_pending, 90.0);
    assert_eq!(fleet.oldest_degraded, 600.0);
    assert_eq!(fleet.oldest_deleting, 3605.0, "from the deletion request");

    let empty = count(&fresh_store().await, now).await.expect("count");
    assert!(empty.by_phase.iter().all(|(_, n)| *n == 0));
    assert_eq!(empty.oldest_pending, 0.0);
}
