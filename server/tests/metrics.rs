//! `/metrics` in Marathon's JSON and names, `/metrics/prometheus` checked by `promtool`, and
//! the StatsD and Graphite push reporters received on loopback.

mod common;

use common::{eventually, Stride, WAIT};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

fn counter(metrics: &Value, name: &str) -> u64 {
    metrics["counters"][name]["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name}"))
}

fn gauge(metrics: &Value, name: &str) -> f64 {
    metrics["gauges"][name]["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("no gauge {name}"))
}

#[tokio::test]
async fn metrics_use_marathons_names_and_count_what_happens() {
    let stride = Stride::start().await;
    let (status, _) = stride
        .post(
            "/v2/apps",
            &json!({"id": "/measured", "cmd": "sleep 600", "cpus": 0.01, "mem": 16}).to_string(),
        )
        .await;
    assert_eq!(status, 201);
    stride.wait_running("/measured", 1).await;
    let (status, _) = stride.get("/v2/apps/nothing-here").await;
    assert_eq!(status, 404);
    let _stream = stride.events("", None).await;

    let metrics = eventually("the launch and the open stream counted", || async {
        let (_, metrics) = stride.get("/metrics").await;
        (gauge(&metrics, "marathon.instances.running.gauge") == 1.0
            && gauge(&metrics, "marathon.http.event-streams.active.gauge") == 1.0)
            .then_some(metrics)
    })
    .await;
    assert_eq!(metrics["version"], "4.0.0");
    assert_eq!(gauge(&metrics, "marathon.apps.active.gauge"), 1.0);
    assert_eq!(gauge(&metrics, "marathon.groups.active.gauge"), 1.0);
    assert_eq!(gauge(&metrics, "marathon.deployments.active.gauge"), 0.0);
    assert!(gauge(&metrics, "marathon.uptime.gauge.seconds") > 0.0);
    assert!(gauge(&metrics, "marathon.process.memory.resident.gauge.bytes") > 1e6);
    assert_eq!(counter(&metrics, "marathon.tasks.launched.counter"), 1);
    assert_eq!(counter(&metrics, "marathon.deployments.counter"), 1);
    assert!(counter(&metrics, "marathon.mesos.offers.incoming.counter") >= 1);
    assert_eq!(counter(&metrics, "marathon.mesos.offers.used.counter"), 1);
    assert_eq!(
        counter(&metrics, "marathon.deployments.dismissed.counter"),
        0
    );
    assert!(counter(&metrics, "marathon.mesos.task-updates.task-running.counter") >= 1);
    assert_eq!(
        counter(
            &metrics,
            "marathon.http.routes.v2-apps.responses.201.counter"
        ),
        1
    );
    assert_eq!(
        counter(
            &metrics,
            "marathon.http.routes.v2-apps-path.responses.404.counter"
        ),
        1
    );
    assert!(counter(&metrics, "marathon.events.published.counter") >= 5);
    assert!(
        counter(
            &metrics,
            "marathon.http.responses.event-stream.size.counter.bytes"
        ) > 0
    );
    let requests = &metrics["timers"]["marathon.http.requests.duration.timer.seconds"];
    assert!(requests["count"].as_u64().unwrap() >= 3, "{requests}");
    assert_eq!(requests["duration_units"], "seconds");
    assert!(
        requests["p99"].as_f64().unwrap() < 5.0,
        "seconds, not nanoseconds"
    );
    let four = &metrics["meters"]["marathon.http.responses.4xx.rate.meter"];
    assert!(four["count"].as_u64().unwrap() >= 1);
    assert_eq!(four["units"], "events/second");
    assert!(
        metrics["timers"]["marathon.store.commit.duration.timer.seconds"]["count"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );

    let renamed = Stride::start_with(&["--metrics-name-prefix", "stride"]).await;
    let (_, metrics) = renamed.get("/metrics").await;
    assert_eq!(gauge(&metrics, "stride.apps.active.gauge"), 0.0);
    assert!(metrics["gauges"]
        .as_object()
        .unwrap()
        .keys()
        .all(|k| k.starts_with("stride.")));
}

/// `promtool check metrics` on a text; its complaints, one per line.
fn promtool(text: &str) -> (i32, Vec<String>) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; `cargo xtask test` installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (
        output.status.code().unwrap_or(-1),
        said.lines().map(str::to_string).collect(),
    )
}

#[tokio::test]
async fn the_prometheus_text_passes_promtool() {
    let stride = Stride::start().await;
    stride.get("/v2/apps").await;
    let response = stride
        .http
        .get(stride.url("/metrics/prometheus"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    assert!(
        text.contains("# TYPE marathon_apps_active_gauge gauge\nmarathon_apps_active_gauge 0\n")
    );
    assert!(text.contains("marathon_http_requests_duration_timer_seconds{quantile=\"0.99\"}"));

    let (code, complaints) = promtool(&text);
    // Exit 1 is a text promtool cannot parse; 3 is linting advice only.
    assert!(
        code == 0 || code == 3,
        "promtool exited {code}: {complaints:?}"
    );
    // Marathon's names end in their type (`_gauge`, `_counter`, a meter's count as
    // `_meter_count`), which the linter advises against; dashboards rely on them, so that
    // advice is the only one allowed.
    const MARATHONS_NAMING: [&str; 3] = [
        "metric name should not include type",
        "counter metrics should have \"_total\" suffix",
        "_meter_count non-histogram and non-summary metrics should not have \"_count\" suffix",
    ];
    let other: Vec<&String> = complaints
        .iter()
        .filter(|c| !MARATHONS_NAMING.iter().any(|advice| c.contains(advice)))
        .collect();
    assert!(other.is_empty(), "{other:#?}");
    // And the check can fail: a text without help lines is told so.
    let (_, bare) = promtool("# TYPE x gauge\nx 1\n");
    assert!(bare.iter().any(|c| c.contains("no help text")), "{bare:?}");

    let off = Stride::start_with(&["--disable-metrics-prometheus"]).await;
    let (status, body) = off.get("/metrics/prometheus").await;
    assert_eq!(status, 404);
    assert_eq!(body["message"], "Prometheus reporter is disabled");
}

#[tokio::test]
async fn statsd_and_graphite_receive_every_metric() {
    let statsd = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let graphite = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let statsd_address = statsd.local_addr().unwrap().to_string();
    let graphite_address = graphite.local_addr().unwrap().to_string();
    let _stride = Stride::start_with(&[
        "--metrics-statsd",
        &statsd_address,
        "--metrics-statsd-tags",
        "env:test,team:core",
        "--metrics-graphite",
        &graphite_address,
        "--metrics-interval-seconds",
        "0.3",
    ])
    .await;

    let mut datagram = vec![0u8; 2048];
    let lines = tokio::time::timeout(WAIT, async {
        let mut lines = Vec::new();
        while !lines
            .iter()
            .any(|l: &String| l.starts_with("marathon.uptime.gauge.seconds:"))
        {
            let (n, _) = statsd.recv_from(&mut datagram).await.unwrap();
            assert!(n <= 508, "a datagram of {n} bytes");
            let text = String::from_utf8_lossy(&datagram[..n]).to_string();
            lines.extend(text.lines().map(str::to_string));
        }
        lines
    })
    .await
    .expect("StatsD datagrams");
    assert!(
        lines.contains(&"marathon.apps.active.gauge:0|g|#env:test,team:core".to_string()),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| l.ends_with("|g|#env:test,team:core")));

    // Graphite: lines of name, value and time; after the connection breaks, a new one.
    for connection in 0..2 {
        let (stream, _) = tokio::time::timeout(WAIT, graphite.accept())
            .await
            .expect("a connection from Stride")
            .unwrap();
        let mut reader = tokio::io::BufReader::new(stream);
        let mut line = String::new();
        let found = tokio::time::timeout(WAIT, async {
            loop {
                line.clear();
                if reader.read_line(&mut line).await.unwrap() == 0 {
                    panic!("the connection closed");
                }
                if line.starts_with("marathon.uptime.gauge.seconds ") {
                    return line.clone();
                }
            }
        })
        .await
        .expect("the uptime in Graphite's format");
        let fields: Vec<&str> = found.split_whitespace().collect();
        assert_eq!(fields.len(), 3, "{found}");
        assert!(fields[1].parse::<f64>().is_ok());
        let now = chrono::Utc::now().timestamp();
        assert!(
            (fields[2].parse::<i64>().unwrap() - now).abs() < 60,
            "{found}"
        );
        // Dropping the connection: Stride notices at a later write and reconnects.
        drop(reader);
        if connection == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
