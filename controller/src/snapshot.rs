//! Observation snapshots, after client-go's shared informers: each system
//! keeps a fixed-size [`Entry`] of every object it manages (key, owner and
//! a fingerprint of what a resync compares), listed by the system's paginated list
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
//! - a write recorded while a list runs survives that list's (older) result;
//! - an answer holds only for exactly the expected objects of an owner, each
//!   with the expected fingerprint.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// What a snapshot keeps of one object: its key, its owner (the tenant
/// marker it carries) and a fingerprint of the fields a resync answer
/// compares, each as a 64-bit hash. 32 bytes whatever the object holds, so
/// memory does not grow with members, grants or attributes; a false match
/// needs a 64-bit collision (about 1 in 10⁹ at 100,000 objects), and a
/// mismatch only sends the pass upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    key: u64,
    owner: Option<u64>,
    fingerprint: u64,
}

impl Entry {
    /// The entry of the object with `key`, marked for `owner`, whose compared
    /// fields are `fingerprint`.
    pub fn new(key: &str, owner: Option<&str>, fingerprint: impl Hash) -> Self {
        Entry {
            key: hash(key),
            owner: owner.map(hash),
            fingerprint: hash(fingerprint),
        }
    }
}

fn hash(value: impl Hash) -> u64 {
    let mut state = DefaultHasher::new();
    value.hash(&mut state);
    state.finish()
}

/// The entries of one list, indexed by key and by owner.
#[derive(Debug, Default)]
pub struct View {
    /// Owner and fingerprint by key.
    objects: HashMap<u64, (Option<u64>, u64)>,
    /// (owner, key) of every marked object.
    by_owner: BTreeSet<(u64, u64)>,
}

impl View {
    fn from_list(list: Vec<Entry>) -> Self {
        let mut view = View {
            objects: HashMap::with_capacity(list.len()),
            by_owner: BTreeSet::new(),
        };
        for entry in list {
            view.put(entry);
        }
        view
    }

    /// The entry of the object with `key`, if listed.
    pub fn get(&self, key: &str) -> Option<Entry> {
        let key = hash(key);
        self.objects.get(&key).map(|&(owner, fingerprint)| Entry {
            key,
            owner,
            fingerprint,
        })
    }

    /// Whether the objects marked for `owner` are exactly `expected` (of
    /// distinct keys): the same keys, each with the same fingerprint.
    pub fn holds_exactly(&self, owner: &str, expected: &[Entry]) -> bool {
        let owner = hash(owner);
        self.owned(owner).len() == expected.len()
            && expected.iter().all(|want| {
                want.owner == Some(owner)
                    && self.objects.get(&want.key) == Some(&(want.owner, want.fingerprint))
            })
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the view holds no object.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    fn owned(&self, owner: u64) -> Vec<u64> {
        self.by_owner
            .range((owner, 0)..=(owner, u64::MAX))
            .map(|&(_, key)| key)
            .collect()
    }

    fn put(&mut self, entry: Entry) {
        self.remove(entry.key);
        if let Some(owner) = entry.owner {
            self.by_owner.insert((owner, entry.key));
        }
        self.objects
            .insert(entry.key, (entry.owner, entry.fingerprint));
    }

    fn remove(&mut self, key: u64) {
        if let Some((Some(owner), _)) = self.objects.remove(&key) {
            self.by_owner.remove(&(owner, key));
        }
    }

    fn apply(&mut self, write: &Write) {
        match write {
            Write::Put(entry) => self.put(*entry),
            Write::Remove(key) => self.remove(*key),
            Write::ReplaceOwned(owner, entries) => {
                for key in self.owned(*owner) {
                    self.remove(key);
                }
                for entry in entries {
                    self.put(*entry);
                }
            }
        }
    }
}

/// A write the controller made, replayed onto a list that was running.
enum Write {
    Put(Entry),
    Remove(u64),
    /// The objects marked for an owner are now exactly these.
    ReplaceOwned(u64, Vec<Entry>),
}

struct State {
    /// The current view and when its list started.
    view: Option<(Instant, View)>,
    /// Writes made while a list runs (`Some` exactly then).
    pending: Option<Vec<Write>>,
}

/// A shared, self-refreshing snapshot of one system's objects.
pub struct Snapshot {
    /// Metrics label (`authentik`, `stalwart`, `ocis`).
    system: &'static str,
    /// A list older than this is listed again before use.
    max_age: Duration,
    state: Mutex<State>,
    /// Held while listing: one list at a time.
    listing: tokio::sync::Mutex<()>,
}

impl Snapshot {
    /// An empty snapshot of `system` whose lists are used for `max_age`.
    pub fn new(system: &'static str, max_age: Duration) -> Self {
        // Both results exported at 0 from the start: `increase()` cannot
        // see a counter's first increment, so a first failed list would
        // never reach the alert on failing lists.
        for result in ["ok", "error"] {
            metrics::counter!("snapshot_lists_total", "system" => system, "result" => result)
                .increment(0);
        }
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

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `look` over a view no older than `max_age`, listing with `list`
    /// first when there is none. `list` gives the entry of every object; it
    /// should build them as the objects arrive, so that a list never holds
    /// every object whole.
    pub async fn read<R, E, F, Fut>(&self, list: F, look: impl FnOnce(&View) -> R) -> Result<R, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<Entry>, E>>,
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
        let entries = match listed {
            Ok(entries) => entries,
            Err(error) => {
                state.view = None;
                metrics::counter!("snapshot_lists_total", "system" => self.system, "result" => "error")
                    .increment(1);
                return Err(error);
            }
        };
        let mut view = View::from_list(entries);
        for write in &pending {
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
    pub async fn lookup<R, E, F, Fut>(&self, list: F, look: impl FnOnce(&View) -> R) -> Option<R>
    where
        E: std::fmt::Display,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<Entry>, E>>,
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
    pub fn put(&self, entry: Entry) {
        self.write(Write::Put(entry));
    }

    /// Records that the object with `key` is gone.
    pub fn remove(&self, key: &str) {
        self.write(Write::Remove(hash(key)));
    }

    /// Records that the objects marked for `owner` are now exactly `entries`
    /// (any other object marked for it is gone).
    pub fn replace_owned(&self, owner: &str, entries: Vec<Entry>) {
        self.write(Write::ReplaceOwned(hash(owner), entries));
    }

    fn write(&self, write: Write) {
        let mut state = self.state();
        if let Some((_, view)) = state.view.as_mut() {
            view.apply(&write);
        }
        if let Some(pending) = state.pending.as_mut() {
            pending.push(write);
        }
    }

    /// `look` over the current view if it is fresh; `look` back otherwise.
    fn with_fresh<R, L: FnOnce(&View) -> R>(&self, look: L) -> Result<R, L> {
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

    fn obj(key: &str, owner: &str, rev: u32) -> Entry {
        Entry::new(key, Some(owner), rev)
    }

    async fn get(snapshot: &Snapshot, lists: &AtomicUsize, key: &str) -> Option<Entry> {
        snapshot
            .read(
                || async {
                    lists.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, ()>(vec![obj("a", "t1", 1), obj("b", "t2", 1)])
                },
                |view| view.get(key),
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
        assert_eq!(get(&snapshot, &lists, "a").await, Some(obj("a", "t1", 1)));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(get(&snapshot, &lists, "a").await, Some(obj("a", "t1", 1)));
        assert_eq!(lists.load(Ordering::SeqCst), 1, "still fresh");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(get(&snapshot, &lists, "a").await, Some(obj("a", "t1", 1)));
        assert_eq!(lists.load(Ordering::SeqCst), 2, "listed again once stale");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_list_keeps_no_view() {
        let snapshot = Snapshot::new("test", Duration::from_secs(60));
        let lists = AtomicUsize::new(0);
        let failed = snapshot
            .read(|| async { Err::<Vec<Entry>, _>("down") }, |view| view.len())
            .await;
        assert_eq!(failed, Err("down"));
        assert_eq!(get(&snapshot, &lists, "a").await, Some(obj("a", "t1", 1)));
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
        assert_eq!(get(&snapshot, &lists, "a").await, Some(obj("a", "t1", 1)));
        snapshot.put(obj("a", "t2", 2));
        snapshot.put(obj("c", "t1", 1));
        snapshot.remove("b");
        let (a, t1, t2) = snapshot
            .read(
                || async { Err::<Vec<Entry>, ()>(()) },
                |view| {
                    (
                        view.get("a"),
                        view.holds_exactly("t1", &[obj("c", "t1", 1)]),
                        view.holds_exactly("t2", &[obj("a", "t2", 2)]),
                    )
                },
            )
            .await
            .expect("fresh view, no list");
        assert_eq!(a, Some(obj("a", "t2", 2)));
        assert!(t1, "a moved to t2");
        assert!(t2, "b is gone");
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
                            Ok::<_, ()>(vec![
                                obj("a", "t1", 1),
                                obj("b", "t1", 1),
                                obj("c", "t2", 1),
                            ])
                        },
                        |view| {
                            (
                                view.get("a"),
                                view.holds_exactly("t2", &[obj("d", "t2", 1)]),
                            )
                        },
                    )
                    .await
            }
        });
        tokio::task::yield_now().await;
        snapshot.put(obj("a", "t1", 2));
        snapshot.remove("b");
        snapshot.replace_owned("t2", vec![obj("d", "t2", 1)]);
        let _ = release.send(());
        assert_eq!(reader.await.unwrap(), Ok((Some(obj("a", "t1", 2)), true)));
        let lists = AtomicUsize::new(0);
        assert_eq!(get(&snapshot, &lists, "b").await, None);
        assert_eq!(lists.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_holds_only_for_exactly_the_expected_objects_of_an_owner() {
        let snapshot = Snapshot::new("test", Duration::from_secs(60));
        let listed = vec![obj("a", "t1", 1), obj("b", "t1", 1), obj("c", "t2", 1)];
        let answers = snapshot
            .read(
                || async { Ok::<_, ()>(listed) },
                |view| {
                    [
                        view.holds_exactly("t1", &[obj("a", "t1", 1), obj("b", "t1", 1)]),
                        view.holds_exactly("t1", &[obj("a", "t1", 1)]),
                        view.holds_exactly("t1", &[obj("a", "t1", 1), obj("b", "t1", 2)]),
                        view.holds_exactly("t2", &[obj("c", "t1", 1)]),
                        view.holds_exactly("t3", &[]),
                        view.holds_exactly("t3", &[obj("a", "t3", 1)]),
                    ]
                },
            )
            .await
            .expect("list");
        assert_eq!(
            answers,
            [true, false, false, false, true, false],
            "exact set / one missing / other fingerprint / other owner / none / unlisted"
        );
    }

    #[test]
    fn a_new_snapshot_exports_both_list_results_at_zero() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let exported = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            Snapshot::new("stalwart", Duration::from_secs(60))
        });
        let text = exported.render();
        for result in ["ok", "error"] {
            let series =
                format!(r#"snapshot_lists_total{{system="stalwart",result="{result}"}} 0"#);
            assert!(text.contains(&series), "{series} missing from:\n{text}");
        }
    }
}
