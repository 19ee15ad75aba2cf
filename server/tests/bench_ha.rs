//! HA benchmarks (run with `cargo xtask bench`, which starts a throwaway Postgres; ignored in
//! normal test runs): how long a failover takes, what a standby's proxy costs, and how long a
//! new leader takes to load a large state. Each prints its figures; BENCHMARKS.md records them.

mod common;

use app::model::{AppDefinition, AppUpdate, Timestamp};
use common::cluster::{postgres_database, Cluster};
use rand::SeedableRng;
use serde_json::json;
use server::scheduler::instance::{Condition, Instance, Placement};
use server::store::{Batch, Store};
use std::time::{Duration, Instant};

/// The value below which a fraction `q` of the sorted `samples` lie.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Failover time over 50 `kill -9`s of the leader of three Strides: from the kill until every
/// surviving Stride names the new leader (which then serves).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn bench_failover_over_50_kills() {
    let mut cluster = Cluster::on_one_database(3, Duration::from_secs(5)).await;
    let (mut leader, _) = cluster.wait_for_leader(None, Duration::from_secs(10)).await;
    cluster.create_app(leader, json!({"id": "/steady", "cmd": "sleep 100000", "instances": 10, "cpus": 0.01, "mem": 8})).await;
    let mut times = Vec::new();
    for _ in 0..50 {
        cluster.kill9(leader);
        let (next, took) = cluster
            .wait_for_leader(Some(leader), Duration::from_secs(10))
            .await;
        // The new leader answers a request of its own, not only names itself.
        let (status, _) = cluster.get(next, "/v2/apps/steady").await.unwrap();
        assert_eq!(status, 200);
        times.push(took);
        cluster.launch(leader).await;
        leader = next;
    }
    times.sort();
    println!(
        "BENCH failover over 50 kills (lease 5 s): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        millis(quantile(&times, 0.5)),
        millis(quantile(&times, 0.99)),
        millis(*times.last().unwrap())
    );
}

/// `GET /v2/apps` latency asked of the leader and asked of a standby (which proxies it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn bench_api_latency_through_a_standby() {
    let cluster = Cluster::on_one_database(2, Duration::from_secs(5)).await;
    let (leader, _) = cluster.wait_for_leader(None, Duration::from_secs(10)).await;
    let standby = 1 - leader;
    for i in 0..20 {
        let (status, _) = cluster
            .send(
                leader,
                reqwest::Method::POST,
                "/v2/apps",
                &json!({"id": format!("/app-{i}"), "cmd": "sleep 1", "instances": 0}).to_string(),
            )
            .await
            .unwrap();
        assert_eq!(status, 201);
    }
    for (label, node) in [("leader", leader), ("standby", standby)] {
        let mut samples = Vec::new();
        for _ in 0..2000 {
            let started = Instant::now();
            let (status, _) = cluster.get(node, "/v2/apps").await.unwrap();
            samples.push(started.elapsed());
            assert_eq!(status, 200);
        }
        samples.sort();
        println!(
            "BENCH GET /v2/apps (20 apps) asked of the {label}: p50 {:.2} ms, p99 {:.2} ms",
            millis(quantile(&samples, 0.5)),
            millis(quantile(&samples, 0.99))
        );
    }
}

/// An instance of `app` running on a simulated agent.
fn running(app: &AppDefinition, name: &str) -> Instance {
    let t = Timestamp::from_millis(20);
    let mut i = Instance::scheduled(&app.id, name, app.version, app.config_version(), t);
    i.condition = Condition::Running;
    i.placement = Some(Placement {
        agent_id: format!("agent-{}", name.len()),
        hostname: "host-1".into(),
        ports: vec![],
        attributes: vec![],
    });
    i.staged_at = Some(t);
    i.started_at = Some(t);
    i
}

/// What a new leader does before it serves: the state read from Postgres and the scheduler
/// built from it, for 10,000 apps and 100,000 instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_load_of_10000_apps_and_100000_instances() {
    let url = postgres_database().await;
    let store = Store::open(&url).await.unwrap();
    for chunk in 0..10 {
        let mut batch = Batch::default();
        for a in 0..1000 {
            let app = AppDefinition::create(
                format!("/group-{chunk}/app-{a}"),
                AppUpdate {
                    cmd: Some("sleep 100000".into()),
                    instances: Some(10),
                    cpus: Some(0.1),
                    mem: Some(32.0),
                    ..AppUpdate::default()
                },
                Timestamp::from_millis(10),
            );
            for i in 0..10 {
                batch.instances_put.push(running(&app, &format!("{a}-{i}")));
            }
            batch.apps_put.push(app);
        }
        let started = Instant::now();
        store.commit(&batch).await.unwrap();
        if chunk == 0 {
            println!(
                "BENCH one write of 1,000 apps and 10,000 instances: {:.0} ms",
                millis(started.elapsed())
            );
        }
    }
    let mut runs = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let reopened = Store::open(&url).await.unwrap();
        let loaded = reopened.load().await.unwrap();
        let read = started.elapsed();
        assert_eq!(
            (loaded.apps.len(), loaded.instances.len()),
            (10_000, 100_000)
        );
        let core = server::core::Core::new(loaded, rand::rngs::StdRng::seed_from_u64(1));
        let snapshot = core.snapshot();
        let total = started.elapsed();
        assert_eq!(snapshot.apps.len(), 10_000);
        runs.push((read, total));
    }
    runs.sort();
    let (read, total) = runs[runs.len() / 2];
    println!(
        "BENCH load of 10,000 apps and 100,000 instances from Postgres (median of 3): read {:.0} ms, with the scheduler built {:.0} ms",
        millis(read),
        millis(total)
    );
}
