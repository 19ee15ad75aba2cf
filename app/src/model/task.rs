//! Tasks, app summaries and deployments as the REST API and the dashboard show them.

use super::app::AppDefinition;
use super::checks::{HealthResult, ReadinessResult};
use super::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Mesos' task states, by their wire names: the one vocabulary for a task's state in tasks,
/// failures, events and status updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskState {
    #[serde(rename = "TASK_STAGING")]
    Staging,
    #[serde(rename = "TASK_STARTING")]
    Starting,
    #[serde(rename = "TASK_RUNNING")]
    Running,
    #[serde(rename = "TASK_KILLING")]
    Killing,
    #[serde(rename = "TASK_FINISHED")]
    Finished,
    #[serde(rename = "TASK_FAILED")]
    Failed,
    #[serde(rename = "TASK_KILLED")]
    Killed,
    #[serde(rename = "TASK_ERROR")]
    Error,
    #[serde(rename = "TASK_LOST")]
    Lost,
    #[serde(rename = "TASK_DROPPED")]
    Dropped,
    #[serde(rename = "TASK_UNREACHABLE")]
    Unreachable,
    #[serde(rename = "TASK_GONE")]
    Gone,
    #[serde(rename = "TASK_GONE_BY_OPERATOR")]
    GoneByOperator,
    #[serde(rename = "TASK_UNKNOWN")]
    Unknown,
}

impl TaskState {
    pub fn name(self) -> &'static str {
        match self {
            TaskState::Staging => "TASK_STAGING",
            TaskState::Starting => "TASK_STARTING",
            TaskState::Running => "TASK_RUNNING",
            TaskState::Killing => "TASK_KILLING",
            TaskState::Finished => "TASK_FINISHED",
            TaskState::Failed => "TASK_FAILED",
            TaskState::Killed => "TASK_KILLED",
            TaskState::Error => "TASK_ERROR",
            TaskState::Lost => "TASK_LOST",
            TaskState::Dropped => "TASK_DROPPED",
            TaskState::Unreachable => "TASK_UNREACHABLE",
            TaskState::Gone => "TASK_GONE",
            TaskState::GoneByOperator => "TASK_GONE_BY_OPERATOR",
            TaskState::Unknown => "TASK_UNKNOWN",
        }
    }

    /// Ended for good: nothing is left to kill.
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            TaskState::Staging
                | TaskState::Starting
                | TaskState::Running
                | TaskState::Killing
                | TaskState::Unreachable
                | TaskState::Unknown
        )
    }
}

/// A task in Marathon's JSON (`/v2/tasks`, `/v2/apps/{id}/tasks`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub app_id: String,
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slave_id: Option<String>,
    pub state: TaskState,
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
    pub health_check_results: Vec<HealthResult>,
    pub role: String,
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
    pub state: TaskState,
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

/// An app with what the request embeds (`GET /v2/apps`, `/v2/apps/{id}`, groups): every
/// addition is left out unless asked for, as Marathon does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    #[serde(flatten)]
    pub app: AppDefinition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_staged: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_running: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_healthy: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_unhealthy: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployments: Option<Vec<Identified>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_check_results: Option<Vec<ReadinessResult>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<Task>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_task_failure: Option<TaskFailure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_stats: Option<TaskStatsByVersion>,
}

/// The `taskStats` embed: counts and life times of an app's tasks, by how they relate to
/// the app's versions. A category without tasks is left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatsByVersion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_after_last_scaling: Option<TaskStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_latest_config: Option<TaskStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_outdated_config: Option<TaskStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_summary: Option<TaskStats>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskStats {
    pub stats: Stats,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub counts: TaskCounts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub life_time: Option<LifeTime>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCounts {
    pub staged: u32,
    pub running: u32,
    pub healthy: u32,
    pub unhealthy: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifeTime {
    pub average_seconds: f64,
    pub median_seconds: f64,
}

/// What a deployment step does to one app, by Marathon's action names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActionKind {
    /// A no-op placeholder Marathon keeps before a new app's first scale.
    StartApplication,
    StopApplication,
    ScaleApplication,
    RestartApplication,
}

impl ActionKind {
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::StartApplication => "StartApplication",
            ActionKind::StopApplication => "StopApplication",
            ActionKind::ScaleApplication => "ScaleApplication",
            ActionKind::RestartApplication => "RestartApplication",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentAction {
    pub action: ActionKind,
    pub app: String,
}

/// An action of the step in progress, with the readiness of the tasks it started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentAction {
    pub action: ActionKind,
    pub app: String,
    pub readiness_check_results: Vec<ReadinessResult>,
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
    pub current_actions: Vec<CurrentAction>,
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
