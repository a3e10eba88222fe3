//! One project-drive list shared by concurrent passes: oCIS cannot filter
//! drives by alias, so confirming that a tenant's space is missing means
//! listing every project space. A pass asks for a list that *started after*
//! it asked, which is still a direct observation (every write finished
//! before the ask is in it), and concurrent passes share one such list
//! instead of each sending its own: N creates cost N / concurrency lists,
//! not N. A list keeps only each space's id, alias and marker
//! ([`DriveSummary`]); the one space a tenant finds in it is then read by id.

use std::sync::Arc;

use dezky_upstream::ocis::{DriveSummary, OcisClient, OcisError};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The last list and when it started; the lock makes lists one at a time.
#[derive(Default)]
pub struct DriveLists {
    last: Mutex<Option<(Instant, Arc<Vec<DriveSummary>>)>>,
}

impl DriveLists {
    /// Every project drive, listed after `asked_at`.
    pub async fn after(
        &self,
        client: &OcisClient,
        asked_at: Instant,
    ) -> Result<Arc<Vec<DriveSummary>>, OcisError> {
        let mut last = self.last.lock().await;
        if let Some((started, drives)) = last.as_ref() {
            if *started >= asked_at {
                return Ok(drives.clone());
            }
        }
        let started = Instant::now();
        let drives = Arc::new(client.list_project_drive_summaries().await?);
        *last = Some((started, drives.clone()));
        Ok(drives)
    }
}
