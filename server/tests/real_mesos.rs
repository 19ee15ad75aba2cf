//! Stride against a real Apache Mesos 1.11.0 master (with two agents), set up from PyPI and
//! Debian by `tests/real_mesos/setup.sh` and started on loopback by `start.sh`.
//!
//! The real agents cannot run tasks here (Mesos' executor binaries are not packaged), so every
//! launch ends in TASK_FAILED from the agent: exactly what the backoff and acknowledgement
//! checks need. The master's `/metrics/snapshot` counts every call and offer operation of every
//! framework, which tells what Stride sent; the operator API's GET_TASKS says where each task
//! went and with which resources. Agents can have attributes of their own (constraints), and
//! reservations and persistent volumes are real (resident apps). A failed set-up fails these tests; only `STRIDE_SKIP_REAL_MESOS=1`
//! skips them, and says so.

mod common;

use common::{eventually, Stride};
use futures::StreamExt;
use proto::mesos::v1 as mesos;
use proto::mesos::v1::scheduler::{self, call, event};
use serde_json::{json, Value};
use server::mesos::http::{ContentType, HttpMaster, HttpSettings};
use server::mesos::Backend;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const API_PATH: &str = "/master/api/v1/scheduler";
const DEFAULT_RESOURCES: &str = "cpus:2;mem:1024;disk:1000;ports:[31000-31010]";

fn skipped(test: &str) -> bool {
    let skip = std::env::var("STRIDE_SKIP_REAL_MESOS").is_ok_and(|v| v == "1");
    if skip {
        println!("SKIPPED {test}: STRIDE_SKIP_REAL_MESOS=1, no real Mesos master was run");
    }
    skip
}

/// A real Mesos cluster: `start.sh` in its own process group.
struct RealMesos {
    child: Child,
    url: String,
    http: reqwest::Client,
    _logs: tempfile::TempDir,
}

impl RealMesos {
    fn start() -> RealMesos {
        RealMesos::with_agent_attributes(&[])
    }

    /// Two agents with these attributes (Mesos' syntax, one per agent in start order), or
    /// none when empty.
    fn with_agent_attributes(attributes: &[&str]) -> RealMesos {
        RealMesos::with_agents(attributes, DEFAULT_RESOURCES)
    }

    /// Two agents with these attributes (as [`RealMesos::with_agent_attributes`]) and these
    /// resources each (`--resources`, either of Mesos' forms).
    fn with_agents(attributes: &[&str], resources: &str) -> RealMesos {
        let scripts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/real_mesos");
        let setup = Command::new(scripts.join("setup.sh"))
            .arg("--quiet")
            .output()
            .expect("running tests/real_mesos/setup.sh");
        assert!(
            setup.status.success(),
            "setting up the real Mesos master failed ({}); set STRIDE_SKIP_REAL_MESOS=1 to skip \
             these tests:\n{}",
            setup.status,
            String::from_utf8_lossy(&setup.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let logs = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(logs.path().join("mesos.log")).unwrap();
        let mut start = Command::new(scripts.join("start.sh"));
        start
            .args([port.to_string(), "2".into(), "600".into()])
            .env("STRIDE_REAL_MESOS_RESOURCES", resources);
        if !attributes.is_empty() {
            start.env("STRIDE_REAL_MESOS_AGENT_ATTRIBUTES", attributes.join(" "));
        }
        let mut child = start
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("starting tests/real_mesos/start.sh");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let mesos = RealMesos {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _logs: logs,
        };
        assert_eq!(
            line.trim(),
            format!("READY {}", mesos.url),
            "the real Mesos master did not become ready"
        );
        mesos
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// This framework's counters from `/metrics/snapshot`, keyed by what follows its id
    /// (`calls/accept`, `roles/*/suppressed`, …).
    async fn metrics_of(&self, framework_id: &str) -> serde_json::Map<String, Value> {
        let snapshot = self.get("/metrics/snapshot").await;
        let infix = format!("/{framework_id}/");
        snapshot
            .as_object()
            .unwrap()
            .iter()
            .filter_map(|(key, value)| {
                let (_, rest) = key.split_once(&infix)?;
                Some((rest.to_owned(), value.clone()))
            })
            .collect()
    }

    /// The active frameworks named `stride`: (id, active).
    async fn stride_frameworks(&self) -> Vec<(String, bool)> {
        let frameworks = self.get("/master/frameworks").await;
        frameworks["frameworks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["name"] == "stride")
            .map(|f| {
                (
                    f["id"].as_str().unwrap().to_owned(),
                    f["active"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    }
}

impl Drop for RealMesos {
    fn drop(&mut self) {
        let group = -(self.child.id() as i32);
        // SAFETY: kill(2) on the process group we created for the cluster.
        unsafe { libc::kill(group, libc::SIGTERM) };
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // SAFETY: as above; whatever ignored SIGTERM goes now.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// What `/master/state` says of agents and tasks.
impl RealMesos {
    /// The id of the agent whose attribute `name` is `value`.
    async fn agent_with(&self, name: &str, value: &str) -> String {
        let state = self.get("/master/state").await;
        let agents = state["slaves"].as_array().unwrap();
        let agent = agents.iter().find(|a| a["attributes"][name] == value);
        let agent = agent.unwrap_or_else(|| panic!("no agent with {name}:{value}: {state}"));
        agent["id"].as_str().unwrap().to_owned()
    }

    /// Every task of the framework the master knows of, running or done: (id, agent id,
    /// resources), from the operator API's GET_TASKS (`/master/state` sums resources up).
    async fn tasks_of(&self, framework_id: &str) -> Vec<(String, String, Value)> {
        let answer: Value = self
            .http
            .post(format!("{}/master/api/v1", self.url))
            .header("accept", "application/json")
            .json(&json!({"type": "GET_TASKS"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ["tasks", "completed_tasks"]
            .iter()
            .flat_map(|list| {
                answer["get_tasks"][list]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|task| task["framework_id"]["value"] == framework_id)
            .map(|task| {
                (
                    task["task_id"]["value"].as_str().unwrap().to_owned(),
                    task["agent_id"]["value"].as_str().unwrap().to_owned(),
                    task["resources"].clone(),
                )
            })
            .collect()
    }

    /// The persistent volumes and reserved CPUs the agents hold for `role`: (agent id,
    /// persistence ids, reserved cpus). (Mesos 1.11 lists `reserved_resources_full` in
    /// `/master/slaves`, not in `/master/state`.)
    async fn reserved_for(&self, role: &str) -> Vec<(String, Vec<String>, f64)> {
        let state = self.get("/master/slaves").await;
        let mut out = Vec::new();
        for agent in state["slaves"].as_array().unwrap() {
            let Some(resources) = agent["reserved_resources_full"][role].as_array() else {
                continue;
            };
            let volumes = resources
                .iter()
                .filter_map(|r| r.pointer("/disk/persistence/id")?.as_str())
                .map(str::to_owned)
                .collect();
            let cpus = resources
                .iter()
                .filter(|r| r["name"] == "cpus")
                .filter_map(|r| r["scalar"]["value"].as_f64())
                .sum();
            out.push((agent["id"].as_str().unwrap().to_owned(), volumes, cpus));
        }
        out
    }
}

fn count(metrics: &serde_json::Map<String, Value>, key: &str) -> f64 {
    metrics.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

async fn stride_on(mesos: &RealMesos, content_type: &str) -> Stride {
    Stride::start_with(&[
        "--master",
        &mesos.url,
        "--mesos-api-path",
        API_PATH,
        "--mesos-content-type",
        content_type,
    ])
    .await
}

/// Subscribe, launch, the agent's TASK_FAILED acknowledged and answered with a backoff,
/// declines, SUPPRESS when idle and REVIVE when work appears, and a restart of Stride that
/// fails over to the same framework id.
#[tokio::test]
async fn stride_schedules_on_a_real_mesos_master() {
    if skipped("stride_schedules_on_a_real_mesos_master") {
        return;
    }
    let mesos = RealMesos::start();
    let mut stride = stride_on(&mesos, "protobuf").await;
    let framework_id = subscribed(&mesos).await;
    // Mesos lists the framework as soon as it answers SUBSCRIBED; Stride stores the id
    // once it has read that answer, a moment later.
    eventually("the framework id in /v2/info", || async {
        let (_, info) = stride.get("/v2/info").await;
        (info["frameworkId"] == framework_id.as_str()).then_some(())
    })
    .await;

    let (status, body) = stride
        .post(
            "/v2/apps",
            &json!({"id": "/doomed", "cmd": "sleep 100", "cpus": 0.1, "mem": 32,
                    "backoffSeconds": 1, "backoffFactor": 1.0})
            .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // Each failure is acknowledged and the instance relaunched (after its backoff) as a new task.
    let failure = eventually("the third launch to fail", || async {
        let (_, app) = stride
            .get("/v2/apps/doomed?embed=app.lastTaskFailure")
            .await;
        let failure = app["app"]["lastTaskFailure"].clone();
        failure["taskId"]
            .as_str()
            .is_some_and(|id| id.ends_with("._app.3"))
            .then_some(failure)
    })
    .await;
    assert_eq!(failure["state"], "TASK_FAILED");
    // The agent's words vary ("Executor terminated", "Failed to launch container: …").
    assert!(
        failure["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{failure}"
    );
    let metrics = eventually("every failure acknowledged", || async {
        let metrics = mesos.metrics_of(&framework_id).await;
        let failed = count(&metrics, "tasks/terminal/task_failed");
        (failed >= 3.0 && count(&metrics, "calls/acknowledge") == failed).then_some(metrics)
    })
    .await;
    assert!(count(&metrics, "calls/accept") >= 3.0, "{metrics:?}");
    assert!(
        count(&metrics, "calls/decline") >= 1.0,
        "offers that came during a backoff are declined: {metrics:?}"
    );
    assert!(count(&metrics, "calls/revive") >= 1.0, "{metrics:?}");
    assert!(count(&metrics, "calls/reconcile") >= 1.0, "{metrics:?}");

    // Its deployment never finishes (nothing runs), so the app is locked: force.
    let (status, _) = stride.delete("/v2/apps/doomed?force=true").await;
    assert_eq!(status, 200);
    eventually("offers suppressed with nothing to launch", || async {
        let metrics = mesos.metrics_of(&framework_id).await;
        (count(&metrics, "roles/*/suppressed") == 1.0).then_some(())
    })
    .await;
    let revives = count(&mesos.metrics_of(&framework_id).await, "calls/revive");
    let (status, _) = stride
        .post(
            "/v2/apps",
            &json!({"id": "/again", "cmd": "sleep 100", "cpus": 0.1, "mem": 32}).to_string(),
        )
        .await;
    assert_eq!(status, 201);
    eventually("offers revived for new work", || async {
        let metrics = mesos.metrics_of(&framework_id).await;
        // (Suppressed again soon after: the launch fails and waits out its backoff.)
        (count(&metrics, "calls/revive") > revives).then_some(())
    })
    .await;

    let reconciled = count(&mesos.metrics_of(&framework_id).await, "calls/reconcile");
    stride.kill9();
    stride.launch().await;
    eventually(
        "the restarted Stride back on the same framework",
        || async {
            let frameworks = mesos.stride_frameworks().await;
            (frameworks == [(framework_id.clone(), true)]).then_some(())
        },
    )
    .await;
    let metrics = eventually("reconciliation after re-subscribing", || async {
        let metrics = mesos.metrics_of(&framework_id).await;
        (count(&metrics, "calls/reconcile") > reconciled).then_some(metrics)
    })
    .await;
    assert_eq!(count(&metrics, "calls/subscribe"), 2.0, "{metrics:?}");
}

/// The same with JSON on the wire: subscribed, a launch, its failure acknowledged.
#[tokio::test]
async fn stride_speaks_json_to_a_real_mesos_master() {
    if skipped("stride_speaks_json_to_a_real_mesos_master") {
        return;
    }
    let mesos = RealMesos::start();
    let stride = stride_on(&mesos, "json").await;
    let framework_id = eventually("Stride subscribed", || async {
        mesos
            .stride_frameworks()
            .await
            .first()
            .map(|(id, _)| id.clone())
    })
    .await;
    let (status, _) = stride
        .post(
            "/v2/apps",
            &json!({"id": "/json", "cmd": "sleep 100", "cpus": 0.1, "mem": 32}).to_string(),
        )
        .await;
    assert_eq!(status, 201);
    eventually("a failure acknowledged", || async {
        let metrics = mesos.metrics_of(&framework_id).await;
        (count(&metrics, "calls/acknowledge") >= 1.0
            && count(&metrics, "calls/acknowledge")
                == count(&metrics, "tasks/terminal/task_failed"))
        .then_some(())
    })
    .await;
}

/// The driver's transport on its own: KILL and explicit and implicit RECONCILE as the real
/// master answers them, in both encodings.
#[tokio::test]
async fn kill_and_reconciliation_calls_are_answered_by_a_real_master() {
    if skipped("kill_and_reconciliation_calls_are_answered_by_a_real_master") {
        return;
    }
    let mesos = RealMesos::start();
    for content_type in [ContentType::Protobuf, ContentType::Json] {
        let master = HttpMaster::new(HttpSettings {
            master: mesos.url.parse().unwrap(),
            api_path: API_PATH.into(),
            content_type,
            credentials: None,
            heartbeat_misses: 5,
        })
        .unwrap();
        let mut info = mesos::FrameworkInfo {
            user: "root".into(),
            name: "transport-test".into(),
            roles: vec!["*".into()],
            failover_timeout: Some(0.0),
            ..Default::default()
        };
        let mut capability = mesos::framework_info::Capability::default();
        capability.set_type(mesos::framework_info::capability::Type::MultiRole);
        info.capabilities.push(capability);
        let mut partition_aware = mesos::framework_info::Capability::default();
        partition_aware.set_type(mesos::framework_info::capability::Type::PartitionAware);
        info.capabilities.push(partition_aware);
        let (framework_id, mut events) = master
            .subscribe(call::Subscribe {
                framework_info: info,
                ..Default::default()
            })
            .await
            .unwrap();
        let first = events.recv().await.unwrap();
        assert_eq!(first.r#type(), event::Type::Subscribed);
        let agent_id = mesos.get("/master/state").await["slaves"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();

        let call_of = |kind: call::Type| {
            let mut request = scheduler::Call {
                framework_id: Some(mesos::FrameworkId {
                    value: framework_id.clone(),
                }),
                ..Default::default()
            };
            request.set_type(kind);
            request
        };
        let task = |id: &str| mesos::TaskId { value: id.into() };
        let mut explicit = call_of(call::Type::Reconcile);
        explicit.reconcile = Some(call::Reconcile {
            tasks: vec![call::reconcile::Task {
                task_id: task("never-launched"),
                agent_id: Some(mesos::AgentId {
                    value: agent_id.clone(),
                }),
            }],
        });
        master.call(explicit).await.unwrap();
        let mut kill = call_of(call::Type::Kill);
        kill.kill = Some(call::Kill {
            task_id: task("also-never-launched"),
            ..Default::default()
        });
        master.call(kill).await.unwrap();
        let mut implicit = call_of(call::Type::Reconcile);
        implicit.reconcile = Some(call::Reconcile::default());
        master.call(implicit).await.unwrap();

        let mut answered = Vec::new();
        let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(events);
        let mut updates =
            stream.filter(|e| futures::future::ready(e.r#type() == event::Type::Update));
        for _ in 0..2 {
            let update = tokio::time::timeout(Duration::from_secs(15), updates.next())
                .await
                .expect("a reconciliation answer in time")
                .unwrap();
            let status = update.update.unwrap().status;
            assert_eq!(status.reason(), mesos::task_status::Reason::Reconciliation);
            assert_eq!(
                status.uuid, None,
                "reconciliation answers are not acknowledged"
            );
            answered.push((status.task_id.value.clone(), status.state()));
        }
        answered.sort();
        assert_eq!(
            answered,
            [
                (
                    "also-never-launched".to_owned(),
                    mesos::TaskState::TaskUnknown
                ),
                ("never-launched".to_owned(), mesos::TaskState::TaskGone),
            ],
            "{content_type:?}"
        );
        master.call(call_of(call::Type::Teardown)).await.unwrap();
    }
}

/// Waits until Stride is subscribed to the master; its framework id.
async fn subscribed(mesos: &RealMesos) -> String {
    eventually("Stride subscribed", || async {
        let frameworks = mesos.stride_frameworks().await;
        frameworks
            .first()
            .filter(|(_, active)| *active)
            .map(|(id, _)| id.clone())
    })
    .await
}

/// Agents of different attributes (`rack`, `zone`): every ACCEPT of an app with a LIKE
/// constraint goes to the one agent that satisfies it, and an app that no agent satisfies
/// launches nothing and waits with `UnfulfilledConstraint`.
#[tokio::test]
async fn accepts_follow_constraints_on_real_agents_with_attributes() {
    if skipped("accepts_follow_constraints_on_real_agents_with_attributes") {
        return;
    }
    let mesos = RealMesos::with_agent_attributes(&["rack:r1;zone:a", "rack:r2;zone:b"]);
    let r2 = mesos.agent_with("rack", "r2").await;
    assert_ne!(r2, mesos.agent_with("rack", "r1").await);
    let stride = stride_on(&mesos, "protobuf").await;
    let framework_id = subscribed(&mesos).await;
    for app in [
        json!({"id": "/pinned", "cmd": "sleep 100", "cpus": 0.1, "mem": 32,
               "backoffSeconds": 1, "backoffFactor": 1.0,
               "constraints": [["rack", "LIKE", "r2"]]}),
        json!({"id": "/nowhere", "cmd": "sleep 100", "cpus": 0.1, "mem": 32,
               "constraints": [["zone", "IS", "c"]]}),
    ] {
        let (status, body) = stride.post("/v2/apps", &app.to_string()).await;
        assert_eq!(status, 201, "{body}");
    }
    // Each launch fails on the real agent and is relaunched: three ACCEPTs, three choices.
    let tasks = eventually("three launches of /pinned", || async {
        let tasks = mesos.tasks_of(&framework_id).await;
        (tasks
            .iter()
            .filter(|(id, ..)| id.starts_with("pinned."))
            .count()
            >= 3)
            .then_some(tasks)
    })
    .await;
    for (id, agent, _) in &tasks {
        assert!(id.starts_with("pinned."), "{id} launched: {tasks:?}");
        assert_eq!(agent, &r2, "{id} on an agent without rack:r2");
    }
    stride.wait_unfulfilled_constraint("/nowhere").await;
    let (status, _) = stride.delete("/v2/apps/pinned?force=true").await;
    assert_eq!(status, 200);
}

/// A resident app on the real master: the first ACCEPT reserves CPUs, memory and disk for the
/// app's role and creates its persistent volume (RESERVE + CREATE with LAUNCH, in the name of
/// Stride's principal), and the master
/// keeps both on the agent; the relaunches after each failure land on that reservation with
/// the volume; deleting the app destroys the volume and gives the reservation back.
#[tokio::test]
async fn a_resident_app_reserves_and_creates_its_volume_on_a_real_master() {
    if skipped("a_resident_app_reserves_and_creates_its_volume_on_a_real_master") {
        return;
    }
    let mesos = RealMesos::start();
    let stride = Stride::start_with(&[
        "--master",
        &mesos.url,
        "--mesos-api-path",
        API_PATH,
        "--mesos-role",
        "*,data",
        // Mesos refuses a reservation or volume not made in the name of the framework's
        // principal.
        "--mesos-principal",
        "ops",
    ])
    .await;
    let framework_id = subscribed(&mesos).await;
    let app = json!({
        "id": "/db", "role": "data", "cmd": "sleep 100", "cpus": 0.1, "mem": 32,
        "backoffSeconds": 1, "backoffFactor": 1.0,
        "container": {
            "type": "MESOS",
            "volumes": [{"containerPath": "data", "mode": "RW", "persistent": {"size": 16}}]
        }
    });
    let (status, body) = stride.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let reserved = eventually("a reservation with the volume", || async {
        let reserved = mesos.reserved_for("data").await;
        (reserved.len() == 1 && reserved[0].1.len() == 1).then_some(reserved)
    })
    .await;
    let (agent, volumes, cpus) = &reserved[0];
    assert!((cpus - 0.1).abs() < 1e-9, "{reserved:?}");
    let tasks = eventually("two launches of /db", || async {
        let tasks = mesos.tasks_of(&framework_id).await;
        (tasks.len() >= 2).then_some(tasks)
    })
    .await;
    for (id, task_agent, resources) in &tasks {
        assert_eq!(task_agent, agent, "{id} left its reservation");
        let volume = resources
            .as_array()
            .unwrap()
            .iter()
            .find_map(|r| r.pointer("/disk/persistence/id")?.as_str());
        assert_eq!(volume, Some(volumes[0].as_str()), "{id}: {resources}");
    }
    let metrics = mesos.metrics_of(&framework_id).await;
    assert_eq!(count(&metrics, "operations/reserve"), 1.0, "{metrics:?}");
    assert_eq!(count(&metrics, "operations/create"), 1.0, "{metrics:?}");

    let (status, _) = stride.delete("/v2/apps/db?force=true").await;
    assert_eq!(status, 200);
    eventually(
        "the volume destroyed and the reservation given back",
        || async { mesos.reserved_for("data").await.is_empty().then_some(()) },
    )
    .await;
    let metrics = mesos.metrics_of(&framework_id).await;
    assert_eq!(count(&metrics, "operations/destroy"), 1.0, "{metrics:?}");
    assert_eq!(count(&metrics, "operations/unreserve"), 1.0, "{metrics:?}");
}

/// A tmpfs mounted for the test (a MOUNT disk must be a mount point for Mesos), unmounted
/// when dropped.
struct TmpfsMount(PathBuf);

impl TmpfsMount {
    fn at(dir: PathBuf, size_mib: u32) -> TmpfsMount {
        std::fs::create_dir_all(&dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("running mount");
        assert!(mounted.success(), "mounting a tmpfs at {}", dir.display());
        TmpfsMount(dir)
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("--lazy").arg(&self.0).status();
    }
}

/// A resident app's `path` and `mount` volumes on a real master whose agents offer a PATH disk
/// and a MOUNT disk: RESERVE names the disks with their sources (the MOUNT disk whole), CREATE
/// makes the volumes on them, the master accepts both and launches the task with them, and
/// deleting the app gives both disks back.
#[tokio::test]
async fn path_and_mount_volumes_are_reserved_on_a_real_masters_disks() {
    if skipped("path_and_mount_volumes_are_reserved_on_a_real_masters_disks") {
        return;
    }
    let disks = tempfile::tempdir().unwrap();
    let path_root = disks.path().join("path");
    std::fs::create_dir_all(&path_root).unwrap();
    let mount = TmpfsMount::at(disks.path().join("mount"), 64);
    let disk = |size: u32, source: Value| json!({"name": "disk", "type": "SCALAR", "scalar": {"value": size}, "disk": {"source": source}});
    let resources = json!([
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 1024}},
        {"name": "disk", "type": "SCALAR", "scalar": {"value": 1000}},
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31010}]}},
        disk(200, json!({"type": "PATH", "path": {"root": path_root}})),
        disk(64, json!({"type": "MOUNT", "mount": {"root": mount.0}})),
    ]);
    let mesos = RealMesos::with_agents(&[], &resources.to_string());
    let stride = Stride::start_with(&[
        "--master",
        &mesos.url,
        "--mesos-api-path",
        API_PATH,
        "--mesos-role",
        "*,data",
        "--mesos-principal",
        "ops",
    ])
    .await;
    let framework_id = subscribed(&mesos).await;
    let app = json!({
        "id": "/db", "role": "data", "cmd": "sleep 100", "cpus": 0.1, "mem": 32,
        "backoffSeconds": 1, "backoffFactor": 1.0,
        "container": {
            "type": "MESOS",
            "volumes": [
                {"containerPath": "data", "mode": "RW", "persistent": {"type": "mount", "size": 32}},
                {"containerPath": "logs", "mode": "RW", "persistent": {"type": "path", "size": 8}}
            ]
        }
    });
    let (status, body) = stride.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let reserved = eventually("a reservation with both volumes", || async {
        let reserved = mesos.reserved_for("data").await;
        (reserved.len() == 1 && reserved[0].1.len() == 2).then_some(reserved)
    })
    .await;
    let agent = &reserved[0].0;
    // The volumes as the master keeps them: each on its disk, the mount volume all of it.
    let slaves = mesos.get("/master/slaves").await;
    let held = slaves["slaves"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == *agent)
        .unwrap()["reserved_resources_full"]["data"]
        .clone();
    let mut volumes: Vec<(String, String, f64)> = held
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.pointer("/disk/persistence").is_some())
        .map(|r| {
            let source = &r["disk"]["source"];
            let kind = source["type"].as_str().unwrap().to_string();
            let root = source
                .pointer("/path/root")
                .or(source.pointer("/mount/root"))
                .and_then(Value::as_str)
                .unwrap()
                .to_string();
            (kind, root, r["scalar"]["value"].as_f64().unwrap())
        })
        .collect();
    volumes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        volumes,
        vec![
            ("MOUNT".into(), mount.0.display().to_string(), 64.0),
            ("PATH".into(), path_root.display().to_string(), 8.0),
        ],
        "{held}"
    );
    let tasks = eventually("a launch of /db", || async {
        let tasks = mesos.tasks_of(&framework_id).await;
        (!tasks.is_empty()).then_some(tasks)
    })
    .await;
    let (id, task_agent, resources) = &tasks[0];
    assert_eq!(task_agent, agent, "{id} left its reservation");
    let sources: Vec<&str> = resources
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r.pointer("/disk/source/type")?.as_str())
        .collect();
    assert_eq!(
        sources.len(),
        2,
        "{id} launched with both volumes: {resources}"
    );
    let metrics = mesos.metrics_of(&framework_id).await;
    assert_eq!(count(&metrics, "operations/reserve"), 1.0, "{metrics:?}");
    assert_eq!(count(&metrics, "operations/create"), 1.0, "{metrics:?}");

    let (status, _) = stride.delete("/v2/apps/db?force=true").await;
    assert_eq!(status, 200);
    eventually("both disks given back", || async {
        mesos.reserved_for("data").await.is_empty().then_some(())
    })
    .await;
}
