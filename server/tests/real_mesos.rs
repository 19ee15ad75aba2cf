//! Stride against a real Apache Mesos 1.11.0 master (with two agents), set up from PyPI and
//! Debian by `tests/real_mesos/setup.sh` and started on loopback by `start.sh`.
//!
//! The real agents cannot run tasks here (Mesos' executor binaries are not packaged), so every
//! launch ends in TASK_FAILED from the agent: exactly what the backoff and acknowledgement
//! checks need. The master's `/metrics/snapshot` counts every call of every framework, which
//! tells what Stride sent. A failed set-up fails these tests; only `STRIDE_SKIP_REAL_MESOS=1`
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
        let mut child = Command::new(scripts.join("start.sh"))
            .args([port.to_string(), "2".into(), "600".into()])
            .env(
                "STRIDE_REAL_MESOS_RESOURCES",
                "cpus:2;mem:1024;disk:1000;ports:[31000-31010]",
            )
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
    let framework_id = eventually("Stride subscribed", || async {
        let frameworks = mesos.stride_frameworks().await;
        frameworks
            .first()
            .filter(|(_, active)| *active)
            .map(|(id, _)| id.clone())
    })
    .await;
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
