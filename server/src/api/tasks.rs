//! `/v2/tasks`, `/v2/deployments` and `/v2/queue`.

use super::apps::kill_response;
use super::error::ApiError;
use super::{deployment_response, parse_ids, Params};
use crate::core::OfferStats;
use crate::scheduler::backoff;
use crate::scheduler::instance::parse_task_id;
use crate::scheduler::placement::Veto;
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
        .filter_map(|i| views::task_of(&snapshot, i))
        .filter(|t| wanted.is_empty() || wanted.iter().any(|w| w == t.state.name()))
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
    let list: Vec<_> = snapshot
        .deployments
        .values()
        .map(|d| views::deployment_info(&snapshot, d))
        .collect();
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

/// `/v2/queue`: apps with instances waiting to launch, with their delay and what offers said
/// (Marathon's `processedOffersSummary`; `embed=lastUnusedOffers` adds the offers themselves).
pub async fn queue(
    State(service): State<Service>,
    RawQuery(query): RawQuery,
) -> Json<serde_json::Value> {
    let params = Params::parse(query.as_deref());
    let with_offers = params.all("embed").any(|e| e == "lastUnusedOffers");
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
            let stats = snapshot.offer_stats.get(&app.id).map(|s| s.as_ref()).cloned().unwrap_or_default();
            let mut item = json!({
                "app": app,
                "count": waiting.len(),
                "since": since,
                "delay": {
                    "timeLeftSeconds": delay.map_or(0, |b| ((b.deadline.millis() - now.millis()).max(0) + 999) / 1000),
                    "overdue": delay.is_none(),
                },
                "processedOffersSummary": offers_summary(&stats),
            });
            if with_offers {
                item["lastUnusedOffers"] = json!(last_unused_offers(&stats));
            }
            Some(item)
        })
        .collect();
    Json(json!({ "queue": items }))
}

fn reject_summary(counts: Vec<(Veto, u64, u64)>) -> serde_json::Value {
    json!(counts
        .into_iter()
        // Marathon's reasons only, unless Stride's own refused something.
        .filter(|(veto, _, declined)| *veto != Veto::NoDockerEngine || *declined > 0)
        .map(|(veto, processed, declined)| json!({"reason": veto.name(), "declined": declined, "processed": processed}))
        .collect::<Vec<_>>())
}

fn offers_summary(stats: &OfferStats) -> serde_json::Value {
    let mut summary = json!({
        "processedOffersCount": stats.processed,
        "unusedOffersCount": stats.unused,
        "rejectSummaryLastOffers": reject_summary(stats.last_offers()),
        "rejectSummaryLaunchAttempt": reject_summary(stats.launch_attempt()),
    });
    if let Some(at) = stats.last_unused_at {
        summary["lastUnusedOfferAt"] = json!(at);
    }
    if let Some(at) = stats.last_used_at {
        summary["lastUsedOfferAt"] = json!(at);
    }
    summary
}

/// The latest unused offer of each agent, in Marathon's `Offer` shape.
fn last_unused_offers(stats: &OfferStats) -> Vec<serde_json::Value> {
    stats
        .last_by_agent
        .values()
        .filter_map(|last| {
            let veto = last.outcome.veto()?;
            let o = &last.offer;
            let scalar = |name: &str, value: f64| json!({"name": name, "role": o.role, "scalar": value});
            Some(json!({
                "offer": {
                    "id": o.offer_id,
                    "hostname": o.hostname,
                    "agentId": o.agent_id,
                    "resources": [
                        scalar("cpus", o.cpus),
                        scalar("mem", o.mem),
                        scalar("disk", o.disk),
                        {"name": "ports", "role": o.role, "ranges": o.ports.iter().map(|(b, e)| json!({"begin": b, "end": e})).collect::<Vec<_>>()},
                    ],
                    // The fault domain (`@region`, `@zone`) is no Mesos attribute.
                    "attributes": o.attributes.iter().filter(|(name, _)| !name.starts_with('@')).map(|(name, text)| json!({"name": name, "text": text})).collect::<Vec<_>>(),
                },
                "reason": [veto.name()],
                "timestamp": last.at,
            }))
        })
        .collect()
}

/// `DELETE /v2/queue/{appId}/delay`: 204, or 404 when the app waits for nothing.
pub async fn reset_delay(
    State(service): State<Service>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let Some(app_id) = path.trim_end_matches('/').strip_suffix("/delay") else {
        return Err(ServiceError::NotFound("URI not found".into()).into());
    };
    service.reset_delay(app_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
