//! Marathon's events, in the JSON shapes of its `/v2/events` stream.

use super::app::AppDefinition;
use super::task::{DeploymentStep, IpAddress};
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
        task_status: String,
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
}

impl MarathonEvent {
    /// The `eventType` string, which is also the SSE `event:` name.
    pub fn event_type(&self) -> &'static str {
        match self {
            MarathonEvent::ApiPostEvent { .. } => "api_post_event",
            MarathonEvent::StatusUpdateEvent { .. } => "status_update_event",
            MarathonEvent::InstanceChangedEvent { .. } => "instance_changed_event",
            MarathonEvent::AppTerminatedEvent { .. } => "app_terminated_event",
            MarathonEvent::GroupChangeSuccess { .. } => "group_change_success",
            MarathonEvent::DeploymentInfo { .. } => "deployment_info",
            MarathonEvent::DeploymentStepSuccess { .. } => "deployment_step_success",
            MarathonEvent::DeploymentSuccess { .. } => "deployment_success",
            MarathonEvent::DeploymentFailed { .. } => "deployment_failed",
            MarathonEvent::EventStreamAttached { .. } => "event_stream_attached",
            MarathonEvent::EventStreamDetached { .. } => "event_stream_detached",
            MarathonEvent::SchedulerRegisteredEvent { .. } => "scheduler_registered_event",
        }
    }

    /// The app an event is about, for the dashboard to decide what to refresh.
    pub fn app_id(&self) -> Option<&str> {
        match self {
            MarathonEvent::StatusUpdateEvent { app_id, .. }
            | MarathonEvent::AppTerminatedEvent { app_id, .. } => Some(app_id),
            MarathonEvent::InstanceChangedEvent { run_spec_id, .. } => Some(run_spec_id),
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
