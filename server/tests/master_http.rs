//! `stride master` over HTTP: Mesos' answers to bad requests, every call of TEST_VECTORS.json in
//! both encodings, framework failover and failover timeout, a Stride scheduler that is killed
//! and re-attaches, and a Stride that runs a second Stride (another framework) as an app.

mod common;

use common::{eventually, kill_task_leftovers, process_alive, Stride};
use prost::Message;
use proto::mesos::v1 as mesos;
use proto::mesos::v1::scheduler::{self, call, event};
use proto::recordio::RecordIoDecoder;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
const EVENT_TIMEOUT: Duration = Duration::from_secs(15);

/// A `stride master` process on a free loopback port.
struct Master {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Master {
    async fn start() -> Master {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("master.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_stride"))
            .args(["master", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.path())
            .args([
                "--agent-resources",
                "cpus:4;mem:4096;disk:1000;ports:[31000-31100]",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let master = Master {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            http: reqwest::Client::new(),
        };
        eventually("stride master answering", || async {
            master.state().await.ok().map(|_| ())
        })
        .await;
        master
    }

    async fn state(&self) -> reqwest::Result<Value> {
        self.http
            .get(format!("{}/master/state", self.url))
            .send()
            .await?
            .json()
            .await
    }

    async fn post(&self, headers: &[(&str, &str)], body: Vec<u8>) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/api/v1/scheduler", self.url))
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        kill_task_leftovers(&self.dir.path().join("agent"));
    }
}

fn encode(call: &scheduler::Call, mime: &str) -> Vec<u8> {
    if mime == JSON {
        proto::json::to_json(call).unwrap()
    } else {
        call.encode_to_vec()
    }
}

fn subscribe_call(id: Option<&str>, failover_timeout: f64) -> scheduler::Call {
    let framework_id = id.map(|value| mesos::FrameworkId {
        value: value.to_owned(),
    });
    let mut call = scheduler::Call {
        framework_id: framework_id.clone(),
        subscribe: Some(call::Subscribe {
            framework_info: mesos::FrameworkInfo {
                user: "root".into(),
                name: "protocol-test".into(),
                id: framework_id,
                failover_timeout: Some(failover_timeout),
                ..Default::default()
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    call.set_type(call::Type::Subscribe);
    call
}

/// An open event stream.
struct Events {
    response: reqwest::Response,
    decoder: RecordIoDecoder,
    mime: String,
    stream_id: String,
}

impl Events {
    async fn open(master: &Master, call: &scheduler::Call, mime: &str) -> Events {
        let response = master
            .post(
                &[("Content-Type", mime), ("Accept", mime)],
                encode(call, mime),
            )
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], mime);
        let stream_id = response.headers()["mesos-stream-id"]
            .to_str()
            .unwrap()
            .to_owned();
        Events {
            response,
            decoder: RecordIoDecoder::new(),
            mime: mime.to_owned(),
            stream_id,
        }
    }

    async fn next(&mut self) -> Option<scheduler::Event> {
        loop {
            if let Some(record) = self.decoder.next_record().unwrap() {
                return Some(if self.mime == JSON {
                    proto::json::from_json(&record).unwrap()
                } else {
                    scheduler::Event::decode(record.as_slice()).unwrap()
                });
            }
            let chunk = tokio::time::timeout(EVENT_TIMEOUT, self.response.chunk())
                .await
                .expect("an event in time")
                .unwrap()?;
            self.decoder.push(&chunk);
        }
    }

    /// The next event that is not a heartbeat or an offer.
    async fn next_notable(&mut self) -> Option<scheduler::Event> {
        loop {
            let event = self.next().await?;
            if !matches!(event.r#type(), event::Type::Heartbeat | event::Type::Offers) {
                return Some(event);
            }
        }
    }

    async fn subscribed(&mut self) -> String {
        let event = self.next().await.unwrap();
        assert_eq!(event.r#type(), event::Type::Subscribed, "{event:?}");
        let subscribed = event.subscribed.unwrap();
        assert_eq!(subscribed.heartbeat_interval_seconds, Some(15.0));
        subscribed.framework_id.value
    }
}

/// Headers, body, and the status and text the master must answer with.
type BadRequest = (
    Vec<(&'static str, &'static str)>,
    Vec<u8>,
    u16,
    &'static str,
);

#[tokio::test]
async fn bad_requests_get_mesos_answers() {
    let master = Master::start().await;
    let subscribe = subscribe_call(None, 60.0);
    let answer = |response: reqwest::Response| async move {
        (response.status().as_u16(), response.text().await.unwrap())
    };
    let get = master
        .http
        .get(format!("{}/api/v1/scheduler", master.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer(get).await,
        (
            405,
            "Expecting one of { 'POST' }, but received 'GET'.".into()
        )
    );
    let cases: Vec<BadRequest> = vec![
        (vec![], encode(&subscribe, PROTOBUF), 400, "Expecting 'Content-Type' to be present"),
        (
            vec![("Content-Type", "application/json; charset=utf-8")],
            encode(&subscribe, JSON),
            415,
            "Expecting 'Content-Type' of application/json or application/x-protobuf",
        ),
        (
            vec![("Content-Type", JSON), ("Accept", "text/plain")],
            encode(&subscribe, JSON),
            406,
            "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'",
        ),
        (
            vec![("Content-Type", JSON), ("Mesos-Stream-Id", "x")],
            encode(&subscribe, JSON),
            400,
            "Subscribe calls should not include the 'Mesos-Stream-Id' header",
        ),
        (
            vec![("Content-Type", JSON)],
            br#"{"framework_id": {"value": "x"}}"#.to_vec(),
            400,
            "Failed to validate scheduler::Call: Expecting 'type' to be present",
        ),
        (
            vec![("Content-Type", JSON)],
            b"{not json".to_vec(),
            400,
            "Failed to convert JSON into Call protobuf",
        ),
        (
            vec![("Content-Type", PROTOBUF)],
            vec![0xff, 0xff, 0xff],
            400,
            "Failed to parse body into Call protobuf",
        ),
        (
            vec![("Content-Type", JSON)],
            br#"{"type": "DECLINE", "framework_id": {"value": "nobody"}, "decline": {}}"#.to_vec(),
            400,
            "Framework cannot be found",
        ),
        (
            vec![("Content-Type", JSON)],
            br#"{"type": "SUBSCRIBE", "framework_id": {"value": "a"},
                 "subscribe": {"framework_info": {"user": "u", "name": "n", "id": {"value": "b"}}}}"#
                .to_vec(),
            400,
            "'framework_id' differs from 'subscribe.framework_info.id'",
        ),
    ];
    for (headers, body, status, text) in cases {
        let (got_status, got_text) = answer(master.post(&headers, body).await).await;
        assert_eq!(got_status, status, "{headers:?}: {got_text}");
        assert!(got_text.contains(text), "{headers:?}: {got_text}");
    }

    // Calls of a subscribed framework need its current stream id.
    let mut events = Events::open(&master, &subscribe, JSON).await;
    let id = events.subscribed().await;
    let revive = format!(r#"{{"type": "REVIVE", "framework_id": {{"value": "{id}"}}}}"#);
    let ack = format!(
        r#"{{"type": "ACKNOWLEDGE", "framework_id": {{"value": "{id}"}}, "acknowledge":
            {{"agent_id": {{"value": "a"}}, "task_id": {{"value": "t"}}, "uuid": "AAEC"}}}}"#
    );
    let with_stream = [
        ("Content-Type", JSON),
        ("Mesos-Stream-Id", events.stream_id.as_str()),
    ];
    for (headers, body, status, text) in [
        (
            &[("Content-Type", JSON)][..],
            &revive,
            400,
            "All non-subscribe calls should include the 'Mesos-Stream-Id' header".to_owned(),
        ),
        (
            &[("Content-Type", JSON), ("Mesos-Stream-Id", "stale")][..],
            &revive,
            400,
            format!("The stream ID 'stale' included in this request didn't match the stream ID currently associated with framework ID {id}"),
        ),
        (&with_stream[..], &ack, 400, "Not a valid UUID".to_owned()),
        (&with_stream[..], &revive, 202, String::new()),
    ] {
        let (got_status, got_text) = answer(master.post(headers, body.clone().into_bytes()).await).await;
        assert_eq!((got_status, got_text.contains(&text)), (status, true), "{body}: {got_text}");
    }
}

/// The calls of TEST_VECTORS.json, re-addressed to a framework of ours, are accepted as a real
/// master accepts them.
#[tokio::test]
async fn every_vector_call_is_accepted_in_both_encodings() {
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto/tests/data/TEST_VECTORS.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let master = Master::start().await;
    for mime in [JSON, PROTOBUF] {
        let mut events = Events::open(&master, &subscribe_call(None, 60.0), mime).await;
        let id = events.subscribed().await;
        let framework_id = mesos::FrameworkId { value: id.clone() };
        let mut calls: Vec<(String, scheduler::Call)> = file["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["message"] == "mesos.v1.scheduler.Call")
            .map(|v| {
                let json = serde_json::to_vec(&v["json"]).unwrap();
                (
                    v["name"].as_str().unwrap().to_owned(),
                    proto::json::from_json(&json).unwrap(),
                )
            })
            .filter(|(_, call): &(String, scheduler::Call)| call.r#type() != call::Type::Subscribe)
            .collect();
        // TEARDOWN ends the framework: last.
        calls.sort_by_key(|(_, call)| call.r#type() == call::Type::Teardown);
        for (name, mut call) in calls {
            call.framework_id = Some(framework_id.clone());
            if let Some(update) = &mut call.update_framework {
                update.framework_info.id = Some(framework_id.clone());
                update.framework_info.user = "root".into();
                update.framework_info.principal = None;
                update.framework_info.checkpoint = None;
            }
            let response = master
                .post(
                    &[
                        ("Content-Type", mime),
                        ("Mesos-Stream-Id", &events.stream_id),
                    ],
                    encode(&call, mime),
                )
                .await;
            let expected = if call.r#type() == call::Type::UpdateFramework {
                200
            } else {
                202
            };
            let status = response.status().as_u16();
            assert_eq!(
                status,
                expected,
                "{mime} {name}: {}",
                response.text().await.unwrap()
            );
        }
        // Launches on offers that were never made are dropped, as a partition-aware master does;
        // KILL and RECONCILE answer meanwhile (TASK_UNKNOWN, or the dropped task's state).
        let mut dropped = false;
        for _ in 0..20 {
            let status = events
                .next_notable()
                .await
                .unwrap()
                .update
                .expect("an update")
                .status;
            use mesos::task_status::Reason;
            match (status.state(), status.reason()) {
                (mesos::TaskState::TaskDropped, Reason::InvalidOffers) => {
                    dropped = true;
                    break;
                }
                (
                    mesos::TaskState::TaskUnknown | mesos::TaskState::TaskDropped,
                    Reason::Reconciliation,
                ) => {}
                other => panic!("unexpected update {other:?}: {status:?}"),
            }
        }
        assert!(
            dropped,
            "no TASK_DROPPED for the launch on an unknown offer"
        );
        let state = master.state().await.unwrap();
        assert!(
            state["completed_frameworks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["id"] == id.as_str()),
            "TEARDOWN removed the framework: {state}"
        );
    }
}

#[tokio::test]
async fn failover_moves_the_stream_and_the_timeout_removes_the_framework() {
    let master = Master::start().await;
    let mut first = Events::open(&master, &subscribe_call(None, 1.0), PROTOBUF).await;
    let id = first.subscribed().await;
    let mut second = Events::open(&master, &subscribe_call(Some(&id), 1.0), PROTOBUF).await;
    assert_eq!(second.subscribed().await, id);
    let error = first
        .next_notable()
        .await
        .expect("an ERROR on the old stream");
    assert_eq!(error.error.unwrap().message, "Framework failed over");

    drop(second);
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let state = master.state().await.unwrap();
        let removed = state["completed_frameworks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == id.as_str());
        if removed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not removed after its failover timeout: {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut again = Events::open(&master, &subscribe_call(Some(&id), 1.0), JSON).await;
    let error = again.next().await.unwrap();
    assert_eq!(error.r#type(), event::Type::Error);
    assert_eq!(error.error.unwrap().message, "Framework has been removed");
    assert!(again.next().await.is_none(), "the master closes the stream");
}

#[tokio::test]
async fn a_killed_scheduler_reattaches_without_restarting_tasks() {
    let mut stride = Stride::start_remote(&["--mesos-content-type", "json"]).await;
    let (status, body) = stride
        .post(
            "/v2/apps",
            &json!({"id": "/keep", "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 2})
                .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let tasks = stride.wait_running("/keep", 2).await;
    let mut ids: Vec<String> = tasks
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let pids = stride.live_task_pids();
    assert_eq!(pids.len(), 2);
    let (_, info) = stride.get("/v2/info").await;
    let framework_id = info["frameworkId"].as_str().unwrap().to_owned();

    stride.kill9();
    let master_state = format!(
        "http://127.0.0.1:{}/master/state",
        stride.master_port.unwrap()
    );
    let state_of = |http: reqwest::Client, url: String| async move {
        http.get(url)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    eventually("the master to notice the scheduler is gone", || {
        let fetch = state_of(stride.http.clone(), master_state.clone());
        async move { (fetch.await["frameworks"][0]["active"] == false).then_some(()) }
    })
    .await;
    assert!(
        pids.iter().all(|pid| process_alive(*pid)),
        "tasks survive the scheduler"
    );

    stride.launch().await;
    let state = eventually("the scheduler to re-attach", || {
        let fetch = state_of(stride.http.clone(), master_state.clone());
        async move {
            let state = fetch.await;
            (state["frameworks"][0]["active"] == true).then_some(state)
        }
    })
    .await;
    assert_eq!(state["frameworks"].as_array().unwrap().len(), 1, "{state}");
    assert_eq!(
        state["frameworks"][0]["id"],
        framework_id.as_str(),
        "the same framework"
    );
    let tasks = stride.wait_running("/keep", 2).await;
    let mut again: Vec<String> = tasks
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    again.sort();
    assert_eq!(again, ids, "the same tasks");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(stride.live_task_pids(), pids, "nothing restarted or added");
}

/// Marathon's "orchestrates other frameworks": a second Stride, launched as an app of the first,
/// registers with the same master and runs its own app there.
#[tokio::test]
async fn a_stride_app_is_a_framework_of_the_same_master() {
    let stride = Stride::start_remote(&[
        "--agent-resources",
        "cpus:4;mem:4096;disk:1000;ports:[31000-31100]",
    ])
    .await;
    let master_url = format!("http://127.0.0.1:{}", stride.master_port.unwrap());
    let inner_cmd = format!(
        "{} --master {master_url} --http-address 127.0.0.1:$PORT0 --data-dir inner-data --framework-name inner",
        env!("CARGO_BIN_EXE_stride")
    );
    let (status, body) = stride
        .post(
            "/v2/apps",
            &json!({"id": "/inner", "cmd": inner_cmd, "cpus": 0.5, "mem": 256, "instances": 1,
                    "env": {"RUST_LOG": "info"}})
            .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let task = stride.wait_running("/inner", 1).await.remove(0);
    let inner = format!("http://127.0.0.1:{}", task["ports"][0]);
    let http = stride.http.clone();
    eventually("the inner Stride to answer", || {
        let request = http.get(format!("{inner}/ping")).send();
        async move {
            request
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        }
    })
    .await;
    let created = http
        .post(format!("{inner}/v2/apps"))
        .json(&json!({"id": "/nested", "cmd": "sleep 600", "cpus": 0.1, "mem": 16}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    eventually("the inner Stride's app to run", || {
        let request = http.get(format!("{inner}/v2/apps/nested")).send();
        async move {
            let app: Value = request.await.ok()?.json().await.ok()?;
            (app["app"]["tasksRunning"] == 1).then_some(())
        }
    })
    .await;
    let frameworks: Value = http
        .get(format!("{master_url}/master/frameworks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut names: Vec<(String, usize)> = frameworks["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let running = f["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["state"] == "TASK_RUNNING")
                .count();
            (f["name"].as_str().unwrap().to_owned(), running)
        })
        .collect();
    names.sort();
    assert_eq!(names, [("inner".to_owned(), 1), ("stride".to_owned(), 1)]);
}
