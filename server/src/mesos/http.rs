//! [`HttpMaster`]: the [`Backend`] for a Mesos master reached over the v1 scheduler HTTP API
//! (`POST <master><api-path>`), in protobuf or JSON.
//!
//! - SUBSCRIBE goes on a connection of its own and keeps it: the response is a chunked
//!   RecordIO stream of events, read incrementally ([`RecordIoDecoder`]). Its `Mesos-Stream-Id`
//!   goes on every other call, never on SUBSCRIBE.
//! - A stream silent for `heartbeat_misses` heartbeat intervals counts as dead: the reader
//!   drops it, which ends the [`EventStream`] and makes the driver subscribe again.
//! - `307` is followed by re-POSTing the same body to the `Location`, which Mesos writes
//!   protocol-relative (`//leader:5050/master/api/v1/scheduler`); the leader found is used
//!   from then on. `503` (no leader yet, or still recovering) is retried with backoff.
//! - `400`, `401` and `403` on SUBSCRIBE, and the ERROR events that end a framework, are
//!   [`BackendError::Fatal`]: trying again cannot help.

use super::{Backend, BackendError, EventStream};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use prost::Message;
use proto::mesos::v1::scheduler::{self, call, event};
use proto::recordio::RecordIoDecoder;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::{StatusCode, Url};
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;

const STREAM_ID: &str = "Mesos-Stream-Id";
/// Redirects followed for one request before giving up: more means masters pointing in a loop.
const MAX_REDIRECTS: usize = 5;
/// Attempts for one request answered `503`.
const MAX_UNAVAILABLE_RETRIES: u32 = 4;
/// How long the master may take to answer a call, or to send the first event of a stream.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(75);
/// Offers on big clusters are large; anything beyond this is a corrupt stream.
const MAX_EVENT_BYTES: usize = 64 * 1024 * 1024;

/// The encoding of calls and events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ContentType {
    Protobuf,
    Json,
}

impl ContentType {
    fn mime(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }

    fn encode(self, call: &scheduler::Call) -> Vec<u8> {
        match self {
            Self::Protobuf => call.encode_to_vec(),
            Self::Json => {
                proto::json::to_json(call).expect("every Call has a descriptor and encodes")
            }
        }
    }

    fn decode(self, record: &[u8]) -> Result<scheduler::Event, String> {
        match self {
            Self::Protobuf => scheduler::Event::decode(record).map_err(|e| e.to_string()),
            Self::Json => proto::json::from_json(record).map_err(|e| e.to_string()),
        }
    }
}

/// How to reach the master.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// `http://host:port` of any master; redirects lead to the leader.
    pub master: Url,
    /// The scheduler endpoint's path, `/api/v1/scheduler` on a `mesos-master`.
    pub api_path: String,
    pub content_type: ContentType,
    /// Principal and secret for HTTP basic authentication.
    pub credentials: Option<(String, String)>,
    /// Heartbeat intervals without any event after which the stream counts as dead.
    pub heartbeat_misses: u32,
}

pub struct HttpMaster {
    settings: HttpSettings,
    client: reqwest::Client,
    /// Where requests go: the configured master, then the leader redirects named.
    endpoint: Mutex<Url>,
    /// The current subscription's `Mesos-Stream-Id`.
    stream_id: Mutex<Option<String>>,
}

impl HttpMaster {
    pub fn new(settings: HttpSettings) -> Result<Self, String> {
        let endpoint = settings
            .master
            .join(&settings.api_path)
            .map_err(|e| format!("{}{}: {e}", settings.master, settings.api_path))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(format!("{endpoint}: the master must be an http:// URL"));
        }
        Ok(Self {
            client: client()?,
            endpoint: Mutex::new(endpoint),
            stream_id: Mutex::new(None),
            settings,
        })
    }

    fn endpoint(&self) -> Url {
        self.endpoint
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn headers(&self, stream_id: Option<&str>, accept: bool) -> HeaderMap {
        let mime = HeaderValue::from_static(self.settings.content_type.mime());
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, mime.clone());
        if accept {
            headers.insert(ACCEPT, mime);
        }
        if let Some(value) = stream_id.and_then(|id| HeaderValue::from_str(id).ok()) {
            headers.insert(STREAM_ID, value);
        }
        if let Some((principal, secret)) = &self.settings.credentials {
            use base64::Engine;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{principal}:{secret}"));
            if let Ok(value) = HeaderValue::from_str(&format!("Basic {token}")) {
                headers.insert(AUTHORIZATION, value);
            }
        }
        headers
    }

    /// POSTs `body`, following redirects and retrying `503`; the first other answer.
    async fn post(
        &self,
        client: &reqwest::Client,
        body: Vec<u8>,
        headers: HeaderMap,
    ) -> Result<reqwest::Response, BackendError> {
        let mut url = self.endpoint();
        let mut redirects = 0;
        let mut unavailable = 0;
        loop {
            let response = client
                .post(url.clone())
                .headers(headers.clone())
                .body(body.clone())
                .send()
                .await
                .map_err(|e| BackendError::Transient(format!("{url}: {e}")))?;
            match response.status() {
                StatusCode::TEMPORARY_REDIRECT if redirects < MAX_REDIRECTS => {
                    redirects += 1;
                    url = redirect_target(&url, response.headers())?;
                    tracing::info!(leader = %url, "the Mesos master redirected to the leader");
                    *self.endpoint.lock().unwrap_or_else(PoisonError::into_inner) = url.clone();
                }
                StatusCode::SERVICE_UNAVAILABLE if unavailable < MAX_UNAVAILABLE_RETRIES => {
                    unavailable += 1;
                    let wait = Duration::from_millis(250 << unavailable);
                    let reason = response.text().await.unwrap_or_default();
                    tracing::warn!(%url, %reason, retry_in = ?wait, "the Mesos master is unavailable");
                    tokio::time::sleep(wait).await;
                }
                _ => return Ok(response),
            }
        }
    }

    async fn subscribe_http(
        &self,
        subscribe: scheduler::call::Subscribe,
    ) -> Result<(String, EventStream), BackendError> {
        let mut request = scheduler::Call {
            framework_id: subscribe.framework_info.id.clone(),
            subscribe: Some(subscribe),
            ..Default::default()
        };
        request.set_type(call::Type::Subscribe);
        // A client of its own, so that the stream has a connection to itself.
        let stream_client = client().map_err(BackendError::Transient)?;
        let body = self.settings.content_type.encode(&request);
        let response = self
            .post(&stream_client, body, self.headers(None, true))
            .await?;
        let status = response.status();
        if status != StatusCode::OK {
            let text = response.text().await.unwrap_or_default();
            let message = format!("SUBSCRIBE answered {status}: {}", text.trim());
            return Err(match status {
                StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    BackendError::Fatal(message)
                }
                _ => BackendError::Transient(message),
            });
        }
        let stream_id = response
            .headers()
            .get(STREAM_ID)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| {
                BackendError::Transient(format!("SUBSCRIBE answer without {STREAM_ID}"))
            })?;
        let mut events = EventReader::new(
            Box::pin(response.bytes_stream()),
            self.settings.content_type,
        );
        let first = tokio::time::timeout(REQUEST_TIMEOUT, events.next())
            .await
            .map_err(|_| BackendError::Transient("no event after SUBSCRIBE".into()))?
            .map_err(BackendError::Transient)?;
        let subscribed = match (first.r#type(), &first.subscribed, &first.error) {
            (event::Type::Subscribed, Some(subscribed), _) => subscribed.clone(),
            (event::Type::Error, _, Some(error)) => {
                return Err(BackendError::Fatal(format!(
                    "the Mesos master refused the subscription: {}",
                    error.message
                )))
            }
            (kind, _, _) => {
                return Err(BackendError::Transient(format!(
                    "the stream began with {kind:?}, not SUBSCRIBED"
                )))
            }
        };
        *self
            .stream_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(stream_id);
        let silence_limit = subscribed
            .heartbeat_interval_seconds
            .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
            .map(|seconds| {
                Duration::from_secs_f64(seconds * f64::from(self.settings.heartbeat_misses))
            });
        let (sender, receiver) = mpsc::unbounded_channel();
        let _ = sender.send(first);
        tokio::spawn(events.forward(sender, silence_limit));
        Ok((subscribed.framework_id.value, receiver))
    }

    async fn call_http(&self, request: scheduler::Call) -> Result<(), BackendError> {
        let stream_id = self
            .stream_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let body = self.settings.content_type.encode(&request);
        let response = self
            .post(
                &self.client,
                body,
                self.headers(stream_id.as_deref(), false),
            )
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(BackendError::Transient(format!(
            "{:?} answered {status}: {}",
            request.r#type(),
            text.trim()
        )))
    }
}

impl Backend for HttpMaster {
    fn subscribe(
        &self,
        subscribe: scheduler::call::Subscribe,
    ) -> BoxFuture<'_, Result<(String, EventStream), BackendError>> {
        Box::pin(self.subscribe_http(subscribe))
    }

    fn call(&self, call: scheduler::Call) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(self.call_http(call))
    }
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .tcp_keepalive(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// Where a `307` points: its `Location` resolved against the URL asked, so that Mesos's
/// protocol-relative `//host:port/path` keeps our scheme. A bare `host:port`, as old docs show,
/// keeps our path.
fn redirect_target(asked: &Url, headers: &HeaderMap) -> Result<Url, BackendError> {
    let location = headers
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| BackendError::Transient("307 without a Location".into()))?;
    let invalid = |e: String| BackendError::Transient(format!("307 to '{location}': {e}"));
    if location.starts_with("//") || location.contains("://") {
        return asked.join(location).map_err(|e| invalid(e.to_string()));
    }
    let mut target = asked.clone();
    let (host, port) = location
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
        .ok_or_else(|| invalid("not host:port".into()))?;
    target
        .set_host(Some(host))
        .map_err(|e| invalid(e.to_string()))?;
    target
        .set_port(Some(port))
        .map_err(|()| invalid("bad port".into()))?;
    Ok(target)
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Events out of a SUBSCRIBE response body.
struct EventReader {
    body: ByteStream,
    decoder: RecordIoDecoder,
    content_type: ContentType,
}

impl EventReader {
    fn new(body: ByteStream, content_type: ContentType) -> Self {
        Self {
            body,
            decoder: RecordIoDecoder::with_max_record_len(MAX_EVENT_BYTES),
            content_type,
        }
    }

    /// The next event; an error when the stream ends, breaks or is corrupt.
    async fn next(&mut self) -> Result<scheduler::Event, String> {
        loop {
            match self.decoder.next_record() {
                Ok(Some(record)) => return self.content_type.decode(&record),
                Ok(None) => {}
                Err(e) => return Err(format!("corrupt event stream: {e}")),
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.decoder.push(&chunk),
                Some(Err(e)) => return Err(format!("the event stream broke: {e}")),
                None => return Err("the Mesos master closed the event stream".into()),
            }
        }
    }

    /// Passes events on until the stream ends, is silent for longer than `silence_limit`, or
    /// nobody listens any more.
    async fn forward(
        mut self,
        events: mpsc::UnboundedSender<scheduler::Event>,
        silence_limit: Option<Duration>,
    ) {
        loop {
            let next = async {
                match silence_limit {
                    Some(limit) => tokio::time::timeout(limit, self.next())
                        .await
                        .unwrap_or_else(|_| {
                            Err(format!("no event (not even a heartbeat) for {limit:?}"))
                        }),
                    None => self.next().await,
                }
            };
            let event = tokio::select! {
                event = next => event,
                () = events.closed() => return,
            };
            match event {
                Ok(event) => {
                    if events.send(event).is_err() {
                        return;
                    }
                }
                Err(reason) => {
                    tracing::warn!(%reason, "dropping the Mesos event stream");
                    return;
                }
            }
        }
    }
}

/// The ERROR events after which subscribing again cannot help.
pub(crate) fn is_fatal_error(message: &str) -> bool {
    message.contains("Framework failed over") || message.contains("has been removed")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(LOCATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn redirects_resolve_like_mesos_writes_them() {
        let asked: Url = "http://m1.example:5050/api/v1/scheduler".parse().unwrap();
        let target = |value| {
            redirect_target(&asked, &location(value))
                .unwrap()
                .to_string()
        };
        assert_eq!(
            target("//m2.example:5051/master/api/v1/scheduler"),
            "http://m2.example:5051/master/api/v1/scheduler"
        );
        assert_eq!(
            target("m3.example:5052"),
            "http://m3.example:5052/api/v1/scheduler"
        );
        assert_eq!(
            target("http://m4.example:5053/api/v1/scheduler"),
            "http://m4.example:5053/api/v1/scheduler"
        );
        assert!(redirect_target(&asked, &HeaderMap::new()).is_err());
        assert!(redirect_target(&asked, &location("nonsense")).is_err());
    }

    #[tokio::test]
    async fn events_split_across_chunks_decode_in_both_encodings() {
        let mut heartbeat = scheduler::Event::default();
        heartbeat.set_type(event::Type::Heartbeat);
        for content_type in [ContentType::Protobuf, ContentType::Json] {
            let payload = match content_type {
                ContentType::Protobuf => heartbeat.encode_to_vec(),
                ContentType::Json => proto::json::to_json(&heartbeat).unwrap(),
            };
            let mut wire = Vec::new();
            for _ in 0..3 {
                wire.extend(proto::recordio::encode_frame(&payload));
            }
            let chunks: Vec<reqwest::Result<Bytes>> = wire
                .chunks(3)
                .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
                .collect();
            let mut reader =
                EventReader::new(Box::pin(futures::stream::iter(chunks)), content_type);
            for _ in 0..3 {
                assert_eq!(reader.next().await.unwrap(), heartbeat);
            }
            assert!(
                reader.next().await.is_err(),
                "the end of the stream is reported"
            );
        }
    }

    #[tokio::test]
    async fn a_silent_stream_is_dropped() {
        let body: ByteStream = Box::pin(futures::stream::pending());
        let reader = EventReader::new(body, ContentType::Protobuf);
        let (sender, mut receiver) = mpsc::unbounded_channel();
        reader
            .forward(sender, Some(Duration::from_millis(50)))
            .await;
        assert!(receiver.recv().await.is_none(), "the stream ended");
    }
}
