//! `/v2/eventSubscriptions` (Marathon 1.4's HTTP callbacks, on by default in Stride; Stride
//! adds `batch=true` for subscribers that take arrays of events) and Stride's own
//! `/stride/v1/event-subscribers`, which says how deliveries to each go.

use super::error::ApiError;
use super::Params;
use crate::events::callbacks::{Callbacks, SubscribeError};
use crate::service::Service;
use app::model::{EventSubscriber, MarathonEvent, ServiceError, Violation};
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::Json;
use serde_json::json;
use std::net::SocketAddr;

fn callbacks(service: &Service) -> Result<&Callbacks, ApiError> {
    service.callbacks.as_ref().ok_or_else(|| {
        ApiError(ServiceError::BadRequest {
            message: "http event callback system is not running on this Marathon instance. Please re-start this instance with\n\"--event_subscriber http_callback\".".into(),
            details: None,
        })
    })
}

fn callback_url(query: Option<&str>) -> Result<String, ApiError> {
    Params::parse(query)
        .get("callbackUrl")
        .map(str::to_string)
        .ok_or_else(|| invalid("callbackUrl is required".into()))
}

fn invalid(message: String) -> ApiError {
    ApiError(ServiceError::Invalid(vec![Violation {
        path: "/callbackUrl".into(),
        errors: vec![message],
    }]))
}

fn answer(outcome: Result<MarathonEvent, SubscribeError>) -> Result<Json<MarathonEvent>, ApiError> {
    match outcome {
        Ok(event) => Ok(Json(event)),
        Err(SubscribeError::InvalidUrl(message)) => Err(invalid(message)),
        Err(SubscribeError::Store(e)) => {
            tracing::error!(error = %e, "storing an event subscription failed");
            Err(ApiError(ServiceError::Unavailable(format!(
                "the subscription could not be stored: {e}"
            ))))
        }
    }
}

pub async fn list(State(service): State<Service>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        json!({ "callbackUrls": callbacks(&service)?.callback_urls() }),
    ))
}

pub async fn subscribe(
    State(service): State<Service>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
) -> Result<Json<MarathonEvent>, ApiError> {
    let url = callback_url(query.as_deref())?;
    let batch = Params::parse(query.as_deref()).flag("batch", false);
    answer(
        callbacks(&service)?
            .subscribe(&url, &client.ip().to_string(), batch)
            .await,
    )
}

pub async fn unsubscribe(
    State(service): State<Service>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
) -> Result<Json<MarathonEvent>, ApiError> {
    let url = callback_url(query.as_deref())?;
    answer(
        callbacks(&service)?
            .unsubscribe(&url, &client.ip().to_string())
            .await,
    )
}

/// Every subscriber with its backlog, failures and when it is dropped if they go on.
pub async fn subscribers(
    State(service): State<Service>,
) -> Result<Json<Vec<EventSubscriber>>, ApiError> {
    Ok(Json(callbacks(&service)?.status()))
}
