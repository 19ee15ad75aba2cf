//! The event journal: the ring, written to the store as events are published.
//!
//! A task takes published events off a queue and appends them in batches (whatever
//! accumulated while the previous batch was written), forgetting rows older than the ring.
//! At the next start the bus is rebuilt from the journal: numbering continues, and readers
//! that come back with the number of the last event they saw resume after it. A crash loses
//! at most the batch being written; a stop writes everything first.

use super::{EventBus, Published};
use crate::store::{self, Store};
use app::model::MarathonEvent;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Events written to the store in one transaction at most.
const MAX_BATCH: usize = 5_000;

/// A bus restored from `store`'s journal, and the task that journals what it publishes; the
/// task ends once `shutdown` flips and everything published until then is written.
pub async fn journaled_bus(
    capacity: usize,
    store: Store,
    shutdown: watch::Receiver<bool>,
) -> store::Result<(EventBus, JoinHandle<()>)> {
    let history = store
        .journaled_events(capacity)
        .await?
        .into_iter()
        .filter_map(|(seq, json)| match serde_json::from_str::<MarathonEvent>(&json) {
            Ok(event) => Some(Published::with_json(seq, event, json)),
            Err(e) => {
                tracing::warn!(seq, error = %e, "a journaled event is not readable; readers get the events around it");
                None
            }
        })
        .collect::<Vec<_>>();
    // Unreadable rows are skipped, but the ring must stay numbered without gaps.
    let history = contiguous_tail(history);
    let (sender, receiver) = mpsc::unbounded_channel();
    let bus = EventBus::with_history(capacity, history, Some(sender));
    let writer = tokio::spawn(write(receiver, store, capacity as u64, shutdown));
    Ok((bus, writer))
}

/// The newest run of consecutively numbered events.
fn contiguous_tail(mut history: Vec<Arc<Published>>) -> Vec<Arc<Published>> {
    let start = history
        .windows(2)
        .rposition(|pair| pair[1].seq != pair[0].seq + 1)
        .map_or(0, |gap| gap + 1);
    history.split_off(start)
}

async fn write(
    mut receiver: mpsc::UnboundedReceiver<Arc<Published>>,
    store: Store,
    keep: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let mut batch = Vec::new();
        tokio::select! {
            received = receiver.recv() => match received {
                Some(event) => batch.push(event),
                None => return,
            },
            _ = shutdown.wait_for(|stop| *stop) => {
                receiver.close();
            }
        }
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            // Closed by the stop, and everything before it written.
            if receiver.is_closed() && receiver.is_empty() {
                return;
            }
            continue;
        }
        let newest = batch.last().map_or(0, |e| e.seq);
        let rows: Vec<(u64, String)> = batch.iter().map(|e| (e.seq, e.json.clone())).collect();
        if let Err(e) = store
            .journal_events(&rows, newest.saturating_sub(keep) + 1)
            .await
        {
            tracing::warn!(error = %e, events = rows.len(), "journaling events failed; a restart would not resume readers past them");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_event as event;
    use super::*;

    #[tokio::test]
    async fn a_restarted_bus_continues_the_numbering_and_resumes_readers() {
        let dir = tempfile::tempdir().unwrap();
        for url in crate::store::testing::store_urls(dir.path()).await {
            continues_the_numbering_on(&url).await;
        }
    }

    async fn continues_the_numbering_on(url: &str) {
        let store = Store::open(url).await.unwrap();
        let (stop, shutdown) = watch::channel(false);
        let (bus, writer) = journaled_bus(100, store.clone(), shutdown).await.unwrap();
        bus.publish((1..=150).map(event));
        stop.send(true).unwrap();
        writer.await.unwrap();

        let (_stop, shutdown) = watch::channel(false);
        let (bus, _writer) = journaled_bus(100, store, shutdown).await.unwrap();
        let mut resumed = bus.reader(Some(140));
        let events = bus.read(&mut resumed, 100);
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (141..=150).collect::<Vec<_>>()
        );
        assert_eq!(events[0].event, event(141));
        bus.publish([event(151)]);
        assert_eq!(bus.read(&mut resumed, 100)[0].seq, 151);
        let mut old = bus.reader(Some(10));
        assert_eq!(
            bus.read(&mut old, 1)[0].event.event_type(),
            "events_missed_event",
            "only the newest 100 were kept"
        );
    }

    #[test]
    fn the_history_is_cut_at_its_last_gap() {
        let history = [1, 2, 4, 5, 6]
            .into_iter()
            .map(|n| Published::new(n, event(n as i64)))
            .collect();
        let kept: Vec<u64> = contiguous_tail(history).iter().map(|e| e.seq).collect();
        assert_eq!(kept, vec![4, 5, 6]);
    }
}
