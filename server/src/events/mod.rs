//! The event bus: every committed change becomes Marathon events with a sequence number.
//!
//! - this module: the bus. A bounded ring holds the newest events; every reader (an SSE
//!   client, a callback subscriber) is a cursor into it, so a slow reader costs the others
//!   nothing and nobody is dropped for being slow. A reader that falls out of the ring is told
//!   so with an `events_missed_event` and carries on from the oldest event still held.
//! - [`journal`]: writes the ring to the store, so that a restarted Stride continues the
//!   numbering and resumes readers from where they were.
//! - [`callbacks`]: HTTP callback subscribers (`/v2/eventSubscriptions`), each delivered to
//!   in order from its own cursor.

pub mod callbacks;
pub mod journal;

use crate::metrics::{self, Counter, Name};
use crate::service::now;
use app::model::MarathonEvent;
use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use tokio::sync::{mpsc, watch};

/// How many events the bus keeps by default (`--event-ring-size`).
pub const DEFAULT_RING_SIZE: usize = 10_000;

static PUBLISHED: LazyLock<Arc<Counter>> =
    LazyLock::new(|| metrics::registry().counter(Name::new("events.published")));
/// Events readers were told they missed.
static MISSED: LazyLock<Arc<Counter>> =
    LazyLock::new(|| metrics::registry().counter(Name::new("events.missed")));

/// An event as published: its number, and its JSON serialised once for every reader.
#[derive(Debug)]
pub struct Published {
    pub seq: u64,
    pub event: MarathonEvent,
    pub json: String,
    /// The event as an SSE frame, rendered once for all the streams that send it.
    pub sse: OnceLock<bytes::Bytes>,
}

impl Published {
    fn new(seq: u64, event: MarathonEvent) -> Arc<Published> {
        let json = serde_json::to_string(&event).unwrap_or_default();
        Published::with_json(seq, event, json)
    }

    fn with_json(seq: u64, event: MarathonEvent, json: String) -> Arc<Published> {
        Arc::new(Published {
            seq,
            event,
            json,
            sse: OnceLock::new(),
        })
    }
}

#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    ring: Mutex<Ring>,
    /// The number of the newest event (0 before the first); readers wait on it.
    newest: watch::Sender<u64>,
    /// Where published events go to be journaled, when the bus has a journal.
    journal: Option<mpsc::UnboundedSender<Arc<Published>>>,
}

/// The newest events, numbered without gaps: the front is the oldest still held.
struct Ring {
    events: VecDeque<Arc<Published>>,
    capacity: usize,
    next_seq: u64,
}

impl Ring {
    fn oldest(&self) -> u64 {
        self.events.front().map_or(self.next_seq, |e| e.seq)
    }
}

/// A reader's place in the event history: the number of the next event it wants.
pub struct Reader {
    next: u64,
    newest: watch::Receiver<u64>,
}

impl Reader {
    /// Waits until there is an event for this reader.
    pub async fn ready(&mut self) {
        let next = self.next;
        // The sender lives as long as the bus this reader came from, which outlives it.
        let _ = self.newest.wait_for(|newest| *newest >= next).await;
    }

    /// The number of the last event this reader has been given (0 for none).
    pub fn position(&self) -> u64 {
        self.next - 1
    }

    /// How many published events this reader has not read yet.
    pub fn backlog(&self) -> u64 {
        (*self.newest.borrow() + 1).saturating_sub(self.next)
    }
}

impl EventBus {
    /// A bus without a journal, numbering from 1.
    pub fn new(capacity: usize) -> EventBus {
        EventBus::with_history(capacity, Vec::new(), None)
    }

    fn with_history(
        capacity: usize,
        history: Vec<Arc<Published>>,
        journal: Option<mpsc::UnboundedSender<Arc<Published>>>,
    ) -> EventBus {
        let capacity = capacity.max(1);
        let skip = history.len().saturating_sub(capacity);
        let events: VecDeque<Arc<Published>> = history.into_iter().skip(skip).collect();
        let next_seq = events.back().map_or(1, |e| e.seq + 1);
        EventBus {
            inner: Arc::new(Inner {
                ring: Mutex::new(Ring {
                    events,
                    capacity,
                    next_seq,
                }),
                newest: watch::Sender::new(next_seq - 1),
                journal,
            }),
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic while holding the lock cannot leave the ring inconsistent (pushes are atomic
        // from the reader's view), so a poisoned lock is still usable.
        self.inner.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The number of the newest event (0 before the first).
    pub fn newest(&self) -> u64 {
        *self.inner.newest.borrow()
    }

    /// How many events the ring holds at most.
    pub fn capacity(&self) -> usize {
        self.ring().capacity
    }

    /// Publishes events in order; the number of the last (the newest before, if none).
    pub fn publish(&self, events: impl IntoIterator<Item = MarathonEvent>) -> u64 {
        let mut ring = self.ring();
        let before = ring.next_seq;
        for event in events {
            let published = Published::new(ring.next_seq, event);
            ring.next_seq += 1;
            if ring.events.len() == ring.capacity {
                ring.events.pop_front();
            }
            if let Some(journal) = &self.inner.journal {
                // Closed only once Stride is stopping; later events are not journaled.
                let _ = journal.send(published.clone());
            }
            ring.events.push_back(published);
        }
        if ring.next_seq != before {
            self.inner.newest.send_replace(ring.next_seq - 1);
            PUBLISHED.add(ring.next_seq - before);
        }
        ring.next_seq - 1
    }

    /// A reader of the events after `after` (a `Last-Event-ID`, a subscriber's last delivered
    /// event), or of the events from now on.
    pub fn reader(&self, after: Option<u64>) -> Reader {
        let ring = self.ring();
        Reader {
            next: after.map_or(ring.next_seq, |seq| seq + 1),
            newest: self.inner.newest.subscribe(),
        }
    }

    /// Up to `max` events for the reader, oldest first, and moves it past them; none if it has
    /// read everything. A reader that asked for events no longer held gets one
    /// `events_missed_event` saying which, in their place.
    pub fn read(&self, reader: &mut Reader, max: usize) -> Vec<Arc<Published>> {
        let ring = self.ring();
        let oldest = ring.oldest();
        if reader.next < oldest {
            let missed = self.missed(&ring, reader.next, oldest);
            reader.next = oldest;
            return vec![missed];
        }
        if reader.next > ring.next_seq {
            // A number this history never reached: given to a Stride whose journal lost its
            // newest events in a crash. What the reader missed cannot be known.
            let resumed = self.missed(&ring, ring.next_seq, ring.next_seq);
            reader.next = ring.next_seq;
            return vec![resumed];
        }
        let start = (reader.next - oldest) as usize;
        let events: Vec<Arc<Published>> = ring.events.range(start..).take(max).cloned().collect();
        reader.next += events.len() as u64;
        events
    }

    /// The event telling a reader it will not get the events numbered `first..until`; it
    /// carries the number of the last of them, so that resuming after it asks for no more.
    fn missed(&self, ring: &Ring, first: u64, until: u64) -> Arc<Published> {
        let known = first < until;
        MISSED.add(until - first);
        Published::new(
            until - 1,
            MarathonEvent::EventsMissedEvent {
                first_missed: known.then_some(first),
                last_missed: known.then_some(until - 1),
                ring_size: ring.capacity as u64,
                reason: if known {
                    format!(
                        "{} events were published before this reader took them and are no longer among the {} Stride keeps",
                        until - first,
                        ring.capacity
                    )
                } else {
                    "the last event this reader saw is newer than any Stride has: it was not yet journaled when Stride stopped, and what followed it is unknown".into()
                },
                timestamp: now(),
            },
        )
    }

    /// The newest `n` events, oldest first.
    pub fn recent(&self, n: usize) -> Vec<Arc<Published>> {
        let ring = self.ring();
        let skip = ring.events.len().saturating_sub(n);
        ring.events.iter().skip(skip).cloned().collect()
    }
}

/// A small event numbered `n`, for the bus' tests.
#[cfg(test)]
pub(crate) fn test_event(n: i64) -> MarathonEvent {
    MarathonEvent::AppTerminatedEvent {
        app_id: format!("/a{n}"),
        timestamp: app::model::Timestamp::from_millis(n),
    }
}

#[cfg(test)]
mod tests {
    use super::test_event as event;
    use super::*;

    fn seqs(events: &[Arc<Published>]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[tokio::test]
    async fn readers_resume_from_the_ring_without_gaps_or_repeats() {
        let bus = EventBus::new(3);
        bus.publish((1..=4).map(event));
        let mut resumed = bus.reader(Some(2));
        assert_eq!(resumed.backlog(), 2);
        assert_eq!(seqs(&bus.read(&mut resumed, 10)), vec![3, 4]);
        assert!(bus.read(&mut resumed, 10).is_empty());
        let mut live = bus.reader(None);
        bus.publish([event(5), event(6)]);
        live.ready().await;
        assert_eq!(seqs(&bus.read(&mut live, 1)), vec![5]);
        assert_eq!(seqs(&bus.read(&mut live, 10)), vec![6]);
        assert_eq!(live.position(), 6);
        assert_eq!(seqs(&bus.recent(2)), vec![5, 6]);
    }

    #[test]
    fn a_reader_that_fell_out_of_the_ring_is_told_what_it_missed() {
        let bus = EventBus::new(3);
        let mut slow = bus.reader(None);
        bus.publish((1..=5).map(event));
        let told = bus.read(&mut slow, 10);
        assert_eq!(seqs(&told), vec![2], "it carries the last missed number");
        let MarathonEvent::EventsMissedEvent {
            first_missed,
            last_missed,
            ring_size,
            ..
        } = &told[0].event
        else {
            panic!("{:?}", told[0].event)
        };
        assert_eq!(
            (*first_missed, *last_missed, *ring_size),
            (Some(1), Some(2), 3)
        );
        assert_eq!(seqs(&bus.read(&mut slow, 10)), vec![3, 4, 5]);
    }

    #[test]
    fn numbering_continues_after_the_history_and_unknown_numbers_are_said_so() {
        let history = (1..=4)
            .map(|n| Published::new(n + 10, event(n as i64)))
            .collect();
        let bus = EventBus::with_history(3, history, None);
        bus.publish([event(0)]);
        assert_eq!(seqs(&bus.recent(10)), vec![13, 14, 15]);
        let mut ahead = bus.reader(Some(40));
        let told = bus.read(&mut ahead, 10);
        assert!(matches!(
            told[0].event,
            MarathonEvent::EventsMissedEvent {
                first_missed: None,
                ..
            }
        ));
        bus.publish([event(1)]);
        assert_eq!(seqs(&bus.read(&mut ahead, 10)), vec![16]);
    }
}
