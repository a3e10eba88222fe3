//! The tenant read cache: every tenant in its API shape, held in memory so
//! `GET /tenants/{slug}` and `GET /tenants` answer without a MongoDB round
//! trip, while MongoDB stays the only source of truth. It is an informer in
//! the sense of client-go and the kube-apiserver watch cache: [`follow`]
//! lists every tenant at one snapshot, then follows the `tenants` change
//! stream from exactly that snapshot, so no change falls between the two.
//!
//! Each entry holds its JSON, serialized once per change (a `GET` copies
//! it, a page concatenates entries), and its `ETag`. Promises:
//!
//! - **Fresh or silent.** The cache answers only while it is synced (listed,
//!   stream open, no error since) and MongoDB answered the stream within
//!   [`FRESH_FOR`]; otherwise every lookup is [`Lookup::Unknown`] and the
//!   handler reads MongoDB, as it did before the cache existed. So when
//!   MongoDB disappears, cached answers stop within about 1 s and requests
//!   get the usual 503 `database_unavailable`.
//! - **Reads your writes.** Every API write of a tenant [pins](TenantCache::pin)
//!   it at the write's cluster time before answering; a pinned tenant (and
//!   any page that could hold it) is read from MongoDB until the stream has
//!   applied everything up to that time. Likewise a `?wait=` answer that
//!   came from another change stream pins the tenant at that event's time,
//!   so a read after it never shows an older state.
//! - **Never backwards.** An entry never returns to an older generation
//!   (see [`state`] for every ordering rule).
//!
//! Another process's change shows once the stream delivers it: milliseconds
//! when idle, longer while the stream works through a burst of writes.
//!
//! Authorization is unchanged: the caller's user record still comes from the
//! actor cache or MongoDB, and a cached tenant is shown only if that record
//! lets the caller see it. Memory: one entry per tenant, its JSON (486 B for
//! a new tenant, 1,389 B converged with three systems) plus about 530 B of
//! entry, indexes and allocator overhead (measured); it is bounded by the
//! number of tenants and nothing else.

mod entry;
pub mod feed;
mod follow;
mod state;

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use dezky_core::Id;
use mongodb::bson::Timestamp;
use mongodb::ClientSession;
use tokio::sync::broadcast;

pub use entry::{CachedTenant, EntryError};
pub use follow::follow;
pub use state::Lookup;

use crate::pagination::{self, PageRequest};
use feed::{FeedEvent, FeedItem, Position};
use state::State;

/// Longest time since MongoDB last answered the change stream for which the
/// cache still answers. The stream's idle polls come back every
/// [`follow::MAX_AWAIT`], so a healthy stream stays well inside it.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// Whose tenants a page lists.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// Every tenant (a platform admin).
    All,
    /// A member's: those in `ids` (their `tenantIds`, in any order,
    /// duplicates allowed) and those `creator` created.
    Members { ids: &'a [Id], creator: Id },
}

impl Scope<'_> {
    /// The scope of what `user` may see.
    pub fn of(user: &dezky_core::model::User) -> Scope<'_> {
        match user.platform_admin {
            true => Scope::All,
            false => Scope::Members {
                ids: &user.tenant_ids,
                creator: user.id,
            },
        }
    }
}

/// A watcher's start: the live feed from a point on, and the state there.
pub struct Subscription {
    /// Every item published after `snapshot` was taken.
    pub receiver: broadcast::Receiver<FeedItem>,
    /// Every tenant, as of `position`.
    pub snapshot: Vec<Arc<CachedTenant>>,
    pub position: Position,
    /// The events after the requested position up to `position`, if the
    /// feed still holds them (`None`: too old, or none was requested).
    pub replay: Option<Vec<Arc<FeedEvent>>>,
}

/// Every tenant in its API shape, kept current by [`follow`].
#[derive(Default)]
pub struct TenantCache {
    state: RwLock<State>,
}

impl TenantCache {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The tenant `slug`: cached, known absent, or ask MongoDB.
    pub fn get(&self, slug: &str) -> Lookup<Arc<CachedTenant>> {
        self.read().get(slug, Instant::now())
    }

    /// The JSON body of one page (`{"items": [...], "nextCursor": ...}`,
    /// byte for byte what the MongoDB path writes), or `None`: ask MongoDB.
    pub fn page(&self, scope: Scope<'_>, page: PageRequest) -> Option<Vec<u8>> {
        let limit = page.limit() as usize;
        let mut items = self
            .read()
            .page(scope, page.after(), limit + 1, Instant::now())?;
        let more = items.len() > limit;
        items.truncate(limit);
        let next = more
            .then(|| {
                items
                    .last()
                    .map(|last| pagination::encode_cursor(last.id()))
            })
            .flatten();
        Some(entry::page_body(&items, next.as_deref()))
    }

    /// Records that this process wrote tenant `id` (`slug`) in `session`,
    /// so that reads of it go to MongoDB until the stream has caught up
    /// with the write. Call after a write that changed the tenant, before
    /// answering. The session's `operationTime` is the time of the write's
    /// oplog entry, and so the cluster time of its change event.
    pub fn pin(&self, id: Id, slug: &str, session: &ClientSession) {
        self.pin_answered(id, slug, session.operation_time());
    }

    /// Records that this process answered with tenant `id` (`slug`) as a
    /// change event at cluster time `at` showed it (e.g. a `?wait=` that
    /// followed its own stream), so that later reads show no older state.
    pub fn pin_answered(&self, id: Id, slug: &str, at: Option<Timestamp>) {
        let mut state = self.write();
        match at {
            Some(at) => state.pin(id, slug, at),
            // Never seen on a replica set; without a time, only a relist
            // that starts after it is known to hold the state.
            None => state.invalidate(),
        }
    }

    /// The feed from now on, with the current state and, if `from` is
    /// given and still in the feed's history, the events after it.
    /// `Err` with a receiver while the cache is not synced: its next
    /// [`FeedItem::Relisted`] says when to try again.
    pub fn subscribe(
        &self,
        from: Option<Position>,
    ) -> Result<Subscription, broadcast::Receiver<FeedItem>> {
        let state = self.read();
        let receiver = state.feed.subscribe();
        let Some((snapshot, position)) = state.snapshot() else {
            return Err(receiver);
        };
        Ok(Subscription {
            receiver,
            snapshot,
            position,
            replay: from.and_then(|from| state.feed.since(from)),
        })
    }

    /// Every tenant and the feed position it is current at (`None`: unsynced).
    pub fn snapshot(&self) -> Option<(Vec<Arc<CachedTenant>>, Position)> {
        self.read().snapshot()
    }

    /// Whether lookups are answered from memory right now.
    pub fn is_fresh(&self) -> bool {
        self.read().is_fresh(Instant::now())
    }

    /// Tenants still pinned by this process's writes (for tests and metrics).
    pub fn pinned(&self) -> usize {
        self.read().pinned()
    }
}
