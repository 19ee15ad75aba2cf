//! Marathon's v2 REST API on axum.
//!
//! # Layout
//! - [`error`]: [`ApiError`], rendering [`ServiceError`] as Marathon's error bodies.
//! - [`apps`]: `/v2/apps` and everything under an app id.
//! - [`groups`]: everything under `/v2/groups`.
//! - [`tasks`]: `/v2/tasks`, `/v2/deployments`, `/v2/queue`.
//! - [`system`]: `/v2/info`, `/v2/leader`, `/ping`, `/metrics`.
//! - [`events`]: the `/v2/events` SSE stream.
//! - [`subscriptions`]: `/v2/eventSubscriptions` and Stride's `/stride/v1/event-subscribers`.
//! - [`discovery`]: Stride's `/v2/vips`.

pub mod apps;
pub mod discovery;
pub mod error;
pub mod events;
pub mod groups;
pub mod subscriptions;
pub mod system;
pub mod tasks;

use crate::service::Service;
use app::model::{DeploymentResult, ServiceError, Timestamp};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use error::ApiError;
use serde::Serialize;
use std::collections::HashMap;

/// Query parameters with repeated keys (`embed=a&embed=b`), Marathon style.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: Option<&str>) -> Params {
        Params(
            raw.map(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default())
                .unwrap_or_default(),
        )
    }

    pub fn all<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a str> + Clone + 'a {
        let key = key.to_string();
        self.0
            .iter()
            .filter(move |(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.all(key).next()
    }

    /// A boolean flag: `true` (any case) is true, anything else or absence is `default`.
    pub fn flag(&self, key: &str, default: bool) -> bool {
        self.get(key)
            .map_or(default, |v| v.eq_ignore_ascii_case("true"))
    }
}

pub fn router() -> Router<Service> {
    Router::new()
        .route(
            "/v2/apps",
            get(apps::list)
                .post(apps::create)
                .put(apps::update_many)
                .patch(apps::update_many),
        )
        .route(
            "/v2/apps/{*path}",
            get(apps::get_under)
                .put(apps::update)
                .patch(apps::update)
                .delete(apps::delete_under)
                .post(apps::post_under),
        )
        .route(
            "/v2/groups",
            get(groups::get_root)
                .post(groups::post_root)
                .put(groups::put_root)
                .delete(groups::delete_root),
        )
        .route(
            "/v2/groups/{*path}",
            get(groups::get_under)
                .post(groups::change_under)
                .put(groups::change_under)
                .patch(groups::change_under)
                .delete(groups::delete_under),
        )
        .route("/v2/tasks", get(tasks::list))
        .route("/v2/tasks/delete", post(tasks::delete))
        .route("/v2/deployments", get(tasks::deployments))
        .route(
            "/v2/deployments/{id}",
            axum::routing::delete(tasks::delete_deployment),
        )
        .route("/v2/queue", get(tasks::queue))
        .route("/v2/vips", get(discovery::list_vips))
        .route(
            "/v2/queue/{*path}",
            axum::routing::delete(tasks::reset_delay),
        )
        .route("/v2/info", get(system::info))
        .route("/v2/leader", get(system::leader).delete(system::abdicate))
        .route("/ping", get(system::ping))
        .route("/metrics", get(system::metrics))
        .route("/metrics/prometheus", get(system::prometheus))
        .route("/v2/events", get(events::stream))
        .route(
            "/v2/eventSubscriptions",
            get(subscriptions::list)
                .post(subscriptions::subscribe)
                .delete(subscriptions::unsubscribe),
        )
        .route(
            "/stride/v1/event-subscribers",
            get(subscriptions::subscribers),
        )
}

/// A deployment-creating response: the body, status and Marathon's `Marathon-Deployment-Id`.
pub fn deployment_response(
    status: axum::http::StatusCode,
    deployment_id: &str,
    version: Timestamp,
    location: Option<String>,
) -> Response {
    with_deployment_header(
        status,
        deployment_id,
        location,
        &DeploymentResult {
            deployment_id: deployment_id.to_string(),
            version,
        },
    )
}

pub fn with_deployment_header<T: Serialize>(
    status: axum::http::StatusCode,
    deployment_id: &str,
    location: Option<String>,
    body: &T,
) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(deployment_id) {
        headers.insert(HeaderName::from_static("marathon-deployment-id"), v);
    }
    if let Some(v) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(axum::http::header::LOCATION, v);
    }
    (status, headers, Json(body)).into_response()
}

/// Anything not matched: Marathon answers 500 here, which would blame the server for a client's
/// typo, so Stride says 404 with Marathon's message.
pub async fn not_found() -> ApiError {
    ApiError(ServiceError::NotFound("URI not found".into()))
}

/// Task ids from a `{"ids": [...]}` body.
pub fn parse_ids(body: &[u8]) -> Result<Vec<String>, ApiError> {
    let map: HashMap<String, Vec<String>> =
        app::model::parse_body(body).map_err(|e| ApiError(crate::service::body_error(e)))?;
    Ok(map.get("ids").cloned().unwrap_or_default())
}
