//! `/v2/groups` against a real `stride`: creating, updating, scaling, rolling back and deleting
//! trees of apps, with Marathon's answers.

mod common;

use common::{eventually, Stride, WAIT};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn sleeper(id: &str) -> Value {
    json!({"id": id, "cmd": "sleep 600", "cpus": 0.01, "mem": 16, "instances": 1})
}

fn task_ids(tasks: &[Value]) -> BTreeSet<String> {
    tasks
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn an_empty_group_is_created_updated_and_deleted() {
    let stride = Stride::start().await;
    let r = stride
        .http
        .post(stride.url("/v2/groups"))
        .body(json!({"id": "/empty"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["location"], "/empty");
    assert!(r.headers().contains_key("marathon-deployment-id"));
    let (status, body) = stride
        .post("/v2/groups", &json!({"id": "/empty"}).to_string())
        .await;
    assert_eq!(
        (status, body["message"].clone()),
        (
            409,
            json!("Group /empty is already created. Use PUT to change this group.")
        )
    );

    let (status, body) = stride
        .put("/v2/groups/empty", r#"{"dependencies": ["/other"]}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, group) = stride.get("/v2/groups/empty").await;
    assert_eq!(group["id"], "/empty");
    assert_eq!(group["dependencies"], json!(["/other"]));
    assert_eq!(group["enforceRole"], false);
    assert_eq!(
        (
            group["apps"].clone(),
            group["groups"].clone(),
            group["pods"].clone()
        ),
        (json!([]), json!([]), json!([]))
    );

    let (_, root) = stride.get("/v2/groups").await;
    assert_eq!(root["id"], "/");
    assert_eq!(root["groups"][0]["id"], "/empty");

    let (status, _) = stride.delete("/v2/groups/empty").await;
    assert_eq!(status, 200);
    let (status, body) = stride.get("/v2/groups/empty").await;
    assert_eq!(
        (status, body),
        (404, json!({"message": "Group '/empty' does not exist"}))
    );
    let (status, _) = stride.delete("/v2/groups/empty").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_tree_of_apps_with_relative_ids_starts_updates_scales_and_rolls_back() {
    let stride = Stride::start().await;
    let tree = json!({
        "id": "/prod",
        "groups": [
            {"id": "db", "apps": [sleeper("db1")]},
            {"id": "service", "dependencies": ["../db"], "apps": [
                {"id": "api", "cmd": "sleep 600", "cpus": 0.01, "mem": 16, "dependencies": ["../db/db1"]}
            ]}
        ]
    });
    let (status, body) = stride.post("/v2/groups", &tree.to_string()).await;
    assert_eq!(status, 201, "{body}");
    stride.wait_running("/prod/db/db1", 1).await;
    let api = stride.wait_running("/prod/service/api", 1).await;
    stride.wait_deployments_done().await;
    let (_, service) = stride.get("/v2/groups/prod/service").await;
    assert_eq!(service["dependencies"], json!(["/prod/db"]));
    assert_eq!(service["apps"][0]["dependencies"], json!(["/prod/db/db1"]));
    assert!(
        service["apps"][0].get("tasksRunning").is_none(),
        "apps are bare without an app embed"
    );
    let (_, counted) = stride
        .get("/v2/groups/prod/service?embed=group.apps&embed=group.apps.counts")
        .await;
    assert_eq!(counted["apps"][0]["tasksRunning"], 1, "{counted}");
    assert!(counted.get("groups").is_none());
    let (_, all) = stride.get("/v2/groups/prod/apps").await;
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    let v1 = stride.get("/v2/groups/prod/versions").await.1[0].clone();

    // The same definition again restarts nothing.
    let same = json!({"apps": [{"id": "api", "cmd": "sleep 600", "cpus": 0.01, "mem": 16, "dependencies": ["../db/db1"]}]});
    let (status, body) = stride
        .put("/v2/groups/prod/service", &same.to_string())
        .await;
    assert_eq!(status, 200, "{body}");
    stride.wait_deployments_done().await;
    assert_eq!(
        task_ids(&stride.tasks("/prod/service/api").await),
        task_ids(&api)
    );

    let (status, body) = stride
        .put("/v2/groups/prod?dryRun=true", r#"{"scaleBy": 2}"#)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["steps"].as_array().map(Vec::len),
        Some(2),
        "db scales before api: {body}"
    );
    let (status, _) = stride.put("/v2/groups/prod", r#"{"scaleBy": 2}"#).await;
    assert_eq!(status, 200);
    stride.wait_running("/prod/db/db1", 2).await;
    stride.wait_running("/prod/service/api", 2).await;
    stride.wait_deployments_done().await;

    let (status, body) = stride
        .put("/v2/groups/prod", &json!({"version": v1}).to_string())
        .await;
    assert_eq!(status, 200, "{body}");
    stride.wait_running("/prod/db/db1", 1).await;
    stride.wait_deployments_done().await;
    let (status, body) = stride
        .put(
            "/v2/groups/prod",
            r#"{"version": "2001-01-01T00:00:00.000Z"}"#,
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["message"],
        "Group /prod not available in version 2001-01-01T00:00:00.000Z"
    );
    let (status, body) = stride
        .put(
            "/v2/groups/prod",
            &json!({"id": "/prod", "version": v1}).to_string(),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["details"][0]["errors"][0],
        "not allowed in conjunction with other properties."
    );

    let (_, then) = stride
        .get(&format!(
            "/v2/groups/prod/versions/{}",
            v1.as_str().unwrap()
        ))
        .await;
    assert_eq!(then["id"], "/prod");

    let (status, _) = stride.delete("/v2/groups/prod").await;
    assert_eq!(status, 200);
    eventually("every task to stop", || async {
        stride.live_task_pids().is_empty().then_some(())
    })
    .await;
    let (status, _) = stride.get("/v2/apps/prod/db/db1").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn groups_keep_marathons_rules() {
    let stride = Stride::start().await;
    let cyclic = json!({"id": "/loop", "apps": [
        {"id": "a", "cmd": "sleep 1", "dependencies": ["b"]},
        {"id": "b", "cmd": "sleep 1", "dependencies": ["a"]}
    ]});
    let (status, body) = stride.post("/v2/groups", &cyclic.to_string()).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["details"][0]["errors"][0]
        .as_str()
        .unwrap()
        .contains("cyclic dependencies"));
    let (status, _) = stride.get("/v2/groups/loop").await;
    assert_eq!(status, 404, "a refused change writes nothing");

    let (status, _) = stride
        .post("/v2/groups", r#"{"id": "/a", "groups": [{"id": "b"}]}"#)
        .await;
    assert_eq!(status, 201);
    let (status, body) = stride
        .send(
            reqwest::Method::PATCH,
            "/v2/groups/a/b",
            r#"{"enforceRole": true}"#,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = stride
        .send(
            reqwest::Method::PATCH,
            "/v2/groups/a",
            r#"{"enforceRole": true}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, a) = stride.get("/v2/groups/a").await;
    assert_eq!(a["enforceRole"], true);
    let (status, body) = stride
        .put(
            "/v2/groups/a",
            &json!({"enforceRole": false, "apps": [sleeper("/a/x")]}).to_string(),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["details"][0]["errors"][0]
        .as_str()
        .unwrap()
        .starts_with("enforceRole cannot be modified"));

    let (status, body) = stride.post("/v2/apps", &sleeper("/a/b").to_string()).await;
    assert_eq!(status, 422, "an app where a group is: {body}");
    assert_eq!(
        body["details"][0]["errors"][0],
        "Groups and Applications may not have the same identifier."
    );

    let (status, body) = stride
        .post(
            "/v2/groups",
            &json!({"id": "/c", "apps": [sleeper("/elsewhere/x")]}).to_string(),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["details"][0]["path"], "/apps(0)/id");
}

#[tokio::test]
async fn a_locked_group_needs_force_and_says_so_in_an_event() {
    let stride = Stride::start().await;
    let mut events = stride.events("?event_type=group_change_failed", None).await;
    let stuck = json!({"id": "/jam", "apps": [{"id": "big", "cmd": "sleep 600", "cpus": 100000, "mem": 16}]});
    let (status, _) = stride.post("/v2/groups", &stuck.to_string()).await;
    assert_eq!(status, 201);
    let (status, body) = stride.delete("/v2/groups/jam").await;
    assert_eq!(status, 409, "{body}");
    assert!(body["deployments"][0]["id"].is_string());
    let event = tokio::time::timeout(WAIT, events.next())
        .await
        .expect("a group_change_failed event")
        .unwrap();
    let event: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(event["groupId"], "/jam");
    assert!(
        event["reason"].as_str().unwrap().contains("locked"),
        "{event}"
    );
    let (status, _) = stride.delete("/v2/groups/jam?force=true").await;
    assert_eq!(status, 200);
    stride.wait_deployments_done().await;
    let (status, _) = stride.get("/v2/apps/jam/big").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn group_dependencies_order_the_steps() {
    let stride = Stride::start().await;
    let tree = json!({
        "id": "/shop",
        "groups": [
            {"id": "front", "dependencies": ["/shop/back"], "apps": [sleeper("web")]},
            {"id": "back", "apps": [sleeper("api"), sleeper("db")]},
        ]
    });
    let (status, body) = stride
        .put("/v2/groups?dryRun=true", &tree.to_string())
        .await;
    assert_eq!(status, 200, "{body}");
    let layers: Vec<Vec<String>> = body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    format!(
                        "{} {}",
                        a["action"].as_str().unwrap(),
                        a["app"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .collect();
    assert_eq!(layers.len(), 3, "{layers:?}");
    assert!(
        layers[1].contains(&"ScaleApplication /shop/back/api".to_string())
            && layers[1].contains(&"ScaleApplication /shop/back/db".to_string())
    );
    assert_eq!(layers[2], vec!["ScaleApplication /shop/front/web"]);
    let (status, _) = stride.get("/v2/groups/shop").await;
    assert_eq!(status, 404, "a dry run changes nothing");
}
