//! Benchmarks of the built-in load balancer (run with `cargo xtask bench`; ignored in normal
//! test runs), recorded in BENCHMARKS.md:
//!
//! - requests per second and latency (p50, p99) through a service port versus straight to the
//!   task's host port: `wrk` (Debian's) with 64 keep-alive connections against one task running
//!   Debian's nginx, and with one connection (where nothing queues, so the difference in
//!   latency is what the balancer adds);
//! - how long a task that starts failing its health check keeps getting requests through the
//!   balancer.

mod common;

use common::{eventually, Stride};
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

/// One nginx worker answering `200 ok` to everything on `$PORT0`, its files in the sandbox.
const NGINX: &str = r#"cat > nginx.conf <<EOF
worker_processes 1;
daemon off;
pid $PWD/nginx.pid;
error_log stderr;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $PWD/tmp;
  server { listen 127.0.0.1:$PORT0 backlog=1024; location / { return 200 "ok"; } }
}
EOF
mkdir -p tmp && exec /usr/sbin/nginx -p "$PWD" -c "$PWD/nginx.conf""#;

/// What one `wrk` run measured.
#[derive(Debug)]
struct Measured {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Runs `wrk` for 10 s with `connections` on as many threads (at most 2) against `url`.
fn wrk(url: &str, connections: u32) -> Measured {
    let threads = connections.min(2);
    let output = Command::new("wrk")
        .args([
            &format!("-t{threads}"),
            &format!("-c{connections}"),
            "-d10s",
            "--latency",
            url,
        ])
        .output()
        .expect("running wrk (the bench installs Debian's wrk)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "wrk failed: {text}");
    let field = |prefix: &str| -> String {
        text.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in wrk's output: {text}"))
            .trim()
            .to_string()
    };
    Measured {
        requests_per_second: field("Requests/sec:").parse().unwrap(),
        p50_ms: milliseconds(&field("50%")),
        p99_ms: milliseconds(&field("99%")),
    }
}

/// `wrk`'s durations (`512.00us`, `1.23ms`, `2.00s`) in milliseconds.
fn milliseconds(text: &str) -> f64 {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().unwrap();
    match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        other => panic!("unknown unit {other} in {text}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_load_balancer_throughput_and_latency() {
    let stride = Stride::start_with(&[
        "--lb-address",
        "127.0.0.1",
        "--local-port-min",
        "10600",
        "--local-port-max",
        "10610",
    ])
    .await;
    let (status, body) = stride
        .post(
            "/v2/apps",
            &json!({"id": "/nginx", "cmd": NGINX, "cpus": 0.5, "mem": 64}).to_string(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let task = stride.wait_running("/nginx", 1).await.remove(0);
    let host_port = task["ports"][0].as_u64().unwrap();
    let direct_url = format!("http://127.0.0.1:{host_port}/");
    let balanced_url = "http://127.0.0.1:10600/";
    let http = reqwest::Client::new();
    for url in [direct_url.as_str(), balanced_url] {
        eventually(&format!("{url} answering"), || async {
            http.get(url)
                .send()
                .await
                .ok()?
                .status()
                .is_success()
                .then_some(())
        })
        .await;
    }
    let direct = wrk(&direct_url, 64);
    let balanced = wrk(balanced_url, 64);
    println!(
        "BENCH load balancer, 64 connections: {:.0} requests/s through it vs {:.0} straight to \
         the task ({:.0} %); p50 {:.3} ms vs {:.3} ms (+{:.3} ms), p99 {:.3} ms vs {:.3} ms",
        balanced.requests_per_second,
        direct.requests_per_second,
        100.0 * balanced.requests_per_second / direct.requests_per_second,
        balanced.p50_ms,
        direct.p50_ms,
        balanced.p50_ms - direct.p50_ms,
        balanced.p99_ms,
        direct.p99_ms,
    );
    // One connection: nothing queues, so the difference is what the balancer adds.
    let direct = wrk(&direct_url, 1);
    let balanced = wrk(balanced_url, 1);
    println!(
        "BENCH load balancer, 1 connection: p50 {:.3} ms vs {:.3} ms (+{:.3} ms), p99 {:.3} ms \
         vs {:.3} ms; {:.0} vs {:.0} requests/s",
        balanced.p50_ms,
        direct.p50_ms,
        balanced.p50_ms - direct.p50_ms,
        balanced.p99_ms,
        direct.p99_ms,
        balanced.requests_per_second,
        direct.requests_per_second,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_failing_health_check_to_out_of_rotation() {
    const TRIALS: usize = 5;
    let stride = Stride::start_with(&[
        "--lb-address",
        "127.0.0.1",
        "--local-port-min",
        "10610",
        "--local-port-max",
        "10620",
    ])
    .await;
    let app = json!({
        "id": "/web", "cmd": common::DRAINING_WEB_SERVER, "cpus": 0.05, "mem": 32, "instances": 2,
        "healthChecks": [{"protocol": "HTTP", "path": "/id", "portIndex": 0, "gracePeriodSeconds": 30,
                          "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 1000}]
    });
    let (status, body) = stride.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = "http://127.0.0.1:10610/id";
    let mut took = Vec::new();
    for _ in 0..TRIALS {
        let tasks: Vec<String> = stride.wait_healthy("/web", 2).await.into_iter().collect();
        // Both in the rotation again before the next trial.
        eventually("both tasks answering", || async {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..20 {
                let response = client.get(url).send().await.ok()?;
                (response.status() == 200).then_some(())?;
                seen.insert(response.text().await.ok()?);
            }
            (seen.len() == 2).then_some(())
        })
        .await;
        let healthy_file = stride.sandbox(&tasks[0]).join("healthy");
        let failing_since = Instant::now();
        std::fs::remove_file(&healthy_file).unwrap();
        // The failing task answers 503; the last 503 is the last request it got.
        let mut last_failure = failing_since;
        while last_failure.elapsed() < Duration::from_secs(3) {
            let response = client.get(url).send().await.unwrap();
            if response.status() == 503 {
                last_failure = Instant::now();
            }
        }
        took.push(last_failure - failing_since);
        std::fs::File::create(&healthy_file).unwrap();
    }
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "BENCH failing health check to out of the rotation: median {:.0} ms (min {:.0}, max {:.0}) \
         over {TRIALS} trials, HTTP check every 1 s",
        ms(took[TRIALS / 2]),
        ms(took[0]),
        ms(took[TRIALS - 1]),
    );
}
