//! Container benchmarks (run with `cargo xtask bench`; ignored in normal test runs): MESOS
//! container tasks from a cached image beside plain commands, and a cold pull from the loopback
//! registry. Each prints its figure; BENCHMARKS.md records them.

mod common;

use common::images::{build_image, build_padded_image, Registry};
use common::{Stride, WAIT};
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const TASKS: usize = 100;

/// Seconds from the POST of `app` to `count` of its tasks RUNNING, counted off the event
/// stream; then the app is deleted and its removal waited out.
async fn post_until_running(stride: &Stride, app: Value, count: usize) -> Duration {
    let id = app["id"].as_str().unwrap().to_owned();
    let mut updates = stride.events("?event_type=status_update_event", None).await;
    let started = Instant::now();
    let (status, body) = stride.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let mut running = 0;
    while running < count {
        let event = tokio::time::timeout(WAIT, updates.next())
            .await
            .expect("status updates keep coming")
            .expect("the event stream stays open");
        let update: Value = serde_json::from_str(&event.data).unwrap();
        if update["appId"] == id.as_str() && update["taskStatus"] == "TASK_RUNNING" {
            running += 1;
        }
    }
    let took = started.elapsed();
    let (status, _) = stride.delete(&format!("/v2/apps{id}?force=true")).await;
    assert_eq!(status, 200);
    common::eventually("the app's removal is done", || async {
        let (_, deployments) = stride.get("/v2/deployments").await;
        deployments.as_array()?.is_empty().then_some(())
    })
    .await;
    took
}

fn app(id: &str, instances: usize, image: Option<&str>) -> Value {
    let mut app = json!({
        "id": id, "cmd": "exec sleep 3600", "cpus": 0.01, "mem": 8,
        "instances": instances, "portDefinitions": []
    });
    if let Some(image) = image {
        app["container"] = json!({"type": "MESOS", "docker": {"image": image}});
    }
    app
}

/// POST to 100 RUNNING container tasks of a cached image, beside 100 plain commands.
#[tokio::test]
#[ignore]
async fn bench_100_container_tasks_from_a_cached_image_vs_100_commands() {
    let built = tempfile::tempdir().unwrap();
    let layout = build_image(built.path());
    let registry = Registry::start(None).await;
    let image = registry.push(&layout, "bench/busybox:1", None);
    let stride = Stride::start_with(&[
        "--insecure-registry",
        &registry.address(),
        "--agent-resources",
        "cpus:16;mem:16384;disk:10000",
    ])
    .await;
    // One task puts the image in the store; the runs below start from the cache.
    post_until_running(&stride, app("/warm", 1, Some(&image)), 1).await;
    for round in 1..=3 {
        let commands = post_until_running(&stride, app("/commands", TASKS, None), TASKS).await;
        let containers =
            post_until_running(&stride, app("/containers", TASKS, Some(&image)), TASKS).await;
        println!(
            "BENCH containers (round {round}): {TASKS} MESOS container tasks RUNNING in {:.2} s, \
             {TASKS} commands in {:.2} s ({:.1}x)",
            containers.as_secs_f64(),
            commands.as_secs_f64(),
            containers.as_secs_f64() / commands.as_secs_f64()
        );
    }
}

/// POST to RUNNING for an image of 10 MB that is not in the store, beside the same image once
/// it is: the difference is the pull (manifest, config, layers checked and unpacked).
#[tokio::test]
#[ignore]
async fn bench_cold_pull_of_a_10_mb_image() {
    let registry = Registry::start(None).await;
    for round in 1..=3 {
        let built = tempfile::tempdir().unwrap();
        // Busybox is about 1 MB (compressed); the rest is incompressible padding.
        let layout = build_padded_image(built.path(), 9 * 1024 * 1024);
        let image = registry.push(&layout, &format!("bench/ten-mb:{round}"), None);
        let blobs: u64 = registry
            .blobs()
            .iter()
            .map(|blob| std::fs::metadata(blob).unwrap().len())
            .max()
            .unwrap();
        let stride = Stride::start_with(&["--insecure-registry", &registry.address()]).await;
        let cold = post_until_running(&stride, app("/cold", 1, Some(&image)), 1).await;
        let warm = post_until_running(&stride, app("/warm", 1, Some(&image)), 1).await;
        println!(
            "BENCH cold pull (round {round}): image with a {:.1} MB layer RUNNING in {:.3} s \
             cold, {:.3} s cached: the pull took {:.3} s",
            blobs as f64 / 1e6,
            cold.as_secs_f64(),
            warm.as_secs_f64(),
            (cold.saturating_sub(warm)).as_secs_f64()
        );
    }
}
