//! `stride master --listen ADDR`: the built-in master ([`LocalMaster`]) served over Mesos' v1
//! scheduler HTTP API, so that any number of frameworks (other Strides, pymesos schedulers, …)
//! can use this machine as a single-node Mesos cluster.
//!
//! - `POST /api/v1/scheduler` and `/master/api/v1/scheduler`: calls in protobuf or JSON, with
//!   Mesos' status codes and error texts (SCHEDULER_API.md §1.1). SUBSCRIBE answers with a
//!   chunked RecordIO event stream in the encoding its `Accept` asks for and a fresh
//!   `Mesos-Stream-Id`, which every other call of that framework must carry.
//! - `GET /master/state` (frameworks, the agents, tasks, offers), `/master/frameworks`, and
//!   `/master/redirect` (this master leads, so it points at itself).
//! - `POST /api/v1` (and `/master/api/v1`): Mesos' operator API in JSON for the agent and task
//!   calls the master supports (see the master's `operator`).
//! - Stride's own fault injection: `POST /master/agents/{hostname}/disconnect` cuts an agent off
//!   as a partition would, `…/reconnect` brings it back (see the master's `partitions`).
//!
//! The master itself keeps frameworks, failover timeouts and heartbeats; this layer only checks
//! and translates HTTP.

use super::local::{LocalMaster, MasterError, OperatorCall};
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use futures::StreamExt;
use prost::Message;
use proto::mesos::v1::scheduler::{self, call};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio_stream::wrappers::UnboundedReceiverStream;

const STREAM_ID: &str = "Mesos-Stream-Id";
const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

#[derive(Clone)]
struct Served {
    master: LocalMaster,
    /// The current stream id of each subscribed framework.
    streams: Arc<Mutex<HashMap<String, String>>>,
    address: SocketAddr,
}

/// The routes of the master's HTTP API.
pub fn router(master: LocalMaster, address: SocketAddr) -> Router {
    let served = Served {
        master,
        streams: Arc::default(),
        address,
    };
    Router::new()
        .route("/api/v1/scheduler", any(scheduler_api))
        .route("/master/api/v1/scheduler", any(scheduler_api))
        .route("/master/state", get(state))
        .route("/state", get(state))
        .route("/master/frameworks", get(frameworks))
        .route("/master/redirect", get(redirect))
        .route("/api/v1", post(operator_api))
        .route("/master/api/v1", post(operator_api))
        .route("/master/agents/{hostname}/disconnect", post(disconnect))
        .route("/master/agents/{hostname}/reconnect", post(reconnect))
        .with_state(served)
}

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into(),
    )
        .into_response()
}

fn bad_request(message: impl Into<String>) -> Response {
    text(StatusCode::BAD_REQUEST, message)
}

fn invalid(message: &str) -> Response {
    bad_request(format!("Failed to validate scheduler::Call: {message}"))
}

fn master_error(error: MasterError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    text(status, error.message)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn mime(self) -> &'static str {
        match self {
            Self::Protobuf => PROTOBUF,
            Self::Json => JSON,
        }
    }

    fn encode(self, event: &scheduler::Event) -> Vec<u8> {
        match self {
            Self::Protobuf => event.encode_to_vec(),
            Self::Json => {
                proto::json::to_json(event).expect("every Event has a descriptor and encodes")
            }
        }
    }

    /// The event stream's encoding from `Accept`, as Mesos chooses it: JSON when JSON (or any
    /// type) is acceptable or nothing is said, else protobuf if that is acceptable.
    fn accepted(headers: &HeaderMap) -> Option<Self> {
        let Some(accept) = headers.get(header::ACCEPT) else {
            return Some(Self::Json);
        };
        let media: Vec<String> = accept
            .to_str()
            .unwrap_or_default()
            .split(',')
            .map(|item| {
                item.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .collect();
        let allows = |wanted: &[&str]| media.iter().any(|m| wanted.contains(&m.as_str()));
        if allows(&[JSON, "application/*", "*/*"]) {
            Some(Self::Json)
        } else if allows(&[PROTOBUF]) {
            Some(Self::Protobuf)
        } else {
            None
        }
    }
}

async fn scheduler_api(
    State(served): State<Served>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Expecting one of {{ 'POST' }}, but received '{method}'."),
        );
    }
    let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
        return bad_request("Expecting 'Content-Type' to be present");
    };
    let request: scheduler::Call = match content_type.to_str().unwrap_or_default() {
        PROTOBUF => match scheduler::Call::decode(body.as_ref()) {
            Ok(request) => request,
            Err(e) => return bad_request(format!("Failed to parse body into Call protobuf: {e}")),
        },
        JSON => match proto::json::from_json(&body) {
            Ok(request) => request,
            Err(e) => {
                return bad_request(format!("Failed to convert JSON into Call protobuf: {e}"))
            }
        },
        _ => {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expecting 'Content-Type' of application/json or application/x-protobuf",
            )
        }
    };
    if request.r#type.is_none() {
        return invalid("Expecting 'type' to be present");
    }
    let stream_id = headers
        .get(STREAM_ID)
        .map(|value| value.to_str().unwrap_or_default().to_owned());
    match request.r#type() {
        call::Type::Unknown => text(StatusCode::NOT_IMPLEMENTED, "Unknown call type"),
        call::Type::Subscribe => subscribe(served, request, stream_id, &headers).await,
        kind => {
            if let Some(problem) = missing_payload(kind, &request) {
                return invalid(&problem);
            }
            let Some(framework_id) = request.framework_id.as_ref().map(|id| id.value.clone())
            else {
                return invalid("Expecting 'framework_id' to be present");
            };
            let current = served
                .streams
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&framework_id)
                .cloned();
            if let Some(current) = current {
                match stream_id {
                    None => {
                        return bad_request(
                            "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
                        )
                    }
                    Some(given) if given != current => {
                        return bad_request(format!(
                            "The stream ID '{given}' included in this request didn't match the \
                             stream ID currently associated with framework ID {framework_id}"
                        ))
                    }
                    Some(_) => {}
                }
            }
            match served.master.call(request).await {
                // UPDATE_FRAMEWORK is applied before the answer, the other calls are queued.
                Ok(()) if kind == call::Type::UpdateFramework => StatusCode::OK.into_response(),
                Ok(()) => StatusCode::ACCEPTED.into_response(),
                Err(error) => master_error(error),
            }
        }
    }
}

/// The payload each call type needs, as Mesos' validation demands it.
fn missing_payload(kind: call::Type, request: &scheduler::Call) -> Option<String> {
    use call::Type as T;
    let present = match kind {
        T::Accept => request.accept.is_some(),
        T::Decline => request.decline.is_some(),
        T::Kill => request.kill.is_some(),
        T::Shutdown => request.shutdown.is_some(),
        T::Acknowledge => match &request.acknowledge {
            Some(ack) if ack.uuid.len() != 16 => return Some("Not a valid UUID".into()),
            Some(_) => true,
            None => false,
        },
        T::Reconcile => request.reconcile.is_some(),
        T::Message => request.message.is_some(),
        T::Request => request.request.is_some(),
        T::UpdateFramework => request.update_framework.is_some(),
        _ => true,
    };
    let field = kind.as_str_name().to_ascii_lowercase();
    (!present).then(|| format!("Expecting '{field}' to be present"))
}

async fn subscribe(
    served: Served,
    request: scheduler::Call,
    stream_id: Option<String>,
    headers: &HeaderMap,
) -> Response {
    if stream_id.is_some() {
        return bad_request("Subscribe calls should not include the 'Mesos-Stream-Id' header");
    }
    let Some(subscribe) = request.subscribe else {
        return invalid("Expecting 'subscribe' to be present");
    };
    if request.framework_id.is_some() && request.framework_id != subscribe.framework_info.id {
        return invalid("'framework_id' differs from 'subscribe.framework_info.id'");
    }
    let Some(encoding) = Encoding::accepted(headers) else {
        return text(
            StatusCode::NOT_ACCEPTABLE,
            "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'",
        );
    };
    let (framework_id, events) = match served.master.subscribe(subscribe).await {
        Ok(subscribed) => subscribed,
        Err(error) => return master_error(error),
    };
    let stream_id = uuid::Uuid::new_v4().to_string();
    served
        .streams
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(framework_id, stream_id.clone());
    let frames = UnboundedReceiverStream::new(events).map(move |event| {
        Ok::<_, std::convert::Infallible>(proto::recordio::encode_frame(&encoding.encode(&event)))
    });
    let mut response = Response::new(Body::from_stream(frames));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.mime()),
    );
    if let Ok(value) = HeaderValue::from_str(&stream_id) {
        headers.insert(STREAM_ID, value);
    }
    response
}

async fn state(State(served): State<Served>) -> Response {
    match served.master.state().await {
        Ok(state) => Json(state).into_response(),
        Err(error) => master_error(error),
    }
}

async fn frameworks(State(served): State<Served>) -> Response {
    match served.master.state().await {
        Ok(state) => Json(serde_json::json!({
            "frameworks": state["frameworks"],
            "completed_frameworks": state["completed_frameworks"],
            "unregistered_frameworks": [],
        }))
        .into_response(),
        Err(error) => master_error(error),
    }
}

/// This master is the leader: the redirect names itself, protocol-relative as Mesos writes it.
/// `POST /api/v1`, JSON only: `GET_AGENTS`, `GET_TASKS`, `MARK_AGENT_GONE`, `DRAIN_AGENT`,
/// `DEACTIVATE_AGENT` and `REACTIVATE_AGENT`.
async fn operator_api(State(served): State<Served>, body: Bytes) -> Response {
    let call: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(call) => call,
        Err(e) => return bad_request(format!("Failed to parse body into JSON: {e}")),
    };
    let call = match operator_call(&call) {
        Ok(call) => call,
        Err((status, message)) => return text(status, message),
    };
    match served.master.operate(call).await {
        Ok(serde_json::Value::Null) => StatusCode::OK.into_response(),
        Ok(answer) => Json(answer).into_response(),
        Err(error) => master_error(error),
    }
}

/// The operator call a JSON body names, or the status and text to refuse it with.
fn operator_call(call: &serde_json::Value) -> Result<OperatorCall, (StatusCode, String)> {
    let agent_of = |field: &str| {
        call[field]["agent_id"]["value"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                (
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Failed to validate master::Call: Expecting '{field}.agent_id' to be present"
                    ),
                )
            })
    };
    match call["type"].as_str().unwrap_or("") {
        "GET_AGENTS" => Ok(OperatorCall::GetAgents),
        "GET_TASKS" => Ok(OperatorCall::GetTasks),
        "MARK_AGENT_GONE" => agent_of("mark_agent_gone").map(OperatorCall::MarkAgentGone),
        "DEACTIVATE_AGENT" => agent_of("deactivate_agent").map(OperatorCall::DeactivateAgent),
        "REACTIVATE_AGENT" => agent_of("reactivate_agent").map(OperatorCall::ReactivateAgent),
        "DRAIN_AGENT" => agent_of("drain_agent").map(|agent_id| OperatorCall::DrainAgent {
            agent_id,
            mark_gone: call["drain_agent"]["mark_gone"].as_bool().unwrap_or(false),
        }),
        other => Err((
            StatusCode::NOT_IMPLEMENTED,
            format!("Stride's built-in master does not implement '{other}'"),
        )),
    }
}

async fn disconnect(State(served): State<Served>, Path(hostname): Path<String>) -> Response {
    set_reachable(&served, &hostname, false).await
}

async fn reconnect(State(served): State<Served>, Path(hostname): Path<String>) -> Response {
    set_reachable(&served, &hostname, true).await
}

async fn set_reachable(served: &Served, hostname: &str, reachable: bool) -> Response {
    match served.master.set_reachable(hostname, reachable).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => master_error(error),
    }
}

async fn redirect(State(served): State<Served>) -> Response {
    let location = format!("//{}", served.address);
    (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, location)],
    )
        .into_response()
}
