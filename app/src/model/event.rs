//! Marathon's events, in the JSON shapes of its `/v2/events` stream.

use super::app::AppDefinition;
use super::checks::HealthCheck;
use super::task::{DeploymentStep, IpAddress, TaskState};
use super::time::Timestamp;
use serde::{Deserialize, Serialize};

/// A deployment plan in the "light" format every event carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub id: String,
    pub steps: Vec<DeploymentStep>,
    pub version: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "eventType", rename_all = "snake_case")]
pub enum MarathonEvent {
    #[serde(rename_all = "camelCase")]
    ApiPostEvent {
        client_ip: String,
        uri: String,
        app_definition: Box<AppDefinition>,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    StatusUpdateEvent {
        slave_id: String,
        task_id: String,
        task_status: TaskState,
        message: String,
        app_id: String,
        host: String,
        ip_addresses: Vec<IpAddress>,
        ports: Vec<u32>,
        version: Timestamp,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    InstanceChangedEvent {
        instance_id: String,
        condition: String,
        run_spec_id: String,
        agent_id: Option<String>,
        host: Option<String>,
        run_spec_version: Timestamp,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    InstanceHealthChangedEvent {
        instance_id: String,
        run_spec_id: String,
        healthy: Option<bool>,
        run_spec_version: Timestamp,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    UnknownInstanceTerminatedEvent {
        instance_id: String,
        run_spec_id: String,
        condition: String,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    AddHealthCheckEvent {
        app_id: String,
        health_check: HealthCheck,
        timestamp: Timestamp,
        version: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    RemoveHealthCheckEvent {
        app_id: String,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    FailedHealthCheckEvent {
        app_id: String,
        health_check: HealthCheck,
        /// Marathon puts the instance id here, despite the name.
        task_id: String,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    HealthStatusChangedEvent {
        app_id: String,
        instance_id: String,
        version: Timestamp,
        alive: bool,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    UnhealthyInstanceKillEvent {
        app_id: String,
        task_id: String,
        instance_id: String,
        version: Timestamp,
        reason: String,
        host: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        slave_id: Option<String>,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    AppTerminatedEvent {
        app_id: String,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    GroupChangeSuccess {
        group_id: String,
        version: Timestamp,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    GroupChangeFailed {
        group_id: String,
        version: Timestamp,
        reason: String,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    DeploymentInfo {
        plan: Plan,
        current_step: DeploymentStep,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    DeploymentStepSuccess {
        plan: Plan,
        current_step: DeploymentStep,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    DeploymentStepFailure {
        plan: Plan,
        current_step: DeploymentStep,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    DeploymentSuccess {
        id: String,
        plan: Plan,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    DeploymentFailed {
        id: String,
        plan: Plan,
        timestamp: Timestamp,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    EventStreamAttached {
        remote_address: String,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    EventStreamDetached {
        remote_address: String,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    SchedulerRegisteredEvent {
        framework_id: String,
        master: String,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    SchedulerReregisteredEvent {
        master: String,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    SchedulerDisconnectedEvent { timestamp: Timestamp },
    #[serde(rename_all = "camelCase")]
    FrameworkMessageEvent {
        executor_id: String,
        slave_id: String,
        /// The message's bytes, as a JSON array of numbers (what Marathon emits).
        message: Vec<u8>,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    SubscribeEvent {
        client_ip: String,
        callback_url: String,
        timestamp: Timestamp,
    },
    #[serde(rename_all = "camelCase")]
    UnsubscribeEvent {
        client_ip: String,
        callback_url: String,
        timestamp: Timestamp,
    },
    /// Stride's own: sent to one reader (an event stream, a callback subscriber) in place of
    /// events it can no longer be given, instead of leaving a silent gap.
    #[serde(rename_all = "camelCase")]
    EventsMissedEvent {
        /// The numbers (SSE ids) of the first and last event missed, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        first_missed: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        last_missed: Option<u64>,
        /// How many events Stride keeps for readers that fall behind.
        ring_size: u64,
        reason: String,
        timestamp: Timestamp,
    },
}

/// An HTTP callback subscriber and how its deliveries go (Stride's own
/// `/stride/v1/event-subscribers`; Marathon's `/v2/eventSubscriptions` lists only the URLs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSubscriber {
    pub callback_url: String,
    pub client_ip: String,
    pub subscribed_at: Timestamp,
    /// The number (SSE id) of the last event it was sent.
    pub delivered: u64,
    /// Events published that it has not been sent yet.
    pub backlog: u64,
    /// Failed attempts since the last delivery that went through.
    pub failed_attempts: u64,
    /// Since when every attempt failed; absent while deliveries go through.
    pub failing_since: Option<Timestamp>,
    pub last_error: Option<String>,
    /// When the subscription is dropped if deliveries keep failing.
    pub drops_at: Option<Timestamp>,
    /// Whether it is sent arrays of events rather than one event per request.
    pub batch: bool,
}

impl MarathonEvent {
    /// The `eventType` string, which is also the SSE `event:` name.
    pub fn event_type(&self) -> &'static str {
        match self {
            MarathonEvent::ApiPostEvent { .. } => "api_post_event",
            MarathonEvent::StatusUpdateEvent { .. } => "status_update_event",
            MarathonEvent::InstanceChangedEvent { .. } => "instance_changed_event",
            MarathonEvent::InstanceHealthChangedEvent { .. } => "instance_health_changed_event",
            MarathonEvent::UnknownInstanceTerminatedEvent { .. } => {
                "unknown_instance_terminated_event"
            }
            MarathonEvent::AddHealthCheckEvent { .. } => "add_health_check_event",
            MarathonEvent::RemoveHealthCheckEvent { .. } => "remove_health_check_event",
            MarathonEvent::FailedHealthCheckEvent { .. } => "failed_health_check_event",
            MarathonEvent::HealthStatusChangedEvent { .. } => "health_status_changed_event",
            MarathonEvent::UnhealthyInstanceKillEvent { .. } => "unhealthy_instance_kill_event",
            MarathonEvent::AppTerminatedEvent { .. } => "app_terminated_event",
            MarathonEvent::GroupChangeSuccess { .. } => "group_change_success",
            MarathonEvent::GroupChangeFailed { .. } => "group_change_failed",
            MarathonEvent::DeploymentInfo { .. } => "deployment_info",
            MarathonEvent::DeploymentStepSuccess { .. } => "deployment_step_success",
            MarathonEvent::DeploymentStepFailure { .. } => "deployment_step_failure",
            MarathonEvent::DeploymentSuccess { .. } => "deployment_success",
            MarathonEvent::DeploymentFailed { .. } => "deployment_failed",
            MarathonEvent::EventStreamAttached { .. } => "event_stream_attached",
            MarathonEvent::EventStreamDetached { .. } => "event_stream_detached",
            MarathonEvent::SchedulerRegisteredEvent { .. } => "scheduler_registered_event",
            MarathonEvent::SchedulerReregisteredEvent { .. } => "scheduler_reregistered_event",
            MarathonEvent::SchedulerDisconnectedEvent { .. } => "scheduler_disconnected_event",
            MarathonEvent::FrameworkMessageEvent { .. } => "framework_message_event",
            MarathonEvent::SubscribeEvent { .. } => "subscribe_event",
            MarathonEvent::UnsubscribeEvent { .. } => "unsubscribe_event",
            MarathonEvent::EventsMissedEvent { .. } => "events_missed_event",
        }
    }

    /// The app an event is about, for the dashboard to decide what to refresh.
    pub fn app_id(&self) -> Option<&str> {
        match self {
            MarathonEvent::StatusUpdateEvent { app_id, .. }
            | MarathonEvent::AppTerminatedEvent { app_id, .. }
            | MarathonEvent::AddHealthCheckEvent { app_id, .. }
            | MarathonEvent::RemoveHealthCheckEvent { app_id, .. }
            | MarathonEvent::FailedHealthCheckEvent { app_id, .. }
            | MarathonEvent::HealthStatusChangedEvent { app_id, .. }
            | MarathonEvent::UnhealthyInstanceKillEvent { app_id, .. } => Some(app_id),
            MarathonEvent::InstanceChangedEvent { run_spec_id, .. }
            | MarathonEvent::InstanceHealthChangedEvent { run_spec_id, .. }
            | MarathonEvent::UnknownInstanceTerminatedEvent { run_spec_id, .. } => {
                Some(run_spec_id)
            }
            MarathonEvent::ApiPostEvent { app_definition, .. } => Some(&app_definition.id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_with_marathon_field_names() {
        let e = MarathonEvent::AppTerminatedEvent {
            app_id: "/a".into(),
            timestamp: Timestamp::from_millis(0),
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["eventType"], e.event_type());
        assert_eq!(json["appId"], "/a");
        let back: MarathonEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
    }
}
