//! Several Strides on one Postgres database and one `stride master`, all on loopback: for the
//! HA tests and the failover benchmark. Drop kills every process and every task they started.

use super::{free_port, kill_task_leftovers, wait_until_serving};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `cargo xtask test` puts the URL of its throwaway Postgres.
const TEST_POSTGRES: &str = "STRIDE_TEST_POSTGRES";

/// A new, empty database on the test Postgres.
pub async fn postgres_database() -> String {
    let admin = std::env::var(TEST_POSTGRES).unwrap_or_else(|_| {
        panic!("{TEST_POSTGRES} is not set: run the tests with `cargo xtask test`, which starts a throwaway Postgres")
    });
    server::store::create_postgres_database(&admin)
        .await
        .expect("a database on the test Postgres")
}

/// One `stride` of the cluster.
pub struct Node {
    pub port: u16,
    /// The store URL this node is given (the database itself, or a gate in front of it).
    pub store: String,
    child: Option<Child>,
}

pub struct Cluster {
    pub master_port: u16,
    master: Option<Child>,
    pub dir: tempfile::TempDir,
    pub nodes: Vec<Node>,
    pub http: reqwest::Client,
    pub lease: Duration,
}

impl Cluster {
    /// `stride master` and one Stride per store URL (all reaching the same database), each
    /// started and serving.
    pub async fn start(stores: Vec<String>, lease: Duration) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cluster = Cluster {
            master_port: free_port(),
            master: None,
            dir,
            nodes: stores
                .into_iter()
                .map(|store| Node {
                    port: free_port(),
                    store,
                    child: None,
                })
                .collect(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("a client"),
            lease,
        };
        cluster.start_master().await;
        for i in 0..cluster.nodes.len() {
            cluster.launch(i).await;
        }
        cluster
    }

    /// `n` Strides straight on one new database.
    pub async fn on_one_database(n: usize, lease: Duration) -> Cluster {
        let store = postgres_database().await;
        Cluster::start(vec![store; n], lease).await
    }

    fn log(&self, name: &str) -> std::fs::File {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        std::fs::File::create(self.dir.path().join(format!("{name}-{stamp}.log"))).expect("log")
    }

    async fn start_master(&mut self) {
        let log = self.log("master");
        let child = Command::new(env!("CARGO_BIN_EXE_stride"))
            .arg("master")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.master_port))
            .arg("--data-dir")
            .arg(self.dir.path().join("master"))
            .args(["--agent-resources", "ports:[23000-23999]"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting stride master");
        self.master = Some(child);
        let state = format!("http://127.0.0.1:{}/master/state", self.master_port);
        wait_until_serving(&self.http, &state, "stride master").await;
    }

    /// (Re)starts node `i` and waits until it serves.
    pub async fn launch(&mut self, i: usize) {
        let log = self.log(&format!("stride-{i}"));
        let node = &self.nodes[i];
        let child = Command::new(env!("CARGO_BIN_EXE_stride"))
            .arg("--http-address")
            .arg(format!("127.0.0.1:{}", node.port))
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("stride-{i}")))
            .arg("--master")
            .arg(format!("http://127.0.0.1:{}", self.master_port))
            .arg("--store")
            .arg(&node.store)
            .arg("--leader-lease-seconds")
            .arg(self.lease.as_secs_f64().to_string())
            // Clusters of tests running side by side would listen on the same service ports.
            .args(["--lb-address", "none"])
            .env("RUST_LOG", "info,server=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting stride");
        self.nodes[i].child = Some(child);
        let ping = self.url(i, "/ping");
        wait_until_serving(&self.http, &ping, &format!("stride {i}")).await;
    }

    /// `kill -9` of node `i`.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    pub fn url(&self, i: usize, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.nodes[i].port)
    }

    pub async fn send(
        &self,
        i: usize,
        method: reqwest::Method,
        path: &str,
        body: &str,
    ) -> Option<(u16, Value)> {
        let r = self
            .http
            .request(method, self.url(i, path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .ok()?;
        let status = r.status().as_u16();
        let text = r.text().await.ok()?;
        Some((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// Creates an app through node `i` (`POST /v2/apps`), which must answer 201.
    pub async fn create_app(&self, i: usize, app: Value) {
        let (status, body) = self
            .send(i, reqwest::Method::POST, "/v2/apps", &app.to_string())
            .await
            .expect("an answer");
        assert_eq!(status, 201, "{body}");
    }

    pub async fn get(&self, i: usize, path: &str) -> Option<(u16, Value)> {
        self.send(i, reqwest::Method::GET, path, "").await
    }

    /// The node that leads, as node `asked` sees it (through its proxy when it stands by).
    /// A node that waits for a leader (or proxies to one that does) counts as seeing none.
    pub async fn leader_seen_by(&self, asked: usize) -> Option<usize> {
        let answer = self
            .http
            .get(self.url(asked, "/v2/leader"))
            .timeout(Duration::from_millis(500))
            .send()
            .await
            .ok()?;
        if answer.status() != 200 {
            return None;
        }
        let body: Value = answer.json().await.ok()?;
        let address = body["leader"].as_str()?;
        self.nodes
            .iter()
            .position(|n| address == format!("127.0.0.1:{}", n.port))
    }

    /// Waits until a running node other than `not` is the leader by the word of every
    /// running node; that node, and how long it took.
    pub async fn wait_for_leader(&self, not: Option<usize>, within: Duration) -> (usize, Duration) {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.is_running(*i))
            .collect();
        self.wait_for_leader_by(&running, not, within).await
    }

    /// Waits until the nodes `asked` agree on a leader other than `not`; it, and how long it
    /// took.
    pub async fn wait_for_leader_among(
        &self,
        asked: &[usize],
        not: Option<usize>,
        within: Duration,
    ) -> (usize, Duration) {
        self.wait_for_leader_by(asked, not, within).await
    }

    async fn wait_for_leader_by(
        &self,
        asked: &[usize],
        not: Option<usize>,
        within: Duration,
    ) -> (usize, Duration) {
        let started = Instant::now();
        loop {
            let mut seen = Vec::new();
            for i in asked {
                seen.push(self.leader_seen_by(*i).await);
            }
            if let Some(Some(leader)) = seen.first() {
                if Some(*leader) != not
                    && self.is_running(*leader)
                    && seen.iter().all(|s| *s == Some(*leader))
                {
                    return (*leader, started.elapsed());
                }
            }
            assert!(
                started.elapsed() < within,
                "no leader within {within:?} (other than {not:?}); the nodes see {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The tasks the master runs (or is starting or killing): `(task id, state)`.
    pub async fn master_tasks(&self) -> Vec<(String, String)> {
        let state: Value = match self
            .http
            .get(format!(
                "http://127.0.0.1:{}/master/state",
                self.master_port
            ))
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => return Vec::new(),
        };
        state["frameworks"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|f| f["tasks"].as_array().cloned().unwrap_or_default())
            .map(|t| {
                (
                    t["id"].as_str().unwrap_or_default().to_string(),
                    t["state"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill9(i);
        }
        if let Some(mut master) = self.master.take() {
            let _ = master.kill();
            let _ = master.wait();
        }
        kill_task_leftovers(&self.dir.path().join("master/agent"));
        if std::env::var("STRIDE_TEST_KEEP").is_ok_and(|k| k == "1") {
            eprintln!("keeping {}", self.dir.path().display());
            let _ = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir")).keep();
        }
    }
}
