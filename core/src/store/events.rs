//! Appending to a tenant's history exactly once without retryable writes:
//! every event carries its `_id` before it is sent, so sending the same
//! events again after a failed or unanswered insert can only add the
//! missing ones; the copies already stored are refused by the unique `_id`,
//! which counts as success.
//!
//! Events are written ahead of the status write that follows them, and that
//! write makes them durable: the insert is acknowledged by the primary
//! alone (`w: 1`, no journal wait), and the status write's majority write
//! concern covers every oplog entry before it. A pass so waits for the
//! journal once, not twice; if its status write fails, the pass is retried,
//! and events that were lost with it are written again.

use std::borrow::Borrow;

use mongodb::error::{Error, ErrorKind};
use mongodb::options::{Acknowledgment, WriteConcern};

use super::Store;
use crate::model::TenantEvent;

impl Store {
    /// Inserts `events` (unordered), and once more after an error, so that
    /// an insert whose answer was lost neither duplicates nor loses events.
    /// Acknowledged by the primary alone: the caller's next majority write
    /// (the status of the same pass) is what makes them durable.
    pub async fn insert_events_ahead<E: Borrow<TenantEvent>>(
        &self,
        events: &[E],
    ) -> Result<(), Error> {
        if events.is_empty() {
            return Ok(());
        }
        match self.insert_events_once(events).await {
            Ok(()) => Ok(()),
            Err(_) => self.insert_events_once(events).await,
        }
    }

    async fn insert_events_once<E: Borrow<TenantEvent>>(&self, events: &[E]) -> Result<(), Error> {
        let events = events.iter().map(Borrow::borrow);
        let primary_only = WriteConcern::builder().w(Acknowledgment::Nodes(1)).build();
        match self
            .events
            .insert_many(events)
            .ordered(false)
            .write_concern(primary_only)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if only_already_stored(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Whether every failure of an insert is an `_id` already stored.
fn only_already_stored(err: &Error) -> bool {
    match err.kind.as_ref() {
        ErrorKind::InsertMany(e) => {
            e.write_concern_error.is_none()
                && e.write_errors
                    .as_ref()
                    .is_some_and(|errs| errs.iter().all(|e| e.code == 11000))
        }
        _ => false,
    }
}
