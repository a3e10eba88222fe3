//! The fleet at a glance, for alerts and dashboards: the leading
//! controller counts tenants by phase every [`EVERY`] with one aggregation
//! over `tenants` (a collection scan of a few fields: about 20 ms at 10,000
//! tenants) and exports `tenants{phase}`, `tenants_paused` and
//! `tenants_oldest_unconverged_seconds{phase}` (`pending`, `degraded`: the
//! age of the oldest desired change not converged yet, paused tenants left
//! out; `deleting`: the age of the oldest deletion request still under way;
//! 0 when none). A
//! controller that stops leading sets them to 0, so the leader's figures
//! are the only ones that count under `max`.

use std::time::Duration;

use dezky_core::store::Store;
use dezky_core::Timestamp;
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use tracing::warn;

/// How often the figures are refreshed.
pub const EVERY: Duration = Duration::from_secs(30);

/// Every phase, as stored in `status.phase`.
const PHASES: [&str; 4] = ["pending", "active", "degraded", "deleting"];

/// The figures of one count.
#[derive(Debug, Default, PartialEq)]
pub struct Fleet {
    /// Tenants by phase name (every phase present).
    pub by_phase: Vec<(&'static str, u64)>,
    pub paused: u64,
    /// Seconds since the oldest `updatedAt` of a pending and a degraded tenant.
    pub oldest_pending: f64,
    pub oldest_degraded: f64,
    /// Seconds since the oldest `deletionRequestedAt` of a deleting tenant.
    pub oldest_deleting: f64,
}

impl Fleet {
    /// No tenant in any phase.
    fn empty() -> Self {
        Fleet {
            by_phase: PHASES.iter().map(|name| (*name, 0)).collect(),
            ..Fleet::default()
        }
    }
}

/// Counts the fleet now.
pub async fn count(store: &Store, now: Timestamp) -> Result<Fleet, mongodb::error::Error> {
    let pipeline = [doc! { "$group": {
        "_id": "$status.phase",
        "count": { "$sum": 1 },
        "paused": { "$sum": { "$cond": [ { "$eq": ["$paused", true] }, 1, 0 ] } },
        // A paused tenant waits for a person, not for the controller.
        "oldest": { "$min": { "$cond": [ { "$eq": ["$paused", true] }, null, "$updatedAt" ] } },
        "oldestDeletion": { "$min": "$deletionRequestedAt" },
    } }];
    let groups: Vec<Document> = store
        .tenants
        .clone_with_type::<Document>()
        .aggregate(pipeline)
        .await?
        .with_type::<Document>()
        .try_collect()
        .await?;
    let mut fleet = Fleet::empty();
    for group in &groups {
        // A tenant never reconciled has no phase yet: it is pending.
        let phase = group.get_str("_id").unwrap_or("pending");
        let count = number(group.get("count"));
        fleet.paused += number(group.get("paused"));
        if let Some(entry) = fleet.by_phase.iter_mut().find(|(name, _)| *name == phase) {
            entry.1 += count;
        }
        let age = |field: &str| match group.get(field) {
            Some(Bson::DateTime(at)) => (now.millis() - at.timestamp_millis()).max(0) as f64 / 1e3,
            _ => 0.0,
        };
        match phase {
            "pending" => fleet.oldest_pending = fleet.oldest_pending.max(age("oldest")),
            "degraded" => fleet.oldest_degraded = fleet.oldest_degraded.max(age("oldest")),
            "deleting" => fleet.oldest_deleting = fleet.oldest_deleting.max(age("oldestDeletion")),
            _ => {}
        }
    }
    Ok(fleet)
}

fn number(value: Option<&Bson>) -> u64 {
    match value {
        Some(Bson::Int32(n)) => u64::try_from(*n).unwrap_or_default(),
        Some(Bson::Int64(n)) => u64::try_from(*n).unwrap_or_default(),
        _ => 0,
    }
}

/// Exports `fleet`.
pub fn export(fleet: &Fleet) {
    for (phase, count) in &fleet.by_phase {
        metrics::gauge!("tenants", "phase" => *phase).set(*count as f64);
    }
    metrics::gauge!("tenants_paused").set(fleet.paused as f64);
    metrics::gauge!("tenants_oldest_unconverged_seconds", "phase" => "pending")
        .set(fleet.oldest_pending);
    metrics::gauge!("tenants_oldest_unconverged_seconds", "phase" => "degraded")
        .set(fleet.oldest_degraded);
    metrics::gauge!("tenants_oldest_unconverged_seconds", "phase" => "deleting")
        .set(fleet.oldest_deleting);
}

/// Counts and exports every [`EVERY`] until dropped (the leader's task);
/// a failed count is logged and the figures kept until the next.
pub async fn report(store: Store) {
    loop {
        match count(&store, Timestamp::now()).await {
            Ok(fleet) => export(&fleet),
            Err(e) => warn!(error = %e.kind, "cannot count the fleet by phase"),
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// What a controller that does not lead exports: zeros.
pub fn clear() {
    export(&Fleet::empty());
}
