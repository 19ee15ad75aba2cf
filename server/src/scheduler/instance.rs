//! Instances (Marathon's unit of placement) and their conditions and goals.

use super::disks::DiskSource;
use app::model::{path, TaskState, Timestamp};
use serde::{Deserialize, Serialize};

/// The state of an instance's current task, Marathon's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Condition {
    /// Waiting for an offer (new, or relaunching after its task ended).
    Scheduled,
    /// An offer was accepted for it; the master has not confirmed the task yet.
    Provisioned,
    Staging,
    Starting,
    Running,
    Killing,
    Finished,
    Failed,
    Killed,
    Error,
    Dropped,
    Gone,
    Unreachable,
    /// Unreachable for longer than the app's `inactiveAfterSeconds`: it no longer counts toward
    /// `instances`, so a replacement is launched; its `since` stays when it became unreachable.
    UnreachableInactive,
    Unknown,
}

impl Condition {
    /// Every condition.
    pub const ALL: [Condition; 15] = [
        Condition::Scheduled,
        Condition::Provisioned,
        Condition::Staging,
        Condition::Starting,
        Condition::Running,
        Condition::Killing,
        Condition::Finished,
        Condition::Failed,
        Condition::Killed,
        Condition::Error,
        Condition::Dropped,
        Condition::Gone,
        Condition::Unreachable,
        Condition::UnreachableInactive,
        Condition::Unknown,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Condition::Finished
                | Condition::Failed
                | Condition::Killed
                | Condition::Error
                | Condition::Dropped
                | Condition::Gone
                | Condition::Unknown
        )
    }

    /// Has (or is about to have) a task on an agent.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Condition::Provisioned
                | Condition::Staging
                | Condition::Starting
                | Condition::Running
                | Condition::Killing
                | Condition::Unreachable
                | Condition::UnreachableInactive
        )
    }

    /// Its agent cannot be reached: the task may run, but nothing can be done to it.
    pub fn is_unreachable(self) -> bool {
        matches!(
            self,
            Condition::Unreachable | Condition::UnreachableInactive
        )
    }

    /// A terminal condition that counts as a failure for the launch backoff (killed does not).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Condition::Failed
                | Condition::Error
                | Condition::Dropped
                | Condition::Gone
                | Condition::Finished
                | Condition::Unknown
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Condition::Scheduled => "Scheduled",
            Condition::Provisioned => "Provisioned",
            Condition::Staging => "Staging",
            Condition::Starting => "Starting",
            Condition::Running => "Running",
            Condition::Killing => "Killing",
            Condition::Finished => "Finished",
            Condition::Failed => "Failed",
            Condition::Killed => "Killed",
            Condition::Error => "Error",
            Condition::Dropped => "Dropped",
            Condition::Gone => "Gone",
            Condition::Unreachable => "Unreachable",
            Condition::UnreachableInactive => "UnreachableInactive",
            Condition::Unknown => "Unknown",
        }
    }

    /// The Mesos state shown in task JSON (`/v2/tasks`).
    pub fn task_state(self) -> TaskState {
        match self {
            Condition::Scheduled | Condition::Provisioned | Condition::Staging => {
                TaskState::Staging
            }
            Condition::Starting => TaskState::Starting,
            Condition::Running => TaskState::Running,
            Condition::Killing => TaskState::Killing,
            Condition::Finished => TaskState::Finished,
            Condition::Failed => TaskState::Failed,
            Condition::Killed => TaskState::Killed,
            Condition::Error => TaskState::Error,
            Condition::Dropped => TaskState::Dropped,
            Condition::Gone => TaskState::Gone,
            Condition::Unreachable | Condition::UnreachableInactive => TaskState::Unreachable,
            Condition::Unknown => TaskState::Unknown,
        }
    }
}

/// What the scheduler wants for an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Goal {
    /// Keep it alive: when its task ends, launch a new incarnation.
    Running,
    /// Kill it and forget it once its task is terminal.
    Decommissioned,
    /// Resident instances only: kill its task but keep its reservation and volumes, so that a
    /// later scale-up or upgrade brings it back on the same agent with its data.
    Stopped,
}

/// A persistent volume created for a resident instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReservedVolume {
    /// Mesos' persistence id: `<safe app path>#<containerPath>#<uuid>`.
    pub persistence_id: String,
    pub container_path: String,
    pub size_mib: f64,
    /// The PATH or MOUNT disk it is on; `None` on the agent's root disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<DiskSource>,
}

/// What a resident instance holds on its agent: resources reserved for it alone, and its
/// volumes. It is pinned to that agent for good (SEMANTICS.md §14).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    pub agent_id: String,
    pub hostname: String,
    pub attributes: Vec<(String, String)>,
    pub role: String,
    pub cpus: f64,
    pub mem: f64,
    /// The task's own disk, beside the volumes'.
    pub disk: f64,
    pub ports: Vec<u32>,
    pub volumes: Vec<ReservedVolume>,
}

/// Where an instance's task was placed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    pub agent_id: String,
    pub hostname: String,
    pub ports: Vec<u32>,
    /// The agent's attributes as text, for placement constraints on later launches.
    pub attributes: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// `<safe app path>.instance-<uuid>`.
    pub id: String,
    pub app_id: String,
    /// The app version whose definition the current task runs.
    pub app_version: Timestamp,
    /// The app's `lastConfigChangeAt` at launch: instances of an older config are replaced.
    pub config_version: Timestamp,
    /// Starts at 1; every relaunch gets a new task id with the next number.
    pub incarnation: u32,
    pub condition: Condition,
    pub goal: Goal,
    pub placement: Option<Placement>,
    /// When the current condition began.
    pub since: Timestamp,
    pub staged_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    /// The last status message (exit code, kill reason).
    pub message: Option<String>,
    /// The health Mesos reported for the current task (checks Mesos runs: COMMAND, MESOS_*).
    #[serde(default)]
    pub healthy: Option<bool>,
    /// Resident instances: where their resources are reserved and their volumes live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<Reservation>,
}

impl Instance {
    /// A new instance of `app_id` waiting for its first offer.
    pub fn scheduled(
        app_id: &str,
        uuid: &str,
        app_version: Timestamp,
        config_version: Timestamp,
        now: Timestamp,
    ) -> Instance {
        Instance {
            id: format!("{}.instance-{uuid}", path::safe_path(app_id)),
            app_id: app_id.to_string(),
            app_version,
            config_version,
            incarnation: 1,
            condition: Condition::Scheduled,
            goal: Goal::Running,
            placement: None,
            since: now,
            staged_at: None,
            started_at: None,
            message: None,
            healthy: None,
            reservation: None,
        }
    }

    /// The Mesos task id of the current incarnation.
    pub fn task_id(&self) -> String {
        task_id(&self.id, self.incarnation)
    }

    /// Waiting for an offer: goal Running and no live task.
    pub fn wants_launch(&self) -> bool {
        self.goal == Goal::Running
            && (self.condition == Condition::Scheduled || self.condition.is_terminal())
    }
}

pub fn task_id(instance_id: &str, incarnation: u32) -> String {
    format!("{instance_id}._app.{incarnation}")
}

/// Splits a task id into its instance id and incarnation; accepts the incarnation-less form.
pub fn parse_task_id(task_id: &str) -> Option<(&str, u32)> {
    let (rest, last) = task_id.rsplit_once('.')?;
    let (instance_id, incarnation) = match last.parse::<u32>() {
        Ok(n) => (rest.strip_suffix("._app")?, n),
        Err(_) if last == "_app" => (rest, 1),
        Err(_) => return None,
    };
    instance_id
        .contains(".instance-")
        .then_some((instance_id, incarnation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_round_trip() {
        let i = Instance::scheduled(
            "/prod/web",
            "abc",
            Timestamp::from_millis(0),
            Timestamp::from_millis(0),
            Timestamp::from_millis(0),
        );
        assert_eq!(i.id, "prod_web.instance-abc");
        assert_eq!(i.task_id(), "prod_web.instance-abc._app.1");
        assert_eq!(
            parse_task_id(&i.task_id()),
            Some(("prod_web.instance-abc", 1))
        );
        assert_eq!(
            parse_task_id("prod_web.instance-abc._app"),
            Some(("prod_web.instance-abc", 1))
        );
        assert_eq!(parse_task_id("garbage"), None);
        assert_eq!(parse_task_id("a.b.c"), None);
    }
}
