//! A standby's proxy: every request it does not answer itself goes to the leader, and the
//! leader's answer comes back as it is, streamed (so `/v2/events` through a standby is the
//! leader's own stream, and a browser's EventSource keeps working against any Stride).
//!
//! As Marathon's `LeaderProxyFilter`: `X-Marathon-Via: 1.1 <this Stride>` and
//! `X-Forwarded-For` are added to the request, `X-Marathon-Via` to the response; a request that
//! already came through this Stride is a loop (502).

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;

const VIA: &str = "x-marathon-via";
const FORWARDED_FOR: &str = "x-forwarded-for";

/// The largest request body a standby passes on.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Headers of one connection, not of the request (RFC 9110 §7.6.1), and those the client
/// library sets itself.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

pub struct Proxy {
    /// For requests: each read of the answer may take `--leader-proxy-read-timeout-ms`.
    client: reqwest::Client,
    /// For event streams, which are quiet between heartbeats: a stream without a byte for
    /// three heartbeats is taken for a dead leader's.
    streams: reqwest::Client,
    /// `1.1 <this Stride's host:port>`.
    via: String,
}

/// Three of the event stream's heartbeats (one every 10 s).
const STREAM_SILENCE: Duration = Duration::from_secs(30);

/// The answer when no leader is known: 503 with a JSON message (`GET /v2/leader`: Marathon's
/// 404 "There is no leader").
pub fn no_leader(path: &str) -> Response {
    if path == "/v2/leader" {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "There is no leader"})),
        )
            .into_response();
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"message": "Could not determine the current leader"})),
    )
        .into_response()
}

fn bad_gateway(message: String) -> Response {
    (StatusCode::BAD_GATEWAY, Json(json!({ "message": message }))).into_response()
}

impl Proxy {
    pub fn new(
        address: &str,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> anyhow::Result<Proxy> {
        let client = |read_timeout| {
            reqwest::Client::builder()
                .connect_timeout(connect_timeout)
                .read_timeout(read_timeout)
                .redirect(reqwest::redirect::Policy::none())
                .pool_idle_timeout(Duration::from_secs(30))
                .build()
        };
        Ok(Proxy {
            client: client(read_timeout)?,
            streams: client(STREAM_SILENCE)?,
            via: format!("1.1 {address}"),
        })
    }

    /// Whether a request came through this Stride already.
    pub fn is_loop(&self, parts: &Parts) -> bool {
        parts
            .headers
            .get_all(VIA)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|hop| hop.trim() == self.via)
    }

    /// Sends a request to the leader at `leader` (`host:port`) and its answer back; `Err` when
    /// the leader refused the connection (the request never reached it, so it may be sent
    /// again, to the next leader).
    pub async fn forward(
        &self,
        parts: &Parts,
        body: Bytes,
        leader: &str,
    ) -> Result<Response, Refused> {
        let client_ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip().to_string());
        let mut headers = end_to_end(&parts.headers);
        headers.remove(axum::http::header::CONTENT_LENGTH);
        let forwarded_for = match (headers.get(FORWARDED_FOR), client_ip) {
            (Some(earlier), Some(ip)) => Some(format!("{},{ip}", earlier.to_str().unwrap_or(""))),
            (None, Some(ip)) => Some(ip),
            (Some(_), None) | (None, None) => None,
        };
        if let Some(value) = forwarded_for.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(HeaderName::from_static(FORWARDED_FOR), value);
        }
        if let Ok(via) = HeaderValue::from_str(&self.via) {
            headers.append(HeaderName::from_static(VIA), via);
        }
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        // An event stream lasts as long as the client wants it.
        let client = if parts.uri.path().starts_with("/v2/events") {
            &self.streams
        } else {
            &self.client
        };
        let outgoing = client
            .request(parts.method.clone(), format!("http://{leader}{path}"))
            .headers(headers)
            .body(body);
        match outgoing.send().await {
            Ok(answer) => {
                let status = answer.status();
                let mut headers = end_to_end(answer.headers());
                if let Ok(via) = HeaderValue::from_str(&self.via) {
                    headers.append(HeaderName::from_static(VIA), via);
                }
                let mut response = Response::new(Body::from_stream(answer.bytes_stream()));
                *response.status_mut() = status;
                *response.headers_mut() = headers;
                Ok(response)
            }
            Err(e) if e.is_connect() => {
                tracing::warn!(%leader, error = %e, "proxying to the leader: connection refused");
                Err(Refused)
            }
            Err(e) if e.is_timeout() => {
                tracing::warn!(%leader, error = %e, "proxying to the leader timed out");
                Ok((
                    StatusCode::GATEWAY_TIMEOUT,
                    Json(json!({"message": "The leader did not answer in time."})),
                )
                    .into_response())
            }
            Err(e) => {
                tracing::warn!(%leader, error = %e, "proxying to the leader failed");
                Ok(bad_gateway(format!("Proxying to the leader failed: {e}")))
            }
        }
    }
}

/// The leader refused the connection.
#[derive(Debug)]
pub struct Refused;

/// The answer when the leader kept refusing connections.
pub fn refused() -> Response {
    bad_gateway("Connection to leader refused.".into())
}

/// The answer to a request that came through this Stride already.
pub fn proxy_loop() -> Response {
    bad_gateway("Detected proxying loop.".into())
}

/// A request's body, whole (a proxied request may be sent twice).
pub async fn read_body(body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"message": format!("The request body could not be read: {e}")})),
        )
            .into_response()
    })
}

/// The request again, from its parts and its body.
pub fn rebuild(parts: &Parts, body: Bytes) -> Request {
    let mut request = Request::new(Body::from(body));
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    *request.extensions_mut() = parts.extensions.clone();
    request
}

/// `headers` without the hop-by-hop ones.
fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    for name in HOP_BY_HOP {
        out.remove(name);
    }
    out
}
