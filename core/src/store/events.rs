//! Appending to a tenant's history exactly once without retryable writes:
//! every event carries its `_id` before it is sent, so sending the same
//! events again after a failed or unanswered insert can only add the
//! missing ones; the copies already stored are refused by the unique `_id`,
//! which counts as success.

use std::borrow::Borrow;

use mongodb::error::{Error, ErrorKind};
use mongodb::options::WriteConcern;

use super::Store;
use crate::model::TenantEvent;

impl Store {
    /// Inserts `events` (unordered, acknowledged by a majority), and once
    /// more after an error, so that an insert whose answer was lost neither
    /// duplicates nor loses events.
    pub async fn insert_events<E: Borrow<TenantEvent>>(&self, events: &[E]) -> Result<(), Error> {
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
        match self
            .events
            .insert_many(events)
            .ordered(false)
            .write_concern(WriteConcern::majority())
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
