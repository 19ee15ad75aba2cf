//! `/v2/info`, `/v2/leader`, `/ping`, `/metrics` and `/metrics/prometheus`.

use crate::service::Service;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// The Marathon release whose API Stride implements; `/v2/info` answers as that Marathon, the
/// way MariaDB's version string keeps MySQL clients working (Marathon's Python client, for one,
/// gates the event stream on the version). Stride's own name and version are in `buildref` and
/// the `Server` header.
pub const MARATHON_VERSION: &str = "1.11.0";

/// `stride/<version>`, for `buildref` and the `Server` header.
pub fn stride_version() -> String {
    format!("stride/{}", env!("CARGO_PKG_VERSION"))
}

pub async fn info(State(service): State<Service>) -> Json<serde_json::Value> {
    let snapshot = service.snapshot();
    let settings = &service.settings;
    let marathon_config = json!({
            "access_control_allow_origin": null,
            "checkpoint": true,
            "decline_offer_duration": crate::core::REFUSE_WHEN_IDLE.as_millis() as u64,
            "default_network_name": null,
            "env_vars_prefix": null,
            "executor": "//cmd",
            "failover_timeout": settings.failover_timeout_secs,
            "features": [],
            "framework_name": settings.framework_name,
            "ha": settings.ha,
            "hostname": settings.hostname,
            "launch_token": 100,
            "launch_token_refresh_interval": 30000,
            "leader_proxy_connection_timeout_ms": 5000,
            "leader_proxy_read_timeout_ms": 10000,
            "local_port_max": settings.service_ports.max,
            "local_port_min": settings.service_ports.min,
            "master": settings.master,
            "max_instances_per_offer": 5000,
            "mesos_bridge_name": "mesos-bridge",
            "mesos_heartbeat_failure_threshold": 5,
            "mesos_heartbeat_interval": 15000,
            "mesos_leader_ui_url": null,
            "mesos_role": "*",
            "mesos_user": settings.user,
            "min_revive_offers_interval": 5000,
            "new_group_enforce_role": "off",
            "offer_matching_timeout": 3000,
            "on_elected_prepare_timeout": 180000,
            "reconciliation_initial_delay": 0,
            "reconciliation_interval": 900000,
            "scale_apps_initial_delay": 15000,
            "scale_apps_interval": 300000,
            "store_cache": true,
            "task_launch_confirm_timeout": 300000,
            "task_launch_timeout": 300000,
            "task_lost_expunge_initial_delay": 300000,
            "task_lost_expunge_interval": 30000,
            "task_reservation_timeout": 20000,
            "webui_url": null,
            "maintenance_mode": false,
    });
    Json(json!({
        "name": "marathon",
        "version": MARATHON_VERSION,
        "buildref": stride_version(),
        "elected": true,
        "leader": settings.address,
        "frameworkId": snapshot.framework_id,
        "marathon_config": marathon_config,
        "zookeeper_config": {
            "zk": null,
            "zk_compression": false,
            "zk_compression_threshold": 65536,
            "zk_connection_timeout": 10000,
            "zk_max_node_size": 1024000,
            "zk_max_versions": crate::store::MAX_VERSIONS,
            "zk_session_timeout": 10000,
            "zk_timeout": 10000,
        },
        "http_config": { "http_port": settings.http_port, "https_port": null },
    }))
}

/// `GET /v2/leader`: this Stride, which answers only while it leads (standbys proxy).
pub async fn leader(State(service): State<Service>) -> Json<serde_json::Value> {
    Json(json!({ "leader": service.settings.address }))
}

/// `DELETE /v2/leader`: gives the leadership up a moment after answering; another Stride takes
/// over and this one stands by (alone, it leads again after a pause). Marathon's `backup` and
/// `restore` are not Stride's: asking for them is an error rather than a silent no.
pub async fn abdicate(State(service): State<Service>, uri: axum::http::Uri) -> Response {
    let params = super::Params::parse(uri.query());
    if params.get("backup").is_some() || params.get("restore").is_some() {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "Stride does not back up or restore its state on abdication; back the store's database up instead"})),
        )
            .into_response();
    }
    let Some(election) = service.election.clone() else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "There is no leader"})),
        )
            .into_response();
    };
    tokio::spawn(async move {
        // The answer goes out before the leader's work stops.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        election.abdicate();
    });
    Json(json!({"message": "Leadership abdicated"})).into_response()
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

/// `GET /metrics`: Marathon's JSON.
pub async fn metrics(State(service): State<Service>) -> Json<serde_json::Value> {
    Json(crate::metrics::render::json(
        &service.metrics_report(),
        &service.settings.metrics_prefix,
    ))
}

/// `GET /metrics/prometheus`: the Prometheus text format.
pub async fn prometheus(State(service): State<Service>) -> Response {
    if !service.settings.prometheus {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "message": "Prometheus reporter is disabled" })),
        )
            .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render::prometheus(
            &service.metrics_report(),
            &service.settings.metrics_prefix,
        ),
    )
        .into_response()
}
