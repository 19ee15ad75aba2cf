//! `/v2/groups`: the tree, its versions, and changes to it.
//!
//! Paths are matched as Marathon does, in this order: `<gid>/apps`, `apps`, `<gid>/versions`,
//! `versions`, `<gid>/versions/<v>`, `versions/<v>`, otherwise a group id (so a group named
//! `apps` or `versions` cannot be read with GET, as in Marathon).

use super::error::ApiError;
use super::{deployment_response, with_deployment_header, Params};
use crate::scheduler::groups::Mode;
use crate::service::{GroupOutcome, Service};
use crate::views::{self, GroupEmbed, TreeView};
use app::model::{parse_body, path, DeploymentResult, GroupUpdate, ServiceError, Timestamp};
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::json;

#[derive(Debug, PartialEq)]
enum Target<'a> {
    Group(&'a str),
    Apps(&'a str),
    Versions(&'a str),
    Version(&'a str, &'a str),
}

impl<'a> Target<'a> {
    fn parse(path: &'a str) -> Target<'a> {
        let path = path.trim_matches('/');
        if path == "apps" {
            return Target::Apps("");
        }
        if let Some(group) = path.strip_suffix("/apps") {
            return Target::Apps(group);
        }
        if path == "versions" {
            return Target::Versions("");
        }
        if let Some(group) = path.strip_suffix("/versions") {
            return Target::Versions(group);
        }
        if let Some((head, version)) = path.rsplit_once('/') {
            if head == "versions" {
                return Target::Version("", version);
            }
            if let Some(group) = head.strip_suffix("/versions") {
                return Target::Version(group, version);
            }
        }
        Target::Group(path)
    }
}

fn group_id(raw: &str) -> String {
    path::absolute(raw, "/")
}

fn not_found(group: &str) -> ApiError {
    ApiError(ServiceError::NotFound(format!(
        "Group '{group}' does not exist"
    )))
}

pub async fn get_root(state: State<Service>, query: RawQuery) -> Result<Response, ApiError> {
    get_under(state, Path(String::new()), query).await
}

pub async fn get_under(
    State(service): State<Service>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let embed = GroupEmbed::parse(params.all("embed"));
    let snapshot = service.snapshot();
    let tree = TreeView::of_snapshot(&snapshot);
    let current_info = |a: &app::model::AppDefinition| views::app_info(&snapshot, a, embed.app);
    match Target::parse(&raw) {
        Target::Group(raw) => {
            let id = group_id(raw);
            if !tree.exists(&id) {
                return Err(not_found(&id));
            }
            Ok(Json(views::group_info(&tree, &id, embed, &current_info)).into_response())
        }
        Target::Apps(raw) => {
            let id = group_id(raw);
            let embed = views::Embed::parse(params.all("embed"), views::Embed::default());
            let apps: Vec<_> = tree
                .apps_within(&id)
                .into_iter()
                .map(|a| views::app_info(&snapshot, a, embed))
                .collect();
            Ok(Json(apps).into_response())
        }
        Target::Versions(raw) => {
            let id = group_id(raw);
            if !tree.exists(&id) {
                return Err(not_found(&id));
            }
            let versions = service.tree_versions().await?;
            let containing: Vec<Timestamp> = versions
                .into_iter()
                .filter(|v| id == "/" || v.groups.iter().any(|g| g.id == id))
                .map(|v| v.version)
                .collect();
            Ok(Json(containing).into_response())
        }
        Target::Version(raw, version) => {
            let id = group_id(raw);
            let version: Timestamp =
                version
                    .parse()
                    .map_err(|e: app::model::time::InvalidTimestamp| {
                        ServiceError::Unprocessable(e.to_string())
                    })?;
            let (groups, apps) = service
                .stored_tree(version)
                .await?
                .ok_or_else(|| not_found(&id))?;
            let then = TreeView {
                groups: groups.iter().map(|g| (g.id.as_str(), g)).collect(),
                apps: apps.iter().map(|a| (a.id.as_str(), a)).collect(),
                version,
            };
            if !then.exists(&id) {
                return Err(not_found(&id));
            }
            let bare = |a: &app::model::AppDefinition| {
                views::app_info(&snapshot, a, views::Embed::default())
            };
            let embed = GroupEmbed {
                app: views::Embed::default(),
                ..embed
            };
            Ok(Json(views::group_info(&then, &id, embed, &bare)).into_response())
        }
    }
}

pub async fn post_root(
    state: State<Service>,
    query: RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    change(state, Method::POST, String::new(), query, body).await
}

pub async fn put_root(
    state: State<Service>,
    query: RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    change(state, Method::PUT, String::new(), query, body).await
}

pub async fn change_under(
    state: State<Service>,
    method: Method,
    Path(raw): Path<String>,
    query: RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    if method == Method::PATCH {
        return patch(state, raw, body).await;
    }
    change(state, method, raw, query, body).await
}

async fn change(
    State(service): State<Service>,
    method: Method,
    raw: String,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let update: GroupUpdate = parse_body(&body).map_err(crate::service::body_error)?;
    let mode = if method == Method::POST {
        Mode::Create
    } else {
        Mode::CreateOrUpdate
    };
    let created = crate::scheduler::groups::target_of(&group_id(&raw), &update);
    let outcome = service
        .change_group(
            &raw,
            update,
            mode,
            params.flag("force", false),
            mode == Mode::CreateOrUpdate && params.flag("dryRun", false),
        )
        .await?;
    match outcome {
        GroupOutcome::DryRun(steps) => Ok(Json(json!({ "steps": steps })).into_response()),
        GroupOutcome::Deployed(d) if mode == Mode::Create => Ok(with_deployment_header(
            StatusCode::CREATED,
            &d.id,
            Some(created),
            &DeploymentResult {
                deployment_id: d.id.clone(),
                version: d.version,
            },
        )),
        GroupOutcome::Deployed(d) => {
            Ok(deployment_response(StatusCode::OK, &d.id, d.version, None))
        }
    }
}

async fn patch(
    State(service): State<Service>,
    raw: String,
    body: Bytes,
) -> Result<Response, ApiError> {
    let update: GroupUpdate = parse_body(&body).map_err(crate::service::body_error)?;
    service.patch_group(&raw, update.enforce_role).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn delete_root(state: State<Service>, query: RawQuery) -> Result<Response, ApiError> {
    delete_under(state, Path(String::new()), query).await
}

pub async fn delete_under(
    State(service): State<Service>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let d = service
        .delete_group(&raw, params.flag("force", false))
        .await?;
    Ok(deployment_response(StatusCode::OK, &d.id, d.version, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_in_marathons_order() {
        assert_eq!(Target::parse("prod/apps"), Target::Apps("prod"));
        assert_eq!(Target::parse("apps"), Target::Apps(""));
        assert_eq!(Target::parse("prod/versions"), Target::Versions("prod"));
        assert_eq!(Target::parse("versions"), Target::Versions(""));
        assert_eq!(
            Target::parse("prod/versions/2015-09-29T15:59:51.164Z"),
            Target::Version("prod", "2015-09-29T15:59:51.164Z")
        );
        assert_eq!(
            Target::parse("versions/2015-09-29T15:59:51.164Z"),
            Target::Version("", "2015-09-29T15:59:51.164Z")
        );
        assert_eq!(Target::parse("prod/web"), Target::Group("prod/web"));
        assert_eq!(Target::parse(""), Target::Group(""));
    }
}
