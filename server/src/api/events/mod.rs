//! `GET /v2/events`: Marathon's SSE stream.
//!
//! The wire format is Marathon's (`event:` + one-line `data:`, CRLF, a bare CRLF as heartbeat
//! every 10 s) plus an `id:` line with the event's sequence number. Marathon clients ignore the
//! id; browsers send it back as `Last-Event-ID` when they reconnect, and the stream then resumes
//! from the bus' ring instead of losing what happened during the drop. Each client reads the
//! ring from its own cursor, so a slow one is never disconnected: if it falls so far behind
//! that the ring no longer holds its next event, it is sent an `events_missed_event` (whatever
//! its `event_type` filter) and goes on from the oldest event held. With `plan-format=full` the
//! deployment events carry heavy plans ([`heavy`]).

mod heavy;

use super::error::ApiError;
use super::Params;
use crate::events::{EventBus, Published, Reader};
use crate::metrics::{self, Counter, Gauge, GaugeGuard, Name, Unit};
use crate::service::{now, Service};
use app::model::MarathonEvent;
use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use heavy::HeavyPlans;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

const HEARTBEAT: Duration = Duration::from_secs(10);

/// Bytes written to event streams (Marathon's `http.responses.event-stream.size`).
static STREAMED: LazyLock<Arc<Counter>> = LazyLock::new(|| {
    metrics::registry().counter(Name::in_unit(
        "http.responses.event-stream.size",
        Unit::Bytes,
    ))
});

/// Open event streams.
static STREAMS: LazyLock<Arc<Gauge>> =
    LazyLock::new(|| metrics::registry().gauge(Name::new("http.event-streams.active")));

/// Event streams open right now.
pub fn open_streams() -> i64 {
    STREAMS.get()
}

fn frame_bytes(seq: u64, event_type: &str, json: &str) -> Bytes {
    Bytes::from(format!(
        "id: {seq}\r\nevent: {event_type}\r\ndata: {json}\r\n\r\n"
    ))
}

/// Bytes on their way to a stream, counted.
fn counted(bytes: Bytes) -> Bytes {
    STREAMED.add(bytes.len() as u64);
    bytes
}

fn frame(event: &Published) -> Bytes {
    counted(
        event
            .sse
            .get_or_init(|| frame_bytes(event.seq, event.event.event_type(), &event.json))
            .clone(),
    )
}

/// Publishes `event_stream_detached` when the client goes away (the stream is dropped).
struct Detach {
    bus: EventBus,
    remote: String,
    _open: GaugeGuard,
}

impl Drop for Detach {
    fn drop(&mut self) {
        self.bus.publish([MarathonEvent::EventStreamDetached {
            remote_address: self.remote.clone(),
            timestamp: now(),
        }]);
    }
}

pub async fn stream(
    State(service): State<Service>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let accepts_sse = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().starts_with("text/event-stream"))
        });
    if !accepts_sse {
        return Ok((
            StatusCode::NOT_ACCEPTABLE,
            axum::Json(serde_json::json!({
                "message": "The event stream needs the header Accept: text/event-stream"
            })),
        )
            .into_response());
    }
    let params = Params::parse(query.as_deref());
    let filter: Vec<String> = params.all("event_type").map(str::to_string).collect();
    let last_seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let bus = service.events.clone();
    let reader = bus.reader(last_seen);
    let remote = client.ip().to_string();
    bus.publish([MarathonEvent::EventStreamAttached {
        remote_address: remote.clone(),
        timestamp: now(),
    }]);
    let detach = Detach {
        bus: bus.clone(),
        remote,
        _open: STREAMS.track(),
    };
    let wanted = move |e: &Published| {
        filter.is_empty()
            || matches!(e.event, MarathonEvent::EventsMissedEvent { .. })
            || filter.iter().any(|f| f == e.event.event_type())
    };
    let client = ClientStream {
        reader,
        bus,
        pending: VecDeque::new(),
        heavy: (params.get("plan-format") == Some("full"))
            .then(|| HeavyPlans::new(service.clone())),
        _detach: detach,
        shutdown: service.shutdown.clone(),
    };
    let body = event_frames(client, wanted);
    let mut response = Response::new(Body::from_stream(body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream;charset=UTF-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// The most bytes of frames written as one piece.
const MAX_WRITE: usize = 64 * 1024;

/// `first` and the frames of the wanted events right behind it that are already read, as one
/// piece: each event still goes out the moment it is there, but a client that is behind
/// catches up in a few large writes instead of one per event.
fn with_ready_frames(
    first: Bytes,
    pending: &mut VecDeque<Arc<Published>>,
    wanted: &dyn Fn(&Published) -> bool,
) -> Bytes {
    if pending.is_empty() {
        return first;
    }
    let mut frames = bytes::BytesMut::from(&first[..]);
    while frames.len() < MAX_WRITE {
        let Some(e) = pending.pop_front() else { break };
        if wanted(&e) {
            frames.extend_from_slice(&frame(&e));
        }
    }
    frames.freeze()
}

/// Events a client's stream reads from the ring at a time.
const READ_BATCH: usize = 256;

/// One client's stream: where it reads, what it has read and not sent, and how it ends.
struct ClientStream {
    reader: Reader,
    bus: EventBus,
    pending: VecDeque<Arc<Published>>,
    /// For `plan-format=full`.
    heavy: Option<HeavyPlans>,
    /// Held for its drop, which publishes `event_stream_detached`.
    _detach: Detach,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl ClientStream {
    /// The next bytes to write: frames, or a heartbeat; `None` once Stride stops.
    async fn next(&mut self, wanted: &(dyn Fn(&Published) -> bool + Sync)) -> Option<Bytes> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                if !wanted(&e) {
                    continue;
                }
                if let Some(heavy) = self.heavy.as_mut().filter(|_| heavy::has_plan(&e.event)) {
                    let json = heavy.json(&e.json).await;
                    return Some(counted(frame_bytes(e.seq, e.event.event_type(), &json)));
                }
                return Some(with_ready_frames(frame(&e), &mut self.pending, wanted));
            }
            if *self.shutdown.borrow() {
                return None;
            }
            self.pending
                .extend(self.bus.read(&mut self.reader, READ_BATCH));
            if !self.pending.is_empty() {
                continue;
            }
            tokio::select! {
                ready = tokio::time::timeout(HEARTBEAT, self.reader.ready()) => {
                    if ready.is_err() {
                        return Some(Bytes::from_static(b"\r\n"));
                    }
                }
                _ = self.shutdown.changed() => return None,
            }
        }
    }
}

fn event_frames(
    client: ClientStream,
    wanted: impl Fn(&Published) -> bool + Send + Sync + 'static,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let wanted = Arc::new(wanted);
    futures::stream::unfold(client, move |mut client| {
        let wanted = wanted.clone();
        async move {
            let bytes = client.next(&*wanted).await?;
            Some((Ok(bytes), client))
        }
    })
}
