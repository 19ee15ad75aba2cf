//! Marathon's pods (TYPES.md#Pod): several containers that are placed, started, scaled and
//! stopped together as one instance, in Marathon's JSON with its defaults filled in.
//!
//! `validate` holds the pod rules and their 422 texts; `run_spec` what the scheduler core sees
//! of a pod (the resources, ports and scheduling of one instance).

mod run_spec;
mod validate;

pub use run_spec::{container_task_env, PodTaskEnv};
pub use validate::validate_pod;

use super::app::{EnvValue, KillSelection, UnreachableStrategy};
use super::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A pod as stored and returned by `/v2/pods`, defaults filled in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodDefinition {
    pub id: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Assigned by the server on every change.
    #[serde(default)]
    pub version: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, EnvValue>,
    pub containers: Vec<PodContainer>,
    #[serde(default)]
    pub secrets: BTreeMap<String, Value>,
    #[serde(default)]
    pub volumes: Vec<PodVolume>,
    #[serde(default = "host_network")]
    pub networks: Vec<PodNetwork>,
    #[serde(default)]
    pub scaling: PodScaling,
    #[serde(default)]
    pub scheduling: PodScheduling,
    #[serde(default)]
    pub executor_resources: ExecutorResources,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_info: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_shared_cgroups: Option<bool>,
}

fn host_network() -> Vec<PodNetwork> {
    vec![PodNetwork {
        name: None,
        mode: PodNetworkMode::Host,
        labels: BTreeMap::new(),
    }]
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodContainer {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<PodExec>,
    #[serde(default)]
    pub resources: PodResources,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_limits: Option<Value>,
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<PodImage>,
    #[serde(default)]
    pub environment: BTreeMap<String, EnvValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<PodHealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Value>,
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(default)]
    pub artifacts: Vec<Value>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_info: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodExec {
    pub command: MesosCommand,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_entrypoint: Option<bool>,
}

/// A command as Mesos takes it: through `/bin/sh -c`, or exec'd as given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MesosCommand {
    Shell { shell: String },
    Argv { argv: Vec<String> },
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodResources {
    #[serde(default = "one")]
    pub cpus: f64,
    #[serde(default = "default_mem")]
    pub mem: f64,
    #[serde(default)]
    pub disk: f64,
    #[serde(default)]
    pub gpus: i64,
}

fn one() -> f64 {
    1.0
}

fn default_mem() -> f64 {
    128.0
}

impl Default for PodResources {
    fn default() -> Self {
        PodResources {
            cpus: 1.0,
            mem: 128.0,
            disk: 0.0,
            gpus: 0,
        }
    }
}

/// A port a container listens on: on the host (host networking, `hostPort` 0 = any) or in the
/// pod's network namespace (`containerPort`, with an optional `hostPort` mapped to it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protocol: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_names: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodImage {
    #[serde(default = "docker_kind")]
    pub kind: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_config: Option<Value>,
    #[serde(default)]
    pub force_pull: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

fn docker_kind() -> String {
    "DOCKER".to_string()
}

/// A health check Mesos runs next to one container; `endpoint` names one of its endpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodHealthCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecCheck>,
    #[serde(default = "grace_period")]
    pub grace_period_seconds: i64,
    #[serde(default = "interval")]
    pub interval_seconds: i64,
    #[serde(default = "max_failures")]
    pub max_consecutive_failures: i64,
    #[serde(default = "timeout")]
    pub timeout_seconds: i64,
    #[serde(default = "delay")]
    pub delay_seconds: i64,
}

fn grace_period() -> i64 {
    300
}
fn interval() -> i64 {
    60
}
fn max_failures() -> i64 {
    3
}
fn timeout() -> i64 {
    20
}
fn delay() -> i64 {
    15
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpCheck {
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default = "http_scheme")]
    pub scheme: String,
}

fn http_scheme() -> String {
    "HTTP".to_string()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TcpCheck {
    pub endpoint: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecCheck {
    pub command: MesosCommand,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_grace_period_seconds: Option<f64>,
}

/// A pod volume: ephemeral (only a name: it lives as long as the instance), a host path, a
/// persistent volume, or a secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodVolume {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodNetwork {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub mode: PodNetworkMode,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// How a pod's containers are networked; Marathon's default mode is `container`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodNetworkMode {
    #[default]
    #[serde(rename = "container")]
    Container,
    #[serde(rename = "container/bridge")]
    Bridge,
    #[serde(rename = "host")]
    Host,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodScaling {
    #[serde(default = "fixed")]
    pub kind: String,
    #[serde(default = "one_instance")]
    pub instances: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<i64>,
}

fn fixed() -> String {
    "fixed".to_string()
}

fn one_instance() -> i64 {
    1
}

impl Default for PodScaling {
    fn default() -> Self {
        PodScaling {
            kind: fixed(),
            instances: 1,
            max_instances: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodScheduling {
    #[serde(default)]
    pub backoff: PodBackoff,
    #[serde(default)]
    pub upgrade: PodUpgrade,
    #[serde(default)]
    pub placement: PodPlacement,
    #[serde(default)]
    pub kill_selection: KillSelection,
    #[serde(default)]
    pub unreachable_strategy: UnreachableStrategy,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodBackoff {
    #[serde(default = "one")]
    pub backoff: f64,
    #[serde(default = "backoff_factor")]
    pub backoff_factor: f64,
    #[serde(default = "max_launch_delay")]
    pub max_launch_delay: f64,
}

fn backoff_factor() -> f64 {
    1.15
}

fn max_launch_delay() -> f64 {
    300.0
}

impl Default for PodBackoff {
    fn default() -> Self {
        PodBackoff {
            backoff: 1.0,
            backoff_factor: 1.15,
            max_launch_delay: 300.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodUpgrade {
    #[serde(default = "one")]
    pub minimum_health_capacity: f64,
    #[serde(default = "one")]
    pub maximum_over_capacity: f64,
}

impl Default for PodUpgrade {
    fn default() -> Self {
        PodUpgrade {
            minimum_health_capacity: 1.0,
            maximum_over_capacity: 1.0,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodPlacement {
    #[serde(default)]
    pub constraints: Vec<PodConstraint>,
    #[serde(default)]
    pub accepted_resource_roles: Vec<String>,
}

/// A placement constraint in the pod form; the same operators as an app's `[field, OP, value]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodConstraint {
    pub field_name: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl PodConstraint {
    /// The app form, `[field, OPERATOR]` or `[field, OPERATOR, value]`.
    pub fn as_app_constraint(&self) -> Vec<String> {
        let mut constraint = vec![self.field_name.clone(), self.operator.clone()];
        constraint.extend(self.value.clone());
        constraint
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecutorResources {
    #[serde(default = "executor_cpus")]
    pub cpus: f64,
    #[serde(default = "executor_mem")]
    pub mem: f64,
    #[serde(default = "executor_disk")]
    pub disk: f64,
}

fn executor_cpus() -> f64 {
    0.1
}

fn executor_mem() -> f64 {
    32.0
}

fn executor_disk() -> f64 {
    10.0
}

impl Default for ExecutorResources {
    fn default() -> Self {
        ExecutorResources {
            cpus: 0.1,
            mem: 32.0,
            disk: 10.0,
        }
    }
}

impl PodDefinition {
    /// The network mode its containers share: the first network's (host when none is named).
    pub fn network_mode(&self) -> PodNetworkMode {
        self.networks
            .first()
            .map_or(PodNetworkMode::Host, |network| network.mode)
    }

    /// What one instance takes from an agent: every container's resources and the executor's.
    pub fn instance_resources(&self) -> PodResources {
        let executor = self.executor_resources;
        self.containers.iter().fold(
            PodResources {
                cpus: executor.cpus,
                mem: executor.mem,
                disk: executor.disk,
                gpus: 0,
            },
            |sum, container| PodResources {
                cpus: sum.cpus + container.resources.cpus,
                mem: sum.mem + container.resources.mem,
                disk: sum.disk + container.resources.disk,
                gpus: sum.gpus + container.resources.gpus,
            },
        )
    }

    /// Every endpoint that takes a host port, in container order: `(container, endpoint)`.
    pub fn host_endpoints(&self) -> impl Iterator<Item = (&PodContainer, &Endpoint)> {
        self.containers.iter().flat_map(|container| {
            container
                .endpoints
                .iter()
                .filter(|endpoint| endpoint.host_port.is_some())
                .map(move |endpoint| (container, endpoint))
        })
    }

    /// Whether anything but the number of instances differs (Marathon restarts the pod's
    /// instances then; a scale change alone only adds or removes instances).
    pub fn is_config_change(&self, other: &PodDefinition) -> bool {
        let without_scaling = |pod: &PodDefinition| PodDefinition {
            version: Timestamp::default(),
            scaling: PodScaling::default(),
            ..pod.clone()
        };
        without_scaling(self) != without_scaling(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_pod_gets_marathons_defaults() {
        let pod: PodDefinition = serde_json::from_str(
            r#"{"id":"/p","containers":[{"name":"a","exec":{"command":{"shell":"sleep 1"}}}]}"#,
        )
        .unwrap();
        assert_eq!(pod.scaling.instances, 1);
        assert_eq!(pod.scheduling.backoff.backoff_factor, 1.15);
        assert_eq!(pod.scheduling.upgrade.maximum_over_capacity, 1.0);
        assert_eq!(pod.executor_resources.mem, 32.0);
        assert_eq!(pod.containers[0].resources.cpus, 1.0);
        assert_eq!(pod.containers[0].resources.mem, 128.0);
        assert_eq!(pod.network_mode(), PodNetworkMode::Host);
        let resources = pod.instance_resources();
        assert!((resources.cpus - 1.1).abs() < 1e-9);
        assert_eq!(resources.mem, 160.0);
        let json = serde_json::to_value(&pod).unwrap();
        assert_eq!(
            json["scaling"],
            serde_json::json!({"kind": "fixed", "instances": 1})
        );
        assert_eq!(json["networks"], serde_json::json!([{"mode": "host"}]));
        assert_eq!(
            json["scheduling"]["unreachableStrategy"],
            serde_json::json!({"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0})
        );
    }

    #[test]
    fn the_reference_example_round_trips() {
        let text = include_str!("reference_example.json");
        let pod: PodDefinition = serde_json::from_str(text).unwrap();
        assert_eq!(pod.network_mode(), PodNetworkMode::Container);
        assert_eq!(pod.networks[0].name.as_deref(), Some("my-network"));
        assert_eq!(pod.scaling.max_instances, Some(888));
        let again: PodDefinition =
            serde_json::from_value(serde_json::to_value(&pod).unwrap()).unwrap();
        assert_eq!(again, pod);
    }

    #[test]
    fn only_a_change_beyond_scaling_is_a_config_change() {
        let pod: PodDefinition = serde_json::from_str(
            r#"{"id":"/p","containers":[{"name":"a","exec":{"command":{"shell":"sleep 1"}}}]}"#,
        )
        .unwrap();
        let mut scaled = pod.clone();
        scaled.scaling.instances = 3;
        scaled.version = Timestamp::from_millis(5);
        assert!(!pod.is_config_change(&scaled));
        let mut changed = pod.clone();
        changed.containers[0].resources.mem = 64.0;
        assert!(pod.is_config_change(&changed));
    }
}
