//! A real `stride` process for integration tests: temp data dir, free loopback port, HTTP
//! helpers, and a drop that kills Stride and every task process it started.
//!
//! With `STRIDE_TEST_MASTER=http` in the environment (or [`Stride::start_remote`]), Stride runs
//! against a `stride master` process on another loopback port instead of its built-in master;
//! the master shares Stride's data dir, so task sandboxes are where the tests look for them.
//! With `STRIDE_TEST_STORE=postgres`, its store is a new database on the test Postgres.

#![allow(dead_code)] // Each test binary uses its own subset of these helpers.

pub mod cluster;
pub mod gate;
pub mod images;

use eventsource_stream::{Event, Eventsource};
use futures::{Stream, StreamExt};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A task's small Python web server: `GET /id` answers the task id (503 once the sandbox's
/// `healthy` file is gone, which makes an HTTP check on `/id` fail), `GET /slow` after two
/// seconds; on SIGTERM it closes its listening socket at once (new connections are refused, as
/// a server that drains does) and finishes the requests it has.
pub const DRAINING_WEB_SERVER: &str = r#"exec /usr/bin/python3 -S -c '
import http.server, os, signal, time
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(2)
        if self.path == "/id" and not os.path.exists("healthy"):
            self.send_error(503)
            return
        body = os.environ["MESOS_TASK_ID"].encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT0"])), Handler)
server.daemon_threads = False
server.timeout = 0.05
stopping = []
def stop(*_):
    stopping.append(True)
    server.socket.close()
signal.signal(signal.SIGTERM, stop)
open("healthy", "w").close()
while not stopping:
    server.handle_request()
server.server_close()
'"#;

pub const WAIT: Duration = Duration::from_secs(30);

/// A connected `/v2/events` stream.
pub type Events = Pin<Box<dyn Stream<Item = Event> + Send>>;

pub struct Stride {
    child: Option<Child>,
    /// `stride master`, when Stride talks to its master over HTTP.
    master: Option<Child>,
    pub master_port: Option<u16>,
    pub port: u16,
    pub base: String,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    pub http: reqwest::Client,
    extra_args: Vec<String>,
}

/// Host ports for one Stride's agent: every Stride of a test binary gets a range of its own
/// (below the kernel's ephemeral ports), so that tasks of tests running side by side never try
/// to listen on the same port.
fn task_port_range() -> (u32, u32) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 120;
    let first = 20_000 + n * 100;
    (first, first + 99)
}

/// `resources` (an `--agent-resources` value, in either of Mesos' forms) with `ports` added.
fn with_ports(resources: &str, (first, last): (u32, u32)) -> String {
    if resources.is_empty() {
        return format!("ports:[{first}-{last}]");
    }
    if !resources.trim_start().starts_with('[') {
        return format!("{resources};ports:[{first}-{last}]");
    }
    let mut list: Vec<Value> = serde_json::from_str(resources).expect("JSON resources");
    list.push(serde_json::json!({
        "name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": first, "end": last}]}
    }));
    Value::Array(list).to_string()
}

/// `args` with the agent's ports set to a range of this Stride's own, unless they set ports,
/// and the load balancer off unless they turn it on (every Stride of the tests would listen
/// on the same service ports).
fn with_own_ports(args: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if !out.iter().any(|a| a == "--lb-address") {
        out.extend(["--lb-address".to_string(), "none".to_string()]);
    }
    match out.iter().position(|a| a == "--agent-resources") {
        Some(i) if i + 1 < out.len() => {
            if !out[i + 1].contains("ports") {
                out[i + 1] = with_ports(&out[i + 1], task_port_range());
            }
        }
        _ => out.extend([
            "--agent-resources".to_string(),
            with_ports("", task_port_range()),
        ]),
    }
    out
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Stride {
    /// Starts Stride on a fresh data dir, with extra flags; over HTTP to a `stride master` when
    /// `STRIDE_TEST_MASTER=http`.
    pub async fn start_with(args: &[&str]) -> Stride {
        let remote = std::env::var("STRIDE_TEST_MASTER").is_ok_and(|m| m == "http");
        Stride::start_inner(args, remote).await
    }

    /// Starts a `stride master` and Stride subscribed to it over HTTP.
    pub async fn start_remote(args: &[&str]) -> Stride {
        Stride::start_inner(args, true).await
    }

    async fn start_inner(args: &[&str], remote: bool) -> Stride {
        let temp = tempfile::tempdir().expect("temp dir");
        // `STRIDE_TEST_KEEP=1` keeps data dirs (logs, sandboxes) for a look after a failure.
        let keep = std::env::var("STRIDE_TEST_KEEP").is_ok_and(|k| k == "1");
        let mut stride = Stride {
            child: None,
            master: None,
            master_port: remote.then(free_port),
            port: free_port(),
            base: String::new(),
            data_dir: temp.path().to_path_buf(),
            _temp: if keep {
                eprintln!("keeping {}", temp.keep().display());
                None
            } else {
                Some(temp)
            },
            http: reqwest::Client::new(),
            extra_args: with_own_ports(args),
        };
        stride.base = format!("http://127.0.0.1:{}", stride.port);
        // `STRIDE_TEST_STORE=postgres`: a database of its own on the test Postgres, elected
        // leader alone when the master is a process of its own (the built-in master cannot be
        // shared, so Stride leads without an election then).
        if std::env::var("STRIDE_TEST_STORE").is_ok_and(|s| s == "postgres") {
            let store = cluster::postgres_database().await;
            stride.extra_args.extend(["--store".to_string(), store]);
            if !remote {
                stride.extra_args.push("--disable-ha".to_string());
            }
        }
        if remote {
            stride.launch_master().await;
        }
        stride.launch().await;
        stride
    }

    fn log_file(&self, name: &str) -> fs::File {
        fs::File::create(self.data_dir.join(format!(
            "{name}-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        )))
        .expect("log file")
    }

    /// Flags of the built-in agents: they belong to `stride master` when there is one.
    fn is_agent_flag(arg: &str) -> bool {
        arg == "--agent" || arg.starts_with("--agent-") || arg.starts_with("--agent=")
    }

    /// (Re)starts `stride master` on the same data dir and port, with the agent flags.
    pub async fn launch_master(&mut self) {
        let port = self.master_port.expect("a remote master");
        let mut agent_args = Vec::new();
        let mut args = self.extra_args.iter();
        while let Some(arg) = args.next() {
            if Stride::is_agent_flag(arg) {
                agent_args.push(arg.clone());
                if !arg.contains('=') {
                    agent_args.extend(args.next().cloned());
                }
            }
        }
        let log = self.log_file("master");
        let child = Command::new(env!("CARGO_BIN_EXE_stride"))
            .arg("master")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&agent_args)
            .env("RUST_LOG", "info,server=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("starting stride master");
        self.master = Some(child);
        let state = format!("http://127.0.0.1:{port}/master/state");
        wait_until_serving(&self.http, &state, "stride master").await;
    }

    /// `kill -9` of `stride master` alone.
    pub fn kill9_master(&mut self) {
        if let Some(mut child) = self.master.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The scheduler's flags: without the agent's when a master process runs them.
    fn scheduler_args(&self) -> Vec<String> {
        let Some(port) = self.master_port else {
            return self.extra_args.clone();
        };
        let mut out = vec!["--master".to_owned(), format!("http://127.0.0.1:{port}")];
        let mut args = self.extra_args.iter();
        while let Some(arg) = args.next() {
            if Stride::is_agent_flag(arg) {
                if !arg.contains('=') {
                    args.next();
                }
            } else {
                out.push(arg.clone());
            }
        }
        out
    }

    pub async fn start() -> Stride {
        Stride::start_with(&[]).await
    }

    /// (Re)starts the process on the same data dir and port.
    pub async fn launch(&mut self) {
        let log = self.log_file("stride");
        let child = Command::new(env!("CARGO_BIN_EXE_stride"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--http-address")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(self.scheduler_args())
            .env("RUST_LOG", "info,server=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("starting stride");
        self.child = Some(child);
        wait_until_serving(&self.http, &self.url("/ping"), "stride").await;
    }

    /// `kill -9` of Stride alone; its tasks keep running.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then the time Stride took to exit.
    pub fn terminate(&mut self) -> Duration {
        let mut child = self.child.take().expect("stride is running");
        let started = Instant::now();
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        while Instant::now() < started + WAIT {
            if let Ok(Some(_)) = child.try_wait() {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("stride ignored SIGTERM");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.expect("GET");
        decode(r).await
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: &str) -> (u16, Value) {
        let r = self
            .http
            .request(method, self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request");
        decode(r).await
    }

    pub async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    pub async fn put(&self, path: &str, body: &str) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, body).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, path, "").await
    }

    /// The app's tasks (`GET /v2/apps/{id}/tasks`).
    pub async fn tasks(&self, app: &str) -> Vec<Value> {
        let (_, body) = self.get(&format!("/v2/apps{app}/tasks")).await;
        body["tasks"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the app has exactly `n` tasks, all `TASK_RUNNING`; returns them.
    pub async fn wait_running(&self, app: &str, n: usize) -> Vec<Value> {
        let mut last = Vec::new();
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            last = self.tasks(app).await;
            if last.len() == n && last.iter().all(|t| t["state"] == "TASK_RUNNING") {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{app} did not reach {n} running tasks; last seen: {last:#?}");
    }

    /// Waits until the app has exactly `n` tasks whose (first) health check passes; their ids.
    pub async fn wait_healthy(&self, app: &str, n: usize) -> std::collections::BTreeSet<String> {
        eventually(&format!("{n} healthy tasks of {app}"), || async {
            let ids: std::collections::BTreeSet<String> = self
                .tasks(app)
                .await
                .iter()
                .filter(|t| t["healthCheckResults"][0]["alive"] == true)
                .filter_map(|t| Some(t["id"].as_str()?.to_string()))
                .collect();
            (ids.len() == n).then_some(ids)
        })
        .await
    }

    /// Waits until the app's queue entry reports offers declined for its constraints.
    pub async fn wait_unfulfilled_constraint(&self, app: &str) {
        eventually(&format!("{app} waiting on its constraint"), || async {
            let (_, queue) = self.get("/v2/queue").await;
            let item = queue["queue"]
                .as_array()?
                .iter()
                .find(|item| item["app"]["id"] == app)?
                .clone();
            item["processedOffersSummary"]["rejectSummaryLastOffers"]
                .as_array()?
                .iter()
                .any(|r| r["reason"] == "UnfulfilledConstraint" && r["declined"].as_u64() > Some(0))
                .then_some(())
        })
        .await;
    }

    /// Waits until there is no deployment left.
    pub async fn wait_deployments_done(&self) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let (_, body) = self.get("/v2/deployments").await;
            if body.as_array().is_some_and(|d| d.is_empty()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("deployments did not finish");
    }

    /// The directories of the built-in agents: `agent/`, or `agents/<hostname>/` each.
    pub fn agent_dirs(&self) -> Vec<PathBuf> {
        agent_dirs(&self.data_dir)
    }

    /// A task's sandbox, on whichever agent has it.
    pub fn sandbox(&self, task_id: &str) -> PathBuf {
        let dirs = self.agent_dirs();
        dirs.iter()
            .map(|dir| dir.join("sandboxes").join(task_id))
            .find(|sandbox| sandbox.exists())
            .unwrap_or_else(|| self.data_dir.join("agent/sandboxes").join(task_id))
    }

    /// The pid of a task's command, from its sandbox.
    pub fn task_pid(&self, task_id: &str) -> Option<i32> {
        let pids: Value = serde_json::from_str(
            &fs::read_to_string(self.sandbox(task_id).join("pids.json")).ok()?,
        )
        .ok()?;
        pids["task_pid"].as_i64().map(|p| p as i32)
    }

    /// Creates `n` apps `/{prefix}-{i}` without instances: five events each, and no processes.
    pub async fn make_events(&self, prefix: &str, n: usize) {
        for i in 0..n {
            let (status, body) = self
                .post(
                    "/v2/apps",
                    &serde_json::json!({"id": format!("/{prefix}-{i}"), "cmd": "sleep 1", "instances": 0})
                        .to_string(),
                )
                .await;
            assert_eq!(status, 201, "{body}");
        }
    }

    /// Task commands of this Stride that are alive right now.
    /// Connects to `/v2/events{query}`, resuming after `last_event_id` if given.
    pub async fn events(&self, query: &str, last_event_id: Option<&str>) -> Events {
        let mut request = self
            .http
            .get(self.url(&format!("/v2/events{query}")))
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request
            .send()
            .await
            .expect("connecting to the event stream");
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Box::pin(
            response
                .bytes_stream()
                .eventsource()
                .filter_map(|e| async move { e.ok() }),
        )
    }

    pub fn live_task_pids(&self) -> Vec<i32> {
        self.agent_dirs()
            .iter()
            .filter_map(|dir| fs::read_dir(dir.join("sandboxes")).ok())
            .flat_map(|entries| entries.flatten())
            .filter_map(|e| self.task_pid(&e.file_name().to_string_lossy()))
            .filter(|pid| process_alive(*pid))
            .collect()
    }
}

pub fn process_alive(pid: i32) -> bool {
    // A zombie has exited; only its parent's wait is missing.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit(')')
                .next()
                .map(|rest| rest.trim_start().chars().next())
        })
        .flatten()
        .is_some_and(|state| state != 'Z' && state != 'X')
}

async fn decode(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Kills what every task of `agent_dir` may have left running.
pub fn kill_task_leftovers(agent_dir: &Path) {
    let Ok(entries) = fs::read_dir(agent_dir.join("sandboxes")) else {
        return;
    };
    for sandbox in entries.flatten().map(|e| e.path()) {
        kill_sandbox_leftovers(&sandbox);
    }
}

/// Kills the processes and removes the cgroups a sandbox's task may have left.
pub fn kill_sandbox_leftovers(sandbox: &Path) {
    // A launch in flight writes pids.json (or exit.json) within milliseconds.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !sandbox.join("pids.json").exists()
        && !sandbox.join("exit.json").exists()
        && sandbox.join("task.json").exists()
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let task = read_json(&sandbox.join("task.json")).unwrap_or_default();
    // A container leads a session of its own: runc ends it first, while `runc run` lives to
    // reap its processes, and its cgroups (from runc's state) are removed with the task's.
    let mut container_cgroups = Vec::new();
    if let Some(runtime) = task["container"].as_object() {
        let text = |key: &str| runtime[key].as_str().unwrap_or_default().to_owned();
        let state = Path::new(&text("state_dir"))
            .join(text("id"))
            .join("state.json");
        // runc may be creating it still (RUNNING is sent once `runc run` runs).
        let creating = state.with_file_name("exec.fifo");
        let deadline = Instant::now() + Duration::from_secs(2);
        while creating.exists() && !state.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(paths) = read_json(&state).and_then(|s| s["cgroup_paths"].as_object().cloned())
        {
            container_cgroups.extend(paths.values().filter_map(|p| p.as_str().map(str::to_owned)));
        }
        let _ = std::process::Command::new(text("runc"))
            .args([
                "--root",
                &text("state_dir"),
                "delete",
                "--force",
                &text("id"),
            ])
            .stderr(Stdio::null())
            .status();
    }
    if let Some(pids) = read_json(&sandbox.join("pids.json")) {
        let number = |key: &str| pids[key].as_i64().unwrap_or(0);
        if start_ticks(number("task_pid") as i32) == Some(number("task_start_ticks") as u64) {
            signal(-(number("task_pgid") as i32), libc::SIGKILL);
        }
        let supervisor = number("supervisor_pid") as i32;
        if start_ticks(supervisor) == Some(number("supervisor_start_ticks") as u64) {
            signal(supervisor, libc::SIGKILL);
        }
    }
    let mut cgroups: Vec<String> = task["cgroups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|dir| dir.as_str().map(str::to_owned))
        .collect();
    // Nested cgroups go before the ones holding them.
    cgroups.extend(container_cgroups);
    cgroups.sort();
    cgroups.reverse();
    for dir in cgroups.iter().map(Path::new) {
        for _ in 0..100 {
            if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|pid| pid.parse().ok()) {
                    signal(pid, libc::SIGKILL);
                }
            }
            if fs::remove_dir(dir).is_ok() || !dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

pub fn signal(pid: i32, signal: i32) -> bool {
    // SAFETY: kill(2) has no memory effects.
    unsafe { libc::kill(pid, signal) == 0 }
}

pub fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// Start time of a live (non-zombie) process.
pub fn start_ticks(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    (fields[0] != "Z").then(|| fields[19].parse().ok())?
}

impl Drop for Stride {
    fn drop(&mut self) {
        self.kill9();
        self.kill9_master();
        for dir in self.agent_dirs() {
            kill_task_leftovers(&dir);
        }
        unmount_under(&self.data_dir);
    }
}

/// Unmounts every file system mounted under `dir` (the built-in agents' loop-mounted
/// volumes), so that removing `dir` removes everything and leaves no loop device behind.
pub fn unmount_under(dir: &Path) {
    let Ok(mounts) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    for point in mounts.lines().filter_map(|line| line.split(' ').nth(4)) {
        if Path::new(point).starts_with(dir) {
            let _ = std::process::Command::new("umount")
                .arg("--lazy")
                .arg(point)
                .status();
        }
    }
}

/// The agent directories under a data dir: `agent/` and every `agents/<hostname>/`.
pub fn agent_dirs(data_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![data_dir.join("agent")];
    if let Ok(entries) = fs::read_dir(data_dir.join("agents")) {
        dirs.extend(entries.flatten().map(|e| e.path()));
    }
    dirs
}

/// Waits until `url` answers with a success, or panics after [`WAIT`] naming `what`.
pub async fn wait_until_serving(http: &reqwest::Client, url: &str, what: &str) {
    let deadline = Instant::now() + WAIT;
    while !http
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "{what} did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
