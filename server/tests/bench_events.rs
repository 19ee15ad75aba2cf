//! The events benchmark (run with `cargo xtask bench`; ignored in normal test runs): SSE
//! clients and callback subscribers on loopback while Stride publishes events at a steady
//! rate. Prints the events each reader missed, the delivery lag's p50/p99, and the server's CPU
//! and memory. Sizes come from the environment: `STRIDE_BENCH_STREAMS` (1000),
//! `STRIDE_BENCH_CALLBACKS` (10), `STRIDE_BENCH_RATE` (10000 events/s), `STRIDE_BENCH_SECONDS`
//! (60), `STRIDE_BENCH_RING` (Stride's default ring); `STRIDE_BENCH_STATUS_PERCENT` (100) of
//! the events are status updates, and with `STRIDE_BENCH_FILTER=1` the streams ask only for
//! those; `STRIDE_BENCH_BATCH=1` subscribes the callbacks for batches.

use futures::StreamExt;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Lags in milliseconds, one bucket per millisecond up to a minute.
struct Lags(Vec<AtomicU64>);

impl Lags {
    fn new() -> Lags {
        Lags((0..=60_000).map(|_| AtomicU64::new(0)).collect())
    }

    fn record(&self, micros: i64) {
        let ms = (micros.max(0) / 1000).min(60_000) as usize;
        self.0[ms].fetch_add(1, Ordering::Relaxed);
    }

    fn quantile(&self, q: f64) -> u64 {
        let counts: Vec<u64> = self.0.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let target = (q * total as f64).ceil() as u64;
        let mut seen = 0;
        for (ms, n) in counts.iter().enumerate() {
            seen += n;
            if seen >= target.max(1) {
                return ms as u64;
            }
        }
        60_000
    }

    fn count(&self) -> u64 {
        self.0.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// What one reader saw: events, and the numbers it never got (gaps in the sequence).
#[derive(Default)]
struct Seen {
    events: u64,
    missed: u64,
    last: Option<u64>,
}

/// The number after `pattern` at each of its occurrences in `text`.
fn numbers_after<'a>(text: &'a str, pattern: &'a str) -> impl Iterator<Item = u64> + 'a {
    text.match_indices(pattern).filter_map(move |(at, _)| {
        let rest = &text[at + pattern.len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    })
}

/// Reads complete events of `text`: their numbers for gaps, their publication time for lags.
fn take_events(text: &str, seen: &mut Seen, lags: &Lags) {
    let now = chrono::Utc::now().timestamp_micros();
    for published in numbers_after(text, "\"message\":\"bench ") {
        lags.record(now - published as i64);
    }
    for n in numbers_after(text, "bench.instance-") {
        seen.events += 1;
        if let Some(last) = seen.last {
            seen.missed += n.saturating_sub(last + 1);
        }
        seen.last = Some(n);
    }
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    (ticks(11) + ticks(12)) / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

fn memory_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The event source, killed with the benchmark.
struct Source(Child);

impl Drop for Source {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

async fn receive_callback(
    axum::extract::State((seen, lags)): axum::extract::State<(Arc<Mutex<Seen>>, Arc<Lags>)>,
    body: String,
) {
    take_events(&body, &mut seen.lock().unwrap(), &lags);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_events_to_1000_streams_and_10_callbacks() {
    let streams = setting("STRIDE_BENCH_STREAMS", 1000);
    let callbacks = setting("STRIDE_BENCH_CALLBACKS", 10);
    let rate = setting("STRIDE_BENCH_RATE", 10_000);
    let seconds = setting("STRIDE_BENCH_SECONDS", 60);
    let ring = setting(
        "STRIDE_BENCH_RING",
        server::events::DEFAULT_RING_SIZE as u64,
    );
    let status_share = setting("STRIDE_BENCH_STATUS_PERCENT", 100) as f64 / 100.0;
    let filter = setting("STRIDE_BENCH_FILTER", 0) == 1;
    let batch = setting("STRIDE_BENCH_BATCH", 0) == 1;
    let source_bin = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples/event_source"))
        .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut source = Source(
        Command::new(&source_bin)
            .args([
                format!("127.0.0.1:{port}"),
                rate.to_string(),
                ring.to_string(),
                status_share.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", source_bin.display())),
    );
    let mut ready = String::new();
    BufReader::new(source.0.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    let pid = source.0.id();
    let http = reqwest::Client::new();

    let stream_lags = Arc::new(Lags::new());
    let callback_lags = Arc::new(Lags::new());
    let mut receivers = Vec::new();
    for _ in 0..callbacks {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/cb", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/cb", axum::routing::post(receive_callback))
            .with_state((seen.clone(), callback_lags.clone()));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let r = http
            .post(format!(
                "{base}/v2/eventSubscriptions?callbackUrl={url}&batch={batch}"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        receivers.push(seen);
    }
    let mut readers = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..streams {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let response = http
            .get(if filter {
                format!("{base}/v2/events?event_type=status_update_event")
            } else {
                format!("{base}/v2/events")
            })
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        let lags = stream_lags.clone();
        let reader = seen.clone();
        tasks.push(tokio::spawn(async move {
            let mut body = response.bytes_stream();
            let mut carry = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                carry.push_str(&String::from_utf8_lossy(&chunk));
                if let Some(end) = carry.rfind("\r\n\r\n") {
                    take_events(&carry[..end], &mut reader.lock().unwrap(), &lags);
                    carry.drain(..end + 4);
                }
            }
        }));
        readers.push(seen);
    }

    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    writeln!(source.0.stdin.as_mut().unwrap()).unwrap();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    let (rss, peak) = (memory_mib(pid, "VmRSS:"), memory_mib(pid, "VmHWM:"));
    let backlog: u64 = http
        .get(format!("{base}/stride/v1/event-subscribers"))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["backlog"].as_u64().unwrap_or(0))
        .sum();
    for task in &tasks {
        task.abort();
    }
    drop(source);

    let published = (rate as f64 * elapsed) as u64;
    println!(
        "status updates {:.0}% of the events; streams {}; callbacks {}",
        status_share * 100.0,
        if filter {
            "filtered to status updates"
        } else {
            "unfiltered"
        },
        if batch {
            "batched"
        } else {
            "one event per request"
        }
    );
    let summary = |name: &str, seen: &[Arc<Mutex<Seen>>], lags: &Lags| {
        let events: u64 = seen.iter().map(|s| s.lock().unwrap().events).sum();
        let missed: u64 = seen.iter().map(|s| s.lock().unwrap().missed).sum();
        if seen.is_empty() {
            return;
        }
        println!(
            "{name}: {} readers, {events} events received ({:.0}/s per reader), {missed} missed, lag p50 {} ms, p99 {} ms ({} timed)",
            seen.len(),
            events as f64 / elapsed / seen.len().max(1) as f64,
            lags.quantile(0.5),
            lags.quantile(0.99),
            lags.count(),
        );
    };
    println!(
        "events: {rate}/s for {elapsed:.1} s (~{published} published), ring {ring}; server CPU {:.0}% of one core, RSS {rss:.0} MiB (peak {peak:.0} MiB)",
        cpu / elapsed * 100.0
    );
    summary("SSE streams", &readers, &stream_lags);
    summary("callback subscribers", &receivers, &callback_lags);
    println!("callback backlog at the end: {backlog} events");
}
