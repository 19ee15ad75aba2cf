//! Applying a Mesos task status update to an instance, as a pure effect.

use super::instance::{Condition, Goal, Instance};
use app::model::{MarathonEvent, Timestamp};

/// The Mesos task states, by their wire names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    Staging,
    Starting,
    Running,
    Killing,
    Finished,
    Failed,
    Killed,
    Error,
    Lost,
    Dropped,
    Unreachable,
    Gone,
    GoneByOperator,
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
}

/// A status update as the driver hands it over, already translated from the protocol.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusUpdate {
    pub task_id: String,
    pub state: TaskState,
    /// The Mesos reason name, e.g. `REASON_COMMAND_EXECUTOR_FAILED`.
    pub reason: Option<String>,
    pub message: String,
    pub agent_id: Option<String>,
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
            let reason = update.reason.as_deref().unwrap_or("");
            if update
                .message
                .starts_with("Reconciliation: Task is unknown to the")
                || reason == "REASON_TASK_UNKNOWN"
            {
                Condition::Unknown
            } else if [
                "REASON_RECONCILIATION",
                "REASON_AGENT_DISCONNECTED",
                "REASON_AGENT_REMOVED",
            ]
            .contains(&reason)
            {
                Condition::Unreachable
            } else {
                Condition::Gone
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Store the instance as given and publish the events.
    Update {
        instance: Instance,
        events: Vec<MarathonEvent>,
    },
    /// The instance is finished with: delete it and publish the events.
    Expunge {
        instance: Instance,
        events: Vec<MarathonEvent>,
    },
    /// Nothing changes (a repeated update, or one for an older incarnation).
    Noop,
}

pub fn apply_status(instance: &Instance, update: &StatusUpdate, now: Timestamp) -> Effect {
    if update.task_id != instance.task_id() {
        return Effect::Noop;
    }
    let condition = condition_of(update);
    let message = (!update.message.is_empty()).then(|| update.message.clone());
    if condition == instance.condition && message == instance.message {
        return Effect::Noop;
    }
    let mut next = instance.clone();
    if condition != instance.condition {
        next.since = now;
    }
    next.condition = condition;
    next.message = message;
    if condition == Condition::Running && next.started_at.is_none() {
        next.started_at = Some(now);
    }
    let placement = next.placement.as_ref();
    let events = vec![
        MarathonEvent::StatusUpdateEvent {
            slave_id: placement.map(|p| p.agent_id.clone()).unwrap_or_default(),
            task_id: update.task_id.clone(),
            task_status: update.state.name().to_string(),
            message: update.message.clone(),
            app_id: next.app_id.clone(),
            host: placement.map_or_else(|| "unknown".to_string(), |p| p.hostname.clone()),
            ip_addresses: vec![],
            ports: placement.map(|p| p.ports.clone()).unwrap_or_default(),
            version: next.app_version,
            timestamp: now,
        },
        instance_changed(&next, now),
    ];
    if next.goal == Goal::Decommissioned && condition.is_terminal() {
        Effect::Expunge {
            instance: next,
            events,
        }
    } else {
        Effect::Update {
            instance: next,
            events,
        }
    }
}

/// Marathon's `instance_changed_event` for the instance's current condition.
pub fn instance_changed(instance: &Instance, now: Timestamp) -> MarathonEvent {
    MarathonEvent::InstanceChangedEvent {
        instance_id: instance.id.clone(),
        condition: instance.condition.name().to_string(),
        run_spec_id: instance.app_id.clone(),
        agent_id: instance.placement.as_ref().map(|p| p.agent_id.clone()),
        host: instance.placement.as_ref().map(|p| p.hostname.clone()),
        run_spec_version: instance.app_version,
        timestamp: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::{app_with, instance};

    fn update(i: &Instance, state: TaskState) -> StatusUpdate {
        StatusUpdate {
            task_id: i.task_id(),
            state,
            reason: None,
            message: String::new(),
            agent_id: Some("agent-1".into()),
        }
    }

    #[test]
    fn running_sets_started_at_and_emits_both_events() {
        let app = app_with(1, 0);
        let mut i = instance(&app, "a", Condition::Staging, 5);
        i.started_at = None;
        let now = Timestamp::from_millis(50);
        let Effect::Update { instance, events } =
            apply_status(&i, &update(&i, TaskState::Running), now)
        else {
            panic!("expected an update")
        };
        assert_eq!(instance.condition, Condition::Running);
        assert_eq!(instance.started_at, Some(now));
        assert_eq!(events.len(), 2);
        assert_eq!(
            apply_status(&instance, &update(&i, TaskState::Running), now),
            Effect::Noop
        );
    }

    #[test]
    fn stale_incarnations_are_ignored_and_decommissioned_instances_expunged() {
        let app = app_with(1, 0);
        let mut i = instance(&app, "a", Condition::Running, 5);
        let mut stale = update(&i, TaskState::Failed);
        stale.task_id = format!("{}._app.7", i.id);
        assert_eq!(
            apply_status(&i, &stale, Timestamp::from_millis(9)),
            Effect::Noop
        );
        i.goal = Goal::Decommissioned;
        assert!(matches!(
            apply_status(
                &i,
                &update(&i, TaskState::Killed),
                Timestamp::from_millis(9)
            ),
            Effect::Expunge { .. }
        ));
    }

    #[test]
    fn lost_tasks_map_by_reason() {
        let app = app_with(1, 0);
        let i = instance(&app, "a", Condition::Running, 5);
        let mut u = update(&i, TaskState::Lost);
        u.reason = Some("REASON_AGENT_REMOVED".into());
        assert_eq!(condition_of(&u), Condition::Unreachable);
        u.reason = Some("REASON_EXECUTOR_TERMINATED".into());
        assert_eq!(condition_of(&u), Condition::Gone);
        u.message = "Reconciliation: Task is unknown to the agent".into();
        assert_eq!(condition_of(&u), Condition::Unknown);
    }
}
