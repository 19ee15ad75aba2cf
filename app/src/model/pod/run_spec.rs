//! What the scheduler core sees of a pod: one run spec whose instance takes the resources of
//! every container and the executor, and the environment each container's task gets.

use super::{PodDefinition, PodNetworkMode};
use crate::model::app::{AppDefinition, EnvValue, UpgradeStrategy, VersionInfo};
use crate::model::validate::{jvm_double, label_env_key};
use std::collections::BTreeMap;

impl PodDefinition {
    /// The pod as the core schedules it: an instance needs the resources of all containers
    /// and the executor, is placed by the pod's constraints and roles, backs off, upgrades and
    /// scales by the pod's `scheduling` and `scaling`. The pod itself rides along, so that its
    /// instances are launched as task groups and the API shows it as a pod.
    pub fn run_spec(&self, version_info: VersionInfo) -> AppDefinition {
        let resources = self.instance_resources();
        let scheduling = &self.scheduling;
        AppDefinition {
            id: self.id.clone(),
            cmd: None,
            args: Vec::new(),
            user: self.user.clone(),
            env: BTreeMap::new(),
            instances: self.scaling.instances,
            cpus: resources.cpus,
            mem: resources.mem,
            disk: resources.disk,
            gpus: resources.gpus,
            executor: String::new(),
            constraints: scheduling
                .placement
                .constraints
                .iter()
                .map(|c| c.as_app_constraint())
                .collect(),
            accepted_resource_roles: scheduling.placement.accepted_resource_roles.clone(),
            role: self.role.clone().unwrap_or_else(|| "*".to_string()),
            container: None,
            networks: Vec::new(),
            port_definitions: Vec::new(),
            require_ports: false,
            fetch: Vec::new(),
            health_checks: Vec::new(),
            check: None,
            readiness_checks: Vec::new(),
            dependencies: Vec::new(),
            upgrade_strategy: UpgradeStrategy {
                minimum_health_capacity: scheduling.upgrade.minimum_health_capacity,
                maximum_over_capacity: scheduling.upgrade.maximum_over_capacity,
                deployment_timeout_seconds: None,
                auto_rollback: None,
            },
            labels: self.labels.clone(),
            // The backoff counts whole seconds; a pod's fractional seconds round up so that a
            // short backoff never becomes none.
            backoff_seconds: scheduling.backoff.backoff.ceil() as i64,
            backoff_factor: scheduling.backoff.backoff_factor,
            max_launch_delay_seconds: scheduling.backoff.max_launch_delay.ceil() as i64,
            task_kill_grace_period_seconds: None,
            secrets: BTreeMap::new(),
            unreachable_strategy: scheduling.unreachable_strategy,
            kill_selection: scheduling.kill_selection,
            residency: None,
            tty: None,
            version: self.version,
            version_info,
            pod: Some(Box::new(self.clone())),
        }
    }
}

/// What a container's task environment depends on beyond the pod.
pub struct PodTaskEnv<'a> {
    pub task_id: &'a str,
    pub executor_id: &'a str,
    /// The host port each endpoint that asked for one got, by endpoint name.
    pub host_ports: &'a BTreeMap<String, u32>,
}

/// The environment of one container's task (SEMANTICS.md §19, pods): Marathon's variables,
/// every endpoint of every container, then the pod's `environment` and the container's own
/// (the container's wins).
pub fn container_task_env(
    pod: &PodDefinition,
    container_name: &str,
    task: &PodTaskEnv<'_>,
) -> Vec<(String, String)> {
    let mut env = BTreeMap::new();
    let mut set = |key: String, value: String| {
        env.insert(key, value);
    };
    set("MESOS_TASK_ID".into(), task.task_id.into());
    set("MESOS_EXECUTOR_ID".into(), task.executor_id.into());
    set("MARATHON_APP_ID".into(), pod.id.clone());
    set("MARATHON_APP_VERSION".into(), pod.version.to_string());
    set("MARATHON_CONTAINER_ID".into(), container_name.into());
    let container = pod.containers.iter().find(|c| c.name == container_name);
    if let Some(container) = container {
        let resources = container.resources;
        set(
            "MARATHON_CONTAINER_RESOURCE_CPUS".into(),
            jvm_double(resources.cpus),
        );
        set(
            "MARATHON_CONTAINER_RESOURCE_MEM".into(),
            jvm_double(resources.mem),
        );
        set(
            "MARATHON_CONTAINER_RESOURCE_DISK".into(),
            jvm_double(resources.disk),
        );
        set(
            "MARATHON_CONTAINER_RESOURCE_GPUS".into(),
            resources.gpus.to_string(),
        );
    }
    let host_mode = pod.network_mode() == PodNetworkMode::Host;
    for endpoint in pod.containers.iter().flat_map(|c| &c.endpoints) {
        let name = label_env_key(&endpoint.name);
        let host_port = task.host_ports.get(&endpoint.name).copied();
        let container_port = endpoint.container_port.and_then(|p| u32::try_from(p).ok());
        let shown = if host_mode { host_port } else { container_port };
        if let Some(port) = shown {
            set(format!("ENDPOINT_{name}"), port.to_string());
        }
        if let Some(port) = host_port {
            set(format!("EP_HOST_{name}"), port.to_string());
        }
        if let Some(port) = container_port {
            set(format!("EP_CONTAINER_{name}"), port.to_string());
        }
    }
    let own = container.map(|c| &c.environment);
    for variables in std::iter::once(&pod.environment).chain(own) {
        for (key, value) in variables {
            if let EnvValue::Plain(value) = value {
                set(key.clone(), value.clone());
            }
        }
    }
    env.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ports::HostPort;

    fn pod() -> PodDefinition {
        serde_json::from_str(
            r#"{"id": "/shop/cart", "environment": {"LEVEL": "pod", "ONLY_POD": "1"},
                "scheduling": {"backoff": {"backoff": 0.5},
                               "placement": {"constraints": [{"fieldName": "hostname", "operator": "UNIQUE"}]}},
                "scaling": {"instances": 3},
                "containers": [
                  {"name": "web", "resources": {"cpus": 0.5, "mem": 64},
                   "endpoints": [{"name": "http-api", "hostPort": 0}],
                   "environment": {"LEVEL": "container"}},
                  {"name": "sidecar", "resources": {"cpus": 0.25, "mem": 32},
                   "endpoints": [{"name": "admin", "hostPort": 9000}]}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn the_run_spec_takes_every_containers_and_the_executors_resources() {
        let spec = pod().run_spec(VersionInfo::default());
        assert_eq!(spec.instances, 3);
        assert!((spec.cpus - 0.85).abs() < 1e-9);
        assert_eq!(spec.mem, 128.0);
        assert_eq!(spec.disk, 10.0);
        assert_eq!(spec.constraints, vec![vec!["hostname", "UNIQUE"]]);
        assert_eq!(spec.backoff_seconds, 1);
        assert!(spec.pod.is_some());
        assert_eq!(
            spec.host_ports(),
            vec![HostPort::Any, HostPort::Fixed(9000)]
        );
        assert!(spec.requested_service_ports().is_empty());
        assert!(!spec.has_health_checks());
        let mut scaled = pod();
        scaled.scaling.instances = 5;
        scaled.version = crate::model::time::Timestamp::from_millis(9);
        let scaled = scaled.run_spec(VersionInfo::default());
        assert!(
            !spec.is_config_change(&scaled),
            "a scale change is no config change"
        );
        let mut changed = pod();
        changed.containers[1].resources.mem = 16.0;
        assert!(spec.is_config_change(&changed.run_spec(VersionInfo::default())));
    }

    #[test]
    fn each_container_sees_every_endpoint_and_its_own_environment_wins() {
        let pod = pod();
        let ports = BTreeMap::from([("http-api".to_string(), 31001), ("admin".to_string(), 9000)]);
        let env = container_task_env(
            &pod,
            "web",
            &PodTaskEnv {
                task_id: "t.web.1",
                executor_id: "e",
                host_ports: &ports,
            },
        );
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("MARATHON_CONTAINER_ID"), Some("web"));
        assert_eq!(get("MARATHON_CONTAINER_RESOURCE_CPUS"), Some("0.5"));
        assert_eq!(get("MARATHON_CONTAINER_RESOURCE_MEM"), Some("64.0"));
        assert_eq!(get("ENDPOINT_HTTP_API"), Some("31001"));
        assert_eq!(get("EP_HOST_ADMIN"), Some("9000"));
        assert_eq!(get("ENDPOINT_ADMIN"), Some("9000"));
        assert_eq!(get("EP_CONTAINER_ADMIN"), None);
        assert_eq!(get("LEVEL"), Some("container"));
        assert_eq!(get("ONLY_POD"), Some("1"));
        assert_eq!(get("MESOS_EXECUTOR_ID"), Some("e"));
    }
}
