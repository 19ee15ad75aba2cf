//! `/v2/info`, `/v2/leader`, `/ping`.

use crate::service::Service;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

pub async fn info(State(service): State<Service>, headers: HeaderMap) -> Json<serde_json::Value> {
    let snapshot = service.snapshot();
    let leader = host_of(&headers);
    Json(json!({
        "name": "stride",
        "version": env!("CARGO_PKG_VERSION"),
        "buildref": "unknown",
        "elected": true,
        "leader": leader,
        "frameworkId": snapshot.framework_id,
        "marathon_config": {
            "master": service.settings.master,
            "framework_name": service.settings.framework_name,
            "hostname": service.settings.hostname,
            "failover_timeout": service.settings.failover_timeout_secs,
            "checkpoint": true,
            "decline_offer_duration": crate::core::REFUSE_WHEN_IDLE.as_millis() as u64,
            "executor": "//cmd",
            "features": [],
            "ha": false,
            "mesos_role": "*",
            "mesos_user": service.settings.user,
            "webui_url": null,
        },
        "zookeeper_config": {},
        "http_config": { "http_port": service.settings.http_port, "https_port": null },
    }))
}

/// The `host:port` clients reach this server at.
fn host_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
}

pub async fn leader(headers: HeaderMap) -> Json<serde_json::Value> {
    Json(json!({ "leader": host_of(&headers) }))
}

/// `pong`, as JSON (`"pong"`) when the client prefers it, as text otherwise.
pub async fn ping(headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    if accept.contains("application/json") && !accept.contains("text/") {
        (StatusCode::OK, Json("pong")).into_response()
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain")],
            "pong",
        )
            .into_response()
    }
}
