//! The cache's change feed, which `GET /tenants?watch=true` streams: every
//! change the cache applies, as an `added`, `modified` or `deleted` of the
//! tenant's API shape, at a [`Position`] in the `tenants` change stream.
//!
//! Promises:
//!
//! - **Positions are global.** A position is the change event's cluster
//!   time plus its ordinal among the events of that cluster time, so every
//!   API process that follows the same stream gives an event the same
//!   position, and positions only grow.
//! - **Bounded history.** The last [`RING`] events are kept, so a client
//!   that reconnects with a position at or after [`Feed::floor`] gets
//!   exactly the events after it. A relist (the cache lost the stream and
//!   listed again) starts a new history at the list's snapshot, because the
//!   events between are unknown.
//! - **Bounded fan-out.** Subscribers share one `broadcast` channel of
//!   [`BACKLOG`] items; a subscriber that falls further behind is told it
//!   lagged (and the watch drops that client) instead of buffering for it.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use mongodb::bson::Timestamp;
use tokio::sync::broadcast;

use super::CachedTenant;

/// Events of recent history kept for resuming clients.
pub const RING: usize = 4096;
/// Items a subscriber may fall behind before it is dropped.
pub const BACKLOG: usize = 1024;

/// Where an event is in the `tenants` change stream: its cluster time, and
/// its ordinal among the events with that cluster time (a transaction's
/// writes share one). A list's snapshot at time `t` is `(t, u32::MAX)`:
/// after every event at `t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub time: u32,
    pub increment: u32,
    pub ordinal: u32,
}

impl Position {
    /// The position of a snapshot read at cluster time `at`.
    pub fn snapshot(at: Timestamp) -> Self {
        Position {
            time: at.time,
            increment: at.increment,
            ordinal: u32::MAX,
        }
    }

    /// Parses what [`Display`](fmt::Display) writes: `time.increment.ordinal`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.').map(|part| part.parse::<u32>().ok());
        let position = Position {
            time: parts.next()??,
            increment: parts.next()??,
            ordinal: parts.next()??,
        };
        parts.next().is_none().then_some(position)
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.time, self.increment, self.ordinal)
    }
}

/// What happened to a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

impl ChangeKind {
    /// The SSE event name.
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Modified => "modified",
            ChangeKind::Deleted => "deleted",
        }
    }
}

/// One applied change: the tenant after it (for `deleted`, its last state).
#[derive(Debug)]
pub struct FeedEvent {
    pub position: Position,
    pub kind: ChangeKind,
    pub tenant: Arc<CachedTenant>,
}

/// What subscribers receive.
#[derive(Clone, Debug)]
pub enum FeedItem {
    Change(Arc<FeedEvent>),
    /// The cache listed again: changes may have been missed; compare with a
    /// fresh snapshot.
    Relisted,
}

/// Recent history and the live channel.
pub struct Feed {
    ring: VecDeque<Arc<FeedEvent>>,
    /// Every event after this position is in `ring` (or still to come);
    /// `None` before the first list.
    floor: Option<Position>,
    /// The newest position seen: the last event, or the list's snapshot.
    position: Option<Position>,
    sender: broadcast::Sender<FeedItem>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            ring: VecDeque::new(),
            floor: None,
            position: None,
            sender: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Feed {
    /// A new history starts at a list's snapshot taken at `at`.
    pub fn relisted(&mut self, at: Timestamp) {
        let start = Position::snapshot(at);
        self.ring.clear();
        self.floor = Some(start);
        self.position = Some(start);
        let _ = self.sender.send(FeedItem::Relisted);
    }

    /// The position of the next stream event, at cluster time `at`.
    pub fn next_position(&self, at: Timestamp) -> Position {
        let ordinal = match self.position {
            Some(last) if (last.time, last.increment) == (at.time, at.increment) => {
                last.ordinal.saturating_add(1)
            }
            _ => 0,
        };
        Position {
            time: at.time,
            increment: at.increment,
            ordinal,
        }
    }

    /// A stream event at `position` was seen (whether it changed anything).
    pub fn saw(&mut self, position: Position) {
        self.position = Some(self.position.map_or(position, |p| p.max(position)));
    }

    /// Records and sends a change.
    pub fn publish(&mut self, position: Position, kind: ChangeKind, tenant: Arc<CachedTenant>) {
        let event = Arc::new(FeedEvent {
            position,
            kind,
            tenant,
        });
        if self.ring.len() == RING {
            if let Some(oldest) = self.ring.pop_front() {
                self.floor = Some(oldest.position);
            }
        }
        self.ring.push_back(event.clone());
        let _ = self.sender.send(FeedItem::Change(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<FeedItem> {
        self.sender.subscribe()
    }

    pub fn position(&self) -> Option<Position> {
        self.position
    }

    /// The events after `from`, or `None` if history no longer reaches
    /// back to it.
    pub fn since(&self, from: Position) -> Option<Vec<Arc<FeedEvent>>> {
        match self.floor {
            Some(floor) if from >= floor => {}
            _ => return None,
        }
        let first = self.ring.partition_point(|event| event.position <= from);
        Some(self.ring.range(first..).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant_cache::entry::tests::full_tenant;
    use crate::tenant_cache::state::tests::ts;

    fn tenant() -> Arc<CachedTenant> {
        Arc::new(CachedTenant::new(full_tenant("acme")).unwrap())
    }

    #[test]
    fn positions_print_and_parse_and_order_by_time_then_ordinal() {
        let p = Position {
            time: 5,
            increment: 7,
            ordinal: 1,
        };
        assert_eq!(p.to_string(), "5.7.1");
        assert_eq!(Position::parse("5.7.1"), Some(p));
        for bad in ["", "5.7", "5.7.1.2", "a.b.c", "-1.2.3"] {
            assert_eq!(Position::parse(bad), None, "{bad}");
        }
        assert!(Position::snapshot(ts(3)) > Position::parse("1700000000.3.9").unwrap());
        assert!(Position::snapshot(ts(3)) < Position::parse("1700000000.4.0").unwrap());
    }

    #[test]
    fn events_of_one_cluster_time_get_growing_ordinals() {
        let mut feed = Feed::default();
        feed.relisted(ts(1));
        let first = feed.next_position(ts(2));
        feed.saw(first);
        let second = feed.next_position(ts(2));
        feed.saw(second);
        assert_eq!((first.ordinal, second.ordinal), (0, 1));
        assert_eq!(feed.next_position(ts(3)).ordinal, 0);
    }

    #[test]
    fn history_replays_what_follows_a_position_and_refuses_what_it_lost() {
        let mut feed = Feed::default();
        assert!(feed.since(Position::snapshot(ts(1))).is_none());
        feed.relisted(ts(1));
        let start = Position::snapshot(ts(1));
        assert!(feed.since(start).unwrap().is_empty());
        assert!(feed
            .since(Position::parse("1700000000.0.0").unwrap())
            .is_none());
        let mut positions = Vec::new();
        for i in 0..(RING as u32 + 10) {
            let position = feed.next_position(ts(2 + i));
            feed.saw(position);
            feed.publish(position, ChangeKind::Modified, tenant());
            positions.push(position);
        }
        // The first ten fell out of the ring: resuming before them is refused.
        assert!(feed.since(start).is_none());
        assert!(feed.since(positions[8]).is_none());
        let replay = feed.since(positions[9]).unwrap();
        assert_eq!(replay.len(), RING);
        assert_eq!(replay[0].position, positions[10]);
        let replay = feed.since(positions[RING]).unwrap();
        assert_eq!(replay.len(), 9);
        // A relist starts over: older positions are unknown.
        feed.relisted(ts(100_000));
        assert!(feed.since(positions[RING]).is_none());
    }

    #[test]
    fn a_subscriber_that_falls_behind_the_backlog_is_told_it_lagged() {
        let mut feed = Feed::default();
        feed.relisted(ts(1));
        let mut slow = feed.subscribe();
        for i in 0..(BACKLOG as u32 + 1) {
            let position = feed.next_position(ts(2 + i));
            feed.publish(position, ChangeKind::Modified, tenant());
        }
        assert!(matches!(
            slow.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }
}
