//! The cache's state, free of I/O so that every rule is a unit test.
//!
//! A *view* is one list at a snapshot plus the change events applied since,
//! in the stream's (cluster-time) order. For an event at cluster time `at`:
//!
//! - at or before the list's snapshot: ignored, the list already holds it;
//! - `insert` of an id already cached: ignored, the cached copy (from the
//!   list or a later lookup) is at least as new as the inserted document;
//! - `update`/`replace`: carries the current document (`updateLookup` reads
//!   it when the event is delivered, so it is never older than the event),
//!   which replaces the entry unless its generation is lower than the
//!   cached one (a `replace` carries the document as of its own time); no
//!   document means the tenant was deleted meanwhile, and the entry goes;
//! - `delete`: the entry goes.
//!
//! Invalidation (drop, rename, invalidate, a stream error, a write without
//! an operation time) drops the view; a list started before it is refused
//! ([`ListTicket`]), so only a list that began afterwards installs a view.
//!
//! Pins give reads-your-writes: after this process writes tenant `id` at
//! cluster time `t`, the tenant's id and slug are answered
//! [`Lookup::Unknown`] until the view's position (the snapshot, then the
//! last applied event) reaches `t`. Events arrive in cluster-time order, so
//! by then the write's own event, or a later list, is in the view.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

use dezky_core::Id;
use mongodb::bson::Timestamp;

use super::feed::{ChangeKind, Feed, Position};
use super::{CachedTenant, Scope, FRESH_FOR};

/// What the cache knows about a key.
#[derive(Debug)]
pub enum Lookup<T> {
    /// Cached, current as of the stream's position.
    Hit(T),
    /// Known not to exist.
    Absent,
    /// The cache cannot tell: read MongoDB.
    Unknown,
}

/// One change event, reduced to what the cache needs.
#[derive(Debug)]
pub enum Change {
    /// `insert`: the document as inserted.
    Insert(CachedTenant),
    /// `update` or `replace`: the document when the event was delivered,
    /// `None` if it no longer existed.
    Update {
        id: Id,
        current: Option<CachedTenant>,
    },
    /// `delete`.
    Delete(Id),
}

/// Taken before a list; a view listed under an older ticket is refused.
#[derive(Clone, Copy, Debug)]
pub struct ListTicket(u64);

#[derive(Default)]
pub struct State {
    /// `None`: unsynced, every lookup is `Unknown`.
    view: Option<View>,
    /// Tenants this process wrote that the view may not show yet.
    pins: HashMap<Id, Pin>,
    /// Bumped by every invalidation.
    epoch: u64,
    /// What the view applied, for watchers.
    pub feed: Feed,
}

struct View {
    by_id: BTreeMap<Id, Arc<CachedTenant>>,
    by_slug: HashMap<Arc<str>, Id>,
    /// The tenants each user created (their membership as creator).
    by_creator: HashMap<Id, BTreeSet<Id>>,
    /// Cluster time of the list's snapshot.
    listed_at: Timestamp,
    /// Everything up to this cluster time is applied.
    position: Timestamp,
    /// When MongoDB last answered (the list's start, then every reply of the stream).
    heard_at: Instant,
}

struct Pin {
    /// Cluster time of the latest write.
    until: Timestamp,
    slug: String,
}

impl State {
    /// Call before starting a list.
    pub fn begin_list(&self) -> ListTicket {
        ListTicket(self.epoch)
    }

    /// Installs `tenants`, listed at snapshot `at` under `ticket`, which
    /// started at `started`. `false` (nothing installed) if the cache was
    /// invalidated since the ticket was taken.
    pub fn synced(
        &mut self,
        ticket: ListTicket,
        tenants: Vec<CachedTenant>,
        at: Timestamp,
        started: Instant,
    ) -> bool {
        if ticket.0 != self.epoch {
            return false;
        }
        let mut view = View {
            by_id: BTreeMap::new(),
            by_slug: HashMap::with_capacity(tenants.len()),
            by_creator: HashMap::new(),
            listed_at: at,
            position: at,
            heard_at: started,
        };
        for tenant in tenants {
            view.put(Arc::new(tenant));
        }
        self.pins.retain(|_, pin| pin.until > at);
        self.view = Some(view);
        self.feed.relisted(at);
        true
    }

    /// Drops the view; a list already under way will not install its own.
    pub fn invalidate(&mut self) {
        self.epoch += 1;
        self.view = None;
    }

    pub fn is_synced(&self) -> bool {
        self.view.is_some()
    }

    /// Number of cached tenants, if synced.
    pub fn len(&self) -> Option<usize> {
        self.view.as_ref().map(|view| view.by_id.len())
    }

    /// MongoDB answered the stream (with nothing new) at `now`.
    pub fn heard(&mut self, now: Instant) {
        if let Some(view) = &mut self.view {
            view.heard_at = now;
        }
    }

    /// Applies `change`, an event at cluster time `at` received at `now`,
    /// and publishes what it changed in the feed.
    pub fn apply(&mut self, at: Timestamp, change: Change, now: Instant) {
        let Some(view) = &mut self.view else {
            return;
        };
        view.heard_at = now;
        if at <= view.listed_at {
            return;
        }
        let position = self.feed.next_position(at);
        self.feed.saw(position);
        let published = match change {
            Change::Insert(tenant) => match view.by_id.contains_key(&tenant.id()) {
                true => None,
                false => Some((ChangeKind::Added, view.put(Arc::new(tenant)))),
            },
            Change::Update {
                current: Some(tenant),
                ..
            } => {
                let cached = view.by_id.get(&tenant.id());
                let older = cached.is_some_and(|cached| cached.generation() > tenant.generation());
                let same = cached.is_some_and(|cached| cached.same_json(&tenant));
                let kind = match cached {
                    Some(_) => ChangeKind::Modified,
                    None => ChangeKind::Added,
                };
                (!older && !same).then(|| (kind, view.put(Arc::new(tenant))))
            }
            Change::Update { id, current: None } | Change::Delete(id) => {
                view.remove(id).map(|old| (ChangeKind::Deleted, old))
            }
        };
        view.position = view.position.max(at);
        let position_at = view.position;
        if let Some((kind, tenant)) = published {
            self.feed.publish(position, kind, tenant);
        }
        if !self.pins.is_empty() {
            self.pins.retain(|_, pin| pin.until > position_at);
        }
    }

    /// Every cached tenant and the feed position they are current at, if
    /// synced (fresh or not: a watcher waits out a quiet stream).
    pub fn snapshot(&self) -> Option<(Vec<Arc<CachedTenant>>, Position)> {
        let view = self.view.as_ref()?;
        let position = self.feed.position()?;
        Some((view.by_id.values().cloned().collect(), position))
    }

    /// This process wrote tenant `id` (`slug`) at cluster time `at`.
    pub fn pin(&mut self, id: Id, slug: &str, at: Timestamp) {
        if self.view.as_ref().is_some_and(|view| view.position >= at) {
            return;
        }
        let pin = self.pins.entry(id).or_insert_with(|| Pin {
            until: at,
            slug: slug.to_string(),
        });
        pin.until = pin.until.max(at);
    }

    pub fn pinned(&self) -> usize {
        self.pins.len()
    }

    /// The view, if it may answer at `now`.
    fn fresh(&self, now: Instant) -> Option<&View> {
        self.view
            .as_ref()
            .filter(|view| now.saturating_duration_since(view.heard_at) < FRESH_FOR)
    }

    pub fn is_fresh(&self, now: Instant) -> bool {
        self.fresh(now).is_some()
    }

    /// The tenant `slug`.
    pub fn get(&self, slug: &str, now: Instant) -> Lookup<Arc<CachedTenant>> {
        let Some(view) = self.fresh(now) else {
            return Lookup::Unknown;
        };
        if self.pins.values().any(|pin| pin.slug == slug) {
            return Lookup::Unknown;
        }
        match view.by_slug.get(slug).and_then(|id| view.by_id.get(id)) {
            Some(tenant) => Lookup::Hit(tenant.clone()),
            None => Lookup::Absent,
        }
    }

    /// Up to `take` tenants of `scope` with ids after `after`, in id order
    /// (the keyset order of `pagination`), broken ones left out; `None`:
    /// read MongoDB.
    pub fn page(
        &self,
        scope: Scope<'_>,
        after: Option<Id>,
        take: usize,
        now: Instant,
    ) -> Option<Vec<Arc<CachedTenant>>> {
        let view = self.fresh(now)?;
        let after_cursor = |id: &Id| match after {
            Some(after) => *id > after,
            None => true,
        };
        // Any pin may be in scope (for a member: their own creation, whose
        // creator the pin does not record).
        if self.pins.keys().any(after_cursor) {
            return None;
        }
        let page = match scope {
            Scope::All => {
                let from = after.map_or(Bound::Unbounded, Bound::Excluded);
                view.by_id
                    .range((from, Bound::Unbounded))
                    .filter(|(_, tenant)| !tenant.is_broken())
                    .take(take)
                    .map(|(_, tenant)| tenant.clone())
                    .collect()
            }
            Scope::Members { ids, creator } => {
                let created = view.by_creator.get(&creator).into_iter().flatten();
                let mut ids: Vec<Id> = ids
                    .iter()
                    .chain(created)
                    .copied()
                    .filter(after_cursor)
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                ids.iter()
                    .filter_map(|id| view.by_id.get(id))
                    .filter(|tenant| !tenant.is_broken())
                    .take(take)
                    .cloned()
                    .collect()
            }
        };
        Some(page)
    }
}

impl View {
    /// Caches `tenant`; returns it.
    fn put(&mut self, tenant: Arc<CachedTenant>) -> Arc<CachedTenant> {
        let (id, slug) = (tenant.id(), tenant.slug().clone());
        if let Some(old) = self.by_id.insert(id, tenant.clone()) {
            self.unindex(&old);
        }
        self.by_slug.insert(slug, id);
        if let Some(creator) = tenant.created_by() {
            self.by_creator.entry(creator).or_default().insert(id);
        }
        tenant
    }

    /// Forgets tenant `id`; returns its last entry.
    fn remove(&mut self, id: Id) -> Option<Arc<CachedTenant>> {
        let old = self.by_id.remove(&id)?;
        self.unindex(&old);
        Some(old)
    }

    /// Forgets `old`'s slug unless another tenant holds it by now, and
    /// its creator's membership.
    fn unindex(&mut self, old: &CachedTenant) {
        if self.by_slug.get(&**old.slug()) == Some(&old.id()) {
            self.by_slug.remove(&**old.slug());
        }
        let Some(creator) = old.created_by() else {
            return;
        };
        if let Some(created) = self.by_creator.get_mut(&creator) {
            created.remove(&old.id());
            if created.is_empty() {
                self.by_creator.remove(&creator);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use dezky_core::model::Tenant;

    use super::*;
    use crate::tenant_cache::entry::tests::full_tenant;

    /// A cluster time of the tests' second, `increment` within it.
    pub(crate) fn ts(increment: u32) -> Timestamp {
        Timestamp {
            time: 1_700_000_000,
            increment,
        }
    }

    fn entry(tenant: &Tenant) -> CachedTenant {
        CachedTenant::new(tenant.clone()).unwrap()
    }

    /// A fresh state synced at `ts(10)` with `tenants`.
    fn synced(tenants: &[&Tenant]) -> (State, Instant) {
        let mut state = State::default();
        let now = Instant::now();
        let ticket = state.begin_list();
        let listed = tenants.iter().map(|t| entry(t)).collect();
        assert!(state.synced(ticket, listed, ts(10), now));
        (state, now)
    }

    fn hit(state: &State, slug: &str, now: Instant) -> Arc<CachedTenant> {
        match state.get(slug, now) {
            Lookup::Hit(tenant) => tenant,
            other => panic!("{slug}: {other:?}"),
        }
    }

    fn name_of(tenant: &CachedTenant) -> String {
        let value: serde_json::Value = serde_json::from_slice(tenant.json()).unwrap();
        value["name"].as_str().unwrap().to_string()
    }

    fn renamed(tenant: &Tenant, name: &str, generation: i64) -> Tenant {
        Tenant {
            name: name.into(),
            generation,
            ..tenant.clone()
        }
    }

    #[test]
    fn an_insert_of_a_cached_id_is_ignored() {
        let acme = full_tenant("acme");
        let newer = renamed(&acme, "listed later", 2);
        let (mut state, now) = synced(&[&newer]);
        state.apply(ts(11), Change::Insert(entry(&acme)), now);
        assert_eq!(name_of(&hit(&state, "acme", now)), "listed later");

        let other = full_tenant("other");
        state.apply(ts(12), Change::Insert(entry(&other)), now);
        assert_eq!(hit(&state, "other", now).id(), other.id);
    }

    #[test]
    fn events_at_or_before_the_list_snapshot_are_ignored() {
        let acme = full_tenant("acme");
        let (mut state, now) = synced(&[&acme]);
        state.apply(ts(10), Change::Delete(acme.id), now);
        state.apply(
            ts(9),
            Change::Update {
                id: acme.id,
                current: Some(entry(&renamed(&acme, "old", 5))),
            },
            now,
        );
        assert_eq!(name_of(&hit(&state, "acme", now)), acme.name);
    }

    #[test]
    fn an_update_puts_the_current_document() {
        let acme = full_tenant("acme");
        let (mut state, now) = synced(&[&acme]);
        let current = renamed(&acme, "Acme 2", 2);
        state.apply(
            ts(11),
            Change::Update {
                id: acme.id,
                current: Some(entry(&current)),
            },
            now,
        );
        let cached = hit(&state, "acme", now);
        assert_eq!(
            (name_of(&cached), cached.generation()),
            ("Acme 2".into(), 2)
        );

        // A status write keeps the generation and still replaces the entry.
        let status_only = renamed(&acme, "Acme 3", 2);
        state.apply(
            ts(12),
            Change::Update {
                id: acme.id,
                current: Some(entry(&status_only)),
            },
            now,
        );
        assert_eq!(name_of(&hit(&state, "acme", now)), "Acme 3");
    }

    #[test]
    fn an_entry_never_goes_back_to_an_older_generation() {
        let acme = full_tenant("acme");
        let (mut state, now) = synced(&[&renamed(&acme, "gen 3", 3)]);
        state.apply(
            ts(11),
            Change::Update {
                id: acme.id,
                current: Some(entry(&renamed(&acme, "gen 2", 2))),
            },
            now,
        );
        let cached = hit(&state, "acme", now);
        assert_eq!((name_of(&cached), cached.generation()), ("gen 3".into(), 3));
    }

    #[test]
    fn an_update_without_a_document_or_a_delete_removes_the_entry_and_its_slug() {
        let (acme, beta) = (full_tenant("acme"), full_tenant("beta"));
        let (mut state, now) = synced(&[&acme, &beta]);
        state.apply(
            ts(11),
            Change::Update {
                id: acme.id,
                current: None,
            },
            now,
        );
        state.apply(ts(12), Change::Delete(beta.id), now);
        assert!(matches!(state.get("acme", now), Lookup::Absent));
        assert!(matches!(state.get("beta", now), Lookup::Absent));
        assert_eq!(state.len(), Some(0));

        // A new tenant may take a deleted tenant's slug.
        let again = full_tenant("acme");
        state.apply(ts(13), Change::Insert(entry(&again)), now);
        assert_eq!(hit(&state, "acme", now).id(), again.id);
    }

    #[test]
    fn an_unsynced_cache_answers_nothing() {
        let acme = full_tenant("acme");
        let (mut state, now) = synced(&[&acme]);
        state.invalidate();
        assert!(matches!(state.get("acme", now), Lookup::Unknown));
        assert!(matches!(state.get("nope", now), Lookup::Unknown));
        assert!(state.page(Scope::All, None, 10, now).is_none());
        // Events meanwhile are dropped, not applied to a view that is gone.
        state.apply(ts(11), Change::Insert(entry(&full_tenant("b"))), now);
        assert!(!state.is_synced());
    }

    #[test]
    fn a_list_that_began_before_an_invalidation_is_refused() {
        let mut state = State::default();
        let ticket = state.begin_list();
        state.invalidate();
        let listed = vec![entry(&full_tenant("acme"))];
        assert!(!state.synced(ticket, listed, ts(10), Instant::now()));
        assert!(!state.is_synced());
    }

    #[test]
    fn a_cache_not_heard_from_within_fresh_for_answers_nothing() {
        let acme = full_tenant("acme");
        let (mut state, listed) = synced(&[&acme]);
        let later = listed + FRESH_FOR;
        assert!(matches!(state.get("acme", later), Lookup::Unknown));
        assert!(state.page(Scope::All, None, 10, later).is_none());
        state.heard(later);
        hit(&state, "acme", later + Duration::from_millis(500));
    }

    #[test]
    fn a_written_tenant_is_read_from_mongodb_until_the_stream_passes_the_write() {
        let acme = full_tenant("acme");
        let (mut state, now) = synced(&[&acme]);
        state.pin(acme.id, "acme", ts(12));
        assert!(matches!(state.get("acme", now), Lookup::Unknown));
        assert!(state.page(Scope::All, None, 10, now).is_none());
        assert!(state
            .page(
                Scope::Members {
                    ids: &[acme.id],
                    creator: Id::new()
                },
                None,
                10,
                now
            )
            .is_none());
        // Any member's page may hold it (the pin does not know its
        // creator); a page after the pinned id is unaffected.
        let anyone = Scope::Members {
            ids: &[],
            creator: Id::new(),
        };
        assert!(state.page(anyone, None, 10, now).is_none());
        assert!(state.page(anyone, Some(acme.id), 10, now).is_some());
        assert!(state.page(Scope::All, Some(acme.id), 10, now).is_some());

        // An event before the write keeps the pin.
        let other = full_tenant("other");
        state.apply(ts(11), Change::Insert(entry(&other)), now);
        assert!(matches!(state.get("acme", now), Lookup::Unknown));
        // The write's own event releases it.
        let written = renamed(&acme, "written", 2);
        state.apply(
            ts(12),
            Change::Update {
                id: acme.id,
                current: Some(entry(&written)),
            },
            now,
        );
        assert_eq!(state.pinned(), 0);
        assert_eq!(name_of(&hit(&state, "acme", now)), "written");
    }

    #[test]
    fn a_slug_created_by_this_process_is_not_reported_absent_before_its_insert_arrives() {
        let (mut state, now) = synced(&[]);
        let acme = full_tenant("acme");
        state.pin(acme.id, "acme", ts(11));
        assert!(matches!(state.get("acme", now), Lookup::Unknown));
        state.apply(ts(11), Change::Insert(entry(&acme)), now);
        hit(&state, "acme", now);
    }

    #[test]
    fn a_write_the_view_already_holds_is_not_pinned() {
        let acme = full_tenant("acme");
        let (mut state, now) = synced(&[&acme]);
        state.apply(ts(12), Change::Delete(full_tenant("x").id), now);
        state.pin(acme.id, "acme", ts(12));
        state.pin(acme.id, "acme", ts(5));
        assert_eq!(state.pinned(), 0);
        hit(&state, "acme", now);
    }

    #[test]
    fn pins_survive_an_invalidation_until_a_list_after_the_write() {
        let acme = full_tenant("acme");
        let (mut state, _) = synced(&[&acme]);
        state.pin(acme.id, "acme", ts(20));
        state.invalidate();
        state.pin(acme.id, "acme", ts(25));
        let ticket = state.begin_list();
        assert!(state.synced(ticket, vec![entry(&acme)], ts(22), Instant::now()));
        assert_eq!(state.pinned(), 1, "the write at 25 is after the list");
        let ticket = state.begin_list();
        assert!(state.synced(ticket, vec![entry(&acme)], ts(25), Instant::now()));
        assert_eq!(state.pinned(), 0);
    }

    #[test]
    fn pages_follow_id_order_from_the_cursor_within_the_scope() {
        let tenants: Vec<Tenant> = (0..5).map(|i| full_tenant(&format!("t{i}"))).collect();
        let refs: Vec<&Tenant> = tenants.iter().rev().collect();
        let (state, now) = synced(&refs);
        let ids = |page: Vec<Arc<CachedTenant>>| page.iter().map(|t| t.id()).collect::<Vec<_>>();
        let mut all: Vec<Id> = tenants.iter().map(|t| t.id).collect();
        all.sort();

        let page = state.page(Scope::All, None, 3, now).unwrap();
        assert_eq!(ids(page), all[..3]);
        let page = state.page(Scope::All, Some(all[2]), 3, now).unwrap();
        assert_eq!(ids(page), all[3..]);

        // Members: their ids only, unordered and repeated in the record, and
        // ids of tenants that no longer exist are skipped.
        let gone = Id::new();
        let members = [all[4], gone, all[1], all[4], all[3]];
        let page = state
            .page(
                Scope::Members {
                    ids: &members,
                    creator: Id::new(),
                },
                None,
                2,
                now,
            )
            .unwrap();
        assert_eq!(ids(page), [all[1], all[3]]);
        let page = state
            .page(
                Scope::Members {
                    ids: &members,
                    creator: Id::new(),
                },
                Some(all[3]),
                2,
                now,
            )
            .unwrap();
        assert_eq!(ids(page), [all[4]]);
    }

    #[test]
    fn a_creator_pages_what_they_created_until_it_is_gone() {
        let alice = Id::new();
        let mut tenants: Vec<Tenant> = (0..3).map(|i| full_tenant(&format!("t{i}"))).collect();
        tenants[0].created_by = Some(alice);
        tenants[2].created_by = Some(alice);
        let refs: Vec<&Tenant> = tenants.iter().collect();
        let (mut state, now) = synced(&refs);
        let hers = |state: &State| {
            let scope = Scope::Members {
                ids: &[],
                creator: alice,
            };
            let page = state.page(scope, None, 10, now).unwrap();
            page.iter().map(|t| t.id()).collect::<BTreeSet<_>>()
        };
        assert_eq!(hers(&state), [tenants[0].id, tenants[2].id].into());
        let mut renamed = tenants[2].clone();
        renamed.generation += 1;
        renamed.name = "renamed".into();
        let at = ts(20);
        state.apply(
            at,
            Change::Update {
                id: renamed.id,
                current: Some(entry(&renamed)),
            },
            now,
        );
        assert_eq!(hers(&state), [tenants[0].id, tenants[2].id].into());
        state.apply(ts(21), Change::Delete(tenants[0].id), now);
        assert_eq!(hers(&state), [tenants[2].id].into());
    }
}
