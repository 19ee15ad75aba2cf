//! Health and readiness probes: Stride's own HTTP, HTTPS and TCP health checks and the
//! readiness checks of deployments, run off the core's task.
//!
//! The prober follows the snapshot: at most every [`REFRESH`] it works out what to probe (each
//! running task's checks, from the definition of the task's version; readiness for the tasks a
//! deployment started), keeps one schedule entry per (task, check) and runs what is due,
//! [`MAX_CONCURRENT`] probes at a time. Results go to the core, which decides what they mean
//! ([`crate::scheduler::health`]). Hostnames are resolved once per task, not per probe.
//!
//! The prober has a thread and a runtime of its own, at a lower scheduling priority: ten
//! thousand probes a second are thousands of connections, and the API must not wait behind
//! them. Plain HTTP checks are a bare `GET` over a fresh connection (the status line is all a
//! check needs); HTTPS checks and readiness checks, which read the answer, use an HTTP client.

use crate::core::Snapshot;
use crate::scheduler::health::{health_of, Health, ProbeOutcome, ProbeResult};
use crate::scheduler::instance::{Condition, Goal, Instance};
use crate::service::ProbeInput;
use app::model::{
    ActionKind, HealthCheck, HealthProtocol, HttpScheme, ReadinessCheck, ReadinessResponse,
    ReadinessResult,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;

/// Probes in flight at once (Marathon's `--max_concurrent_marathon_health_checks`).
pub const MAX_CONCURRENT: usize = 256;

/// How often the set of probes follows the snapshot.
const REFRESH: Duration = Duration::from_millis(250);

/// The first probe of a check comes after min(interval, this), Marathon's rule.
const FIRST_PROBE_AT_MOST: Duration = Duration::from_secs(5);

/// A readiness response body kept for the API is cut to this many bytes.
const MAX_KEPT_BODY: usize = 4096;

/// What one schedule entry probes.
#[derive(Clone, Debug, PartialEq)]
enum Probe {
    Health {
        instance_id: String,
        check_index: usize,
        check: HealthCheck,
    },
    Readiness {
        check: ReadinessCheck,
    },
}

/// One schedule entry: a probe of one task at one address.
#[derive(Clone, Debug)]
struct Target {
    task_id: String,
    host: String,
    port: u16,
    probe: Probe,
    interval: Duration,
    timeout: Duration,
}

impl Target {
    /// Whether `other` probes the same thing the same way (then its schedule is kept).
    fn same(&self, other: &Target) -> bool {
        self.host == other.host
            && self.port == other.port
            && self.probe == other.probe
            && self.interval == other.interval
            && self.timeout == other.timeout
    }
}

type Key = (String, String);

fn seconds(s: i64) -> Duration {
    Duration::from_secs(s.max(0) as u64)
}

/// The port of a health check on a task: `port`, or the host port at `portIndex`.
fn health_port(check: &HealthCheck, instance: &Instance) -> Option<u16> {
    let placement = instance.placement.as_ref()?;
    match (check.port, check.port_index) {
        (Some(port), _) => u16::try_from(port).ok(),
        (None, Some(index)) => placement
            .ports
            .get(usize::try_from(index).ok()?)
            .and_then(|p| u16::try_from(*p).ok()),
        (None, None) => None,
    }
}

/// Everything to probe in `snapshot`, by (task id, check name).
fn targets(snapshot: &Snapshot) -> HashMap<Key, Target> {
    let mut out = HashMap::new();
    for instance in snapshot.instances.values() {
        if instance.condition != Condition::Running {
            continue;
        }
        let (Some(app), Some(placement)) = (snapshot.definition_of(instance), &instance.placement)
        else {
            continue;
        };
        for (index, check) in app.health_checks.iter().enumerate() {
            if !check.protocol.is_probed_by_scheduler() {
                continue;
            }
            let Some(port) = health_port(check, instance) else {
                continue;
            };
            out.insert(
                (instance.task_id(), format!("health-{index}")),
                Target {
                    task_id: instance.task_id(),
                    host: placement.hostname.clone(),
                    port,
                    probe: Probe::Health {
                        instance_id: instance.id.clone(),
                        check_index: index,
                        check: check.clone(),
                    },
                    interval: seconds(check.interval_seconds).max(Duration::from_secs(1)),
                    timeout: seconds(check.timeout_seconds).max(Duration::from_millis(100)),
                },
            );
        }
    }
    for deployment in snapshot.deployments.values() {
        let Some(step) = deployment.current() else {
            continue;
        };
        for action in &step.actions {
            if !matches!(
                action.action,
                ActionKind::ScaleApplication | ActionKind::RestartApplication
            ) {
                continue;
            }
            let Some(app) = snapshot.apps.get(&action.app) else {
                continue;
            };
            let Some(check) = app.readiness_checks.first() else {
                continue;
            };
            let Some(port_index) = app
                .port_definitions
                .iter()
                .position(|pd| pd.name.as_deref() == Some(check.port_name.as_str()))
            else {
                continue;
            };
            for instance in snapshot.instances_of(&app.id) {
                let started_by_it = instance
                    .staged_at
                    .is_some_and(|at| at >= deployment.version);
                let ready = snapshot
                    .readiness
                    .get(&instance.task_id())
                    .is_some_and(|r| r.ready);
                let healthy = health_of(
                    app,
                    instance,
                    snapshot.health.get(&instance.id).map(|h| h.as_ref()),
                ) == Health::Healthy;
                if instance.goal != Goal::Running
                    || instance.config_version != app.config_version()
                    || !started_by_it
                    || ready
                    || !healthy
                {
                    continue;
                }
                let Some(placement) = &instance.placement else {
                    continue;
                };
                let Some(port) = placement
                    .ports
                    .get(port_index)
                    .and_then(|p| u16::try_from(*p).ok())
                else {
                    continue;
                };
                out.insert(
                    (instance.task_id(), "readiness".to_string()),
                    Target {
                        task_id: instance.task_id(),
                        host: placement.hostname.clone(),
                        port,
                        probe: Probe::Readiness {
                            check: check.clone(),
                        },
                        interval: seconds(check.interval_seconds).max(Duration::from_secs(1)),
                        timeout: seconds(check.timeout_seconds).max(Duration::from_millis(100)),
                    },
                );
            }
        }
    }
    out
}

/// How much lower the prober's thread is scheduled than the rest of Stride (a `nice` value).
const NICENESS: libc::c_int = 10;

/// Starts the prober on a thread of its own; it runs until `shutdown`.
pub fn start(
    snapshots: watch::Receiver<Arc<Snapshot>>,
    results: mpsc::Sender<ProbeInput>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("prober".into())
        .spawn(move || {
            // SAFETY: setpriority(2) on this thread (PRIO_PROCESS with a thread id is
            // per-thread on Linux); no memory is involved.
            let lowered = unsafe {
                libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, NICENESS)
            };
            if lowered != 0 {
                tracing::debug!("the prober keeps the normal scheduling priority");
            }
            runtime.block_on(run(snapshots, results, shutdown));
        })?;
    Ok(())
}

/// Runs probes until `shutdown`.
async fn run(
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    results: mpsc::Sender<ProbeInput>,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1)
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "the HTTP client for health checks cannot be built; no probes run");
            return;
        }
    };
    let limit = Arc::new(Semaphore::new(MAX_CONCURRENT));
    let mut schedule: HashMap<Key, (Target, Instant)> = HashMap::new();
    let mut due: BinaryHeap<Reverse<(Instant, Key)>> = BinaryHeap::new();
    let mut addresses: HashMap<String, Option<SocketAddr>> = HashMap::new();
    let mut refreshed = Instant::now() - REFRESH;
    let mut changed = true;
    loop {
        let now = Instant::now();
        if changed && now >= refreshed + REFRESH {
            refreshed = now;
            changed = false;
            let wanted = targets(&snapshots.borrow_and_update());
            schedule.retain(|key, _| wanted.contains_key(key));
            let probed: std::collections::HashSet<&str> =
                wanted.keys().map(|(task_id, _)| task_id.as_str()).collect();
            addresses.retain(|task_id, _| probed.contains(task_id.as_str()));
            for (key, target) in wanted {
                let keep = schedule.get(&key).is_some_and(|(old, _)| old.same(&target));
                if !keep {
                    let first = now + target.interval.min(FIRST_PROBE_AT_MOST);
                    due.push(Reverse((first, key.clone())));
                    schedule.insert(key, (target, first));
                }
            }
        }
        while let Some(Reverse((at, key))) = due.peek().cloned() {
            if at > now {
                break;
            }
            due.pop();
            // Entries of removed or rescheduled targets are skipped.
            let Some((target, scheduled)) = schedule.get_mut(&key) else {
                continue;
            };
            if *scheduled != at {
                continue;
            }
            let next = now + target.interval;
            *scheduled = next;
            due.push(Reverse((next, key.clone())));
            let target = target.clone();
            let address = match addresses.get(&target.task_id) {
                Some(known) => *known,
                None => {
                    let resolved = resolve(&target.host, target.port).await;
                    addresses.insert(target.task_id.clone(), resolved);
                    resolved
                }
            };
            let permit = limit.clone().acquire_owned().await;
            let (client, results) = (client.clone(), results.clone());
            tokio::spawn(async move {
                let input = probe(&client, &target, address).await;
                drop(permit);
                let _ = results.send(input).await;
            });
        }
        let wake = due
            .peek()
            .map_or(now + REFRESH, |Reverse((at, _))| *at)
            .min(now + REFRESH);
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            change = snapshots.changed() => {
                if change.is_err() {
                    return;
                }
                changed = true;
            }
            _ = shutdown.changed() => return,
        }
    }
}

async fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    match tokio::net::lookup_host((host, port)).await {
        Ok(mut addresses) => addresses.next(),
        Err(e) => {
            tracing::debug!(%host, error = %e, "cannot resolve a task's host for probing");
            None
        }
    }
}

async fn probe(
    client: &reqwest::Client,
    target: &Target,
    address: Option<SocketAddr>,
) -> ProbeInput {
    match &target.probe {
        Probe::Health {
            instance_id,
            check_index,
            check,
        } => {
            let outcome = match address {
                None => ProbeOutcome::Unhealthy(format!("cannot resolve host {}", target.host)),
                Some(address) => health(client, check, address, target.timeout).await,
            };
            ProbeInput::Health(ProbeResult {
                instance_id: instance_id.clone(),
                task_id: target.task_id.clone(),
                check: *check_index,
                outcome,
            })
        }
        Probe::Readiness { check } => {
            ProbeInput::Readiness(readiness(client, check, target, address).await)
        }
    }
}

async fn health(
    client: &reqwest::Client,
    check: &HealthCheck,
    address: SocketAddr,
    timeout: Duration,
) -> ProbeOutcome {
    match check.protocol {
        HealthProtocol::Tcp => {
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await {
                Ok(Ok(_)) => ProbeOutcome::Healthy,
                Ok(Err(e)) => {
                    ProbeOutcome::Unhealthy(format!("TCP connection to {address} failed: {e}"))
                }
                Err(_) => ProbeOutcome::Unhealthy(format!(
                    "TCP connection to {address} timed out after {} s",
                    timeout.as_secs_f64()
                )),
            }
        }
        _ => {
            let path = check.path.as_deref().unwrap_or("/");
            let (url, status) = if check.protocol == HealthProtocol::Https {
                let url = format!("https://{address}{path}");
                let status = client
                    .get(&url)
                    .timeout(timeout)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .map_err(|e| cause(&e));
                (url, status)
            } else {
                let status = match tokio::time::timeout(timeout, http_status(address, path)).await {
                    Ok(status) => status.map_err(|e| e.to_string()),
                    Err(_) => Err("timed out".to_string()),
                };
                (format!("http://{address}{path}"), status)
            };
            match status {
                Ok(status) if (200..400).contains(&status) => ProbeOutcome::Healthy,
                Ok(status)
                    if (100..200).contains(&status) && check.ignore_http1xx == Some(true) =>
                {
                    ProbeOutcome::Ignored
                }
                Ok(status) => ProbeOutcome::Unhealthy(format!("HTTP {status} from {url}")),
                Err(e) => ProbeOutcome::Unhealthy(format!("HTTP request to {url} failed: {e}")),
            }
        }
    }
}

/// The status code of `GET path` on a fresh connection: the request, then only as much of the
/// answer as its status line.
async fn http_status(address: SocketAddr, path: &str) -> std::io::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: stride-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(64);
    let mut buffer = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 1024 {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    status_of(&head).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "the answer is not HTTP")
    })
}

/// `HTTP/1.1 503 Service Unavailable` → 503.
fn status_of(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    words.next().filter(|v| v.starts_with("HTTP/"))?;
    words.next()?.parse().ok()
}

/// The innermost cause of a client error, which says what actually went wrong.
pub(crate) fn cause(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    let mut source: &dyn std::error::Error = error;
    while let Some(inner) = source.source() {
        source = inner;
    }
    source.to_string()
}

async fn readiness(
    client: &reqwest::Client,
    check: &ReadinessCheck,
    target: &Target,
    address: Option<SocketAddr>,
) -> ReadinessResult {
    let scheme = match check.protocol {
        HttpScheme::Http => "http",
        HttpScheme::Https => "https",
    };
    let shown = format!("{scheme}://{}:{}{}", target.host, target.port, check.path);
    let failed = |error: String| ReadinessResponse {
        status: 504,
        content_type: "text/plain".into(),
        body: format!("Marathon could not query {shown}: {error}"),
    };
    let response = match address {
        None => failed("cannot resolve the host".into()),
        Some(address) => {
            let url = format!("{scheme}://{address}{}", check.path);
            match client.get(&url).timeout(target.timeout).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let content_type = response
                        .headers()
                        .get(reqwest::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let mut body = response.text().await.unwrap_or_default();
                    if body.len() > MAX_KEPT_BODY {
                        let cut = (0..=MAX_KEPT_BODY)
                            .rev()
                            .find(|n| body.is_char_boundary(*n))
                            .unwrap_or(0);
                        body.truncate(cut);
                    }
                    ReadinessResponse {
                        status,
                        content_type,
                        body,
                    }
                }
                Err(e) => failed(cause(&e)),
            }
        }
    };
    ReadinessResult {
        name: check.name.clone(),
        task_id: target.task_id.clone(),
        ready: check.http_status_codes_for_ready.contains(&response.status),
        last_response: check.preserve_last_response.then_some(response),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(
            status_of(b"HTTP/1.1 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(
            status_of(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            Some(200)
        );
        assert_eq!(status_of(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_of(b""), None);
    }

    #[tokio::test]
    async fn a_bare_get_reads_the_status_of_a_real_server() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 1024];
            let n = socket.read(&mut request).await.unwrap();
            let request = String::from_utf8_lossy(&request[..n]).to_string();
            socket
                .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
            request
        });
        assert_eq!(http_status(address, "/ready").await.unwrap(), 204);
        assert!(server.await.unwrap().starts_with("GET /ready HTTP/1.1\r\n"));
    }
}
