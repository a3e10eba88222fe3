//! Leader election through a lease document in `leases`.
//!
//! Invariant: at most one holder has an unexpired lease at any time. A
//! holder acquires or renews with one conditional upsert (`holder == me` or
//! `expiresAt < now`); a competing insert fails on the unique `_id`. Expiry
//! is judged by each process's clock, so clocks of controller hosts must
//! agree to well within the lease duration (NTP).

use std::time::Duration;

use super::{is_duplicate_key, Store};
use crate::Timestamp;
use mongodb::bson::{doc, Document};

/// Id of the controller's lease document.
pub const CONTROLLER_LEASE: &str = "controller";

/// One process's claim on a lease.
#[derive(Clone, Debug)]
pub struct Lease {
    leases: mongodb::Collection<Document>,
    name: String,
    /// Unique per process run, so a restarted process never mistakes an old claim for its own.
    holder: String,
    duration: Duration,
}

impl Lease {
    /// A claim on lease `name` by `holder`, valid for `duration` after each renewal.
    pub fn new(store: &Store, name: &str, holder: String, duration: Duration) -> Self {
        Lease {
            leases: store.leases.clone(),
            name: name.to_string(),
            holder,
            duration,
        }
    }

    /// This process's holder id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Acquires or renews the lease. `Ok(true)` = held until now + duration.
    pub async fn try_acquire(&self) -> Result<bool, mongodb::error::Error> {
        let now = Timestamp::now();
        let expires = Timestamp::from_millis(now.millis() + self.duration.as_millis() as i64);
        let filter = doc! {
            "_id": &self.name,
            "$or": [ { "holder": &self.holder }, { "expiresAt": { "$lt": now.to_bson() } } ],
        };
        let update = doc! { "$set": {
            "holder": &self.holder,
            "expiresAt": expires.to_bson(),
            "renewedAt": now.to_bson(),
        }};
        match self.leases.update_one(filter, update).upsert(true).await {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up so a standby can take over at once.
    pub async fn release(&self) -> Result<(), mongodb::error::Error> {
        self.leases
            .delete_one(doc! { "_id": &self.name, "holder": &self.holder })
            .await
            .map(|_| ())
    }

    /// The current holder, if the lease is unexpired.
    pub async fn current_holder(&self) -> Result<Option<String>, mongodb::error::Error> {
        let now = Timestamp::now().to_bson();
        let found = self
            .leases
            .find_one(doc! { "_id": &self.name, "expiresAt": { "$gte": now } })
            .await?;
        Ok(found.and_then(|d| d.get_str("holder").ok().map(str::to_owned)))
    }
}
