//! Observation snapshots, after client-go's shared informers: each system
//! keeps every object it manages, listed by the system's paginated list
//! calls at most once per `max_age` and updated by the controller's own
//! writes, so that the periodic resync of a converged tenant is answered
//! from memory and costs no upstream request.
//!
//! A snapshot only ever *answers "in sync"*: a reconciler that sees a miss
//! or drift in it falls back to its direct pass, which reads the objects
//! upstream before it writes. So a stale snapshot can delay the detection
//! of out-of-band drift by at most one refresh interval, and can never cause
//! a duplicate create or undo a newer change.
//!
//! Invariants (each has a test named after it):
//! - at most one list runs at a time per snapshot; callers that arrive
//!   meanwhile wait for its result instead of listing again;
//! - a list older than `max_age` is never used: the next read lists again;
//! - a failed list keeps no view: the caller sees the error (and falls back
//!   to direct reads);
//! - a write recorded while a list runs survives that list's (older) result.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// How a snapshot indexes its objects.
pub trait Indexed: Clone + Send + Sync + 'static {
    /// The unique key of the object (an id or a unique name).
    fn key(&self) -> String;
    /// The tenant marker the object carries, if any (its owner).
    fn owner(&self) -> Option<String>;
    /// What the snapshot keeps of the object: only what a resync answer
    /// reads, so that memory does not grow with members, grants or
    /// attributes the controller does not own (default: all of it).
    fn compact(self) -> Self {
        self
    }
}

/// The objects of one list, indexed by key and by owner.
#[derive(Debug)]
pub struct View<V> {
    objects: HashMap<String, V>,
    by_owner: HashMap<String, BTreeSet<String>>,
}

impl<V: Indexed> View<V> {
    fn from_list(list: Vec<V>) -> Self {
        let mut view = View {
            objects: HashMap::with_capacity(list.len()),
            by_owner: HashMap::new(),
        };
        for object in list {
            view.put(object);
        }
        view
    }

    /// The object with `key`, if listed.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.objects.get(key)
    }

    /// Every object marked for `owner`, in key order.
    pub fn owned_by(&self, owner: &str) -> Vec<&V> {
        self.by_owner
            .get(owner)
            .into_iter()
            .flatten()
            .filter_map(|key| self.objects.get(key))
            .collect()
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the view holds no object.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    fn put(&mut self, object: V) {
        let object = object.compact();
        let key = object.key();
        self.remove(&key);
        if let Some(owner) = object.owner() {
            self.by_owner.entry(owner).or_default().insert(key.clone());
        }
        self.objects.insert(key, object);
    }

    fn remove(&mut self, key: &str) {
        let Some(old) = self.objects.remove(key) else {
            return;
        };
        if let Some(owner) = old.owner() {
            if let Some(keys) = self.by_owner.get_mut(&owner) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_owner.remove(&owner);
                }
            }
        }
    }

    fn apply(&mut self, write: Write<V>) {
        match write {
            Write::Put(object) => self.put(object),
            Write::Remove(key) => self.remove(&key),
        }
    }
}

/// A write the controller made, replayed onto a list that was running.
enum Write<V> {
    Put(V),
    Remove(String),
}

struct State<V> {
    /// The current view and when its list started.
    view: Option<(Instant, View<V>)>,
    /// Writes made while a list runs (`Some` exactly then).
    pending: Option<Vec<Write<V>>>,
}

/// A shared, self-refreshing snapshot of one system's objects.
pub struct Snapshot<V> {
    /// Metrics label (`authentik`, `stalwart`, `ocis`).
    system: &'static str,
    /// A list older than this is listed again before use.
    max_age: Duration,
    state: Mutex<State<V>>,
    /// Held while listing: one list at a time.
    listing: tokio::sync::Mutex<()>,
}

impl<V: Indexed> Snapshot<V> {
    /// An empty snapshot of `system` whose lists are used for `max_age`.
    pub fn new(system: &'static str, max_age: Duration) -> Self {
        Snapshot {
            system,
            max_age,
            state: Mutex::new(State {
                view: None,
                pending: None,
            }),
            listing: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State<V>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `look` over a view no older than `max_age`, listing with `list`
    /// first when there is none.
    pub async fn read<R, E, F, Fut>(
        &self,
        list: F,
        look: impl FnOnce(&View<V>) -> R,
    ) -> Result<R, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<V>, E>>,
    {
        let look = match self.with_fresh(look) {
            Ok(answer) => return Ok(answer),
            Err(look) => look,
        };
        let _listing = self.listing.lock().await;
        // Someone else may have listed while we waited.
        let look = match self.with_fresh(look) {
            Ok(answer) => return Ok(answer),
            Err(look) => look,
        };
        let started = Instant::now();
        self.state().pending = Some(Vec::new());
        let listed = list().await;
        let mut state = self.state();
        let pending = state.pending.take().unwrap_or_default();
        let objects = match listed {
            Ok(objects) => objects,
            Err(error) => {
                state.view = None;
                metrics::counter!("snapshot_lists_total", "system" => self.system, "result" => "error")
                    .increment(1);
                return Err(error);
            }
        };
        let mut view = View::from_list(objects);
        for write in pending {
            view.apply(write);
        }
        metrics::counter!("snapshot_lists_total", "system" => self.system, "result" => "ok")
            .increment(1);
        metrics::gauge!("snapshot_objects", "system" => self.system).set(view.len() as f64);
        metrics::histogram!("snapshot_list_duration_seconds", "system" => self.system)
            .record(started.elapsed().as_secs_f64());
        let answer = look(&view);
        state.view = Some((started, view));
        Ok(answer)
    }

    /// [`Snapshot::read`] for a resync: a failed list is logged and gives
    /// `None`, so the caller observes directly instead.
    pub async fn lookup<R, E, F, Fut>(&self, list: F, look: impl FnOnce(&View<V>) -> R) -> Option<R>
    where
        E: std::fmt::Display,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<V>, E>>,
    {
        match self.read(list, look).await {
            Ok(answer) => Some(answer),
            Err(error) => {
                tracing::debug!(system = self.system, %error, "snapshot unavailable; observing directly");
                None
            }
        }
    }

    /// Records an object the controller wrote or read directly.
    pub fn put(&self, object: V) {
        self.write(Write::Put(object));
    }

    /// Records that the object with `key` is gone.
    pub fn remove(&self, key: &str) {
        self.write(Write::Remove(key.to_owned()));
    }

    /// Keys of the objects the current view holds for `owner` (none without a view).
    pub fn owned_keys(&self, owner: &str) -> Vec<String> {
        let state = self.state();
        state.view.as_ref().map_or_else(Vec::new, |(_, view)| {
            view.by_owner
                .get(owner)
                .map(|keys| keys.iter().cloned().collect())
                .unwrap_or_default()
        })
    }

    fn write(&self, write: Write<V>) {
        let mut state = self.state();
        if let Some(pending) = state.pending.as_mut() {
            let replay = match &write {
                Write::Put(object) => Write::Put(object.clone()),
                Write::Remove(key) => Write::Remove(key.clone()),
            };
            pending.push(replay);
        }
        if let Some((_, view)) = state.view.as_mut() {
            view.apply(write);
        }
    }

    /// `look` over the current view if it is fresh; `look` back otherwise.
    fn with_fresh<R, L: FnOnce(&View<V>) -> R>(&self, look: L) -> Result<R, L> {
        let state = self.state();
        match &state.view {
            Some((listed_at, view)) if listed_at.elapsed() < self.max_age => Ok(look(view)),
            _ => Err(look),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Obj {
        key: &'static str,
        owner: Option<&'static str>,
        rev: u32,
    }

    impl Indexed for Obj {
        fn key(&self) -> String {
            self.key.to_owned()
        }
        fn owner(&self) -> Option<String> {
            self.owner.map(str::to_owned)
        }
    }

    fn obj(key: &'static str, owner: &'static str, rev: u32) -> Obj {
        Obj {
            key,
            owner: Some(owner),
            rev,
        }
    }

    async fn rev(snapshot: &Snapshot<Obj>, lists: &AtomicUsize, key: &str) -> Option<u32> {
        snapshot
            .read(
                || async {
                    lists.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, ()>(vec![obj("a", "t1", 1), obj("b", "t2", 1)])
                },
                |view| view.get(key).map(|o| o.rev),
            )
            .await
            .expect("list")
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_readers_share_one_list() {
        let snapshot = Arc::new(Snapshot::new("test", Duration::from_secs(60)));
        let lists = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = (0..50)
            .map(|_| {
                let (snapshot, lists) = (snapshot.clone(), lists.clone());
                tokio::spawn(async move {
                    snapshot
                        .read(
                            || async {
                                lists.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                Ok::<_, ()>(vec![obj("a", "t1", 1)])
                            },
                            |view| view.len(),
                        )
                        .await
                })
            })
            .collect();
        for reader in readers {
            assert_eq!(reader.await.unwrap(), Ok(1));
        }
        assert_eq!(lists.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_list_older_than_max_age_is_never_used() {
        let snapshot = Snapshot::new("test", Duration::from_secs(60));
        let lists = AtomicUsize::new(0);
        assert_eq!(rev(&snapshot, &lists, "a").await, Some(1));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(rev(&snapshot, &lists, "a").await, Some(1));
        assert_eq!(lists.load(Ordering::SeqCst), 1, "still fresh");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(rev(&snapshot, &lists, "a").await, Some(1));
        assert_eq!(lists.load(Ordering::SeqCst), 2, "listed again once stale");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_list_keeps_no_view() {
        let snapshot = Snapshot::new("test", Duration::from_secs(60));
        let lists = AtomicUsize::new(0);
        let failed = snapshot
            .read(|| async { Err::<Vec<Obj>, _>("down") }, |view| view.len())
            .await;
        assert_eq!(failed, Err("down"));
        assert_eq!(rev(&snapshot, &lists, "a").await, Some(1));
        assert_eq!(
            lists.load(Ordering::SeqCst),
            1,
            "the failure was not cached"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn own_writes_update_the_view_and_the_owner_index() {
        let snapshot = Snapshot::new("test", Duration::from_secs(60));
        let lists = AtomicUsize::new(0);
        assert_eq!(rev(&snapshot, &lists, "a").await, Some(1));
        snapshot.put(obj("a", "t2", 2));
        snapshot.put(obj("c", "t1", 1));
        snapshot.remove("b");
        let (a, t1, t2) = snapshot
            .read(
                || async { Err::<Vec<Obj>, ()>(()) },
                |view| {
                    let keys = |owner| {
                        view.owned_by(owner)
                            .into_iter()
                            .map(|o| o.key)
                            .collect::<Vec<_>>()
                    };
                    (view.get("a").cloned(), keys("t1"), keys("t2"))
                },
            )
            .await
            .expect("fresh view, no list");
        assert_eq!(a, Some(obj("a", "t2", 2)));
        assert_eq!(t1, vec!["c"], "a moved to t2");
        assert_eq!(t2, vec!["a"], "b is gone");
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_made_during_a_list_survives_its_older_result() {
        let snapshot = Arc::new(Snapshot::new("test", Duration::from_secs(60)));
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let reader = tokio::spawn({
            let snapshot = snapshot.clone();
            async move {
                snapshot
                    .read(
                        || async move {
                            let _ = wait.await;
                            Ok::<_, ()>(vec![obj("a", "t1", 1), obj("b", "t1", 1)])
                        },
                        |view| view.get("a").map(|o| o.rev),
                    )
                    .await
            }
        });
        tokio::task::yield_now().await;
        snapshot.put(obj("a", "t1", 2));
        snapshot.remove("b");
        let _ = release.send(());
        assert_eq!(reader.await.unwrap(), Ok(Some(2)));
        let lists = AtomicUsize::new(0);
        assert_eq!(rev(&snapshot, &lists, "b").await, None);
        assert_eq!(lists.load(Ordering::SeqCst), 0);
    }
}
