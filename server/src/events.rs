//! The event bus: every committed change becomes Marathon events with a sequence number.
//!
//! A bounded ring keeps the latest events so that a client that reconnects with `Last-Event-ID`
//! (the dashboard does) gets what it missed instead of a gap, and so a slow SSE client that falls
//! behind the broadcast channel can catch up from the ring rather than being dropped.

use app::model::MarathonEvent;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// An event as published: its number, and its JSON serialised once for every subscriber.
#[derive(Debug)]
pub struct Published {
    pub seq: u64,
    pub event: MarathonEvent,
    pub json: String,
}

#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    sender: broadcast::Sender<Arc<Published>>,
    ring: Mutex<Ring>,
}

struct Ring {
    events: VecDeque<Arc<Published>>,
    capacity: usize,
    next_seq: u64,
}

/// A subscription: the events after the requested one that are still in the ring, then the
/// live stream.
pub struct Subscription {
    pub backlog: Vec<Arc<Published>>,
    pub live: broadcast::Receiver<Arc<Published>>,
}

impl EventBus {
    pub fn new(capacity: usize) -> EventBus {
        let (sender, _) = broadcast::channel(capacity.max(16));
        EventBus {
            inner: Arc::new(Inner {
                sender,
                ring: Mutex::new(Ring {
                    events: VecDeque::with_capacity(capacity),
                    capacity,
                    next_seq: 1,
                }),
            }),
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic while holding the lock cannot leave the ring inconsistent (pushes are atomic
        // from the reader's view), so a poisoned lock is still usable.
        self.inner.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn publish(&self, events: impl IntoIterator<Item = MarathonEvent>) {
        let mut ring = self.ring();
        for event in events {
            let json = serde_json::to_string(&event).unwrap_or_default();
            let published = Arc::new(Published {
                seq: ring.next_seq,
                event,
                json,
            });
            ring.next_seq += 1;
            if ring.events.len() == ring.capacity {
                ring.events.pop_front();
            }
            ring.events.push_back(published.clone());
            // No receivers is fine: nobody is listening right now.
            let _ = self.inner.sender.send(published);
        }
    }

    /// Subscribes; with `after`, first replays the ring's events numbered above it. Taking the
    /// backlog and the receiver under one lock means nothing is missed or seen twice.
    pub fn subscribe(&self, after: Option<u64>) -> Subscription {
        let ring = self.ring();
        let backlog = match after {
            Some(seq) => ring
                .events
                .iter()
                .filter(|e| e.seq > seq)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        Subscription {
            backlog,
            live: self.inner.sender.subscribe(),
        }
    }

    /// Events after `seq` still held in the ring, or `None` if some were already dropped.
    pub fn since(&self, seq: u64) -> Option<Vec<Arc<Published>>> {
        let ring = self.ring();
        let oldest = ring.events.front().map_or(ring.next_seq, |e| e.seq);
        (oldest <= seq + 1).then(|| {
            ring.events
                .iter()
                .filter(|e| e.seq > seq)
                .cloned()
                .collect()
        })
    }

    /// The newest `n` events, oldest first.
    pub fn recent(&self, n: usize) -> Vec<Arc<Published>> {
        let ring = self.ring();
        let skip = ring.events.len().saturating_sub(n);
        ring.events.iter().skip(skip).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::model::Timestamp;

    fn event(n: i64) -> MarathonEvent {
        MarathonEvent::AppTerminatedEvent {
            app_id: format!("/a{n}"),
            timestamp: Timestamp::from_millis(n),
        }
    }

    #[tokio::test]
    async fn resumes_from_the_ring_without_gaps() {
        let bus = EventBus::new(3);
        bus.publish((1..=4).map(event));
        let sub = bus.subscribe(Some(2));
        assert_eq!(
            sub.backlog.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![3, 4]
        );
        let mut live = sub.live;
        bus.publish([event(5)]);
        assert_eq!(live.recv().await.unwrap().seq, 5);
        assert!(bus.since(0).is_none(), "event 1 fell out of the ring");
        assert_eq!(bus.since(3).unwrap().len(), 2);
        assert_eq!(
            bus.recent(2).iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![4, 5]
        );
    }
}
