//! Health and readiness checks (Marathon's `AppHealthCheck` and `ReadinessCheck`) and the
//! results the API reports for them.

use super::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Who runs a health check and how.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HealthProtocol {
    #[default]
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "COMMAND")]
    Command,
    #[serde(rename = "MESOS_HTTP")]
    MesosHttp,
    #[serde(rename = "MESOS_HTTPS")]
    MesosHttps,
    #[serde(rename = "MESOS_TCP")]
    MesosTcp,
}

impl HealthProtocol {
    /// Probed by Stride itself (Marathon's "Marathon-executed" checks); the others run next to
    /// the task and report through Mesos' task status.
    pub fn is_probed_by_scheduler(self) -> bool {
        matches!(
            self,
            HealthProtocol::Http | HealthProtocol::Https | HealthProtocol::Tcp
        )
    }

    /// An HTTP(S) request rather than a connect or a command.
    pub fn is_http(self) -> bool {
        matches!(
            self,
            HealthProtocol::Http
                | HealthProtocol::Https
                | HealthProtocol::MesosHttp
                | HealthProtocol::MesosHttps
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            HealthProtocol::Http => "HTTP",
            HealthProtocol::Https => "HTTPS",
            HealthProtocol::Tcp => "TCP",
            HealthProtocol::Command => "COMMAND",
            HealthProtocol::MesosHttp => "MESOS_HTTP",
            HealthProtocol::MesosHttps => "MESOS_HTTPS",
            HealthProtocol::MesosTcp => "MESOS_TCP",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IpProtocol {
    #[default]
    #[serde(rename = "IPv4")]
    Ipv4,
    #[serde(rename = "IPv6")]
    Ipv6,
}

/// The command of a `COMMAND` health check.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CommandCheck {
    pub value: String,
}

/// One entry of an app's `healthChecks`, with Marathon's defaults filled in and written back.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    #[serde(default)]
    pub protocol: HealthProtocol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandCheck>,
    #[serde(default = "default_grace")]
    pub grace_period_seconds: i64,
    #[serde(default = "default_interval")]
    pub interval_seconds: i64,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: i64,
    #[serde(default = "default_failures")]
    pub max_consecutive_failures: i64,
    #[serde(default = "default_delay")]
    pub delay_seconds: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_index: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_http1xx: Option<bool>,
    #[serde(default)]
    pub ip_protocol: IpProtocol,
}

fn default_grace() -> i64 {
    300
}
fn default_interval() -> i64 {
    60
}
fn default_timeout() -> i64 {
    20
}
fn default_failures() -> i64 {
    3
}
fn default_delay() -> i64 {
    15
}

impl HealthCheck {
    /// Marathon's normalisation: HTTP checks get `path` "/" (and Marathon-executed ones
    /// `ignoreHttp1xx` false); a check that needs a port and names none gets `portIndex` 0 when
    /// the app has ports.
    pub fn normalized(mut self, app_has_ports: bool) -> HealthCheck {
        if self.protocol.is_http() && self.path.is_none() {
            self.path = Some("/".into());
        }
        if matches!(self.protocol, HealthProtocol::Http | HealthProtocol::Https)
            && self.ignore_http1xx.is_none()
        {
            self.ignore_http1xx = Some(false);
        }
        if self.protocol != HealthProtocol::Command
            && self.port.is_none()
            && self.port_index.is_none()
            && app_has_ports
        {
            self.port_index = Some(0);
        }
        self
    }
}

/// How a readiness check talks to the task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HttpScheme {
    #[default]
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
}

/// An app's `readinessChecks` entry (at most one), defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessCheck {
    #[serde(default = "default_readiness_name")]
    pub name: String,
    #[serde(default)]
    pub protocol: HttpScheme,
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default = "default_port_name")]
    pub port_name: String,
    #[serde(default = "default_readiness_interval")]
    pub interval_seconds: i64,
    #[serde(default = "default_readiness_timeout")]
    pub timeout_seconds: i64,
    #[serde(default = "default_ready_codes")]
    pub http_status_codes_for_ready: Vec<u16>,
    #[serde(default)]
    pub preserve_last_response: bool,
}

fn default_readiness_name() -> String {
    "readinessCheck".into()
}
fn default_path() -> String {
    "/".into()
}
fn default_port_name() -> String {
    "http-api".into()
}
fn default_readiness_interval() -> i64 {
    30
}
fn default_readiness_timeout() -> i64 {
    10
}
fn default_ready_codes() -> Vec<u16> {
    vec![200]
}

/// One health check's state for one task, as `healthCheckResults` shows it. Marathon writes
/// every field, `null` where nothing is known yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthResult {
    pub alive: bool,
    pub consecutive_failures: u32,
    pub first_success: Option<Timestamp>,
    pub last_failure: Option<Timestamp>,
    pub last_success: Option<Timestamp>,
    pub last_failure_cause: Option<String>,
    pub instance_id: String,
}

/// The last response of a readiness probe, kept when the check asks for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessResponse {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// A task's readiness during a deployment (`readinessCheckResults`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessResult {
    pub name: String,
    pub task_id: String,
    pub ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_response: Option<ReadinessResponse>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_check_is_written_back_with_marathons_defaults() {
        let check: HealthCheck = serde_json::from_str("{}").unwrap();
        let json = serde_json::to_value(check.normalized(true)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "protocol": "HTTP", "path": "/", "portIndex": 0, "ignoreHttp1xx": false,
                "gracePeriodSeconds": 300, "intervalSeconds": 60, "timeoutSeconds": 20,
                "maxConsecutiveFailures": 3, "delaySeconds": 15, "ipProtocol": "IPv4"
            })
        );
        let command: HealthCheck =
            serde_json::from_str(r#"{"protocol":"COMMAND","command":{"value":"true"}}"#).unwrap();
        let json = serde_json::to_value(command.normalized(true)).unwrap();
        assert!(json.get("portIndex").is_none() && json.get("path").is_none());
    }

    #[test]
    fn a_readiness_check_gets_its_defaults() {
        let check: ReadinessCheck = serde_json::from_str("{}").unwrap();
        assert_eq!(check.name, "readinessCheck");
        assert_eq!(check.port_name, "http-api");
        assert_eq!(check.http_status_codes_for_ready, vec![200]);
        assert_eq!((check.interval_seconds, check.timeout_seconds), (30, 10));
    }
}
