//! Benchmarks (run with `cargo xtask bench`; ignored in normal test runs). Each prints its
//! figure; BENCHMARKS.md records them.

mod common;

use app::model::{AppDefinition, AppUpdate, Timestamp};
use common::{eventually, process_alive, Stride, WAIT};
use futures::StreamExt;
use serde_json::{json, Value};
use server::scheduler::constraint::RegexCache;
use server::scheduler::placement::{match_offer, DockerEngine, OfferView, Pending};
use std::collections::VecDeque;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TASKS: usize = 1000;

/// Time for 1,000 `sleep 3600` instances to be RUNNING through Stride's built-in agent, beside
/// the time a bare loop takes to spawn 1,000 `sleep` processes.
#[tokio::test]
#[ignore]
async fn bench_1000_tasks_running_vs_bare_spawn() {
    // Bare loop first, on a quiet machine.
    let started = Instant::now();
    let mut children = Vec::with_capacity(TASKS);
    for _ in 0..TASKS {
        children.push(
            Command::new("sleep")
                .arg("3600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawning sleep"),
        );
    }
    let bare = started.elapsed();
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }

    let stride = Stride::start_with(&["--agent-resources", "cpus:64;mem:262144;disk:100000"]).await;
    // Counted from the event stream, as a client sees them: polling would add its interval to the
    // figure and its own load to Stride's.
    let mut updates = stride.events("?event_type=status_update_event", None).await;
    let started = Instant::now();
    let (status, body) = stride
        .post(
            "/v2/apps",
            &json!({
                "id": "/bench", "cmd": "sleep 3600", "cpus": 0.01, "mem": 1,
                "instances": TASKS, "portDefinitions": []
            })
            .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut running = 0;
    let mut first_running = None;
    while running < TASKS {
        let event = tokio::time::timeout(WAIT, updates.next())
            .await
            .expect("status updates keep coming")
            .expect("the event stream stays open");
        let update: Value = serde_json::from_str(&event.data).expect("status update JSON");
        if update["appId"] == "/bench" && update["taskStatus"] == "TASK_RUNNING" {
            running += 1;
            first_running.get_or_insert_with(|| started.elapsed());
        }
    }
    let stride_time = started.elapsed();
    let live = stride.live_task_pids();
    assert_eq!(live.len(), TASKS, "every task is a live process");
    let ratio = stride_time.as_secs_f64() / bare.as_secs_f64();
    println!(
        "BENCH launch: {TASKS} tasks RUNNING via Stride in {:.2} s (first after {:.3} s); \
         bare spawn loop {:.3} s; ratio {ratio:.2}x (goal <= 2x)",
        stride_time.as_secs_f64(),
        first_running.unwrap_or_default().as_secs_f64(),
        bare.as_secs_f64()
    );
    let (status, _) = stride.delete("/v2/apps/bench").await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(120);
    while live.iter().any(|p| process_alive(*p)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The core's placement rate: 100,000 launches onto 10,000 in-memory agents, without
/// constraints and with UNIQUE hostname + GROUP_BY rack on every app.
#[test]
#[ignore]
fn bench_placement_rate() {
    let plain = placement_rate(Vec::new());
    let constrained = placement_rate(vec![
        vec!["hostname".into(), "UNIQUE".into()],
        vec!["rack".into(), "GROUP_BY".into()],
    ]);
    println!(
        "BENCH placement: without constraints {plain:.0} tasks/s, with UNIQUE hostname + GROUP_BY rack {constrained:.0} tasks/s (goal >= 1000000/s with constraints)"
    );
}

/// Launches per second when 10 apps × 10,000 instances with `constraints` are matched against
/// 10,000 offers (8 cpus / 4 GiB / 1,001 ports, one of 20 racks each).
fn placement_rate(constraints: Vec<Vec<String>>) -> f64 {
    const AGENTS: usize = 10_000;
    const LAUNCHES: usize = 100_000;
    const APPS: usize = 10;
    let apps: Vec<AppDefinition> = (0..APPS)
        .map(|n| {
            AppDefinition::create(
                format!("/bench/app{n}"),
                AppUpdate {
                    cmd: Some("sleep 3600".into()),
                    cpus: Some(0.5),
                    mem: Some(256.0),
                    instances: Some((LAUNCHES / APPS) as i64),
                    constraints: Some(constraints.clone()),
                    ..Default::default()
                },
                Timestamp::from_millis(0),
            )
        })
        .collect();
    let offers: Vec<OfferView> = (0..AGENTS)
        .map(|n| OfferView {
            offer_id: format!("offer-{n}"),
            agent_id: format!("agent-{n}"),
            hostname: format!("host-{n}"),
            role: "*".into(),
            attributes: vec![("rack".into(), format!("r{}", n % 20))],
            cpus: 8.0,
            mem: 4096.0,
            disk: 10_000.0,
            ports: vec![(31000, 32000)],
            disks: Vec::new(),
            reserved: Vec::new(),
            docker_engine: DockerEngine::Unknown,
        })
        .collect();
    let mut regexes = RegexCache::default();
    let mut queue: Vec<Pending> = apps
        .iter()
        .map(|app| {
            let waiting = (0..LAUNCHES / APPS)
                .map(|i| format!("{}.instance-{i}", app.id))
                .collect::<VecDeque<_>>();
            Pending::new(app, &mut regexes, std::iter::empty(), waiting)
        })
        .collect();
    let started = Instant::now();
    let mut placed = 0;
    for offer in &offers {
        placed += match_offer(offer, &mut queue).allocations.len();
    }
    let elapsed = started.elapsed();
    assert_eq!(placed, LAUNCHES, "every launch found a place");
    println!(
        "BENCH placement: {placed} launches onto {AGENTS} agents in {:.3} s ({} constraints per app)",
        elapsed.as_secs_f64(),
        constraints.len()
    );
    placed as f64 / elapsed.as_secs_f64()
}

/// Time from cutting an agent off (`POST /master/agents/{hostname}/disconnect`) until all
/// 1,000 of its tasks run on the other agent, as `status_update_event`s tell a client.
#[tokio::test]
#[ignore]
async fn bench_disconnect_to_1000_tasks_running_elsewhere() {
    let stride = Stride::start_with(&[
        "--agent",
        "node-a;rack:r1",
        "--agent",
        "node-b;rack:r2",
        "--agent-resources",
        "cpus:64;mem:262144;disk:100000",
    ])
    .await;
    let (_, state) = stride.get("/master/state").await;
    let agent_id = |hostname: &str| {
        state["slaves"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["hostname"] == hostname)
            .unwrap()["id"]
            .clone()
    };
    let set_active = |hostname: &str, active: bool| {
        let kind = if active {
            "reactivate_agent"
        } else {
            "deactivate_agent"
        };
        json!({"type": kind.to_uppercase(), kind: {"agent_id": {"value": agent_id(hostname)}}})
    };
    // Every task starts on node-a: node-b takes nothing while it is deactivated.
    let (status, body) = stride
        .post("/api/v1", &set_active("node-b", false).to_string())
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = stride
        .post(
            "/v2/apps",
            &json!({
                "id": "/bench", "cmd": "sleep 3600", "cpus": 0.01, "mem": 1,
                "instances": TASKS, "portDefinitions": [],
                "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}
            })
            .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    stride.wait_running("/bench", TASKS).await;
    stride.wait_deployments_done().await;
    let (status, body) = stride
        .post("/api/v1", &set_active("node-b", true).to_string())
        .await;
    assert_eq!(status, 200, "{body}");

    let mut updates = stride.events("?event_type=status_update_event", None).await;
    let started = Instant::now();
    let (status, body) = stride.post("/master/agents/node-a/disconnect", "").await;
    assert_eq!(status, 200, "{body}");
    let mut running_elsewhere = 0;
    let mut first = None;
    while running_elsewhere < TASKS {
        let event = tokio::time::timeout(WAIT, updates.next())
            .await
            .expect("status updates keep coming")
            .expect("the event stream stays open");
        let update: Value = serde_json::from_str(&event.data).expect("status update JSON");
        if update["appId"] == "/bench"
            && update["taskStatus"] == "TASK_RUNNING"
            && update["host"] == "node-b"
        {
            running_elsewhere += 1;
            first.get_or_insert_with(|| started.elapsed());
        }
    }
    let took = started.elapsed();
    println!(
        "BENCH disconnect: {TASKS} tasks of a cut-off agent RUNNING on another agent {:.2} s after the disconnect (first after {:.3} s; inactiveAfterSeconds 0)",
        took.as_secs_f64(),
        first.unwrap_or_default().as_secs_f64()
    );
}

/// A `stride master` with simulated agents; killed when dropped.
struct SimulatedMaster {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for SimulatedMaster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 100,000 tasks launched onto 10,000 simulated agents of a `stride master`, over the HTTP
/// protocol: from posting the apps until Stride reports every task RUNNING.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_100k_tasks_on_10k_simulated_agents() {
    const AGENTS: usize = 10_000;
    const APPS: usize = 10;
    const PER_APP: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(dir.path().join("master.log")).unwrap();
    let master = SimulatedMaster {
        child: Command::new(env!("CARGO_BIN_EXE_stride"))
            .args(["master", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--simulate-agents", &AGENTS.to_string()])
            .arg("--data-dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let http = reqwest::Client::new();
    eventually("the simulated master", || async {
        let state = http
            .get(format!("{}/master/state", master.url))
            .send()
            .await
            .ok()?;
        state.status().is_success().then_some(())
    })
    .await;
    let stride = Stride::start_with(&["--master", &master.url]).await;

    let started = Instant::now();
    for n in 0..APPS {
        let (status, body) = stride
            .post(
                "/v2/apps",
                &json!({"id": format!("/bench/app{n}"), "cmd": "sleep 3600", "cpus": 0.1,
                        "mem": 64, "instances": PER_APP})
                .to_string(),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (_, apps) = stride.get("/v2/apps").await;
        let running: u64 = apps["apps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|app| app["tasksRunning"].as_u64().unwrap_or(0))
            .sum();
        if running == (APPS * PER_APP) as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {running} tasks running after 600 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let elapsed = started.elapsed();
    println!(
        "BENCH simulated: {} tasks RUNNING on {AGENTS} simulated agents over HTTP in {:.1} s (goal <= 30 s)",
        APPS * PER_APP,
        elapsed.as_secs_f64()
    );
}

/// The smallest HTTP server a task can be: Python without its site packages, answering `200 ok`
/// to anything, so that hundreds of them start in seconds. Debian's interpreter, not a shim.
const TINY_WEB: &str = r#"/usr/bin/python3 -S -c 'import os, socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["PORT0"]))); s.listen(128)
while True:
    c, _ = s.accept(); c.recv(4096); c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"); c.close()'"#;

/// Waits until `app` has `n` tasks, all healthy, of its current version, and no deployment.
async fn wait_all_healthy(stride: &Stride, app: &str, n: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let (_, body) = stride.get(&format!("/v2/apps{app}")).await;
        let info = &body["app"];
        let current = info["tasks"]
            .as_array()
            .is_some_and(|t| t.iter().all(|t| t["version"] == info["version"]));
        if info["tasksHealthy"] == n
            && info["tasksRunning"] == n
            && current
            && info["deployments"].as_array().is_some_and(Vec::is_empty)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{app} not done: {} healthy",
            info["tasksHealthy"]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A rolling upgrade of one app of 500 instances on the built-in agent, with
/// `{minimumHealthCapacity: 0.5, maximumOverCapacity: 0.2}` and an HTTP health check every
/// second: from the PUT until all 500 new instances are healthy and the deployment is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_rolling_upgrade_of_500_instances() {
    const N: u64 = 500;
    let stride = Stride::start_with(&[
        "--agent-resources",
        "cpus:2000;mem:1000000;disk:100000;ports:[20000-20999]",
        "--agent-hostname",
        "127.0.0.1",
    ])
    .await;
    let app = json!({
        "id": "/bench", "cmd": TINY_WEB, "cpus": 1, "mem": 32, "instances": N,
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.2},
        "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0, "intervalSeconds": 1,
                          "timeoutSeconds": 1, "gracePeriodSeconds": 60, "maxConsecutiveFailures": 3}],
    });
    let started = Instant::now();
    let (status, body) = stride.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    wait_all_healthy(&stride, "/bench", N, Duration::from_secs(300)).await;
    let start_time = started.elapsed();

    let started = Instant::now();
    let (status, body) = stride
        .put("/v2/apps/bench", r#"{"env": {"RELEASE": "2"}}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    wait_all_healthy(&stride, "/bench", N, Duration::from_secs(300)).await;
    let upgrade_time = started.elapsed();
    println!(
        "BENCH rolling upgrade: {N} instances with an HTTP check replaced in {:.1} s \
         (first start of all {N}, healthy: {:.1} s; Marathon took 14.2 s only to start 500)",
        upgrade_time.as_secs_f64(),
        start_time.as_secs_f64()
    );
    let (status, _) = stride.delete("/v2/apps/bench").await;
    assert_eq!(status, 200);
    eventually("every task to stop", || async {
        stride.live_task_pids().is_empty().then_some(())
    })
    .await;
}

/// Latency of the API (one app with its tasks, and the apps list) while 10,000 Marathon-style
/// health checks run every second: 100 instances of an app with 100 HTTP checks each, against
/// the same app without checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_api_latency_under_10k_health_checks() {
    const INSTANCES: u64 = 100;
    const CHECKS: usize = 100;
    let stride = Stride::start_with(&[
        "--agent-resources",
        "cpus:500;mem:100000;disk:100000;ports:[20000-20999]",
        "--agent-hostname",
        "127.0.0.1",
    ])
    .await;
    // Measured with a plain blocking HTTP/1.1 connection kept open, as a simple client sees
    // the server, without an async client's own scheduling in the figure.
    let address = format!("127.0.0.1:{}", stride.port);
    let latencies = |label: &'static str| {
        let address = address.clone();
        async move {
            let mut all = tokio::task::spawn_blocking(move || measure(&address, 300))
                .await
                .unwrap();
            all.sort();
            let p = |q: f64| all[((all.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1000.0;
            println!(
                "BENCH api latency {label}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                p(0.5),
                p(0.99),
                p(1.0)
            );
        }
    };
    let app = |checks: usize| {
        json!({
            "id": "/bench", "cmd": TINY_WEB, "cpus": 1, "mem": 32, "instances": INSTANCES,
            "healthChecks": (0..checks).map(|n| json!({"protocol": "HTTP", "path": format!("/{n}"), "portIndex": 0,
                "intervalSeconds": 1, "timeoutSeconds": 1, "gracePeriodSeconds": 60, "maxConsecutiveFailures": 0})).collect::<Vec<_>>(),
        })
    };
    let (status, body) = stride.post("/v2/apps", &app(0).to_string()).await;
    assert_eq!(status, 201, "{body}");
    stride.wait_running("/bench", INSTANCES as usize).await;
    stride.wait_deployments_done().await;
    latencies("without health checks").await;

    let (status, body) = stride.put("/v2/apps/bench", &app(CHECKS).to_string()).await;
    assert_eq!(status, 200, "{body}");
    wait_all_healthy(&stride, "/bench", INSTANCES, Duration::from_secs(300)).await;
    // Every check of every task has passed: 10,000 probes a second are running.
    let (_, body) = stride.get("/v2/apps/bench?embed=app.tasks").await;
    let results: usize = body["app"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["healthCheckResults"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(results, INSTANCES as usize * CHECKS);
    latencies("with 10,000 health checks a second").await;

    let (status, _) = stride.delete("/v2/apps/bench").await;
    assert_eq!(status, 200);
    eventually("every task to stop", || async {
        stride.live_task_pids().is_empty().then_some(())
    })
    .await;
}

/// `count` GETs over one kept-alive connection, cycling through answers whose size does not grow
/// with health checks: the apps with their counts (which weigh every task's health), the
/// deployments, the queue and info. Each takes its time; 20 ms pass between them.
fn measure(address: &str, count: usize) -> Vec<Duration> {
    use std::io::{BufRead, BufReader, Read, Write};
    let stream = std::net::TcpStream::connect(address).expect("connecting to Stride");
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut all = Vec::with_capacity(count);
    for n in 0..count {
        let path = ["/v2/apps", "/v2/deployments", "/v2/queue", "/v2/info"][n % 4];
        let started = Instant::now();
        write!(writer, "GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
        let mut length = 0;
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        all.push(started.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    all
}
