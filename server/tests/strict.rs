//! Every answer parsed with a strict model of Marathon's types (TYPES.md): each struct refuses a
//! field Marathon does not write, so an extra field anywhere fails this test, as it would fail
//! a strict client.

mod common;

use common::{eventually, Stride};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct App {
    id: String,
    cmd: Option<String>,
    args: Option<Vec<String>>,
    user: Option<String>,
    env: Option<BTreeMap<String, Value>>,
    instances: u32,
    cpus: f64,
    mem: f64,
    disk: f64,
    gpus: u32,
    executor: String,
    constraints: Option<Vec<Vec<String>>>,
    accepted_resource_roles: Option<Vec<String>>,
    role: String,
    container: Option<Value>,
    networks: Vec<Value>,
    port_definitions: Option<Vec<PortDefinition>>,
    require_ports: bool,
    fetch: Option<Vec<Value>>,
    health_checks: Option<Vec<HealthCheck>>,
    check: Option<Value>,
    readiness_checks: Option<Vec<ReadinessCheck>>,
    dependencies: Option<Vec<String>>,
    upgrade_strategy: UpgradeStrategy,
    labels: BTreeMap<String, String>,
    backoff_seconds: u32,
    backoff_factor: f64,
    max_launch_delay_seconds: u32,
    task_kill_grace_period_seconds: Option<u32>,
    secrets: Option<Value>,
    unreachable_strategy: Value,
    kill_selection: String,
    tty: Option<bool>,
    version: String,
    version_info: VersionInfo,
    residency: Option<Value>,
    resource_limits: Option<Value>,
    executor_resources: Option<Value>,
}

/// What lists and embeds add to an app, each only when asked for.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct AppInfoAdditions {
    tasks_staged: Option<u32>,
    tasks_running: Option<u32>,
    tasks_healthy: Option<u32>,
    tasks_unhealthy: Option<u32>,
    deployments: Option<Vec<Identifiable>>,
    readiness_check_results: Option<Vec<ReadinessResult>>,
    tasks: Option<Vec<Task>>,
    last_task_failure: Option<TaskFailure>,
    task_stats: Option<BTreeMap<String, TaskStats>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PortDefinition {
    port: u32,
    protocol: String,
    name: Option<String>,
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct HealthCheck {
    protocol: String,
    command: Option<Value>,
    grace_period_seconds: u32,
    interval_seconds: u32,
    timeout_seconds: u32,
    max_consecutive_failures: u32,
    delay_seconds: u32,
    path: Option<String>,
    port: Option<u32>,
    port_index: Option<u32>,
    ignore_http1xx: Option<bool>,
    ip_protocol: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct ReadinessCheck {
    name: String,
    protocol: String,
    path: String,
    port_name: String,
    interval_seconds: u32,
    timeout_seconds: u32,
    http_status_codes_for_ready: Vec<u16>,
    preserve_last_response: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct UpgradeStrategy {
    minimum_health_capacity: f64,
    maximum_over_capacity: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct VersionInfo {
    last_scaling_at: String,
    last_config_change_at: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Identifiable {
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Task {
    id: String,
    app_id: String,
    host: String,
    slave_id: Option<String>,
    state: String,
    staged_at: Option<String>,
    started_at: Option<String>,
    version: Option<String>,
    ports: Option<Vec<u32>>,
    service_ports: Option<Vec<u32>>,
    ip_addresses: Option<Vec<Value>>,
    health_check_results: Option<Vec<HealthResult>>,
    check_result: Option<Value>,
    local_volumes: Option<Vec<Value>>,
    region: Option<String>,
    zone: Option<String>,
    role: String,
}

/// Every field is always there, `null` when unknown, as Marathon writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct HealthResult {
    alive: bool,
    consecutive_failures: u32,
    first_success: Option<String>,
    last_failure: Option<String>,
    last_success: Option<String>,
    last_failure_cause: Option<String>,
    instance_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct TaskFailure {
    app_id: String,
    host: String,
    message: String,
    state: String,
    task_id: String,
    timestamp: String,
    version: String,
    slave_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct TaskStats {
    stats: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct ReadinessResult {
    name: String,
    task_id: String,
    ready: bool,
    last_response: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Deployment {
    id: String,
    version: String,
    affected_apps: Vec<String>,
    affected_pods: Vec<String>,
    steps: Vec<Step>,
    current_actions: Vec<CurrentAction>,
    current_step: u32,
    total_steps: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Step {
    actions: Vec<Action>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Action {
    action: String,
    app: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct CurrentAction {
    action: String,
    app: String,
    readiness_check_results: Vec<ReadinessResult>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct QueueItem {
    app: Value,
    count: u32,
    delay: Delay,
    since: String,
    processed_offers_summary: OffersSummary,
    last_unused_offers: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Delay {
    time_left_seconds: u64,
    overdue: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct OffersSummary {
    processed_offers_count: u64,
    unused_offers_count: u64,
    last_unused_offer_at: Option<String>,
    last_used_offer_at: Option<String>,
    reject_summary_last_offers: Option<Vec<Reject>>,
    reject_summary_launch_attempt: Option<Vec<Reject>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Reject {
    reason: String,
    declined: u64,
    processed: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Group {
    id: String,
    apps: Option<Vec<Value>>,
    pods: Option<Vec<Value>>,
    groups: Option<Vec<Group>>,
    dependencies: Option<Vec<String>>,
    version: Option<String>,
    enforce_role: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Info {
    name: String,
    version: String,
    buildref: String,
    elected: bool,
    leader: Option<String>,
    #[serde(rename = "frameworkId")]
    framework_id: Option<String>,
    marathon_config: Value,
    zookeeper_config: Value,
    http_config: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct DeploymentResult {
    deployment_id: String,
    version: String,
}

fn strict<T: DeserializeOwned>(what: &str, value: &Value) -> T {
    serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{what}: {e}\n{value:#}"))
}

/// An app as embedded: its own fields checked as [`App`], the rest as [`AppInfoAdditions`].
fn app_info(what: &str, value: &Value) {
    const ADDITIONS: [&str; 9] = [
        "tasksStaged",
        "tasksRunning",
        "tasksHealthy",
        "tasksUnhealthy",
        "deployments",
        "readinessCheckResults",
        "tasks",
        "lastTaskFailure",
        "taskStats",
    ];
    let fields = value
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {value}"));
    let (additions, own): (
        serde_json::Map<String, Value>,
        serde_json::Map<String, Value>,
    ) = fields
        .clone()
        .into_iter()
        .partition(|(k, _)| ADDITIONS.contains(&k.as_str()));
    strict::<App>(what, &Value::Object(own));
    strict::<AppInfoAdditions>(what, &Value::Object(additions));
}

#[tokio::test]
async fn every_answer_parses_with_marathons_types() {
    let stride = Stride::start_with(&["--agent-hostname", "127.0.0.1"]).await;
    let web = json!({
        "id": "/strict/web",
        "cmd": "echo ok > health; exec python3 -m http.server --bind 127.0.0.1 $PORT0",
        "cpus": 0.2, "mem": 64, "instances": 2,
        "env": {"MODE": "strict"}, "labels": {"team": "core"},
        "constraints": [["hostname", "MAX_PER", "5"]],
        "portDefinitions": [{"port": 0, "name": "http-api"}],
        "healthChecks": [
            {"protocol": "HTTP", "path": "/health", "intervalSeconds": 1, "gracePeriodSeconds": 30},
            {"protocol": "TCP", "intervalSeconds": 1},
            {"protocol": "COMMAND", "command": {"value": "test -f health"}, "intervalSeconds": 1, "delaySeconds": 0}
        ],
        "readinessChecks": [{"path": "/health", "portName": "http-api", "intervalSeconds": 2, "timeoutSeconds": 1}],
        "dependencies": ["/strict/db"],
    });
    let db = json!({"id": "/strict/db", "cmd": "sleep 600", "cpus": 0.01, "mem": 16});
    let (status, body) = stride.put("/v2/apps", &json!([db, web]).to_string()).await;
    assert_eq!(status, 200, "{body}");
    strict::<DeploymentResult>("PUT /v2/apps", &body);
    let (status, body) = stride
        .post(
            "/v2/apps",
            &json!({"id": "/strict/stuck", "cmd": "sleep 600", "cpus": 100000}).to_string(),
        )
        .await;
    assert_eq!(status, 201);
    app_info("POST /v2/apps", &body);

    // While deploying: deployments and the queue.
    let (_, deployments) = stride.get("/v2/deployments").await;
    for d in deployments.as_array().unwrap() {
        strict::<Deployment>("GET /v2/deployments", d);
    }
    let queue = eventually("the stuck app in the queue with offers weighed", || async {
        let (_, q) = stride.get("/v2/queue?embed=lastUnusedOffers").await;
        let item = q["queue"]
            .as_array()?
            .iter()
            .find(|i| i["app"]["id"] == "/strict/stuck")?
            .clone();
        (item["processedOffersSummary"]["unusedOffersCount"].as_u64()? > 0).then_some(q)
    })
    .await;
    for item in queue["queue"].as_array().unwrap() {
        strict::<QueueItem>("GET /v2/queue", item);
        strict::<App>("a queued app", &item["app"]);
    }

    eventually("the web app healthy", || async {
        let (_, app) = stride.get("/v2/apps/strict/web").await;
        (app["app"]["tasksHealthy"] == 2).then_some(())
    })
    .await;
    let (_, app) = stride.get("/v2/apps/strict/web").await;
    app_info("GET /v2/apps/{id}", &app["app"]);
    let (_, apps) = stride
        .get("/v2/apps?embed=apps.tasks&embed=apps.counts&embed=apps.deployments&embed=apps.readiness&embed=apps.lastTaskFailure&embed=apps.taskStats")
        .await;
    for a in apps["apps"].as_array().unwrap() {
        app_info("GET /v2/apps with every embed", a);
    }
    let (_, all) = stride.get("/v2/apps/strict/*").await;
    for a in all["*"].as_array().unwrap() {
        app_info("GET /v2/apps/{group}/*", a);
    }
    let (_, tasks) = stride.get("/v2/tasks").await;
    for t in tasks["tasks"].as_array().unwrap() {
        strict::<Task>("GET /v2/tasks", t);
    }
    let (_, versions) = stride.get("/v2/apps/strict/web/versions").await;
    let version = versions["versions"][0].as_str().unwrap().to_string();
    let (_, then) = stride
        .get(&format!("/v2/apps/strict/web/versions/{version}"))
        .await;
    strict::<App>("GET /v2/apps/{id}/versions/{v}", &then);

    for path in [
        "/v2/groups",
        "/v2/groups/strict",
        "/v2/groups?embed=group.groups&embed=group.apps&embed=group.apps.tasks",
    ] {
        let (_, group) = stride.get(path).await;
        strict::<Group>(path, &group);
    }
    let (_, group_apps) = stride.get("/v2/groups/strict/apps").await;
    for a in group_apps.as_array().unwrap() {
        app_info("GET /v2/groups/{id}/apps", a);
    }
    let (_, info) = stride.get("/v2/info").await;
    strict::<Info>("GET /v2/info", &info);

    // A failure, for lastTaskFailure.
    let pid = {
        let (_, db) = stride.get("/v2/apps/strict/db/tasks").await;
        stride
            .task_pid(db["tasks"][0]["id"].as_str().unwrap())
            .unwrap()
    };
    common::signal(pid, libc::SIGKILL);
    let failed = eventually("the failure to be reported", || async {
        let (_, app) = stride.get("/v2/apps/strict/db").await;
        app["app"]["lastTaskFailure"].is_object().then_some(app)
    })
    .await;
    app_info("an app with its last failure", &failed["app"]);
}
