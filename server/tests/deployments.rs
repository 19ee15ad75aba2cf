//! Deployments, health and readiness against a real `stride` running real web servers: each
//! task serves its sandbox with `python3 -m http.server --bind 127.0.0.1 $PORT0`, so its health is a file in the
//! sandbox that a test removes or puts back.

mod common;

use common::{eventually, Events, Stride, WAIT};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Serves the sandbox; healthy while `health` is there, ready once `ready` is.
const WEB: &str = "echo ok > health; exec python3 -m http.server --bind 127.0.0.1 $PORT0";

/// Tasks run under their cgroup's CPU limit: enough for Python to start in well under a second.
const WEB_CPUS: f64 = 0.2;

/// Probes go to the agent's hostname: keep them on loopback whatever this machine is called.
const LOOPBACK_AGENT: [&str; 2] = ["--agent-hostname", "127.0.0.1"];

fn http_check(interval: u64, grace: u64, failures: u64) -> Value {
    json!({
        "protocol": "HTTP", "path": "/health", "portIndex": 0,
        "intervalSeconds": interval, "timeoutSeconds": 1,
        "gracePeriodSeconds": grace, "maxConsecutiveFailures": failures
    })
}

fn web_app(id: &str, instances: u32, extra: Value) -> Value {
    let mut app = json!({
        "id": id, "cmd": WEB, "cpus": WEB_CPUS, "mem": 64, "instances": instances,
        "healthChecks": [http_check(1, 30, 2)],
    });
    if let (Some(app), Some(extra)) = (app.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            app.insert(k.clone(), v.clone());
        }
    }
    app
}

async fn create(stride: &Stride, app: &Value) {
    let (status, body) = stride.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
}

fn alive(task: &Value) -> bool {
    task["healthCheckResults"]
        .as_array()
        .is_some_and(|r| !r.is_empty() && r.iter().all(|h| h["alive"] == true))
}

fn id_of(task: &Value) -> String {
    task["id"].as_str().unwrap_or_default().to_string()
}

/// Waits until the app has `n` running tasks whose checks all pass; returns them.
async fn wait_healthy(stride: &Stride, app: &str, n: usize) -> Vec<Value> {
    eventually(&format!("{n} healthy tasks of {app}"), || async {
        let tasks = stride.tasks(app).await;
        let healthy: Vec<Value> = tasks
            .iter()
            .filter(|t| t["state"] == "TASK_RUNNING" && alive(t))
            .cloned()
            .collect();
        (healthy.len() == n && tasks.len() == n).then_some(healthy)
    })
    .await
}

/// Makes a task's health check fail (or pass again).
fn set_health(stride: &Stride, task_id: &str, healthy: bool) {
    let file = stride.sandbox(task_id).join("health");
    if healthy {
        std::fs::write(file, "ok").unwrap();
    } else {
        let _ = std::fs::remove_file(file);
    }
}

async fn next_event(events: &mut Events, kinds: &[&str], until: Instant) -> Option<Value> {
    loop {
        let left = until.checked_duration_since(Instant::now())?;
        let event = tokio::time::timeout(left, events.next()).await.ok()??;
        if kinds.contains(&event.event.as_str()) {
            return serde_json::from_str(&event.data).ok();
        }
    }
}

#[tokio::test]
async fn an_unhealthy_task_is_killed_and_replaced() {
    let stride = Stride::start_with(&LOOPBACK_AGENT).await;
    let mut events = stride
        .events(
            "?event_type=unhealthy_instance_kill_event&event_type=add_health_check_event",
            None,
        )
        .await;
    create(&stride, &web_app("/sick", 1, json!({}))).await;
    let added = next_event(
        &mut events,
        &["add_health_check_event"],
        Instant::now() + WAIT,
    )
    .await
    .expect("an add_health_check_event");
    assert_eq!(
        (added["appId"].clone(), added["healthCheck"]["path"].clone()),
        (json!("/sick"), json!("/health"))
    );
    let first = wait_healthy(&stride, "/sick", 1).await;
    stride.wait_deployments_done().await;
    let (_, app) = stride.get("/v2/apps/sick").await;
    assert_eq!(app["app"]["tasksHealthy"], 1, "{app}");
    let result = &first[0]["healthCheckResults"][0];
    for field in [
        "alive",
        "consecutiveFailures",
        "firstSuccess",
        "lastFailure",
        "lastSuccess",
        "lastFailureCause",
        "instanceId",
    ] {
        assert!(
            result.get(field).is_some(),
            "Marathon writes {field}: {result}"
        );
    }

    let task = id_of(&first[0]);
    set_health(&stride, &task, false);
    let kill = next_event(
        &mut events,
        &["unhealthy_instance_kill_event"],
        Instant::now() + WAIT,
    )
    .await
    .expect("an unhealthy_instance_kill_event");
    assert_eq!(kill["taskId"], task);
    assert!(kill["reason"].as_str().unwrap().contains("404"), "{kill}");
    let replaced = wait_healthy(&stride, "/sick", 1).await;
    let instance = task.trim_end_matches("._app.1");
    assert_eq!(
        id_of(&replaced[0]),
        format!("{instance}._app.2"),
        "the same instance, relaunched"
    );
}

#[tokio::test]
async fn all_unhealthy_at_once_are_killed_one_at_a_time() {
    let stride = Stride::start_with(&LOOPBACK_AGENT).await;
    let mut events = stride
        .events(
            "?event_type=unhealthy_instance_kill_event&event_type=health_status_changed_event",
            None,
        )
        .await;
    create(&stride, &web_app("/fleet", 3, json!({}))).await;
    let tasks = wait_healthy(&stride, "/fleet", 3).await;
    stride.wait_deployments_done().await;
    for t in &tasks {
        set_health(&stride, &id_of(t), false);
    }
    // Each kill waits for the instance killed before it to be healthy again.
    let mut recovering: Option<String> = None;
    let mut killed = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while killed.len() < 3 {
        let event = next_event(
            &mut events,
            &[
                "unhealthy_instance_kill_event",
                "health_status_changed_event",
            ],
            deadline,
        )
        .await
        .unwrap_or_else(|| panic!("only {} of 3 instances were killed", killed.len()));
        let instance = event["instanceId"].as_str().unwrap().to_string();
        if event["eventType"] == "unhealthy_instance_kill_event" {
            assert!(
                recovering.is_none(),
                "{instance} was killed while {recovering:?} had not recovered"
            );
            killed.insert(instance.clone());
            recovering = Some(instance);
        } else if event["alive"] == true && recovering.as_ref() == Some(&instance) {
            recovering = None;
        }
    }
    wait_healthy(&stride, "/fleet", 3).await;
}

/// Samples the app every 100 ms until its deployment is done: (fewest healthy, most tasks).
async fn sample_until_done(stride: &Stride, app: &str) -> (usize, usize) {
    let mut fewest_healthy = usize::MAX;
    let mut most_tasks = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let tasks = stride.tasks(app).await;
        let live = tasks
            .iter()
            .filter(|t| {
                [
                    "TASK_STAGING",
                    "TASK_STARTING",
                    "TASK_RUNNING",
                    "TASK_KILLING",
                ]
                .contains(&t["state"].as_str().unwrap_or(""))
            })
            .count();
        let healthy = tasks
            .iter()
            .filter(|t| t["state"] == "TASK_RUNNING" && alive(t))
            .count();
        fewest_healthy = fewest_healthy.min(healthy);
        most_tasks = most_tasks.max(live);
        let (_, deployments) = stride.get("/v2/deployments").await;
        if deployments.as_array().is_some_and(Vec::is_empty) {
            return (fewest_healthy, most_tasks);
        }
        assert!(
            Instant::now() < deadline,
            "the deployment did not finish: {deployments}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_rolling_upgrade_of_four_stays_within_the_strategy() {
    let stride = Stride::start_with(&LOOPBACK_AGENT).await;
    let strategy =
        json!({"upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.25}});
    create(&stride, &web_app("/rolling", 4, strategy)).await;
    let old: BTreeSet<String> = wait_healthy(&stride, "/rolling", 4)
        .await
        .iter()
        .map(id_of)
        .collect();
    stride.wait_deployments_done().await;

    let (status, body) = stride
        .put("/v2/apps/rolling", r#"{"env": {"RELEASE": "2"}}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    let (fewest_healthy, most_tasks) = sample_until_done(&stride, "/rolling").await;
    // n = 4, m = 0.5, o = 0.25: never fewer than 2 healthy, never more than 5 tasks.
    assert!(
        fewest_healthy >= 2,
        "only {fewest_healthy} healthy at one point"
    );
    assert!(most_tasks <= 5, "{most_tasks} tasks at one point");
    let new = wait_healthy(&stride, "/rolling", 4).await;
    let (_, app) = stride.get("/v2/apps/rolling").await;
    for t in &new {
        assert!(!old.contains(&id_of(t)), "every task was replaced");
        assert_eq!(t["version"], app["app"]["version"]);
    }
}

#[tokio::test]
async fn a_failing_version_never_becomes_the_running_one_and_rolls_back() {
    let stride = Stride::start_with(&LOOPBACK_AGENT).await;
    create(&stride, &web_app("/careful", 2, json!({}))).await;
    let old: BTreeSet<String> = wait_healthy(&stride, "/careful", 2)
        .await
        .iter()
        .map(id_of)
        .collect();
    stride.wait_deployments_done().await;
    let (_, before) = stride.get("/v2/apps/careful").await;

    // The new version never serves its health check.
    let (status, body) = stride
        .put(
            "/v2/apps/careful",
            r#"{"cmd": "exec python3 -m http.server --bind 127.0.0.1 $PORT0"}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let deployment = body["deploymentId"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let tasks = stride.tasks("/careful").await;
    let still_old: BTreeSet<String> = tasks
        .iter()
        .filter(|t| t["state"] == "TASK_RUNNING" && alive(t))
        .map(id_of)
        .collect();
    assert_eq!(still_old, old, "the old tasks keep serving: {tasks:#?}");
    let (_, deployments) = stride.get("/v2/deployments").await;
    assert_eq!(deployments[0]["id"], deployment, "the upgrade waits");

    let (status, body) = stride
        .delete(&format!("/v2/deployments/{deployment}"))
        .await;
    assert_eq!(status, 200, "{body}");
    stride.wait_deployments_done().await;
    let (_, after) = stride.get("/v2/apps/careful").await;
    assert_eq!(after["app"]["cmd"], before["app"]["cmd"], "rolled back");
    let tasks = wait_healthy(&stride, "/careful", 2).await;
    assert_eq!(
        tasks.iter().map(id_of).collect::<BTreeSet<_>>(),
        old,
        "the old tasks were never touched"
    );
}

#[tokio::test]
async fn a_timed_out_deployment_rolls_itself_back() {
    let stride = Stride::start_with(&LOOPBACK_AGENT).await;
    let mut events = stride.events("?event_type=deployment_failed", None).await;
    create(&stride, &web_app("/impatient", 1, json!({}))).await;
    let old = wait_healthy(&stride, "/impatient", 1).await;
    stride.wait_deployments_done().await;

    let update = json!({
        "cmd": "exec python3 -m http.server --bind 127.0.0.1 $PORT0",
        "upgradeStrategy": {
            "minimumHealthCapacity": 1, "maximumOverCapacity": 1,
            "deploymentTimeoutSeconds": 4, "autoRollback": true
        }
    });
    let (status, body) = stride.put("/v2/apps/impatient", &update.to_string()).await;
    assert_eq!(status, 200, "{body}");
    let (_, app) = stride.get("/v2/apps/impatient").await;
    assert_eq!(app["app"]["upgradeStrategy"]["deploymentTimeoutSeconds"], 4);
    let failed = next_event(&mut events, &["deployment_failed"], Instant::now() + WAIT)
        .await
        .expect("the deployment fails once its time is up");
    assert_eq!(failed["id"], body["deploymentId"]);
    assert!(failed["reason"]
        .as_str()
        .unwrap()
        .contains("deploymentTimeoutSeconds"));
    stride.wait_deployments_done().await;
    let (_, app) = stride.get("/v2/apps/impatient").await;
    assert_eq!(app["app"]["cmd"], WEB, "rolled back by itself");
    let tasks = wait_healthy(&stride, "/impatient", 1).await;
    assert_eq!(id_of(&tasks[0]), id_of(&old[0]));
}

#[tokio::test]
async fn a_default_app_json_has_no_stride_fields() {
    let stride = Stride::start().await;
    create(
        &stride,
        &json!({"id": "/plain", "cmd": "sleep 600", "cpus": 0.01, "mem": 16}),
    )
    .await;
    let (_, app) = stride.get("/v2/apps/plain").await;
    assert_eq!(
        app["app"]["upgradeStrategy"],
        json!({"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0})
    );
}

#[tokio::test]
async fn dependencies_deploy_in_order() {
    let stride = Stride::start_with(&LOOPBACK_AGENT).await;
    let mut events = stride
        .events(
            "?event_type=health_status_changed_event&event_type=status_update_event",
            None,
        )
        .await;
    let apps = json!([
        web_app("/shop/web", 1, json!({"dependencies": ["/shop/db"]})),
        web_app("/shop/db", 1, json!({})),
    ]);
    let (status, body) = stride.put("/v2/apps", &apps.to_string()).await;
    assert_eq!(status, 200, "{body}");
    let (_, deployments) = stride.get("/v2/deployments").await;
    let steps: Vec<Value> = deployments[0]["steps"].as_array().unwrap().clone();
    assert_eq!(
        steps,
        vec![
            json!({"actions": [{"action": "StartApplication", "app": "/shop/web"}, {"action": "StartApplication", "app": "/shop/db"}]}),
            json!({"actions": [{"action": "ScaleApplication", "app": "/shop/db"}]}),
            json!({"actions": [{"action": "ScaleApplication", "app": "/shop/web"}]}),
        ]
    );
    let mut db_healthy = false;
    let deadline = Instant::now() + WAIT;
    loop {
        let event = next_event(
            &mut events,
            &["health_status_changed_event", "status_update_event"],
            deadline,
        )
        .await
        .expect("web starts eventually");
        if event["eventType"] == "health_status_changed_event"
            && event["appId"] == "/shop/db"
            && event["alive"] == true
        {
            db_healthy = true;
        }
        if event["eventType"] == "status_update_event" && event["appId"] == "/shop/web" {
            assert!(db_healthy, "web started before its dependency was healthy");
            break;
        }
    }
    wait_healthy(&stride, "/shop/web", 1).await;
    stride.wait_deployments_done().await;

    let cyclic = json!([
        {"id": "/loop/a", "cmd": "sleep 1", "dependencies": ["/loop/b"]},
        {"id": "/loop/b", "cmd": "sleep 1", "dependencies": ["/loop/a"]},
    ]);
    let (status, body) = stride.put("/v2/apps", &cyclic.to_string()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["details"][0]["errors"][0],
        "Dependency graph has cyclic dependencies."
    );
    let (status, _) = stride.get("/v2/apps/loop/a").await;
    assert_eq!(status, 404, "a refused change writes nothing");
}

#[tokio::test]
async fn a_killed_stride_finishes_a_half_done_deployment() {
    let mut stride = Stride::start_with(&LOOPBACK_AGENT).await;
    let strategy =
        json!({"upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 0}});
    create(&stride, &web_app("/phoenix", 3, strategy)).await;
    let old: BTreeSet<String> = wait_healthy(&stride, "/phoenix", 3)
        .await
        .iter()
        .map(id_of)
        .collect();
    stride.wait_deployments_done().await;
    let (status, _) = stride
        .put("/v2/apps/phoenix", r#"{"env": {"RELEASE": "2"}}"#)
        .await;
    assert_eq!(status, 200);
    // Half-way: one new task runs, some old ones are left.
    eventually("one new task", || async {
        let tasks = stride.tasks("/phoenix").await;
        let new = tasks
            .iter()
            .filter(|t| !old.contains(&id_of(t)) && t["state"] == "TASK_RUNNING")
            .count();
        let old_left = tasks.iter().filter(|t| old.contains(&id_of(t))).count();
        (new >= 1 && old_left >= 2).then_some(())
    })
    .await;
    stride.kill9();
    stride.launch().await;
    let (_, deployments) = stride.get("/v2/deployments").await;
    assert_eq!(
        deployments.as_array().map(Vec::len),
        Some(1),
        "the deployment was kept"
    );
    let (_, most) = sample_until_done(&stride, "/phoenix").await;
    assert!(most <= 4, "{most} tasks at one point (3 + one extra)");
    let tasks = wait_healthy(&stride, "/phoenix", 3).await;
    assert!(
        tasks.iter().all(|t| !old.contains(&id_of(t))),
        "all replaced"
    );
    assert_eq!(stride.live_task_pids().len(), 3, "no leftover processes");
}

#[tokio::test]
async fn readiness_holds_a_deployment_until_ready() {
    let stride = Stride::start_with(&LOOPBACK_AGENT).await;
    let app = web_app(
        "/gate",
        1,
        json!({
            "portDefinitions": [{"port": 0, "name": "http-api"}],
            "readinessChecks": [{"path": "/ready", "portName": "http-api", "intervalSeconds": 2, "timeoutSeconds": 1, "preserveLastResponse": true}]
        }),
    );
    create(&stride, &app).await;
    let tasks = wait_healthy(&stride, "/gate", 1).await;
    let task = id_of(&tasks[0]);
    let (_, deployments) = eventually("a readiness result", || async {
        let (s, d) = stride.get("/v2/deployments").await;
        let results = d[0]["currentActions"][0]["readinessCheckResults"]
            .as_array()?
            .clone();
        (!results.is_empty()).then_some((s, d))
    })
    .await;
    let result = &deployments[0]["currentActions"][0]["readinessCheckResults"][0];
    assert_eq!(result["taskId"], task);
    assert_eq!(result["ready"], false);
    assert_eq!(result["lastResponse"]["status"], 404);
    std::fs::write(stride.sandbox(&task).join("ready"), "yes").unwrap();
    stride.wait_deployments_done().await;
    let (_, app) = stride.get("/v2/apps/gate?embed=app.readiness").await;
    assert_eq!(
        app["app"]["readinessCheckResults"][0]["ready"], true,
        "{app}"
    );
}

#[tokio::test]
async fn tcp_checks_connect_to_the_port() {
    let stride = Stride::start_with(&LOOPBACK_AGENT).await;
    let tcp = |port_index: u32| json!([{"protocol": "TCP", "portIndex": port_index, "intervalSeconds": 1, "gracePeriodSeconds": 0, "maxConsecutiveFailures": 0}]);
    let listening = json!({
        "id": "/socket", "cmd": "exec python3 -m http.server --bind 127.0.0.1 $PORT0", "cpus": WEB_CPUS, "mem": 64,
        "healthChecks": [{"protocol": "TCP", "intervalSeconds": 1}],
    });
    create(&stride, &listening).await;
    // The second port has nothing listening: its check fails, and with
    // maxConsecutiveFailures 0 the task is never killed for it.
    let closed = json!({
        "id": "/closed", "cmd": "exec python3 -m http.server --bind 127.0.0.1 $PORT0", "cpus": WEB_CPUS, "mem": 64,
        "portDefinitions": [{"port": 0}, {"port": 0}], "healthChecks": tcp(1),
    });
    create(&stride, &closed).await;
    wait_healthy(&stride, "/socket", 1).await;
    let (_, app) = stride.get("/v2/apps/socket").await;
    let check = &app["app"]["healthChecks"][0];
    assert_eq!(
        check["portIndex"], 0,
        "Marathon's default written back: {check}"
    );
    assert!(
        check.get("path").is_none() && check.get("ignoreHttp1xx").is_none(),
        "{check}"
    );
    let failing = eventually("the closed port's check to fail a few times", || async {
        let tasks = stride.tasks("/closed").await;
        let r = tasks.first()?["healthCheckResults"][0].clone();
        (r["alive"] == false && r["consecutiveFailures"].as_u64()? >= 3).then_some(tasks)
    })
    .await;
    assert!(id_of(&failing[0]).ends_with("._app.1"), "not killed");
    let cause = failing[0]["healthCheckResults"][0]["lastFailureCause"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(cause.contains("refused"), "{cause}");
    let (_, app) = stride.get("/v2/apps/closed").await;
    assert_eq!(
        (
            app["app"]["tasksHealthy"].clone(),
            app["app"]["tasksUnhealthy"].clone()
        ),
        (json!(0), json!(1))
    );
}

#[tokio::test]
async fn command_checks_run_next_to_the_task() {
    let stride = Stride::start_with(&LOOPBACK_AGENT).await;
    let app = json!({
        "id": "/commanded", "cmd": "echo ok > health; exec sleep 600", "cpus": 0.01, "mem": 16,
        "healthChecks": [{
            "protocol": "COMMAND", "command": {"value": "test -f health"},
            "intervalSeconds": 1, "timeoutSeconds": 5, "gracePeriodSeconds": 30,
            "maxConsecutiveFailures": 2, "delaySeconds": 0
        }],
    });
    create(&stride, &app).await;
    let counts = |app: &Value| {
        (
            app["app"]["tasksHealthy"].clone(),
            app["app"]["tasksUnhealthy"].clone(),
        )
    };
    eventually("the command check to pass", || async {
        let (_, app) = stride.get("/v2/apps/commanded").await;
        (counts(&app) == (json!(1), json!(0))).then_some(())
    })
    .await;
    stride.wait_deployments_done().await;
    let first = id_of(&stride.tasks("/commanded").await[0]);
    std::fs::remove_file(stride.sandbox(&first).join("health")).unwrap();
    let second = eventually(
        "the agent to kill the unhealthy task and a new one to run",
        || async {
            let tasks = stride.tasks("/commanded").await;
            let task = tasks.first()?;
            (id_of(task) != first && task["state"] == "TASK_RUNNING").then(|| id_of(task))
        },
    )
    .await;
    assert!(second.ends_with("._app.2"), "{second}");
    eventually("the new task to be healthy", || async {
        let (_, app) = stride.get("/v2/apps/commanded").await;
        (counts(&app) == (json!(1), json!(0))).then_some(())
    })
    .await;
}

/// Serves HTTPS with a throwaway self-signed certificate, which checks must not verify.
const TLS_WEB: &str = "openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -subj /CN=stride-test -days 1 2>/dev/null && echo ok > health && exec python3 -c 'import http.server, os, ssl
server = http.server.HTTPServer((\"127.0.0.1\", int(os.environ[\"PORT0\"])), http.server.SimpleHTTPRequestHandler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); context.load_cert_chain(\"cert.pem\", \"key.pem\")
server.socket = context.wrap_socket(server.socket, server_side=True); server.serve_forever()'";

#[tokio::test]
async fn https_checks_and_readiness_do_not_verify_certificates() {
    let stride = Stride::start_with(&LOOPBACK_AGENT).await;
    let app = json!({
        "id": "/secure", "cmd": TLS_WEB, "cpus": WEB_CPUS, "mem": 64,
        "portDefinitions": [{"port": 0, "name": "https"}],
        "healthChecks": [{"protocol": "HTTPS", "path": "/health", "intervalSeconds": 1, "timeoutSeconds": 2, "gracePeriodSeconds": 60}],
        "readinessChecks": [{"protocol": "HTTPS", "path": "/health", "portName": "https", "intervalSeconds": 2, "timeoutSeconds": 1}],
    });
    create(&stride, &app).await;
    let tasks = wait_healthy(&stride, "/secure", 1).await;
    stride.wait_deployments_done().await;
    let (_, app) = stride.get("/v2/apps/secure?embed=app.readiness").await;
    assert_eq!(
        app["app"]["readinessCheckResults"][0]["ready"], true,
        "{app}"
    );
    set_health(&stride, &id_of(&tasks[0]), false);
    let cause = eventually("the HTTPS check to fail with the status", || async {
        let tasks = stride.tasks("/secure").await;
        let result = &tasks.first()?["healthCheckResults"][0];
        let cause = result["lastFailureCause"].as_str()?.to_string();
        (result["alive"] == false).then_some(cause)
    })
    .await;
    assert!(cause.contains("HTTP 404 from https://"), "{cause}");
}

#[tokio::test]
async fn a_delayed_app_launches_at_once_when_its_delay_is_reset() {
    let stride = Stride::start().await;
    let app =
        json!({"id": "/flaky", "cmd": "exit 1", "cpus": 0.01, "mem": 16, "backoffSeconds": 600});
    create(&stride, &app).await;
    let item = eventually("the app to be delayed in the queue", || async {
        let (_, queue) = stride.get("/v2/queue").await;
        let item = queue["queue"].as_array()?.first()?.clone();
        (item["delay"]["overdue"] == false).then_some(item)
    })
    .await;
    // 600 s, capped at maxLaunchDelaySeconds (300).
    assert!(
        item["delay"]["timeLeftSeconds"].as_u64().unwrap() > 200,
        "{item}"
    );
    let r = stride
        .http
        .delete(stride.url("/v2/queue/flaky/delay"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    eventually("a second launch", || async {
        let tasks = stride.tasks("/flaky").await;
        tasks
            .iter()
            .any(|t| id_of(t).ends_with("._app.2"))
            .then_some(())
    })
    .await;
    let (status, body) = stride.delete("/v2/queue/nothing-waits/delay").await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"message": "Application /nothing-waits not found in tasks queue."})
        )
    );
}
