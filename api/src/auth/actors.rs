//! The actor cache: user records by token subject, so an authenticated
//! request needs no MongoDB round trip for its caller, while authorization
//! still comes from the user record in MongoDB (DESIGN §4).
//!
//! Invariant: a cached record is never older than [`MAX_AGE`] counted from
//! the start of the read it came from, so any change of a user (a lost
//! membership or platform-admin flag), by any process, takes effect within
//! 1 s whatever else happens. Usually far sooner: [`follow_users`] watches
//! the `users` change stream and forgets a changed user within
//! milliseconds. This process's own writes forget the user before they
//! answer ([`ActorCache::forget`]), so they take effect at once. A read
//! that began before a forget is not cached (the epoch check), so an old
//! record can never overwrite a newer forget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dezky_core::model::User;
use dezky_core::Id;
use futures::StreamExt;
use mongodb::bson::{doc, Document};
use mongodb::Collection;
use tokio_util::sync::CancellationToken;

/// Longest time a user record is used without reading it again.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// Above this many entries, a store first drops the expired ones.
const PRUNE_ABOVE: usize = 10_000;

/// User records by `authentikSubjectId`.
#[derive(Default)]
pub struct ActorCache {
    entries: Mutex<Entries>,
    /// Counts forgets, so that long-lived requests (a watch) look at their
    /// caller's record again when some user changed.
    forgets: tokio::sync::watch::Sender<u64>,
}

#[derive(Default)]
struct Entries {
    by_subject: HashMap<String, Cached>,
    /// Bumped by every forget; a read that started at an older epoch is not stored.
    epoch: u64,
}

struct Cached {
    user: Arc<User>,
    /// When the read that produced `user` started.
    read_at: Instant,
}

/// Taken before a read from MongoDB; [`ActorCache::store`] keeps the
/// result only if nothing was forgotten since.
pub struct ReadTicket {
    epoch: u64,
    started: Instant,
}

impl ActorCache {
    fn entries(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The record of `subject`, if one was read less than [`MAX_AGE`] ago.
    pub fn get(&self, subject: &str) -> Option<Arc<User>> {
        let entries = self.entries();
        let cached = entries.by_subject.get(subject)?;
        (cached.read_at.elapsed() < MAX_AGE).then(|| cached.user.clone())
    }

    /// Call right before reading a user from MongoDB.
    pub fn ticket(&self) -> ReadTicket {
        ReadTicket {
            epoch: self.entries().epoch,
            started: Instant::now(),
        }
    }

    /// Keeps `user`, read under `ticket`, unless a forget happened meanwhile.
    pub fn store(&self, ticket: ReadTicket, user: Arc<User>) {
        let mut entries = self.entries();
        if entries.epoch != ticket.epoch {
            return;
        }
        if entries.by_subject.len() >= PRUNE_ABOVE {
            entries
                .by_subject
                .retain(|_, cached| cached.read_at.elapsed() < MAX_AGE);
        }
        let subject = user.authentik_subject_id.clone();
        let cached = Cached {
            user,
            read_at: ticket.started,
        };
        entries.by_subject.insert(subject, cached);
    }

    /// Forgets user `id` (call after writing it, before answering).
    pub fn forget(&self, id: Id) {
        let mut entries = self.entries();
        entries.epoch += 1;
        entries.by_subject.retain(|_, cached| cached.user.id != id);
        drop(entries);
        self.forgets.send_modify(|n| *n += 1);
    }

    /// Forgets every user (the change stream may have missed changes).
    pub fn forget_all(&self) {
        let mut entries = self.entries();
        entries.epoch += 1;
        entries.by_subject.clear();
        drop(entries);
        self.forgets.send_modify(|n| *n += 1);
    }

    /// Changes whenever a user was forgotten (some user record changed).
    pub fn forgets(&self) -> tokio::sync::watch::Receiver<u64> {
        self.forgets.subscribe()
    }
}

/// How long to wait before reopening a failed `users` change stream.
const REOPEN_AFTER: Duration = Duration::from_secs(1);

/// Forgets every user that changes, as the `users` change stream reports
/// it, until `stop` fires. Survives MongoDB outages: the stream is reopened
/// (and everything forgotten, as changes may have been missed meanwhile).
pub async fn follow_users(
    cache: Arc<ActorCache>,
    users: Collection<User>,
    stop: CancellationToken,
) {
    let users = users.clone_with_type::<Document>();
    while !stop.is_cancelled() {
        // Only which document changed matters, not how.
        let opened = users
            .watch()
            .pipeline([doc! { "$project": { "operationType": 1, "documentKey": 1 } }])
            .await;
        // Changes made before the stream was open are not in it.
        cache.forget_all();
        match opened {
            Ok(mut stream) => loop {
                let next = tokio::select! {
                    _ = stop.cancelled() => return,
                    next = stream.next() => next,
                };
                match next {
                    Some(Ok(event)) => match event
                        .document_key
                        .and_then(|key| key.get_object_id("_id").ok())
                    {
                        Some(id) => cache.forget(Id(id)),
                        // invalidate (collection dropped or renamed).
                        None => cache.forget_all(),
                    },
                    Some(Err(e)) => {
                        if !stop.is_cancelled() {
                            tracing::warn!(error = %e.kind, "users change stream failed; reopening");
                        }
                        break;
                    }
                    None => break,
                }
            },
            Err(e) => {
                if !stop.is_cancelled() {
                    tracing::warn!(error = %e.kind, "cannot open the users change stream; retrying");
                }
            }
        }
        let _ = tokio::time::timeout(REOPEN_AFTER, stop.cancelled()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dezky_core::Timestamp;

    fn user(subject: &str) -> Arc<User> {
        Arc::new(User::new(subject, Timestamp::now()))
    }

    #[test]
    fn a_read_that_started_before_a_forget_is_not_cached() {
        let cache = ActorCache::default();
        let alice = user("alice");
        let ticket = cache.ticket();
        cache.forget(alice.id);
        cache.store(ticket, alice.clone());
        assert!(cache.get("alice").is_none());

        let ticket = cache.ticket();
        cache.store(ticket, alice.clone());
        assert_eq!(cache.get("alice").unwrap().id, alice.id);
        cache.forget(alice.id);
        assert!(cache.get("alice").is_none());
    }

    #[test]
    fn records_expire_max_age_after_their_read_started() {
        let cache = ActorCache::default();
        let ticket = ReadTicket {
            epoch: 0,
            started: Instant::now() - MAX_AGE,
        };
        cache.store(ticket, user("bob"));
        assert!(cache.get("bob").is_none());
    }
}
