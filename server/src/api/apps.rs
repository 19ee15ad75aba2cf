//! `/v2/apps`: list, create, and everything under an app id (`{id}`, `/restart`, `/tasks`,
//! `/tasks/{taskId}`, `/versions`, `/versions/{version}`).
//!
//! App ids contain slashes, so one wildcard route takes the whole rest of the path and
//! [`Target::parse`] splits off the sub-resource. App ids can never end in `restart`, `tasks`
//! or `versions` (a validation rule), so the split is unambiguous.

use super::error::ApiError;
use super::{deployment_response, with_deployment_header, Params};
use crate::core::KillOutcome;
use crate::service::{Origin, Service};
use crate::views::{self, Embed};
use app::model::labels::LabelSelector;
use app::model::{parse_body, path, AppUpdate, ServiceError, Timestamp};
use axum::extract::{ConnectInfo, OriginalUri, Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::json;
use std::net::SocketAddr;

/// What a path under `/v2/apps/` addresses.
#[derive(Debug, PartialEq)]
enum Target<'a> {
    App(&'a str),
    /// `group/*`: every app in the group.
    Group(&'a str),
    Restart(&'a str),
    Tasks(&'a str),
    Task(&'a str, &'a str),
    Versions(&'a str),
    Version(&'a str, &'a str),
}

impl<'a> Target<'a> {
    fn parse(path: &'a str) -> Target<'a> {
        let path = path.trim_end_matches('/');
        let (head, last) = path.rsplit_once('/').unwrap_or(("", path));
        let (head2, second_last) = head.rsplit_once('/').unwrap_or(("", head));
        match (second_last, last) {
            (_, "*") => Target::Group(head),
            (_, "restart") => Target::Restart(head),
            (_, "tasks") => Target::Tasks(head),
            (_, "versions") => Target::Versions(head),
            ("tasks", task) if !head2.is_empty() => Target::Task(head2, task),
            ("versions", version) if !head2.is_empty() => Target::Version(head2, version),
            _ => Target::App(path),
        }
    }
}

fn app_id(raw: &str) -> String {
    path::absolute(raw, "/")
}

pub async fn list(
    State(service): State<Service>,
    RawQuery(query): RawQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    let params = Params::parse(query.as_deref());
    let selector = params
        .get("label")
        .map(LabelSelector::parse)
        .transpose()
        .map_err(ServiceError::Unprocessable)?;
    let snapshot = service.snapshot();
    // Counts and deployments are always in this list (Marathon's rule for this endpoint).
    let embed = Embed::parse(
        params.all("embed"),
        Embed {
            counts: true,
            deployments: true,
            ..Embed::default()
        },
    );
    let cmd = params.get("cmd").map(str::to_lowercase);
    let id = params.get("id").map(str::to_lowercase);
    let apps: Vec<_> = snapshot
        .apps
        .values()
        .filter(|a| {
            cmd.as_ref()
                .is_none_or(|c| a.cmd.as_deref().unwrap_or("").to_lowercase().contains(c))
        })
        .filter(|a| id.as_ref().is_none_or(|i| a.id.to_lowercase().contains(i)))
        .filter(|a| selector.as_ref().is_none_or(|s| s.matches(&a.labels)))
        .map(|a| views::app_info(&snapshot, a, embed))
        .collect();
    Ok(Json(json!({ "apps": apps })))
}

fn origin(client: SocketAddr, uri: &str) -> Option<Origin> {
    Some(Origin {
        client_ip: client.ip().to_string(),
        uri: uri.to_string(),
    })
}

pub async fn create(
    State(service): State<Service>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let deployed = service
        .create_app(
            &body,
            params.flag("force", false),
            origin(client, uri.path()),
        )
        .await?;
    let Some(app) = deployed.app else {
        return Err(ServiceError::Unavailable("the created app vanished".into()).into());
    };
    let info = app::model::AppInfo {
        tasks_staged: Some(0),
        tasks_running: Some(0),
        tasks_healthy: Some(0),
        tasks_unhealthy: Some(0),
        deployments: Some(vec![app::model::Identified {
            id: deployed.deployment.id.clone(),
        }]),
        ..views::app_info(&service.snapshot(), &app, Embed::default())
    };
    Ok(with_deployment_header(
        StatusCode::CREATED,
        &deployed.deployment.id,
        Some(app.id.clone()),
        &info,
    ))
}

pub async fn get_under(
    State(service): State<Service>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let embed = Embed::parse(params.all("embed"), Embed::APP);
    let snapshot = service.snapshot();
    match Target::parse(&path) {
        Target::App(raw) => {
            let id = app_id(raw);
            let app = snapshot
                .apps
                .get(&id)
                .ok_or_else(|| ServiceError::app_not_found(&id))?;
            Ok(Json(json!({ "app": views::app_info(&snapshot, app, embed) })).into_response())
        }
        Target::Group(raw) => {
            let group = app_id(raw);
            let prefix = if group == "/" {
                "/".to_string()
            } else {
                format!("{group}/")
            };
            let apps: Vec<_> = snapshot
                .apps
                .values()
                .filter(|a| a.id.starts_with(&prefix))
                .map(|a| views::app_info(&snapshot, a, embed))
                .collect();
            if apps.is_empty() && group != "/" {
                return Err(
                    ServiceError::NotFound(format!("Group '{group}' does not exist")).into(),
                );
            }
            Ok(Json(json!({ "*": apps })).into_response())
        }
        Target::Tasks(raw) => {
            let id = app_id(raw);
            if !snapshot.apps.contains_key(&id) {
                return Err(ServiceError::app_not_found(&id).into());
            }
            Ok(Json(json!({ "tasks": views::tasks_of(&snapshot, &id) })).into_response())
        }
        Target::Versions(raw) => {
            let versions = service.app_versions(raw).await?;
            Ok(Json(json!({ "versions": versions })).into_response())
        }
        Target::Version(raw, version) => {
            let version: Timestamp =
                version
                    .parse()
                    .map_err(|e: app::model::time::InvalidTimestamp| {
                        ServiceError::Unprocessable(e.to_string())
                    })?;
            Ok(Json(service.app_version(raw, version).await?).into_response())
        }
        Target::Restart(_) | Target::Task(..) => Err(method_not_allowed()),
    }
}

fn method_not_allowed() -> ApiError {
    ApiError(ServiceError::NotFound("URI not found".into()))
}

/// `PUT` (partial unless `partialUpdate=false`, creates a missing app) and `PATCH` (always
/// partial, the app must exist) of `/v2/apps/{id}`.
pub async fn update(
    State(service): State<Service>,
    method: Method,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    OriginalUri(uri): OriginalUri,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let Target::App(raw) = Target::parse(&path) else {
        return Err(method_not_allowed());
    };
    let patch = method == Method::PATCH;
    let update: AppUpdate = parse_body(&body).map_err(crate::service::body_error)?;
    let id = app_id(raw);
    if patch && !service.snapshot().apps.contains_key(&id) {
        return Err(ServiceError::app_not_found(&id).into());
    }
    let partial = patch || params.flag("partialUpdate", true);
    let deployed = service
        .update_app(
            raw,
            update,
            partial,
            params.flag("force", false),
            origin(client, uri.path()),
        )
        .await?;
    let status = if deployed.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let location = deployed.created.then(|| id.clone());
    Ok(deployment_response(
        status,
        &deployed.deployment.id,
        deployed.deployment.version,
        location,
    ))
}

/// `PUT` and `PATCH /v2/apps`: a JSON array of app updates, one deployment for all of them.
pub async fn update_many(
    State(service): State<Service>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let updates: Vec<AppUpdate> = parse_body(&body).map_err(crate::service::body_error)?;
    let patch = method == Method::PATCH;
    let partial = patch || params.flag("partialUpdate", true);
    let d = service
        .update_apps(updates, partial, !patch, params.flag("force", false))
        .await?;
    Ok(deployment_response(StatusCode::OK, &d.id, d.version, None))
}

pub async fn post_under(
    State(service): State<Service>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let Target::Restart(raw) = Target::parse(&path) else {
        return Err(method_not_allowed());
    };
    let deployed = service.restart(raw, params.flag("force", false)).await?;
    Ok(deployment_response(
        StatusCode::OK,
        &deployed.deployment.id,
        deployed.deployment.version,
        None,
    ))
}

pub async fn delete_under(
    State(service): State<Service>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let force = params.flag("force", false);
    let scale = params.flag("scale", false);
    let wipe = params.flag("wipe", false);
    match Target::parse(&path) {
        Target::App(raw) => {
            let d = service.delete_app(raw, force).await?;
            Ok(deployment_response(StatusCode::OK, &d.id, d.version, None))
        }
        Target::Tasks(raw) => {
            let id = app_id(raw);
            let snapshot = service.snapshot();
            if !snapshot.apps.contains_key(&id) {
                return Err(ServiceError::app_not_found(&id).into());
            }
            let host = params.get("host").filter(|h| *h != "*");
            let task_ids: Vec<String> = snapshot
                .instances_of(&id)
                .filter(|i| i.condition.is_active())
                .filter(|i| {
                    host.is_none_or(|h| i.placement.as_ref().is_some_and(|p| p.hostname == h))
                })
                .map(|i| i.task_id())
                .collect();
            kill_response(&service, task_ids, scale, wipe, force, None).await
        }
        Target::Task(raw, task_id) => {
            let id = app_id(raw);
            if !service.snapshot().apps.contains_key(&id) {
                return Err(ServiceError::app_not_found(&id).into());
            }
            kill_response(
                &service,
                vec![task_id.to_string()],
                scale,
                wipe,
                force,
                Some(task_id),
            )
            .await
        }
        _ => Err(method_not_allowed()),
    }
}

/// Runs a kill and renders Marathon's answer: the tasks acted on, or the scaling deployment.
/// With `single`, one task is expected (`{"task": ...}`, 404 if unknown).
pub async fn kill_response(
    service: &Service,
    task_ids: Vec<String>,
    scale: bool,
    wipe: bool,
    force: bool,
    single: Option<&str>,
) -> Result<Response, ApiError> {
    let before = service.snapshot();
    match service.kill_tasks(task_ids, scale, wipe, force).await? {
        KillOutcome::Scaled(d) => Ok(deployment_response(StatusCode::OK, &d.id, d.version, None)),
        KillOutcome::Killed(instances) => {
            let tasks: Vec<_> = instances
                .iter()
                .filter_map(|i| views::task_of(&before, i))
                .collect();
            match single {
                Some(task_id) => match tasks.into_iter().next() {
                    Some(task) => Ok(Json(json!({ "task": task })).into_response()),
                    None => Err(
                        ServiceError::NotFound(format!("Task '{task_id}' does not exist")).into(),
                    ),
                },
                None => Ok(Json(json!({ "tasks": tasks })).into_response()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sub_resources_off_app_ids() {
        assert_eq!(Target::parse("prod/web"), Target::App("prod/web"));
        assert_eq!(
            Target::parse("prod/web/restart"),
            Target::Restart("prod/web")
        );
        assert_eq!(Target::parse("web/tasks"), Target::Tasks("web"));
        assert_eq!(
            Target::parse("prod/web/tasks/prod_web.instance-1._app.1"),
            Target::Task("prod/web", "prod_web.instance-1._app.1")
        );
        assert_eq!(Target::parse("web/versions"), Target::Versions("web"));
        assert_eq!(
            Target::parse("web/versions/2015-09-29T15:59:51.164Z"),
            Target::Version("web", "2015-09-29T15:59:51.164Z")
        );
        assert_eq!(Target::parse("prod/*"), Target::Group("prod"));
        assert_eq!(Target::parse("*"), Target::Group(""));
    }
}
