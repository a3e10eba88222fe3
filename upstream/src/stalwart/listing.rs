//! Lists every domain of the server, for the controller's snapshot:
//! `x:Domain/query` pages (`position`, `limit`, `calculateTotal`, RFC 8620
//! §5.5), each with the `x:Domain/get` of its ids, [`LIST_PAGE`] ids a page
//! (the server's 500-objects-per-get limit) and 8 pages (16 calls) an HTTP
//! request: 4,000 domains a request. Each page's domains go to the
//! caller's `keep` as soon as the page is parsed, so a listing holds at most
//! one request's answer, never every domain whole.
//!
//! A page shorter than asked for ends the list, unless `total` says more
//! follow (a server that caps pages lower): then the next request starts
//! right after it, so no domain is skipped.

use super::domain::{page, Domain};
use super::jmap::{Batch, GetResponse, QueryResponse, MAX_CALLS_PER_REQUEST};
use super::{StalwartClient, StalwartError};

/// Ids asked for per query page (the server's get limit).
pub const LIST_PAGE: usize = 500;

/// Query + get pairs per HTTP request.
const PAGES_PER_REQUEST: usize = MAX_CALLS_PER_REQUEST / 2;

impl StalwartClient {
    /// Every domain on the server (read with the provisioner's properties),
    /// keeping of each what `keep` makes of it. A domain created or
    /// destroyed during the listing can shift the pages after it, so one
    /// may be seen twice or not at all (as with any paged list).
    pub async fn map_domains<U>(
        &self,
        mut keep: impl FnMut(Domain) -> U,
    ) -> Result<Vec<U>, StalwartError> {
        let mut kept = Vec::new();
        let mut position = 0usize;
        loop {
            let mut batch = Batch::new();
            for n in 0..PAGES_PER_REQUEST {
                batch.push_group(page(position + n * LIST_PAGE, LIST_PAGE, &format!("p{n}")));
            }
            let mut responses = self.execute(batch).await?;
            let mut next = position + PAGES_PER_REQUEST * LIST_PAGE;
            for n in 0..PAGES_PER_REQUEST {
                let start = position + n * LIST_PAGE;
                let query: QueryResponse = responses.take(&format!("p{n}q"))?;
                let got: GetResponse<Domain> = responses.take(&format!("p{n}"))?;
                kept.extend(got.list.into_iter().map(&mut keep));
                let count = query.ids.len();
                if count == LIST_PAGE {
                    continue;
                }
                let end = start + count;
                if count == 0 || query.total.is_none_or(|total| end >= total) {
                    return Ok(kept);
                }
                next = end;
                break;
            }
            position = next;
        }
    }
}
