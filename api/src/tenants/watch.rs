//! `GET /tenants?watch=true`: the tenants the caller may see, as a
//! Server-Sent Events stream fed by the tenant cache's [feed](crate::tenant_cache::feed),
//! in the spirit of a Kubernetes watch. The protocol (also in the OpenAPI
//! description and the README):
//!
//! - A fresh start is `reset` (with an empty `id:`, which clears a
//!   client's last event id), one `added` per visible tenant (no `id`),
//!   then `synced` whose `id` marks that state.
//! - Then one `added`, `modified` or `deleted` per change, each with an
//!   `id`, its data the tenant's JSON as `GET /tenants/{slug}` shows it
//!   (for `deleted`: its last state).
//! - When the caller's memberships change, the tenants that became
//!   visible arrive as `added` and those that no longer are as `deleted`;
//!   only the last event of such a batch carries an `id`, so a client cut
//!   off in the middle resumes from before it.
//! - `Last-Event-ID` resumes: every event after that id, if this process's
//!   history still holds it and the caller's visibility is the one the id
//!   was issued for; otherwise a fresh start. An id is `position-scope`:
//!   the change stream position (the same in every API process) and a hash
//!   of what the caller could see.
//! - `view=fleet` sends each tenant's [fleet row](crate::fleet::row)
//!   instead of the whole tenant, and no `modified` for a change the row
//!   does not show (a routine resync moves only timestamps), so an open
//!   fleet view costs nothing while nothing it shows changes.
//! - A comment line every heartbeat interval (15 s) keeps proxies from
//!   closing an idle stream. The stream ends when the token expires (the
//!   client reconnects with a new one and its last id), at shutdown, and
//!   when the client falls more than the feed's backlog behind: a slow
//!   client is dropped, never buffered for.
//!
//! Memory per client: the ids of the tenants it was shown (one pointer
//! each) and the events not yet written to its socket, which is bounded by
//! the feed's backlog and the tenants shown.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use dezky_core::model::User;
use dezky_core::Id;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::auth::{Actor, Claims, LEEWAY_SECS};
use crate::error::{ApiError, ApiResult};
use crate::state::ApiContext;
use crate::tenant_cache::feed::{ChangeKind, FeedEvent, FeedItem, Position};
use crate::tenant_cache::{CachedTenant, Subscription};

/// How long a watch waits for the tenant cache to be synced before it
/// answers 503.
const SYNC_WAIT: Duration = Duration::from_secs(5);

/// The `?watch=&slug=&view=` of `GET /tenants`.
#[derive(Debug, Default)]
pub struct WatchQuery {
    /// `watch=true`: stream instead of a page.
    pub watch: bool,
    /// Only this tenant.
    pub slug: Option<String>,
    pub view: View,
}

/// What a watch sends of each tenant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum View {
    /// The tenant as `GET /tenants/{slug}` shows it.
    #[default]
    Full,
    /// Its fleet row, and only changes of that row.
    Fleet,
}

impl View {
    fn data(self, tenant: &CachedTenant) -> &[u8] {
        match self {
            View::Full => tenant.json(),
            View::Fleet => tenant.row(),
        }
    }

    /// Whether a client of this view was already shown `new` as `old`.
    fn same(self, old: &CachedTenant, new: &CachedTenant) -> bool {
        match self {
            View::Full => old.same_json(new),
            View::Fleet => old.same_row(new),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WatchQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        #[derive(Deserialize)]
        struct Raw {
            watch: Option<String>,
            slug: Option<String>,
            view: Option<String>,
        }
        let Query(raw) = Query::<Raw>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("query", e.body_text()))?;
        let watch = match raw.watch.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(ApiError::invalid("watch", "must be `true` or `false`")),
        };
        let view = match raw.view.as_deref() {
            None | Some("full") => View::Full,
            Some("fleet") => View::Fleet,
            Some(_) => return Err(ApiError::invalid("view", "must be `full` or `fleet`")),
        };
        for (field, given) in [("slug", raw.slug.is_some()), ("view", raw.view.is_some())] {
            if given && !watch {
                return Err(ApiError::invalid(field, "applies only with `watch=true`"));
            }
        }
        Ok(WatchQuery {
            watch,
            slug: raw.slug,
            view,
        })
    }
}

/// What a caller may see: all tenants or their memberships, narrowed to
/// one slug.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Visibility {
    all: bool,
    ids: BTreeSet<Id>,
    /// The caller, a member of what they created.
    user: Id,
    slug: Option<String>,
    /// Part of what the client sees, so an id issued for one view does
    /// not resume the other.
    view: View,
}

impl Visibility {
    fn of(user: &User, slug: Option<&str>, view: View) -> Self {
        let all = user.platform_admin;
        Visibility {
            all,
            view,
            user: user.id,
            // A platform admin's memberships change nothing they see.
            ids: match all {
                true => BTreeSet::new(),
                false => user.tenant_ids.iter().copied().collect(),
            },
            slug: slug.map(str::to_string),
        }
    }

    fn shows(&self, tenant: &CachedTenant) -> bool {
        let member =
            self.all || self.ids.contains(&tenant.id()) || tenant.created_by() == Some(self.user);
        let named = match &self.slug {
            Some(slug) => **tenant.slug() == **slug,
            None => true,
        };
        member && named && !tenant.is_broken()
    }

    /// A stable hash (FNV-1a, the same in every process and build), so an
    /// event id tells whether it was issued for this visibility.
    fn hash(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for byte in bytes {
                hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(&[u8::from(self.all)]);
        if !self.all {
            eat(&self.user.0.bytes());
        }
        for id in &self.ids {
            eat(&id.0.bytes());
        }
        if let Some(slug) = &self.slug {
            eat(b"/");
            eat(slug.as_bytes());
        }
        if self.view == View::Fleet {
            eat(b"?fleet");
        }
        hash
    }
}

/// An event id: `position-scope`.
fn event_id(position: Position, scope: u64) -> String {
    format!("{position}-{scope:016x}")
}

fn parse_event_id(text: &str) -> Option<(Position, u64)> {
    let (position, scope) = text.trim().rsplit_once('-')?;
    Some((
        Position::parse(position)?,
        u64::from_str_radix(scope, 16).ok()?,
    ))
}

/// One event still to write.
enum Outgoing {
    Reset,
    Change {
        kind: ChangeKind,
        tenant: Arc<CachedTenant>,
        id: Option<String>,
    },
    Synced(String),
}

impl Outgoing {
    fn into_event(self, view: View) -> Event {
        match self {
            Outgoing::Reset => Event::default().event("reset").id("").data("{}"),
            Outgoing::Synced(id) => Event::default().event("synced").id(id).data("{}"),
            Outgoing::Change { kind, tenant, id } => {
                // The cache holds serde_json output: always UTF-8.
                let json = String::from_utf8_lossy(view.data(&tenant));
                let event = Event::default().event(kind.name()).data(json);
                match id {
                    Some(id) => event.id(id),
                    None => event,
                }
            }
        }
    }
}

/// The stream `GET /tenants?watch=true` answers with.
pub async fn watch(
    ctx: ApiContext,
    claims: Arc<Claims>,
    actor: Actor,
    query: WatchQuery,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let visibility = Visibility::of(&actor.0, query.slug.as_deref(), query.view);
    let resume = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_event_id)
        .filter(|(_, scope)| *scope == visibility.hash());
    let subscription = subscribe(&ctx, resume.map(|(position, _)| position)).await?;
    let heartbeat = ctx.config.watch_heartbeat;
    let watcher = Watcher::start(ctx, claims, visibility, subscription, resume);
    let stream = futures::stream::unfold(watcher, |mut watcher| async move {
        watcher
            .next()
            .await
            .map(|event| (Ok::<_, Infallible>(event), watcher))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat"))
        .into_response())
}

/// The cache's feed from `from`, waiting up to [`SYNC_WAIT`] for the cache
/// to be synced.
pub(crate) async fn subscribe(ctx: &ApiContext, from: Option<Position>) -> ApiResult<Subscription> {
    let deadline = Instant::now() + SYNC_WAIT;
    loop {
        let mut receiver = match ctx.tenant_cache.subscribe(from) {
            Ok(subscription) => return Ok(subscription),
            Err(receiver) => receiver,
        };
        loop {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Err(_) => return Err(ApiError::DatabaseUnavailable),
                Ok(Ok(FeedItem::Relisted) | Err(RecvError::Lagged(_))) => break,
                Ok(Ok(FeedItem::Change(_))) => {}
                Ok(Err(RecvError::Closed)) => return Err(ApiError::DatabaseUnavailable),
            }
        }
    }
}

/// One client's stream.
struct Watcher {
    ctx: ApiContext,
    claims: Arc<Claims>,
    visibility: Visibility,
    /// What the client was told exists (to turn a visibility change into
    /// `added`/`deleted`, and to tell `added` from `modified`).
    shown: HashMap<Id, Arc<CachedTenant>>,
    pending: VecDeque<Outgoing>,
    subscription: Subscription,
    /// The client is current up to here; older feed items are skipped.
    position: Position,
    forgets: tokio::sync::watch::Receiver<u64>,
    recheck: tokio::time::Interval,
    /// When the token stops being valid.
    expires: Instant,
}

impl Watcher {
    fn start(
        ctx: ApiContext,
        claims: Arc<Claims>,
        visibility: Visibility,
        mut subscription: Subscription,
        resume: Option<(Position, u64)>,
    ) -> Self {
        let shown: HashMap<Id, Arc<CachedTenant>> = subscription
            .snapshot
            .iter()
            .filter(|tenant| visibility.shows(tenant))
            .map(|tenant| (tenant.id(), tenant.clone()))
            .collect();
        let mut pending = VecDeque::new();
        let scope = visibility.hash();
        let mut position = subscription.position;
        match (subscription.replay.take(), resume) {
            (Some(replay), Some((from, _))) => {
                position = position.max(from);
                pending.extend(
                    replay
                        .iter()
                        .filter_map(|event| replayed(&visibility, event, scope)),
                );
            }
            _ => {
                pending.push_back(Outgoing::Reset);
                pending.extend(shown.values().map(|tenant| Outgoing::Change {
                    kind: ChangeKind::Added,
                    tenant: tenant.clone(),
                    id: None,
                }));
                pending.push_back(Outgoing::Synced(event_id(position, scope)));
            }
        }
        subscription.snapshot = Vec::new();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let valid_for = (claims.exp + LEEWAY_SECS).saturating_sub(now);
        let mut recheck = tokio::time::interval(crate::auth::actors::MAX_AGE);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Watcher {
            forgets: ctx.actors.forgets(),
            ctx,
            claims,
            visibility,
            shown,
            pending,
            subscription,
            position,
            recheck,
            expires: Instant::now() + Duration::from_secs(valid_for),
        }
    }

    /// The next event to write; `None` ends the stream.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(out) = self.pending.pop_front() {
                return Some(out.into_event(self.visibility.view));
            }
            tokio::select! {
                item = self.subscription.receiver.recv() => match item {
                    Ok(FeedItem::Change(event)) => self.changed(&event),
                    Ok(FeedItem::Relisted) => self.resync(),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::info!(missed, "dropping a watch client that fell behind");
                        return None;
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = self.forgets.changed() => self.recheck_actor().await,
                _ = self.recheck.tick() => self.recheck_actor().await,
                _ = tokio::time::sleep_until(self.expires) => return None,
                _ = self.ctx.config.shutdown.cancelled() => return None,
            }
        }
    }

    fn changed(&mut self, event: &FeedEvent) {
        if event.position <= self.position {
            return;
        }
        self.position = event.position;
        let id = Some(event_id(event.position, self.visibility.hash()));
        let tenant = &event.tenant;
        let kind = match (event.kind, self.visibility.shows(tenant)) {
            (ChangeKind::Deleted, _) | (_, false) => match self.shown.remove(&tenant.id()) {
                Some(_) => ChangeKind::Deleted,
                None => return,
            },
            (_, true) => match self.shown.insert(tenant.id(), tenant.clone()) {
                Some(old) if self.visibility.view.same(&old, tenant) => return,
                Some(_) => ChangeKind::Modified,
                None => ChangeKind::Added,
            },
        };
        self.pending.push_back(Outgoing::Change {
            kind,
            tenant: tenant.clone(),
            id,
        });
    }

    /// Compares what the client was shown with the cache now, and sends the
    /// difference as one batch (only its last event with an id).
    fn resync(&mut self) {
        let Some((snapshot, position)) = self.ctx.tenant_cache.snapshot() else {
            return; // Unsynced: its next relist brings us back here.
        };
        self.position = self.position.max(position);
        let mut batch = Vec::new();
        let mut visible = HashMap::new();
        for tenant in snapshot.into_iter().filter(|t| self.visibility.shows(t)) {
            let kind = match self.shown.get(&tenant.id()) {
                None => Some(ChangeKind::Added),
                Some(old) if !self.visibility.view.same(old, &tenant) => Some(ChangeKind::Modified),
                Some(_) => None,
            };
            if let Some(kind) = kind {
                batch.push((kind, tenant.clone()));
            }
            visible.insert(tenant.id(), tenant);
        }
        for (id, old) in &self.shown {
            if !visible.contains_key(id) {
                batch.push((ChangeKind::Deleted, old.clone()));
            }
        }
        self.shown = visible;
        let last = batch.len().saturating_sub(1);
        let id = event_id(self.position, self.visibility.hash());
        for (i, (kind, tenant)) in batch.into_iter().enumerate() {
            let id = (i == last).then(|| id.clone());
            self.pending
                .push_back(Outgoing::Change { kind, tenant, id });
        }
    }

    /// Reads the caller's record again; a changed visibility resyncs.
    async fn recheck_actor(&mut self) {
        let Ok(actor) = Actor::of(&self.ctx, &self.claims).await else {
            return; // MongoDB is away: keep what we have, try again later.
        };
        let visibility = Visibility::of(
            &actor.0,
            self.visibility.slug.as_deref(),
            self.visibility.view,
        );
        if visibility != self.visibility {
            self.visibility = visibility;
            self.resync();
        }
    }
}

/// A history event as a resumed client gets it (`None`: not theirs).
fn replayed(visibility: &Visibility, event: &FeedEvent, scope: u64) -> Option<Outgoing> {
    visibility.shows(&event.tenant).then(|| Outgoing::Change {
        kind: event.kind,
        tenant: event.tenant.clone(),
        id: Some(event_id(event.position, scope)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_round_trip_and_bad_ones_are_ignored() {
        let position = Position::parse("1700000000.3.0").unwrap();
        let id = event_id(position, 0xabc);
        assert_eq!(id, "1700000000.3.0-0000000000000abc");
        assert_eq!(parse_event_id(&id), Some((position, 0xabc)));
        for bad in ["", "1.2.3", "1.2.3-xyz", "x-1"] {
            assert_eq!(parse_event_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_scope_hash_follows_what_the_caller_may_see() {
        let a = Id::new();
        let b = Id::new();
        let vis = |all: bool, ids: &[Id], slug: Option<&str>| Visibility {
            all,
            user: a,
            ids: ids.iter().copied().collect(),
            slug: slug.map(str::to_string),
            view: View::Full,
        };
        let fleet = Visibility {
            view: View::Fleet,
            ..vis(true, &[a], None)
        };
        assert_eq!(
            vis(false, &[a, b], None).hash(),
            vis(false, &[b, a], None).hash()
        );
        let hashes = [
            vis(false, &[a], None).hash(),
            vis(false, &[a, b], None).hash(),
            vis(true, &[a], None).hash(),
            vis(false, &[a], Some("acme")).hash(),
            fleet.hash(),
        ];
        for (i, x) in hashes.iter().enumerate() {
            for y in &hashes[i + 1..] {
                assert_ne!(x, y);
            }
        }
    }
}
