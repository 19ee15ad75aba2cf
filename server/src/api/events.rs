//! `GET /v2/events`: Marathon's SSE stream.
//!
//! The wire format is Marathon's (`event:` + one-line `data:`, CRLF, a bare CRLF as heartbeat
//! every 10 s) plus an `id:` line with the event's sequence number. Marathon clients ignore the
//! id; browsers send it back as `Last-Event-ID` when they reconnect, and the stream then resumes
//! from the bus' ring instead of losing what happened during the drop. A client that falls
//! behind is caught up from the ring too; only one that falls out of the ring is disconnected.

use super::error::ApiError;
use super::Params;
use crate::events::{EventBus, Published};
use crate::service::{now, Service};
use app::model::MarathonEvent;
use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

const HEARTBEAT: Duration = Duration::from_secs(10);

fn frame(event: &Published) -> Bytes {
    Bytes::from(format!(
        "id: {}\r\nevent: {}\r\ndata: {}\r\n\r\n",
        event.seq,
        event.event.event_type(),
        event.json
    ))
}

/// Publishes `event_stream_detached` when the client goes away (the stream is dropped).
struct Detach {
    bus: EventBus,
    remote: String,
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
    let subscription = bus.subscribe(last_seen);
    let remote = client.ip().to_string();
    bus.publish([MarathonEvent::EventStreamAttached {
        remote_address: remote.clone(),
        timestamp: now(),
    }]);
    let detach = Detach {
        bus: bus.clone(),
        remote,
    };
    let wanted =
        move |e: &Published| filter.is_empty() || filter.iter().any(|f| f == e.event.event_type());
    let body = async_stream(subscription, bus, wanted, detach, service.shutdown.clone());
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

fn async_stream(
    subscription: crate::events::Subscription,
    bus: EventBus,
    wanted: impl Fn(&Published) -> bool + Send + Sync + 'static,
    detach: Detach,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let backlog: std::collections::VecDeque<Arc<Published>> = subscription.backlog.into();
    let last = backlog.back().map(|e| e.seq);
    let wanted = Arc::new(wanted);
    futures::stream::unfold(
        (backlog, subscription.live, last, (detach, shutdown)),
        move |(mut backlog, mut live, mut last, (detach, mut shutdown))| {
            let bus = bus.clone();
            let wanted = wanted.clone();
            async move {
                loop {
                    if let Some(e) = backlog.pop_front() {
                        last = Some(e.seq);
                        if wanted(&e) {
                            return Some((
                                Ok(frame(&e)),
                                (backlog, live, last, (detach, shutdown)),
                            ));
                        }
                        continue;
                    }
                    if *shutdown.borrow() {
                        return None;
                    }
                    let received = tokio::select! {
                        received = tokio::time::timeout(HEARTBEAT, live.recv()) => received,
                        _ = shutdown.changed() => return None,
                    };
                    match received {
                        Err(_) => {
                            return Some((
                                Ok(Bytes::from_static(b"\r\n")),
                                (backlog, live, last, (detach, shutdown)),
                            ))
                        }
                        Ok(Ok(e)) => {
                            if last.is_some_and(|l| e.seq <= l) {
                                continue;
                            }
                            backlog.push_back(e);
                        }
                        Ok(Err(RecvError::Lagged(_))) => {
                            // Catch up from the ring; if it no longer holds what we missed, end
                            // the stream (Marathon's "slow consumer") and let the client resume.
                            match last.and_then(|l| bus.since(l)) {
                                Some(missed) => backlog.extend(missed),
                                None => return None,
                            }
                        }
                        Ok(Err(RecvError::Closed)) => return None,
                    }
                }
            }
        },
    )
}
