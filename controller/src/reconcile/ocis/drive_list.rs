//! One project-drive list shared by concurrent passes: oCIS cannot filter
//! drives by alias, so confirming that a tenant's space is missing means
//! listing every project space. A pass asks for a list that *started after*
//! it asked, which is still a direct observation (every write finished
//! before the ask is in it), and every pass waiting meanwhile shares that
//! one list instead of sending its own.
//!
//! The wait gives the pass's concurrency slot back ([`crate::slot::idle`]),
//! so other tenants' passes reach the same wait and join the batch; and
//! lists are paced: a list starts no sooner than [`PACE`] times the
//! previous list's duration after that list started, so that these lists
//! keep oCIS (and this process) busy at most `1 / PACE` of the time
//! however many creates arrive. A list keeps only each space's id, alias
//! and marker ([`DriveSummary`]), and is kept only while passes that
//! asked before it started still wait for it (a list of every space is
//! not kept between batches); the one space a tenant finds in it is then
//! read by id.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dezky_upstream::ocis::{DriveSummary, OcisClient, OcisError};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::slot;

/// A list starts at least this many times the last list's duration after it.
const PACE: u32 = 2;

/// The last list; the lock makes lists one at a time.
#[derive(Default)]
pub struct DriveLists {
    last: Mutex<Option<Listed>>,
    /// Passes in [`DriveLists::after`] now.
    waiting: AtomicUsize,
}

struct Listed {
    started: Instant,
    took: Duration,
    /// Dropped once no pass that may use it waits any more.
    drives: Option<Arc<Vec<DriveSummary>>>,
}

impl DriveLists {
    /// Every project drive, listed after `asked_at`.
    pub async fn after(
        &self,
        client: &OcisClient,
        asked_at: Instant,
    ) -> Result<Arc<Vec<DriveSummary>>, OcisError> {
        slot::idle(self.list_after(client, asked_at)).await
    }

    async fn list_after(
        &self,
        client: &OcisClient,
        asked_at: Instant,
    ) -> Result<Arc<Vec<DriveSummary>>, OcisError> {
        let _waiting = Waiting::enter(&self.waiting);
        let mut last = self.last.lock().await;
        let listed = self.listed_after(&mut last, client, asked_at).await;
        // Only passes that asked before a list started may use it, and they
        // all wait now: when none is left, nobody needs the list any more.
        if self.waiting.load(Ordering::SeqCst) == 1 {
            if let Some(last) = last.as_mut() {
                last.drives = None;
            }
        }
        listed
    }

    async fn listed_after(
        &self,
        last: &mut Option<Listed>,
        client: &OcisClient,
        asked_at: Instant,
    ) -> Result<Arc<Vec<DriveSummary>>, OcisError> {
        if let Some(listed) = last.as_ref() {
            if listed.started >= asked_at {
                if let Some(drives) = &listed.drives {
                    return Ok(drives.clone());
                }
            }
            tokio::time::sleep_until(listed.started + listed.took * PACE).await;
        }
        let started = Instant::now();
        let drives = Arc::new(client.list_project_drive_summaries().await?);
        *last = Some(Listed {
            started,
            took: started.elapsed(),
            drives: Some(drives.clone()),
        });
        Ok(drives)
    }
}

/// Counts a pass in [`DriveLists::after`], also when it is cancelled.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::ocis::tests::env_with;
    use crate::reconcile::ocis::OcisSettings;

    #[tokio::test]
    async fn a_list_starts_no_sooner_than_pace_times_the_last_lists_duration() {
        let env = env_with(OcisSettings::default()).await;
        let latency = Duration::from_millis(40);
        env.ocis.faults().set_latency(latency);
        let lists = DriveLists::default();
        let first = Instant::now();
        lists.after(&env.client, first).await.expect("first list");
        lists
            .after(&env.client, Instant::now())
            .await
            .expect("second list");
        // The first took at least `latency`, so the second starts at least
        // `PACE × latency` after it and takes `latency` itself.
        assert!(
            first.elapsed() >= latency * (PACE + 1),
            "second list done {:?} after the first started",
            first.elapsed()
        );
        assert_eq!(env.ocis.recorder().count("GET", "/graph/v1.0/drives"), 2);
    }

    #[tokio::test]
    async fn a_list_is_kept_only_while_passes_that_may_use_it_wait() {
        let env = env_with(OcisSettings::default()).await;
        let lists = DriveLists::default();
        lists
            .after(&env.client, Instant::now())
            .await
            .expect("list");
        let last = lists.last.lock().await;
        assert!(last.as_ref().is_some_and(|l| l.drives.is_none()));
        assert_eq!(lists.waiting.load(Ordering::SeqCst), 0);
    }
}
