//! Mesos task status updates as the core sees them, and Marathon's state → condition mapping.

use super::instance::Condition;
use app::model::{TaskState, Timestamp};
use proto::mesos::v1::task_status::Reason;

/// A status update as the driver hands it over, already translated from the protocol.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusUpdate {
    pub task_id: String,
    pub state: TaskState,
    pub reason: Option<Reason>,
    pub message: String,
    pub agent_id: Option<String>,
    /// The task's health, when Mesos runs a health check for it.
    pub healthy: Option<bool>,
    /// For TASK_UNREACHABLE: when the master lost sight of the agent (`unreachable_time`),
    /// which is when `inactiveAfterSeconds` starts counting even if the news comes later.
    pub unreachable_since: Option<Timestamp>,
}

impl StatusUpdate {
    /// An answer to an explicit reconciliation rather than news.
    pub fn is_reconciliation(&self) -> bool {
        self.reason == Some(Reason::Reconciliation)
    }
}

/// Marathon's mapping from a Mesos state (and for TASK_LOST its reason) to a condition.
pub fn condition_of(update: &StatusUpdate) -> Condition {
    match update.state {
        TaskState::Staging => Condition::Staging,
        TaskState::Starting => Condition::Starting,
        TaskState::Running => Condition::Running,
        TaskState::Killing => Condition::Killing,
        TaskState::Finished => Condition::Finished,
        TaskState::Failed => Condition::Failed,
        TaskState::Killed => Condition::Killed,
        TaskState::Error => Condition::Error,
        TaskState::Dropped => Condition::Dropped,
        TaskState::Unreachable => Condition::Unreachable,
        TaskState::Gone | TaskState::GoneByOperator => Condition::Gone,
        TaskState::Unknown => Condition::Unknown,
        TaskState::Lost => {
            if update
                .message
                .starts_with("Reconciliation: Task is unknown to the")
                || update.reason == Some(Reason::TaskUnknown)
            {
                Condition::Unknown
            } else if matches!(
                update.reason,
                Some(Reason::Reconciliation | Reason::AgentDisconnected | Reason::AgentRemoved)
            ) {
                Condition::Unreachable
            } else {
                Condition::Gone
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_tasks_map_by_reason() {
        let mut u = StatusUpdate {
            task_id: "a.instance-1._app.1".into(),
            state: TaskState::Lost,
            reason: Some(Reason::AgentRemoved),
            message: String::new(),
            agent_id: None,
            healthy: None,
            unreachable_since: None,
        };
        assert_eq!(condition_of(&u), Condition::Unreachable);
        u.reason = Some(Reason::ExecutorTerminated);
        assert_eq!(condition_of(&u), Condition::Gone);
        u.message = "Reconciliation: Task is unknown to the agent".into();
        assert_eq!(condition_of(&u), Condition::Unknown);
    }
}
