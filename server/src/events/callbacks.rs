//! HTTP callback subscribers: every event POSTed as JSON to each subscribed URL, in order.
//!
//! Each subscriber has a task of its own reading the bus from its own cursor, so a slow or
//! dead subscriber holds up nobody else. A failed delivery (an error, a status other than 2xx,
//! no answer within the request timeout) is retried with a doubling, capped delay; the events
//! behind it wait in the ring. A subscriber whose deliveries fail for longer than the drop
//! time is unsubscribed. How far each has been sent is stored, so after a restart the events
//! it had not been sent yet are sent from the journaled ring.
//!
//! A subscriber that asked for batches (`batch=true`, Stride's own) is sent JSON arrays of the
//! events waiting for it, up to [`BATCH_EVENTS`] at a time: one request per event cannot keep
//! up with thousands of events a second.

use super::{EventBus, Published, Reader};
use crate::metrics::{self, Counter, Name, Timer, Unit};
use crate::service::now;
use crate::store::{Store, StoredSubscription};
use app::model::{EventSubscriber, MarathonEvent, Timestamp};
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The first retry's delay; each further failure doubles it up to [`Settings::max_backoff`].
const FIRST_RETRY: Duration = Duration::from_millis(250);

/// How often a subscriber's progress is written while it is being sent events.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Events taken from the ring at a time.
const READ_BATCH: usize = 512;

/// The most events a batch subscriber is sent in one request.
const BATCH_EVENTS: usize = 512;

/// What deliveries are measured by.
struct Measured {
    duration: Arc<Timer>,
    delivered: Arc<Counter>,
    failed: Arc<Counter>,
}

static DELIVERIES: LazyLock<Measured> = LazyLock::new(|| {
    let r = metrics::registry();
    Measured {
        duration: r.timer(Name::in_unit("events.callbacks.duration", Unit::Seconds)),
        delivered: r.counter(Name::new("events.callbacks.delivered")),
        failed: r.counter(Name::new("events.callbacks.failed")),
    }
});

/// How deliveries behave.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The longest a subscriber may take to answer one event.
    pub request_timeout: Duration,
    /// The longest wait between two attempts at a failing subscriber.
    pub max_backoff: Duration,
    /// A subscriber whose deliveries fail for this long is unsubscribed.
    pub drop_after: Duration,
}

/// Why a URL cannot be subscribed.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("{0}")]
    InvalidUrl(String),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

/// The subscribers, and the tasks that deliver to them.
#[derive(Clone)]
pub struct Callbacks {
    inner: Arc<Inner>,
}

struct Inner {
    bus: EventBus,
    store: Store,
    client: reqwest::Client,
    settings: Settings,
    subscribers: Mutex<BTreeMap<String, Subscriber>>,
    shutdown: watch::Receiver<bool>,
}

struct Subscriber {
    stored: StoredSubscription,
    progress: Arc<Mutex<Progress>>,
    task: JoinHandle<()>,
}

/// How deliveries to one subscriber go.
#[derive(Clone, Debug, Default)]
struct Progress {
    delivered: u64,
    failed_attempts: u64,
    failing_since: Option<(Instant, Timestamp)>,
    last_error: Option<String>,
}

impl Callbacks {
    /// Starts delivering to the stored subscribers, after adding `initial` URLs
    /// (`--http-endpoints`) that are not stored yet.
    pub async fn start(
        bus: EventBus,
        store: Store,
        settings: Settings,
        initial: &[String],
        shutdown: watch::Receiver<bool>,
    ) -> Result<Callbacks, SubscribeError> {
        let client = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SubscribeError::InvalidUrl(e.to_string()))?;
        let callbacks = Callbacks {
            inner: Arc::new(Inner {
                bus,
                store,
                client,
                settings,
                subscribers: Mutex::new(BTreeMap::new()),
                shutdown,
            }),
        };
        for url in initial {
            callbacks.subscribe(url, "127.0.0.1", false).await?;
        }
        for stored in callbacks.inner.store.subscriptions().await? {
            if !callbacks.subscribers().contains_key(&stored.callback_url) {
                callbacks.run(stored);
            }
        }
        Ok(callbacks)
    }

    fn subscribers(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Subscriber>> {
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub fn callback_urls(&self) -> Vec<String> {
        self.subscribers().keys().cloned().collect()
    }

    /// Subscribes `url` (a no-op if it is subscribed) and publishes `subscribe_event`, which is
    /// also the first event the new subscriber is sent.
    pub async fn subscribe(
        &self,
        url: &str,
        client_ip: &str,
        batch: bool,
    ) -> Result<MarathonEvent, SubscribeError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| SubscribeError::InvalidUrl(format!("Invalid callback URL {url}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(SubscribeError::InvalidUrl(format!(
                "Invalid callback URL {url}: only http and https URLs can be called back"
            )));
        }
        let stored = StoredSubscription {
            callback_url: url.to_string(),
            client_ip: client_ip.to_string(),
            subscribed_at: now().millis(),
            delivered: self.inner.bus.newest(),
            batch,
        };
        let added = self.inner.store.add_subscription(&stored).await?;
        let event = MarathonEvent::SubscribeEvent {
            client_ip: client_ip.to_string(),
            callback_url: url.to_string(),
            timestamp: now(),
        };
        let subscribed = self.inner.bus.publish([event.clone()]);
        if added {
            // From its own subscribe_event on, also after a restart: events published while
            // the subscription was being stored are not the subscriber's.
            self.inner
                .store
                .subscription_delivered(url, subscribed - 1)
                .await?;
            self.run(StoredSubscription {
                delivered: subscribed - 1,
                ..stored
            });
        }
        Ok(event)
    }

    /// Unsubscribes `url` (a no-op if it is not subscribed) and publishes `unsubscribe_event`.
    pub async fn unsubscribe(
        &self,
        url: &str,
        client_ip: &str,
    ) -> Result<MarathonEvent, SubscribeError> {
        self.inner.store.remove_subscription(url).await?;
        if let Some(subscriber) = self.subscribers().remove(url) {
            subscriber.task.abort();
        }
        let event = MarathonEvent::UnsubscribeEvent {
            client_ip: client_ip.to_string(),
            callback_url: url.to_string(),
            timestamp: now(),
        };
        self.inner.bus.publish([event.clone()]);
        Ok(event)
    }

    /// Every subscriber and how its deliveries go.
    pub fn status(&self) -> Vec<EventSubscriber> {
        let newest = self.inner.bus.newest();
        let drop_after = self.inner.settings.drop_after.as_millis() as i64;
        self.subscribers()
            .values()
            .map(|s| {
                let progress = s.progress.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let failing_since = progress.failing_since.map(|(_, at)| at);
                EventSubscriber {
                    callback_url: s.stored.callback_url.clone(),
                    client_ip: s.stored.client_ip.clone(),
                    subscribed_at: Timestamp::from_millis(s.stored.subscribed_at),
                    delivered: progress.delivered,
                    backlog: newest.saturating_sub(progress.delivered),
                    failed_attempts: progress.failed_attempts,
                    failing_since,
                    last_error: progress.last_error,
                    drops_at: failing_since.map(|at| at.plus_millis(drop_after)),
                    batch: s.stored.batch,
                }
            })
            .collect()
    }

    fn run(&self, stored: StoredSubscription) {
        let progress = Arc::new(Mutex::new(Progress {
            delivered: stored.delivered,
            ..Progress::default()
        }));
        let delivery = Delivery {
            callbacks: self.clone(),
            url: stored.callback_url.clone(),
            batch: stored.batch,
            reader: self.inner.bus.reader(Some(stored.delivered)),
            progress: progress.clone(),
        };
        let task = tokio::spawn(delivery.run());
        if let Some(replaced) = self.subscribers().insert(
            stored.callback_url.clone(),
            Subscriber {
                stored,
                progress,
                task,
            },
        ) {
            replaced.task.abort();
        }
    }

    /// Unsubscribes a subscriber that kept failing; called from its own task, which ends.
    async fn drop_failing(&self, url: &str) {
        let Some(subscriber) = self.subscribers().remove(url) else {
            return;
        };
        tracing::warn!(url, after = ?self.inner.settings.drop_after, "dropping an event subscriber whose deliveries kept failing");
        if let Err(e) = self.inner.store.remove_subscription(url).await {
            tracing::error!(url, error = %e, "removing a dropped event subscriber from the store failed; it is back after a restart");
        }
        self.inner.bus.publish([MarathonEvent::UnsubscribeEvent {
            client_ip: subscriber.stored.client_ip,
            callback_url: url.to_string(),
            timestamp: now(),
        }]);
    }
}

/// The delivery task of one subscriber.
struct Delivery {
    callbacks: Callbacks,
    url: String,
    /// Whether the subscriber takes arrays of events.
    batch: bool,
    reader: Reader,
    progress: Arc<Mutex<Progress>>,
}

/// Why a delivery did not go through.
enum Undelivered {
    /// Stride is stopping.
    Stopping,
    /// The subscriber failed for longer than the drop time.
    Dropped,
}

impl Delivery {
    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn run(mut self) {
        let inner = self.callbacks.inner.clone();
        let mut shutdown = inner.shutdown.clone();
        let mut saved = self.progress().delivered;
        let mut saved_at = Instant::now();
        loop {
            let events = inner.bus.read(&mut self.reader, READ_BATCH);
            if events.is_empty() {
                self.save(&mut saved).await;
                tokio::select! {
                    () = self.reader.ready() => continue,
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
            let per_request = if self.batch { BATCH_EVENTS } else { 1 };
            for events in events.chunks(per_request) {
                match self.deliver(events, &mut shutdown).await {
                    Ok(()) => {}
                    Err(Undelivered::Stopping) => {
                        self.save(&mut saved).await;
                        return;
                    }
                    Err(Undelivered::Dropped) => {
                        self.callbacks.drop_failing(&self.url).await;
                        return;
                    }
                }
                if saved_at.elapsed() >= PROGRESS_INTERVAL {
                    self.save(&mut saved).await;
                    saved_at = Instant::now();
                }
            }
        }
    }

    /// The request body for `events`: the event itself, or a batch subscriber's array.
    fn body(&self, events: &[Arc<Published>]) -> String {
        match events {
            [event] if !self.batch => event.json.clone(),
            _ => {
                let mut body = String::from("[");
                for (i, event) in events.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str(&event.json);
                }
                body.push(']');
                body
            }
        }
    }

    /// Sends events in one request, trying again until it goes through.
    async fn deliver(
        &self,
        events: &[Arc<Published>],
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Undelivered> {
        let inner = &self.callbacks.inner;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(());
        };
        let body = self.body(events);
        let mut delay = FIRST_RETRY;
        loop {
            let attempt = Instant::now();
            let outcome = inner
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header("accept", "application/json")
                .body(body.clone())
                .send()
                .await;
            let failure = match outcome {
                Ok(response) if response.status().is_success() => None,
                Ok(response) => Some(format!("answered {}", response.status())),
                Err(e) => Some(crate::probes::cause(&e)),
            };
            let measured = &*DELIVERIES;
            measured.duration.record(attempt.elapsed());
            if failure.is_some() {
                measured.failed.inc();
            } else {
                measured.delivered.add(events.len() as u64);
            }
            let Some(since) = self.record(last, failure) else {
                return Ok(());
            };
            if since.elapsed() >= inner.settings.drop_after {
                return Err(Undelivered::Dropped);
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = shutdown.wait_for(|stop| *stop) => return Err(Undelivered::Stopping),
            }
            delay = (delay * 2).min(inner.settings.max_backoff);
        }
    }

    /// Records an attempt's outcome; since when deliveries fail, if this one failed.
    fn record(&self, seq: u64, failure: Option<String>) -> Option<Instant> {
        let mut progress = self.progress();
        let Some(failure) = failure else {
            progress.delivered = seq;
            progress.failed_attempts = 0;
            progress.failing_since = None;
            progress.last_error = None;
            return None;
        };
        progress.failed_attempts += 1;
        let (since, _) = *progress
            .failing_since
            .get_or_insert_with(|| (Instant::now(), now()));
        if progress.failed_attempts == 1 {
            tracing::warn!(url = %self.url, seq, %failure, "an event could not be delivered to a subscriber; retrying");
        }
        progress.last_error = Some(failure);
        Some(since)
    }

    /// Stores how far the subscriber has been sent events, if that changed.
    async fn save(&self, saved: &mut u64) {
        let delivered = self.progress().delivered;
        if delivered == *saved {
            return;
        }
        match self
            .callbacks
            .inner
            .store
            .subscription_delivered(&self.url, delivered)
            .await
        {
            Ok(()) => *saved = delivered,
            Err(e) => {
                tracing::warn!(url = %self.url, error = %e, "storing a subscriber's progress failed; a restart would send some events again")
            }
        }
    }
}
