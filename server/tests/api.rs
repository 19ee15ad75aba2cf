//! The REST API against a real `stride` with the built-in master/agent running real processes.

mod common;

use common::{eventually, process_alive, Stride};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn ids(tasks: &[Value]) -> BTreeSet<String> {
    tasks
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

async fn create(stride: &Stride, app: Value) -> Value {
    let (status, body) = stride.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    body
}

#[tokio::test]
async fn launch_scale_up_and_down_then_delete() {
    let stride = Stride::start().await;
    let created = create(
        &stride,
        json!({"id": "/sleepy", "cmd": "sleep 600", "cpus": 0.01, "mem": 16, "instances": 1}),
    )
    .await;
    assert_eq!(created["id"], "/sleepy");
    assert_eq!(created["deployments"].as_array().unwrap().len(), 1);
    let one = stride.wait_running("/sleepy", 1).await;

    let (status, body) = stride.put("/v2/apps/sleepy", r#"{"instances": 5}"#).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["deploymentId"].is_string());
    let five = stride.wait_running("/sleepy", 5).await;
    assert!(
        ids(&one).is_subset(&ids(&five)),
        "scaling up keeps the running task"
    );
    stride.wait_deployments_done().await;
    assert_eq!(stride.live_task_pids().len(), 5);

    let (status, _) = stride.put("/v2/apps/sleepy", r#"{"instances": 2}"#).await;
    assert_eq!(status, 200);
    let two = stride.wait_running("/sleepy", 2).await;
    assert!(ids(&two).is_subset(&ids(&five)));
    eventually("the three stopped processes to exit", || async {
        (stride.live_task_pids().len() == 2).then_some(())
    })
    .await;
    // YOUNGEST_FIRST: the first task, the oldest, survives.
    assert!(ids(&two).is_superset(&ids(&one)));

    let (status, body) = stride.delete("/v2/apps/sleepy").await;
    assert_eq!(status, 200, "{body}");
    eventually("all processes to exit", || async {
        stride.live_task_pids().is_empty().then_some(())
    })
    .await;
    let (status, body) = stride.get("/v2/apps/sleepy").await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"message": "App '/sleepy' does not exist"}));
    stride.wait_deployments_done().await;
}

#[tokio::test]
async fn a_web_server_gets_its_port_and_marathons_environment() {
    let stride = Stride::start().await;
    create(
        &stride,
        json!({
            "id": "/web/hello",
            "cmd": "env > env.txt; exec python3 -m http.server --bind 127.0.0.1 $PORT0",
            "cpus": 0.05, "mem": 64, "instances": 1,
            "env": {"GREETING": "hi", "HOST": "overridden"},
            "labels": {"team": "core"}
        }),
    )
    .await;
    let tasks = stride.wait_running("/web/hello", 1).await;
    let task_id = tasks[0]["id"].as_str().unwrap();
    assert!(task_id.starts_with("web_hello.instance-") && task_id.ends_with("._app.1"));
    let port = tasks[0]["ports"][0].as_u64().unwrap();
    eventually("the web server to answer", || async {
        let r = reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    let env = std::fs::read_to_string(stride.sandbox(task_id).join("env.txt")).unwrap();
    for expected in [
        format!("PORT0={port}"),
        format!("PORT={port}"),
        format!("PORTS={port}"),
        format!("MESOS_TASK_ID={task_id}"),
        "MARATHON_APP_ID=/web/hello".to_string(),
        "MARATHON_APP_RESOURCE_MEM=64.0".to_string(),
        "MARATHON_APP_LABEL_TEAM=core".to_string(),
        "GREETING=hi".to_string(),
        "HOST=overridden".to_string(),
    ] {
        assert!(
            env.lines().any(|l| l == expected),
            "{expected} missing from:\n{env}"
        );
    }
}

#[tokio::test]
async fn a_killed_process_is_replaced_after_its_backoff() {
    let stride = Stride::start().await;
    create(
        &stride,
        json!({"id": "/phoenix", "cmd": "sleep 600", "cpus": 0.01, "mem": 16, "backoffSeconds": 2}),
    )
    .await;
    let first = stride.wait_running("/phoenix", 1).await;
    let task_id = first[0]["id"].as_str().unwrap().to_string();
    let pid = stride.task_pid(&task_id).unwrap();
    let killed_at = std::time::Instant::now();
    // SAFETY: kill(2) on the task's own process.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let replacement = eventually("the replacement task", || async {
        let tasks = stride.tasks("/phoenix").await;
        tasks
            .iter()
            .find(|t| {
                t["id"].as_str().unwrap().ends_with("._app.2") && t["state"] == "TASK_RUNNING"
            })
            .cloned()
    })
    .await;
    assert!(
        killed_at.elapsed() >= std::time::Duration::from_millis(1900),
        "relaunched before the 2 s backoff: {:?}",
        killed_at.elapsed()
    );
    let same_instance = task_id.trim_end_matches("._app.1");
    assert!(replacement["id"]
        .as_str()
        .unwrap()
        .starts_with(same_instance));
    let (_, app) = stride.get("/v2/apps/phoenix").await;
    let failure = &app["app"]["lastTaskFailure"];
    assert_eq!(failure["state"], "TASK_FAILED");
    assert_eq!(failure["taskId"], task_id);
    assert!(
        failure["message"].as_str().unwrap().contains("signal"),
        "{failure}"
    );
    assert!(!process_alive(pid));
}

#[tokio::test]
async fn kill9_of_stride_keeps_and_readopts_tasks() {
    let mut stride = Stride::start().await;
    create(
        &stride,
        json!({"id": "/survivor", "cmd": "sleep 600", "cpus": 0.01, "mem": 16, "instances": 3}),
    )
    .await;
    let before = stride.wait_running("/survivor", 3).await;
    stride.wait_deployments_done().await;
    let pids_before: BTreeSet<i32> = stride.live_task_pids().into_iter().collect();
    assert_eq!(pids_before.len(), 3);

    stride.kill9();
    assert!(
        pids_before.iter().all(|p| process_alive(*p)),
        "tasks survive Stride's death"
    );
    stride.launch().await;

    let after = stride.wait_running("/survivor", 3).await;
    assert_eq!(ids(&before), ids(&after), "the same tasks, re-adopted");
    // Give a wrongly duplicating scheduler time to show itself.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let pids_after: BTreeSet<i32> = stride.live_task_pids().into_iter().collect();
    assert_eq!(pids_before, pids_after, "no extra processes");
    assert_eq!(stride.tasks("/survivor").await.len(), 3);

    // A task that dies while Stride is down is reported with its real outcome and replaced.
    stride.kill9();
    let victim = *pids_after.iter().next().unwrap();
    // SAFETY: kill(2) on one of the test's task processes.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    stride.launch().await;
    let (_, app) = eventually("the failure to be reported", || async {
        let (s, app) = stride.get("/v2/apps/survivor").await;
        app["app"]["lastTaskFailure"]
            .is_object()
            .then_some((s, app))
    })
    .await;
    assert!(app["app"]["lastTaskFailure"]["message"]
        .as_str()
        .unwrap()
        .contains("signal"));
    stride.wait_running("/survivor", 3).await;
}

#[tokio::test]
async fn restart_replaces_every_task() {
    let stride = Stride::start().await;
    create(
        &stride,
        json!({"id": "/again", "cmd": "sleep 600", "cpus": 0.01, "mem": 16, "instances": 2}),
    )
    .await;
    let before = stride.wait_running("/again", 2).await;
    stride.wait_deployments_done().await;
    let old_pids = stride.live_task_pids();
    let (status, body) = stride.post("/v2/apps/again/restart", "").await;
    assert_eq!(status, 200, "{body}");
    let after = eventually("two new running tasks", || async {
        let tasks = stride.tasks("/again").await;
        (tasks.len() == 2
            && tasks.iter().all(|t| t["state"] == "TASK_RUNNING")
            && ids(&tasks).is_disjoint(&ids(&before)))
        .then_some(tasks)
    })
    .await;
    assert_eq!(after.len(), 2);
    eventually("the old processes to exit", || async {
        old_pids.iter().all(|p| !process_alive(*p)).then_some(())
    })
    .await;
    let (_, versions) = stride.get("/v2/apps/again/versions").await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn error_bodies_follow_marathon_and_write_nothing() {
    let stride = Stride::start().await;
    let (status, body) = stride.post("/v2/apps", "{\"id\": ").await;
    assert_eq!(status, 400);
    assert_eq!(body["message"], "Invalid JSON");
    assert!(body["details"].is_string());

    let (status, body) = stride.post("/v2/apps", "").await;
    assert_eq!(status, 400, "{body}");

    let (status, body) = stride
        .post(
            "/v2/apps",
            r#"{"id": "/x", "cmd": "sleep 1", "cpus": "lots"}"#,
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"message": "Invalid JSON", "details": [{"path": "/cpus", "errors": ["error.expected.jsnumber"]}]})
    );

    let (status, body) = stride.post("/v2/apps", r#"{"cmd": "sleep 1"}"#).await;
    assert_eq!(status, 422);
    assert_eq!(body["details"][0]["path"], "/id");

    let (status, body) = stride
        .post(
            "/v2/apps",
            r#"{"id": "/Not_Valid", "cmd": "", "mem": -1, "instances": -2}"#,
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["message"], "Object is not valid");
    let paths: BTreeSet<&str> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, BTreeSet::from(["/id", "/cmd", "/mem", "/instances"]));

    let (status, body) = stride.post("/v2/apps", r#"{"id": "/noop"}"#).await;
    assert_eq!(status, 422);
    assert_eq!(
        body["details"],
        json!([{"path": "/", "errors": ["AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."]}])
    );

    // Nothing of the refused requests was written.
    let (_, apps) = stride.get("/v2/apps").await;
    assert_eq!(apps, json!({"apps": []}));
    let (_, deployments) = stride.get("/v2/deployments").await;
    assert_eq!(deployments, json!([]));

    for path in [
        "/v2/apps/nope",
        "/v2/apps/nope/tasks",
        "/v2/apps/nope/versions",
    ] {
        let (status, body) = stride.get(path).await;
        assert_eq!(
            (status, body),
            (404, json!({"message": "App '/nope' does not exist"})),
            "{path}"
        );
    }
    let (status, _) = stride
        .send(Method::PATCH, "/v2/apps/nope", r#"{"instances": 1}"#)
        .await;
    assert_eq!(status, 404);
    let (status, _) = stride.delete("/v2/apps/nope").await;
    assert_eq!(status, 404);
    let (status, _) = stride.post("/v2/apps/nope/restart", "").await;
    assert_eq!(status, 404);
    let (status, body) = stride.get("/v2/apps?label=env==").await;
    assert_eq!(status, 422);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("Can not parse label selector env==."));
    let (status, body) = stride.get("/v2/nothing-here").await;
    assert_eq!((status, body), (404, json!({"message": "URI not found"})));

    // An app that cannot be placed keeps its deployment running: changes to it are locked.
    create(
        &stride,
        json!({"id": "/huge", "cmd": "sleep 1", "cpus": 100000, "mem": 16}),
    )
    .await;
    let (status, body) = stride
        .post("/v2/apps", r#"{"id": "/huge", "cmd": "sleep 1"}"#)
        .await;
    assert_eq!(
        (status, body),
        (
            409,
            json!({"message": "An app with id [/huge] already exists."})
        )
    );
    let (status, body) = stride.put("/v2/apps/huge", r#"{"cpus": 0.01}"#).await;
    assert_eq!(status, 409);
    let locked_by = body["deployments"][0]["id"].as_str().unwrap().to_string();
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("App is locked by one or more deployments."));
    let (_, deployments) = stride.get("/v2/deployments").await;
    assert_eq!(deployments[0]["id"], locked_by);
    assert_eq!(deployments[0]["affectedApps"], json!(["/huge"]));
    let (_, app) = stride.get("/v2/apps/huge").await;
    assert_eq!(
        app["app"]["cpus"], 100000.0,
        "a refused update changes nothing"
    );

    // Why it waits is visible in the queue, in Marathon's words, once an offer was weighed.
    eventually("the queue to say it waits for CPUs", || async {
        let (_, queue) = stride.get("/v2/queue").await;
        let item = &queue["queue"][0];
        assert_eq!(item["count"], 1, "{queue}");
        assert!(
            item.get("waitingReasons").is_none(),
            "only Marathon's fields: {item}"
        );
        let summary = &item["processedOffersSummary"];
        let cpus = summary["rejectSummaryLastOffers"]
            .as_array()?
            .iter()
            .find(|r| r["reason"] == "InsufficientCpus")?
            .clone();
        (cpus["declined"].as_u64()? >= 1 && summary["unusedOffersCount"].as_u64()? >= 1)
            .then_some(())
    })
    .await;

    let (status, body) = stride
        .put("/v2/apps/huge?force=true", r#"{"cpus": 0.01, "mem": 16}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    stride.wait_running("/huge", 1).await;

    let (status, body) = stride
        .delete("/v2/apps/huge/tasks/huge.instance-0000._app.1")
        .await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"message": "Task 'huge.instance-0000._app.1' does not exist"})
        )
    );
    let (status, body) = stride
        .post("/v2/tasks/delete", r#"{"ids": ["not-a-task"]}"#)
        .await;
    assert_eq!(status, 400);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("Invalid task id 'not-a-task'."));
    let (status, body) = stride
        .delete("/v2/apps/huge/tasks?scale=true&wipe=true")
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": "You cannot use scale and wipe at the same time."})
        )
    );
    let (status, body) = stride.get("/v2/apps/huge/versions/yesterday").await;
    assert_eq!(status, 422);
    assert_eq!(
        body["message"],
        "Invalid timestamp provided 'yesterday'. Expecting ISO-8601 datetime string."
    );
}

#[tokio::test]
async fn kill_with_scale_lowers_the_count_and_rollback_restores_a_version() {
    let stride = Stride::start().await;
    create(
        &stride,
        json!({"id": "/pair", "cmd": "sleep 600", "cpus": 0.01, "mem": 16, "instances": 2}),
    )
    .await;
    let tasks = stride.wait_running("/pair", 2).await;
    stride.wait_deployments_done().await;
    let victim = tasks[0]["id"].as_str().unwrap();
    let (status, body) = stride
        .delete(&format!("/v2/apps/pair/tasks/{victim}?scale=true"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["deploymentId"].is_string());
    let left = stride.wait_running("/pair", 1).await;
    assert_ne!(left[0]["id"], victim);
    let (_, app) = stride.get("/v2/apps/pair").await;
    assert_eq!(app["app"]["instances"], 1);

    // A plain kill keeps the count: the instance comes back as its next incarnation.
    let survivor = left[0]["id"].as_str().unwrap().to_string();
    let (status, body) = stride
        .delete(&format!("/v2/apps/pair/tasks/{survivor}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["task"]["id"], survivor);
    let next = survivor.replace("._app.1", "._app.2");
    eventually("the killed task's next incarnation", || async {
        let tasks = stride.tasks("/pair").await;
        (tasks.len() == 1 && tasks[0]["id"] == next && tasks[0]["state"] == "TASK_RUNNING")
            .then_some(())
    })
    .await;

    let (_, versions) = stride.get("/v2/apps/pair/versions").await;
    let versions: Vec<String> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let first = versions.last().unwrap();
    let (status, old) = stride.get(&format!("/v2/apps/pair/versions/{first}")).await;
    assert_eq!(status, 200);
    assert_eq!(old["instances"], 2);
    let (status, body) = stride
        .put("/v2/apps/pair", &json!({"version": first}).to_string())
        .await;
    assert_eq!(status, 200, "{body}");
    stride.wait_running("/pair", 2).await;
    let (status, body) = stride
        .put(
            "/v2/apps/pair",
            &json!({"version": first, "cmd": "sleep 1"}).to_string(),
        )
        .await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn the_dashboard_and_info_answer() {
    let stride = Stride::start().await;
    let (status, info) = stride.get("/v2/info").await;
    assert_eq!(status, 200);
    assert_eq!(info["elected"], true);
    let framework = eventually("the framework id", || async {
        let (_, info) = stride.get("/v2/info").await;
        info["frameworkId"].as_str().map(str::to_string)
    })
    .await;
    assert!(!framework.is_empty());
    let (status, leader) = stride.get("/v2/leader").await;
    assert_eq!(status, 200);
    assert_eq!(leader["leader"], format!("127.0.0.1:{}", stride.port));
    let r = stride.http.get(stride.url("/ping")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "pong");
    let page = stride.http.get(stride.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("/pkg/stride.js"),
        "the page loads the hydration script"
    );
}
