//! The dashboard's own views: what its pages show, beyond Marathon's objects.

use super::app::AppDefinition;
use super::ports::Rotation;
use super::task::{ActionKind, DeploymentInfo, Task, TaskFailure};
use super::time::Timestamp;
use serde::{Deserialize, Serialize};

/// How an app is doing, in the words the dashboard uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppStatus {
    /// All wanted instances run the current version.
    Running,
    /// A deployment is moving the app to its target.
    Deploying,
    /// Instances wait for resources that no offer has.
    Waiting,
    /// Launches are held back by the failure backoff.
    Delayed,
    /// Scaled to zero.
    Suspended,
}

impl AppStatus {
    pub fn label(self) -> &'static str {
        match self {
            AppStatus::Running => "Running",
            AppStatus::Deploying => "Deploying",
            AppStatus::Waiting => "Waiting",
            AppStatus::Delayed => "Delayed",
            AppStatus::Suspended => "Suspended",
        }
    }
}

/// One row of the dashboard's app table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppSummary {
    pub id: String,
    pub status: AppStatus,
    pub instances: i64,
    pub running: u32,
    pub staged: u32,
    /// Running tasks whose every health check passes, and those with one failing.
    pub healthy: u32,
    pub unhealthy: u32,
    pub has_health_checks: bool,
    pub cpus: f64,
    pub mem: f64,
    pub version: Timestamp,
    /// Why launches do not happen, when they do not (backoff, unmatched resources).
    pub waiting_reasons: Vec<String>,
}

/// A task as the app page lists it: Marathon's task plus what the page shows beside it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRow {
    pub task: Task,
    /// The last status message (exit code, kill reason).
    pub message: Option<String>,
    /// `Some(true)` when every health check passes, `Some(false)` when one fails, `None`
    /// without checks or results.
    pub healthy: Option<bool>,
    /// Launched from an older configuration than the app's (replaced during an upgrade).
    pub outdated: bool,
    /// Its place in the load balancer, when the app has service ports and the balancer runs.
    pub rotation: Option<Rotation>,
}

/// One service port of an app, as the app page lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServicePortView {
    pub port: u32,
    /// `tcp`, `udp` or `udp,tcp`.
    pub protocol: String,
    pub name: Option<String>,
    /// Where the built-in load balancer listens for it (`host:port`), when it runs.
    pub address: Option<String>,
    /// The addresses of the VIPs its labels declare (`ip:port`), when the balancer runs.
    pub vips: Vec<String>,
}

/// How far one app of a deployment is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionProgress {
    pub app: String,
    pub action: ActionKind,
    /// Whether this action's step is the one running.
    pub current: bool,
    /// The instances the app asks for.
    pub target: i64,
    /// Instances of the new configuration, those of them running, and those healthy and ready.
    pub new_total: u32,
    pub new_running: u32,
    pub new_ready: u32,
    /// Instances of an older configuration still there (running or being stopped).
    pub old_left: u32,
}

/// A deployment as the Deployments page and the app page show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentView {
    pub info: DeploymentInfo,
    /// Every action of every step, in plan order, with its app's progress.
    pub progress: Vec<ActionProgress>,
    /// When it fails unless done (`upgradeStrategy.deploymentTimeoutSeconds`).
    pub deadline: Option<Timestamp>,
    /// It rolls itself back when it fails.
    pub auto_rollback: bool,
}

/// Everything the app page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppDetail {
    pub summary: AppSummary,
    pub app: AppDefinition,
    pub tasks: Vec<TaskRow>,
    pub last_task_failure: Option<TaskFailure>,
    pub deployments: Vec<DeploymentView>,
    /// A resident app's persistent volumes, once created.
    pub volumes: Vec<VolumeRow>,
    pub service_ports: Vec<ServicePortView>,
    /// Its Mesos-DNS name, when the DNS server runs.
    pub dns_name: Option<String>,
}

/// One persistent volume of a resident app, as the app page's Volumes tab lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VolumeRow {
    /// Mesos' persistence id.
    pub persistence_id: String,
    pub container_path: String,
    pub size_mib: f64,
    /// The disk it is on: `root`, or a PATH or MOUNT disk's kind and root directory.
    pub disk: String,
    /// The agent it lives on (its instance is pinned there).
    pub host: String,
    pub instance_id: String,
    /// A task of its instance runs with it mounted; otherwise it waits, with its data.
    pub attached: bool,
}

/// The end of one of a task's output files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLog {
    pub task_id: String,
    pub stream: String,
    pub text: String,
    /// Whether earlier output was left out.
    pub truncated: bool,
}

/// The dashboard's top bar: how the cluster is doing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterSummary {
    pub apps_total: u32,
    pub apps_running: u32,
    pub tasks_running: u32,
    pub cpus_used: f64,
    pub cpus_total: f64,
    pub mem_used: f64,
    pub mem_total: f64,
    /// The master Stride is connected to (`local` for the built-in one).
    pub master: String,
    pub connected: bool,
    /// The leading Stride's `host:port`, when several Strides elect one.
    pub leader: Option<String>,
}

/// One line of the live event view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub seq: u64,
    pub event_type: String,
    pub timestamp: String,
    /// The app the event is about, if any.
    pub app_id: Option<String>,
    /// The event's JSON, as `/v2/events` sends it.
    pub json: String,
}

/// The dashboard's create-app form.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewApp {
    pub id: String,
    pub cmd: String,
    pub cpus: f64,
    pub mem: f64,
    pub instances: i64,
    pub runtime: NewRuntime,
    /// The container's image (with a container runtime).
    pub image: String,
    /// A Docker container's port, published on a host port through the bridge.
    pub container_port: Option<u32>,
}

/// Where the create form's tasks run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NewRuntime {
    /// A command on the agent's host.
    #[default]
    Host,
    /// A MESOS container of the image (Mesos' unified containerizer).
    Mesos,
    /// A DOCKER container, run by the agent's Docker engine.
    Docker,
}

impl NewApp {
    /// Marathon's `container` (and `networks`) for what the form says.
    pub fn container(&self) -> Option<(serde_json::Value, Option<Vec<serde_json::Value>>)> {
        let image = self.image.trim();
        match self.runtime {
            NewRuntime::Host => None,
            NewRuntime::Mesos => Some((
                serde_json::json!({"type": "MESOS", "docker": {"image": image}}),
                None,
            )),
            NewRuntime::Docker => Some(match self.container_port {
                Some(port) => (
                    serde_json::json!({
                        "type": "DOCKER",
                        "docker": {"image": image},
                        "portMappings": [{"containerPort": port, "hostPort": 0, "name": "default"}]
                    }),
                    Some(vec![serde_json::json!({"mode": "container/bridge"})]),
                ),
                None => (
                    serde_json::json!({"type": "DOCKER", "docker": {"image": image}}),
                    None,
                ),
            }),
        }
    }
}

/// One sample of the figures the Metrics page draws.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    /// Tasks launched since the previous sample.
    pub launches: u64,
    /// Mesos status updates received since the previous sample.
    pub status_updates: u64,
    /// API requests answered since the previous sample, and their mean latency.
    pub requests: u64,
    pub latency_mean_ms: f64,
    /// Of the latest requests (up to 1,028), whenever they were.
    pub latency_p99_ms: f64,
}

/// The Metrics page: the last minutes of launches, status updates and API latency, and how
/// events reach their readers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsView {
    /// Seconds between two samples.
    pub interval_secs: u32,
    /// Oldest first.
    pub samples: Vec<MetricSample>,
    /// Callback subscribers; `None` when callbacks are turned off.
    pub subscribers: Option<Vec<super::EventSubscriber>>,
    /// Open `/v2/events` streams.
    pub event_streams: i64,
    /// How many events Stride keeps for readers that fall behind or reconnect.
    pub ring_size: u64,
    /// The number of the newest event.
    pub newest_event: u64,
}

/// What an agent is doing, in the Agents page's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentState {
    /// Reachable and offering its resources.
    Active,
    /// Reachable, but the operator stopped its offers (`DEACTIVATE_AGENT`).
    Deactivated,
    /// Its tasks are being drained (`DRAIN_AGENT`).
    Draining,
    /// Cut off: its tasks may be running, but nothing of it is heard.
    Unreachable,
    /// Marked gone: its tasks are gone and it never comes back.
    Gone,
}

impl AgentState {
    pub fn label(self) -> &'static str {
        match self {
            AgentState::Active => "Active",
            AgentState::Deactivated => "Deactivated",
            AgentState::Draining => "Draining",
            AgentState::Unreachable => "Unreachable",
            AgentState::Gone => "Gone",
        }
    }
}

/// One agent on the Agents page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentRow {
    pub id: String,
    pub hostname: String,
    /// Attributes by name, their values as Mesos prints them.
    pub attributes: Vec<(String, String)>,
    /// Its fault domain's region and zone.
    pub domain: Option<(String, String)>,
    pub state: AgentState,
    /// Since when it has been unreachable, when the master says.
    pub unreachable_since: Option<Timestamp>,
    pub cpus_used: f64,
    pub cpus_total: f64,
    pub mem_used: f64,
    pub mem_total: f64,
    /// Stride's instances placed there: running ones and those Stride cannot reach.
    pub tasks_running: u32,
    pub tasks_unreachable: u32,
}

/// The Agents page.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentsView {
    pub agents: Vec<AgentRow>,
    /// The agents run in this Stride (the built-in master): they can be cut off and brought
    /// back from the page. Otherwise the rows are what Stride learnt from offers and tasks.
    pub built_in: bool,
}
