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
//! however many creates arrive. The duration is the list's alone (the
//! service token is fetched before it starts: one slow token answer once
//! held new tenants back 38 s after a restart), and the pause is at most
//! [`MAX_PAUSE`].
//!
//! A waiting pass registers the alias it looks for before it asks, and a
//! list keeps only the spaces whose alias was registered when it started
//! (the only passes it may answer): a list of 10,000 spaces keeps a few
//! hundred [`DriveSummary`] entries at most, not 10,000, and is dropped
//! once no pass that may use it waits any more. The one space a tenant
//! finds in it is then read by id.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use dezky_upstream::ocis::{DriveSummary, OcisClient, OcisError};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::slot;

/// A list starts at least this many times the last list's duration after it.
/// 4 keeps oCIS listing at most a quarter of the time during a burst of
/// creates; against 2 it cut the lists of 10,000 creates from 524 to ~215
/// and this process's CPU per created tenant (2.4–2.9 → 2.0–2.4 ms), at
/// the cost of a longer wait for each batch (docs/benchmarks.md).
const PACE: u32 = 4;

/// The longest pause between two lists, whatever the last one took.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// How long after a list that took `took` the next may start.
fn pause(took: Duration) -> Duration {
    (took * PACE).min(MAX_PAUSE)
}

/// The last list; the lock makes lists one at a time.
#[derive(Default)]
pub struct DriveLists {
    last: Mutex<Option<Listed>>,
    /// The aliases the passes in [`DriveLists::after`] look for, each with
    /// the number of passes looking.
    wanted: std::sync::Mutex<HashMap<String, usize>>,
}

struct Listed {
    started: Instant,
    took: Duration,
    /// Dropped once no pass that may use it waits any more.
    drives: Option<Arc<Vec<DriveSummary>>>,
}

impl DriveLists {
    /// The project drives with `alias` (and those other waiting passes look
    /// for), from a list that started after this call.
    pub async fn after(
        &self,
        client: &OcisClient,
        alias: &str,
    ) -> Result<Arc<Vec<DriveSummary>>, OcisError> {
        let _wanted = Wanted::enter(self, alias);
        let asked_at = Instant::now();
        slot::idle(self.list_after(client, asked_at)).await
    }

    /// Holds back every list until the returned guard drops.
    #[cfg(test)]
    pub(super) async fn hold(&self) -> impl Sized + '_ {
        self.last.lock().await
    }

    fn wanted(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.wanted.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn list_after(
        &self,
        client: &OcisClient,
        asked_at: Instant,
    ) -> Result<Arc<Vec<DriveSummary>>, OcisError> {
        let mut last = self.last.lock().await;
        let listed = self.listed_after(&mut last, client, asked_at).await;
        // Only passes that asked before a list started may use it, and they
        // all wait now: when none but this one is left, nobody needs it.
        if self.wanted().values().sum::<usize>() == 1 {
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
            tokio::time::sleep_until(listed.started + pause(listed.took)).await;
        }
        client.ensure_token().await?;
        let started = Instant::now();
        // Every pass this list may answer registered before it asked.
        let wanted: HashSet<String> = self.wanted().keys().cloned().collect();
        let drives = Arc::new(
            client
                .project_drive_summaries_with_alias(|alias| wanted.contains(alias))
                .await?,
        );
        *last = Some(Listed {
            started,
            took: started.elapsed(),
            drives: Some(drives.clone()),
        });
        Ok(drives)
    }
}

/// Registers a pass's alias while it is in [`DriveLists::after`], also
/// when it is cancelled.
struct Wanted<'a> {
    lists: &'a DriveLists,
    alias: String,
}

impl<'a> Wanted<'a> {
    fn enter(lists: &'a DriveLists, alias: &str) -> Self {
        *lists.wanted().entry(alias.to_owned()).or_default() += 1;
        Wanted {
            lists,
            alias: alias.to_owned(),
        }
    }
}

impl Drop for Wanted<'_> {
    fn drop(&mut self) {
        let mut wanted = self.lists.wanted();
        if let Some(count) = wanted.get_mut(&self.alias) {
            *count -= 1;
            if *count == 0 {
                wanted.remove(&self.alias);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::ocis::tests::{env_with, fresh_client};
    use crate::reconcile::ocis::OcisSettings;
    use dezky_upstream::ocis::NewDrive;

    #[tokio::test]
    async fn a_list_starts_no_sooner_than_pace_times_the_last_lists_duration() {
        let env = env_with(OcisSettings::default()).await;
        let latency = Duration::from_millis(40);
        env.ocis.faults().set_latency(latency);
        let lists = DriveLists::default();
        let first = Instant::now();
        lists.after(&env.client, "a").await.expect("first list");
        lists.after(&env.client, "a").await.expect("second list");
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
    async fn a_slow_token_answer_does_not_pace_the_next_list() {
        let env = env_with(OcisSettings::default()).await;
        // oCIS fetches the issuer's keys on its first request: before the
        // token answers turn slow.
        env.client.get_drive("none").await.expect("a first request");
        let slow = Duration::from_millis(400);
        env.oidc.faults().set_latency(slow);
        let client = fresh_client(&env);
        let lists = DriveLists::default();
        lists.after(&client, "a").await.expect("first list");
        let second = Instant::now();
        lists.after(&client, "a").await.expect("second list");
        // Paced on the 400 ms token fetch, the second list would wait
        // about `PACE × 400 ms` = 1.6 s; paced on the list, milliseconds.
        assert!(
            second.elapsed() < slow * PACE / 2,
            "the second list came {:?} later",
            second.elapsed()
        );
        assert_eq!(env.ocis.recorder().count("GET", "/graph/v1.0/drives"), 2);
    }

    #[test]
    fn the_pause_after_a_list_is_bounded() {
        assert_eq!(
            pause(Duration::from_millis(10)),
            Duration::from_millis(10) * PACE
        );
        assert_eq!(pause(Duration::from_secs(30)), MAX_PAUSE);
    }

    #[tokio::test]
    async fn a_list_keeps_only_the_spaces_its_waiting_passes_look_for() {
        let env = env_with(OcisSettings::default()).await;
        for name in ["x", "y", "z"] {
            let new = NewDrive::project(name.into(), String::new(), 0, format!("project/{name}"));
            env.client.create_drive(&new).await.expect("create");
        }
        let lists = DriveLists::default();
        let listed = lists.after(&env.client, "project/y").await.expect("list");
        let aliases: Vec<_> = listed.iter().map(|d| d.drive_alias.as_deref()).collect();
        assert_eq!(aliases, [Some("project/y")]);
        let none = lists.after(&env.client, "project/w").await.expect("list");
        assert!(none.is_empty(), "{none:?}");
    }

    #[tokio::test]
    async fn a_list_is_kept_only_while_passes_that_may_use_it_wait() {
        let env = env_with(OcisSettings::default()).await;
        let lists = DriveLists::default();
        lists.after(&env.client, "a").await.expect("list");
        let last = lists.last.lock().await;
        assert!(last.as_ref().is_some_and(|l| l.drives.is_none()));
        assert!(lists.wanted().is_empty());
    }
}
