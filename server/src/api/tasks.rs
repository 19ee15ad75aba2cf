//! `/v2/tasks`, `/v2/deployments` and `/v2/queue`.

use super::apps::kill_response;
use super::error::ApiError;
use super::{deployment_response, parse_ids, Params};
use crate::scheduler::backoff;
use crate::scheduler::instance::parse_task_id;
use crate::service::Service;
use crate::views;
use app::model::ServiceError;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::json;

pub async fn list(
    State(service): State<Service>,
    RawQuery(query): RawQuery,
) -> Json<serde_json::Value> {
    let params = Params::parse(query.as_deref());
    let wanted: Vec<String> = params
        .all("status")
        .chain(params.all("status[]"))
        .map(str::to_lowercase)
        .filter(|s| s == "running" || s == "staging")
        .map(|s| format!("TASK_{}", s.to_uppercase()))
        .collect();
    let snapshot = service.snapshot();
    let tasks: Vec<_> = snapshot
        .instances
        .values()
        .filter_map(|i| views::task_of(i, snapshot.apps.get(&i.app_id).map(|a| a.as_ref())))
        .filter(|t| wanted.is_empty() || wanted.contains(&t.state))
        .collect();
    Json(json!({ "tasks": tasks }))
}

pub async fn delete(
    State(service): State<Service>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let ids = parse_ids(&body)?;
    if let Some(bad) = ids.iter().find(|id| parse_task_id(id).is_none()) {
        return Err(ServiceError::BadRequest {
            message: format!("Invalid task id '{bad}'. [not a task id of the form <app>.instance-<uuid>._app.<n>]"),
            details: None,
        }
        .into());
    }
    kill_response(
        &service,
        ids,
        params.flag("scale", false),
        params.flag("wipe", false),
        params.flag("force", false),
        None,
    )
    .await
}

pub async fn deployments(State(service): State<Service>) -> Json<serde_json::Value> {
    let snapshot = service.snapshot();
    let list: Vec<_> = snapshot.deployments.values().map(|d| d.info()).collect();
    Json(json!(list))
}

pub async fn delete_deployment(
    State(service): State<Service>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    match service
        .delete_deployment(&id, params.flag("force", false))
        .await?
    {
        None => Ok(StatusCode::ACCEPTED.into_response()),
        Some(rollback) => Ok(deployment_response(
            StatusCode::OK,
            &rollback.id,
            rollback.version,
            None,
        )),
    }
}

/// `/v2/queue`: apps with instances waiting to launch, with their delay and, beyond Marathon,
/// the reasons in words.
pub async fn queue(State(service): State<Service>) -> Json<serde_json::Value> {
    let snapshot = service.snapshot();
    let now = crate::service::now();
    let items: Vec<_> = snapshot
        .apps
        .values()
        .filter_map(|app| {
            let waiting: Vec<_> = snapshot.instances_of(&app.id).filter(|i| i.wants_launch()).collect();
            let since = waiting.iter().map(|i| i.since).min()?;
            let delay = snapshot
                .backoffs
                .get(&(app.id.clone(), app.config_version()))
                .filter(|b| backoff::blocks_launch(Some(**b), now));
            let vetoes = snapshot.vetoes.get(&app.id).cloned().unwrap_or_default();
            Some(json!({
                "app": app,
                "count": waiting.len(),
                "role": app.role,
                "since": since,
                "delay": {
                    "timeLeftSeconds": delay.map_or(0, |b| ((b.deadline.millis() - now.millis()).max(0) + 999) / 1000),
                    "overdue": delay.is_none(),
                },
                "processedOffersSummary": {
                    "rejectSummaryLastOffers": vetoes.iter().map(|v| json!({"reason": v.name(), "declined": 1, "processed": 1})).collect::<Vec<_>>(),
                },
                "waitingReasons": crate::core::waiting_reasons(&snapshot, app, now),
            }))
        })
        .collect();
    Json(json!({ "queue": items }))
}
