//! Tasks, app summaries and deployments as the REST API and the dashboard show them.

use super::app::AppDefinition;
use super::time::Timestamp;
use serde::{Deserialize, Serialize};

/// A task in Marathon's JSON (`/v2/tasks`, `/v2/apps/{id}/tasks`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub app_id: String,
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slave_id: Option<String>,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staged_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<Timestamp>,
    #[serde(default)]
    pub ports: Vec<u32>,
    #[serde(default)]
    pub service_ports: Vec<u32>,
    #[serde(default)]
    pub ip_addresses: Vec<IpAddress>,
    #[serde(default)]
    pub health_check_results: Vec<serde_json::Value>,
    pub role: String,
    /// Stride's addition: the last status message (exit code, kill reason), shown in the UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpAddress {
    pub ip_address: String,
    pub protocol: String,
}

/// The last failed task of an app (`lastTaskFailure`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskFailure {
    pub app_id: String,
    pub host: String,
    pub message: String,
    pub state: String,
    pub task_id: String,
    pub timestamp: Timestamp,
    pub version: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slave_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identified {
    pub id: String,
}

/// An app with its counts, as `GET /v2/apps` embeds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    #[serde(flatten)]
    pub app: AppDefinition,
    pub tasks_staged: u32,
    pub tasks_running: u32,
    pub tasks_healthy: u32,
    pub tasks_unhealthy: u32,
    pub deployments: Vec<Identified>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<Task>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_task_failure: Option<TaskFailure>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentAction {
    pub action: String,
    pub app: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentStep {
    pub actions: Vec<DeploymentAction>,
}

/// A deployment as `GET /v2/deployments` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentInfo {
    pub id: String,
    pub version: Timestamp,
    pub affected_apps: Vec<String>,
    pub affected_pods: Vec<String>,
    pub steps: Vec<DeploymentStep>,
    pub current_actions: Vec<DeploymentAction>,
    pub current_step: u32,
    pub total_steps: u32,
}

/// The body of every deployment-creating call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentResult {
    pub deployment_id: String,
    pub version: Timestamp,
}

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
    pub cpus: f64,
    pub mem: f64,
    pub version: Timestamp,
    /// Why launches do not happen, when they do not (backoff, unmatched resources).
    pub waiting_reasons: Vec<String>,
}

/// Everything the app page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppDetail {
    pub summary: AppSummary,
    pub app: AppDefinition,
    pub tasks: Vec<Task>,
    pub last_task_failure: Option<TaskFailure>,
    pub deployments: Vec<DeploymentInfo>,
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
}
