//! High availability: several Strides on one Postgres and one `stride master`, all on
//! loopback. The leader is killed while deployments run, Postgres goes away and comes back, one
//! Stride is cut off from Postgres alone; through all of it no task is restarted that a
//! deployment did not replace, and standbys answer for the leader.

mod common;

use common::cluster::Cluster;
use common::gate::{self, Gate, Mode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LEASE: Duration = Duration::from_secs(2);

/// One test at a time: each runs several Strides, a master and tasks on a 2-core machine, and
/// their timing is what is tested.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// A new leader must be serving within the lease time and a second more.
const FAILOVER_LIMIT: Duration = Duration::from_secs(3);

/// Tasks that take a second to stop, so that a rolling upgrade of four is under way for a few
/// seconds: long enough to kill its leader in the middle.
fn rolling_app(round: usize) -> String {
    json!({
        "id": "/rolling",
        "cmd": "trap 'sleep 1; exit 0' TERM; while true; do sleep 0.2; done",
        "instances": 4,
        "cpus": 0.01,
        "mem": 8,
        "env": {"ROUND": round.to_string()},
        "taskKillGracePeriodSeconds": 5,
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0}
    })
    .to_string()
}

fn ids_of(tasks: &[(String, String)], prefix: &str) -> BTreeSet<String> {
    tasks
        .iter()
        .filter(|(id, _)| id.starts_with(prefix))
        .map(|(id, _)| id.clone())
        .collect()
}

/// A live node other than `not`.
fn another(cluster: &Cluster, not: usize) -> usize {
    (0..cluster.nodes.len())
        .find(|i| *i != not && cluster.is_running(*i))
        .expect("a live node")
}

async fn wait_deployments_done(cluster: &Cluster, via: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((200, Value::Array(deployments))) = cluster.get(via, "/v2/deployments").await {
            if deployments.is_empty() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the deployments did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The tasks of `/rolling` as Stride reports them: `(id, ROUND of its version)`.
async fn rolling_tasks(cluster: &Cluster, via: usize) -> Vec<(String, String, String)> {
    let Some((200, body)) = cluster.get(via, "/v2/apps/rolling?embed=apps.tasks").await else {
        return Vec::new();
    };
    let version = body["app"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    body["app"]["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["id"].as_str().unwrap_or_default().to_string(),
                t["version"].as_str().unwrap_or_default().to_string(),
                version.clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leader_during_deployments_loses_nothing_and_restarts_nothing() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::on_one_database(3, LEASE).await;
    let (mut leader, _) = cluster.wait_for_leader(None, Duration::from_secs(10)).await;
    let standby = another(&cluster, leader);

    // Through a standby: the proxy carries writes to the leader.
    cluster
        .create_app(
            standby,
            json!({"id": "/steady", "cmd": "sleep 100000", "instances": 3, "cpus": 0.01, "mem": 8}),
        )
        .await;
    let (status, body) = cluster
        .send(standby, reqwest::Method::POST, "/v2/apps", &rolling_app(0))
        .await
        .expect("an answer");
    assert_eq!(status, 201, "{body}");
    wait_deployments_done(&cluster, standby).await;
    let steady = ids_of(&cluster.master_tasks().await, "steady.");
    assert_eq!(steady.len(), 3);

    // Every task of /rolling ever seen alive, and the most alive at once.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let most_at_once = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let watcher = {
        let (stop, most_at_once, seen) = (stop.clone(), most_at_once.clone(), seen.clone());
        let http = cluster.http.clone();
        let state = format!("http://127.0.0.1:{}/master/state", cluster.master_port);
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(r) = http.get(&state).send().await {
                    let state: Value = r.json().await.unwrap_or_default();
                    let live: Vec<String> = state["frameworks"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|f| f["tasks"].as_array().cloned().unwrap_or_default())
                        .filter(|t| {
                            t["id"]
                                .as_str()
                                .is_some_and(|id| id.starts_with("rolling."))
                        })
                        .filter(|t| t["state"] != "TASK_FINISHED" && t["state"] != "TASK_KILLED")
                        .filter_map(|t| t["id"].as_str().map(str::to_string))
                        .collect();
                    most_at_once.fetch_max(live.len(), Ordering::Relaxed);
                    seen.lock().unwrap().extend(live);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    const ROUNDS: usize = 20;
    let mut failovers = Vec::new();
    for round in 1..=ROUNDS {
        let via = another(&cluster, leader);
        let (status, body) = cluster
            .send(
                via,
                reqwest::Method::PUT,
                "/v2/apps/rolling",
                &rolling_app(round),
            )
            .await
            .expect("an answer");
        assert_eq!(status, 200, "round {round}: {body}");
        // Somewhere in the upgrade's first two seconds.
        tokio::time::sleep(Duration::from_millis(200 + (round as u64 * 97) % 1500)).await;
        cluster.kill9(leader);
        let (next, took) = cluster.wait_for_leader(Some(leader), FAILOVER_LIMIT).await;
        failovers.push(took);
        let killed = leader;
        leader = next;
        cluster.launch(killed).await;

        wait_deployments_done(&cluster, another(&cluster, leader)).await;
        let tasks = rolling_tasks(&cluster, another(&cluster, leader)).await;
        assert_eq!(tasks.len(), 4, "round {round}: {tasks:?}");
        assert!(
            tasks.iter().all(|(_, version, current)| version == current),
            "round {round}: every task runs the new version: {tasks:?}"
        );
        assert_eq!(
            ids_of(&cluster.master_tasks().await, "steady."),
            steady,
            "round {round}: no task of an app the deployments do not touch is restarted"
        );
    }
    stop.store(true, Ordering::Relaxed);
    watcher.await.unwrap();

    let (_, app) = cluster
        .get(another(&cluster, leader), "/v2/apps/rolling")
        .await
        .unwrap();
    assert_eq!(
        app["app"]["env"]["ROUND"],
        ROUNDS.to_string(),
        "the last definition is the app's"
    );
    let (_, versions) = cluster
        .get(another(&cluster, leader), "/v2/apps/rolling/versions")
        .await
        .unwrap();
    assert_eq!(
        versions["versions"].as_array().map(Vec::len),
        Some(ROUNDS + 1),
        "no definition is lost"
    );
    assert!(
        most_at_once.load(Ordering::Relaxed) <= 4,
        "maximumOverCapacity 0 allows 4 tasks at once; the master ran {}",
        most_at_once.load(Ordering::Relaxed)
    );
    let launched = seen.lock().unwrap().len();
    assert!(
        launched <= 4 * (ROUNDS + 1),
        "only the upgrades replace tasks: {launched} tasks for {ROUNDS} upgrades of 4"
    );
    eprintln!("failover times: {failovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_postgres_the_leader_steps_down_and_tasks_run_on() {
    let _serial = SERIAL.lock().await;
    let database = common::cluster::postgres_database().await;
    let upstream = gate::address_of(&database);
    let gates = vec![Gate::start(upstream).await, Gate::start(upstream).await];
    let stores = gates.iter().map(|g| g.url_for(&database)).collect();
    let cluster = Cluster::start(stores, LEASE).await;
    let (leader, _) = cluster.wait_for_leader(None, Duration::from_secs(10)).await;
    cluster
        .create_app(
            leader,
            json!({"id": "/steady", "cmd": "sleep 100000", "instances": 2, "cpus": 0.01, "mem": 8}),
        )
        .await;
    wait_deployments_done(&cluster, leader).await;
    let steady = ids_of(&cluster.master_tasks().await, "steady.");
    assert_eq!(steady.len(), 2);

    // Postgres is gone for every Stride.
    for gate in &gates {
        gate.set(Mode::Closed);
    }
    let stepped_down = Instant::now();
    loop {
        let info = cluster.get(leader, "/v2/info").await;
        if matches!(info, Some((503, _))) {
            break;
        }
        assert!(
            stepped_down.elapsed() < LEASE + Duration::from_secs(5),
            "the leader did not step down without its store: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ids_of(&cluster.master_tasks().await, "steady."),
        steady,
        "the tasks run on without a leader"
    );
    tokio::time::sleep(LEASE).await;
    for gate in &gates {
        gate.set(Mode::Open);
    }
    let (leader, took) = cluster
        .wait_for_leader(None, LEASE + Duration::from_secs(5))
        .await;
    eprintln!("a leader {took:?} after Postgres came back");
    wait_deployments_done(&cluster, leader).await;
    assert_eq!(ids_of(&cluster.master_tasks().await, "steady."), steady);

    // Now only the leader is cut off; the other Stride still reaches Postgres.
    gates[leader].set(Mode::Blackhole);
    let cut_off = leader;
    let (leader, took) = cluster
        .wait_for_leader_among(
            &[another(&cluster, cut_off)],
            Some(cut_off),
            LEASE + Duration::from_secs(1),
        )
        .await;
    assert_ne!(leader, cut_off);
    eprintln!("the other Stride took over {took:?} after the leader was cut off");
    let info = cluster.get(cut_off, "/v2/info").await;
    assert!(
        !matches!(info, Some((200, ref body)) if body["leader"] == format!("127.0.0.1:{}", cluster.nodes[cut_off].port)),
        "the cut-off Stride no longer leads: {info:?}"
    );
    assert_eq!(ids_of(&cluster.master_tasks().await, "steady."), steady);
    gates[cut_off].set(Mode::Open);
    let (after, _) = cluster.wait_for_leader(None, Duration::from_secs(10)).await;
    assert_eq!(after, leader, "the Stride back from the cut-off stands by");
    assert_eq!(ids_of(&cluster.master_tasks().await, "steady."), steady);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standbys_proxy_abdication_hands_over_and_the_event_stream_continues() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::on_one_database(2, LEASE).await;
    let (leader, _) = cluster.wait_for_leader(None, Duration::from_secs(10)).await;
    let standby = another(&cluster, leader);
    let response = cluster
        .http
        .get(cluster.url(standby, "/v2/info"))
        .header("x-forwarded-for", "10.1.2.3")
        .send()
        .await
        .unwrap();
    let leader_address = format!("127.0.0.1:{}", cluster.nodes[leader].port);
    assert_eq!(
        response.headers()["x-marathon-leader"],
        format!("http://{leader_address}").as_str()
    );
    assert_eq!(
        response.headers()["x-marathon-via"],
        format!("1.1 127.0.0.1:{}", cluster.nodes[standby].port).as_str()
    );
    let info: Value = response.json().await.unwrap();
    assert_eq!(info["elected"], true);
    assert_eq!(info["leader"], leader_address.as_str());
    assert_eq!(info["marathon_config"]["ha"], true);

    // A loop is refused rather than followed.
    let looped = cluster
        .http
        .get(cluster.url(standby, "/v2/apps"))
        .header(
            "x-marathon-via",
            format!("1.1 127.0.0.1:{}", cluster.nodes[standby].port),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(looped.status(), 502);

    // The event stream through the standby is the leader's, and resumes across a handover.
    let events = cluster
        .http
        .get(cluster.url(standby, "/v2/events"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let (status, _) = cluster
        .send(
            standby,
            reqwest::Method::POST,
            "/v2/apps",
            &json!({"id": "/quiet", "cmd": "sleep 1", "instances": 0}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(status, 201);
    use eventsource_stream::Eventsource;
    use futures::StreamExt;
    let mut stream = events.bytes_stream().eventsource();
    let mut last_id = String::new();
    while let Some(Ok(event)) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("events through the standby")
    {
        if event.event == "api_post_event" {
            last_id = event.id;
            break;
        }
    }
    assert!(!last_id.is_empty());

    let (status, body) = cluster
        .send(standby, reqwest::Method::DELETE, "/v2/leader", "")
        .await
        .unwrap();
    assert_eq!(
        (status, body),
        (200, json!({"message": "Leadership abdicated"}))
    );
    let (next, _) = cluster
        .wait_for_leader(Some(leader), LEASE + Duration::from_secs(1))
        .await;
    assert_eq!(next, standby, "the other Stride takes over");
    assert!(cluster.is_running(leader), "the abdicated Stride stays up");

    let (status, _) = cluster
        .send(
            leader,
            reqwest::Method::POST,
            "/v2/apps",
            &json!({"id": "/quieter", "cmd": "sleep 1", "instances": 0}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "the old leader proxies to the new one");
    let resumed = cluster
        .http
        .get(cluster.url(leader, "/v2/events"))
        .header("accept", "text/event-stream")
        .header("last-event-id", &last_id)
        .send()
        .await
        .unwrap();
    let mut stream = resumed.bytes_stream().eventsource();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("resumed events")
        .expect("an event")
        .expect("a valid event");
    assert_eq!(
        first.id.parse::<u64>().unwrap(),
        last_id.parse::<u64>().unwrap() + 1,
        "the new leader continues the numbering: nothing missed, nothing twice"
    );
}
