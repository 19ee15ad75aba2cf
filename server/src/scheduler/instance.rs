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
    /// A pod instance's tasks, one per container, as Mesos last reported each (empty for an
    /// app's instance, whose one task is described by the fields above). The instance's
    /// `condition` and `healthy` are then their combination ([`combined_condition`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerTask>,
}

/// One container's task of a pod instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerTask {
    /// The container's name in the pod: the task id is `<instance>.<name>.<incarnation>`.
    pub name: String,
    pub condition: Condition,
    pub since: Timestamp,
    #[serde(default)]
    pub healthy: Option<bool>,
    #[serde(default)]
    pub message: Option<String>,
}

/// The condition of an instance with several tasks: the first of Marathon's order that any of
/// them is in (SEMANTICS.md §11.2).
pub fn combined_condition(tasks: &[ContainerTask]) -> Condition {
    const ORDER: [Condition; 14] = [
        Condition::Error,
        Condition::Failed,
        Condition::Gone,
        Condition::Dropped,
        Condition::Unreachable,
        Condition::UnreachableInactive,
        Condition::Killing,
        Condition::Starting,
        Condition::Staging,
        Condition::Unknown,
        Condition::Provisioned,
        Condition::Running,
        Condition::Finished,
        Condition::Killed,
    ];
    ORDER
        .into_iter()
        .find(|condition| tasks.iter().any(|task| task.condition == *condition))
        .unwrap_or(Condition::Scheduled)
}

/// An instance's health from its tasks' (SEMANTICS.md §11.2): unhealthy if any running task
/// is, unknown while any task is neither running nor finished, healthy if a running task is.
pub fn combined_health(tasks: &[ContainerTask]) -> Option<bool> {
    let running = || tasks.iter().filter(|t| t.condition == Condition::Running);
    if running().any(|t| t.healthy == Some(false)) {
        return Some(false);
    }
    if tasks
        .iter()
        .any(|t| !matches!(t.condition, Condition::Running | Condition::Finished))
    {
        return None;
    }
    running().any(|t| t.healthy == Some(true)).then_some(true)
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
            containers: Vec::new(),
        }
    }

    /// The Mesos task id of the current incarnation (a pod instance's first container's).
    pub fn task_id(&self) -> String {
        match self.containers.first() {
            Some(first) => container_task_id(&self.id, &first.name, self.incarnation),
            None => task_id(&self.id, self.incarnation),
        }
    }

    /// Every task of the current incarnation: the one of an app's instance, or one per
    /// container of a pod instance.
    pub fn task_ids(&self) -> Vec<String> {
        self.task_ids_where(|_| true)
    }

    /// The tasks of the current incarnation that may still run, for a kill: a pod instance's
    /// containers whose task has not ended, or an app's one task.
    pub fn live_task_ids(&self) -> Vec<String> {
        self.task_ids_where(|c| !c.condition.is_terminal())
    }

    /// The app's one task, or the tasks of the containers that `keep` picks.
    fn task_ids_where(&self, keep: impl Fn(&ContainerTask) -> bool) -> Vec<String> {
        if self.containers.is_empty() {
            return vec![self.task_id()];
        }
        self.containers
            .iter()
            .filter(|c| keep(c))
            .map(|c| container_task_id(&self.id, &c.name, self.incarnation))
            .collect()
    }

    /// Waiting for an offer: goal Running and no live task.
    pub fn wants_launch(&self) -> bool {
        self.goal == Goal::Running
            && (self.condition == Condition::Scheduled || self.condition.is_terminal())
    }
}

pub fn task_id(instance_id: &str, incarnation: u32) -> String {
    container_task_id(instance_id, APP_TASK, incarnation)
}

/// A task's name in its id when it is an app's (a pod's tasks carry their container's name).
const APP_TASK: &str = "_app";

/// The task id of a pod instance's container: `<instance>.<container>.<incarnation>`.
pub fn container_task_id(instance_id: &str, container: &str, incarnation: u32) -> String {
    format!("{instance_id}.{container}.{incarnation}")
}

/// A task id taken apart: `<instance>.<container>.<incarnation>`, where an app's task has the
/// container `_app`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskIdParts<'a> {
    pub instance_id: &'a str,
    pub container: &'a str,
    pub incarnation: u32,
}

/// Splits a task id into its instance id and incarnation; accepts the incarnation-less form.
pub fn parse_task_id(task_id: &str) -> Option<(&str, u32)> {
    task_id_parts(task_id).map(|parts| (parts.instance_id, parts.incarnation))
}

/// Splits a task id of an app's or a pod's instance (the instance id has no dot after its
/// `.instance-<uuid>`); accepts the incarnation-less form.
pub fn task_id_parts(task_id: &str) -> Option<TaskIdParts<'_>> {
    let marker = task_id.rfind(".instance-")?;
    let uuid_end = task_id[marker + 1..].find('.')? + marker + 1;
    let instance_id = &task_id[..uuid_end];
    let rest = &task_id[uuid_end + 1..];
    let (container, incarnation) = match rest.rsplit_once('.') {
        Some((container, n)) => (container, n.parse::<u32>().ok()?),
        None => (rest, 1),
    };
    (!container.is_empty() && !container.contains('.')).then_some(TaskIdParts {
        instance_id,
        container,
        incarnation,
    })
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
        assert_eq!(parse_task_id("prod_web.instance-abc"), None);
        assert_eq!(parse_task_id("prod_web.instance-abc.web.x"), None);
    }

    #[test]
    fn pod_task_ids_name_their_container() {
        let mut i = Instance::scheduled(
            "/shop/cart",
            "u1",
            Timestamp::from_millis(0),
            Timestamp::from_millis(0),
            Timestamp::from_millis(0),
        );
        i.incarnation = 3;
        i.containers = ["web", "sidecar"]
            .map(|name| ContainerTask {
                name: name.into(),
                condition: Condition::Running,
                since: Timestamp::from_millis(0),
                healthy: None,
                message: None,
            })
            .to_vec();
        assert_eq!(
            i.task_ids(),
            vec![
                "shop_cart.instance-u1.web.3",
                "shop_cart.instance-u1.sidecar.3"
            ]
        );
        assert_eq!(i.task_id(), "shop_cart.instance-u1.web.3");
        assert_eq!(
            task_id_parts("shop_cart.instance-u1.sidecar.3"),
            Some(TaskIdParts {
                instance_id: "shop_cart.instance-u1",
                container: "sidecar",
                incarnation: 3
            })
        );
        assert_eq!(
            parse_task_id("shop_cart.instance-u1.web"),
            Some(("shop_cart.instance-u1", 1))
        );
    }

    fn task(condition: Condition, healthy: Option<bool>) -> ContainerTask {
        ContainerTask {
            name: "c".into(),
            condition,
            since: Timestamp::from_millis(0),
            healthy,
            message: None,
        }
    }

    #[test]
    fn a_pod_instance_is_in_the_worst_condition_of_its_tasks() {
        use Condition::*;
        let of = |conditions: &[Condition]| {
            combined_condition(
                &conditions
                    .iter()
                    .map(|&c| task(c, None))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(of(&[Running, Running]), Running);
        assert_eq!(of(&[Running, Starting]), Starting);
        assert_eq!(of(&[Running, Failed]), Failed);
        assert_eq!(of(&[Killed, Running]), Running);
        assert_eq!(of(&[Killed, Finished]), Finished);
        assert_eq!(of(&[Killing, Error]), Error);
        assert_eq!(of(&[Provisioned, Staging]), Staging);
    }

    #[test]
    fn a_pod_instance_is_healthy_when_its_running_tasks_are() {
        use Condition::*;
        assert_eq!(
            combined_health(&[task(Running, Some(true)), task(Running, None)]),
            Some(true)
        );
        assert_eq!(
            combined_health(&[task(Running, Some(true)), task(Running, Some(false))]),
            Some(false)
        );
        assert_eq!(
            combined_health(&[task(Running, Some(true)), task(Starting, None)]),
            None
        );
        assert_eq!(combined_health(&[task(Running, None)]), None);
    }
}
