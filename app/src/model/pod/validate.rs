//! The rules a pod definition must keep (Marathon's pod validation), as 422 `details`.

use super::{MesosCommand, PodContainer, PodDefinition, PodHealthCheck, PodNetworkMode};
use crate::model::app::UnreachableStrategy;
use crate::model::path;
use crate::model::validate::{constraint_errors, jvm_double, Violation, Violations};
use regex::Regex;
use std::collections::HashSet;
use std::sync::LazyLock;

/// Marathon's rule for the names of pod containers, endpoints and volumes.
const NAME_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

static NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(NAME_PATTERN).expect("name regex"));

static ENV_KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[a-zA-Z_][a-zA-Z0-9_]{0,253}$").expect("env key regex"));

/// Checks a complete pod against Marathon's rules; `raw_id` is the id as the client wrote it.
pub fn validate_pod(pod: &PodDefinition, raw_id: &str) -> Result<(), Vec<Violation>> {
    let mut v = Violations::default();
    for error in path::app_id_errors(raw_id) {
        v.add("/id", error);
    }
    check_environment(&mut v, "/environment", pod.environment.keys());
    if pod.containers.is_empty() {
        v.add("/containers", "must not be empty");
    }
    let mut container_names = HashSet::new();
    let mut endpoint_names = HashSet::new();
    let mut host_ports = HashSet::new();
    let mut container_ports = HashSet::new();
    let host_mode = pod.network_mode() == PodNetworkMode::Host;
    for (i, container) in pod.containers.iter().enumerate() {
        let at = format!("/containers({i})");
        check_name(&mut v, &format!("{at}/name"), &container.name);
        if container.name == "_app" {
            v.add(&format!("{at}/name"), "must not be _app");
        }
        if !container_names.insert(container.name.as_str()) {
            v.add("/containers", "container names are not unique");
        }
        check_container(&mut v, &at, container, pod);
        for (j, endpoint) in container.endpoints.iter().enumerate() {
            let at = format!("{at}/endpoints({j})");
            check_name(&mut v, &format!("{at}/name"), &endpoint.name);
            if !endpoint_names.insert(endpoint.name.as_str()) {
                v.add("/containers", "endpoint names are not unique");
            }
            match (host_mode, endpoint.container_port) {
                (true, Some(_)) => v.add(
                    &format!("{at}/containerPort"),
                    "is not allowed in host network mode",
                ),
                (false, None) => v.add(
                    &format!("{at}/containerPort"),
                    "is required in container network mode",
                ),
                _ => {}
            }
            if let Some(port) = endpoint.container_port {
                check_port(&mut v, &format!("{at}/containerPort"), port, 1);
                if !container_ports.insert(port) {
                    v.add("/containers", "container ports are not unique");
                }
            }
            if let Some(port) = endpoint.host_port {
                check_port(&mut v, &format!("{at}/hostPort"), port, 0);
                if port != 0 && !host_ports.insert(port) {
                    v.add("/containers", "host ports are not unique");
                }
            }
            let protocols: HashSet<_> = endpoint.protocol.iter().collect();
            if protocols.len() != endpoint.protocol.len() {
                v.add(&format!("{at}/protocol"), "Elements must be unique");
            }
            if let Some(bad) = endpoint
                .protocol
                .iter()
                .find(|p| !matches!(p.as_str(), "tcp" | "udp"))
            {
                v.add(
                    &format!("{at}/protocol"),
                    format!("{bad} is not one of (tcp,udp)"),
                );
            }
        }
    }
    let mut volume_names = HashSet::new();
    for (i, volume) in pod.volumes.iter().enumerate() {
        let at = format!("/volumes({i})");
        check_name(&mut v, &format!("{at}/name"), &volume.name);
        if !volume_names.insert(volume.name.as_str()) {
            v.add("/volumes", "volume names are not unique");
        }
        let kinds = [
            volume.host.is_some(),
            volume.persistent.is_some(),
            volume.secret.is_some(),
        ];
        if kinds.iter().filter(|&&kind| kind).count() > 1 {
            v.add(
                &at,
                "a volume is ephemeral, a host path, persistent or a secret: only one of host, persistent, secret",
            );
        }
        if volume
            .host
            .as_ref()
            .is_some_and(|host| !host.starts_with('/'))
        {
            v.add(&format!("{at}/host"), "must be an absolute path");
        }
        if volume.persistent.is_some() {
            v.add(
                &format!("{at}/persistent"),
                "persistent pod volumes are not supported by Stride yet",
            );
        }
        if volume.secret.is_some() {
            v.add(
                &format!("{at}/secret"),
                "Feature secrets is not enabled. Enable with --enable_features secrets)",
            );
        }
        let mounted = pod
            .containers
            .iter()
            .flat_map(|c| &c.volume_mounts)
            .any(|mount| mount.name == volume.name);
        if !mounted {
            v.add(
                &format!("{at}/name"),
                "volume is not mounted by any container",
            );
        }
    }
    if !pod.secrets.is_empty() {
        v.add(
            "/secrets",
            "Feature secrets is not enabled. Enable with --enable_features secrets)",
        );
    }
    for (i, network) in pod.networks.iter().enumerate() {
        if network.mode == PodNetworkMode::Container && network.name.is_none() && i > 0 {
            v.add(&format!("/networks({i})/name"), "must not be empty");
        }
    }
    if pod.networks.len() > 1
        && pod
            .networks
            .iter()
            .any(|n| n.mode != PodNetworkMode::Container)
    {
        v.add(
            "/networks",
            "host and bridge networking cannot be combined with other networks",
        );
    }
    check_scaling_and_scheduling(&mut v, pod);
    if v.0.is_empty() {
        Ok(())
    } else {
        Err(v.0)
    }
}

fn check_container(v: &mut Violations, at: &str, container: &PodContainer, pod: &PodDefinition) {
    let resources = container.resources;
    for (name, value) in [("cpus", resources.cpus), ("mem", resources.mem)] {
        if value.is_nan() || value < 0.001 {
            v.add(
                &format!("{at}/resources/{name}"),
                format!("got {}, expected 0.001 or more", jvm_double(value)),
            );
        }
    }
    if resources.disk.is_nan() || resources.disk < 0.0 {
        v.add(
            &format!("{at}/resources/disk"),
            format!("got {}, expected 0.0 or more", jvm_double(resources.disk)),
        );
    }
    if resources.gpus < 0 {
        v.add(
            &format!("{at}/resources/gpus"),
            format!("got {}, expected 0 or more", resources.gpus),
        );
    }
    match (&container.exec, &container.image) {
        (None, None) => v.add(
            &format!("{at}/exec"),
            "a container without an image needs a command",
        ),
        (Some(exec), _) if command_is_empty(&exec.command) => {
            v.add(&format!("{at}/exec/command"), "must not be empty")
        }
        _ => {}
    }
    if let Some(image) = &container.image {
        if image.id.trim().is_empty() {
            v.add(&format!("{at}/image/id"), "must not be empty");
        }
        if image.kind != "DOCKER" {
            v.add(&format!("{at}/image/kind"), "is not one of (DOCKER)");
        }
    }
    check_environment(
        v,
        &format!("{at}/environment"),
        container.environment.keys(),
    );
    for (i, mount) in container.volume_mounts.iter().enumerate() {
        let mount_at = format!("{at}/volumeMounts({i})");
        if !pod.volumes.iter().any(|volume| volume.name == mount.name) {
            v.add(
                &format!("{mount_at}/name"),
                format!("volume {} is not defined by the pod", mount.name),
            );
        }
        if mount.mount_path.trim().is_empty() {
            v.add(&format!("{mount_at}/mountPath"), "must not be empty");
        }
    }
    if let Some(grace) = container
        .lifecycle
        .and_then(|l| l.kill_grace_period_seconds)
    {
        if grace.is_nan() || grace < 0.0 {
            v.add(
                &format!("{at}/lifecycle/killGracePeriodSeconds"),
                format!("got {}, expected 0.0 or more", jvm_double(grace)),
            );
        }
    }
    if let Some(check) = &container.health_check {
        check_health_check(v, &format!("{at}/healthCheck"), check, container);
    }
}

fn check_health_check(
    v: &mut Violations,
    at: &str,
    check: &PodHealthCheck,
    container: &PodContainer,
) {
    let endpoint = match (&check.http, &check.tcp, &check.exec) {
        (Some(http), None, None) => Some(&http.endpoint),
        (None, Some(tcp), None) => Some(&tcp.endpoint),
        (None, None, Some(exec)) => {
            if command_is_empty(&exec.command) {
                v.add(&format!("{at}/exec/command"), "must not be empty");
            }
            None
        }
        _ => {
            v.add(at, "exactly one of http, tcp or exec must be set");
            None
        }
    };
    if let Some(endpoint) = endpoint {
        if !container.endpoints.iter().any(|e| &e.name == endpoint) {
            v.add(
                at,
                format!(
                    "the health check's endpoint {endpoint} is not an endpoint of this container"
                ),
            );
        }
    }
    if check
        .http
        .as_ref()
        .is_some_and(|h| !matches!(h.scheme.as_str(), "HTTP" | "HTTPS"))
    {
        v.add(&format!("{at}/http/scheme"), "is not one of (HTTP,HTTPS)");
    }
    for (name, value, min) in [
        ("gracePeriodSeconds", check.grace_period_seconds, 0),
        ("intervalSeconds", check.interval_seconds, 1),
        ("maxConsecutiveFailures", check.max_consecutive_failures, 0),
        ("timeoutSeconds", check.timeout_seconds, 1),
        ("delaySeconds", check.delay_seconds, 0),
    ] {
        if value < min {
            v.add(
                &format!("{at}/{name}"),
                format!("got {value}, expected {min} or more"),
            );
        }
    }
    if check.timeout_seconds >= check.interval_seconds {
        v.add(
            &format!("{at}/timeoutSeconds"),
            format!(
                "got {}, expected less than intervalSeconds ({})",
                check.timeout_seconds, check.interval_seconds
            ),
        );
    }
}

fn check_scaling_and_scheduling(v: &mut Violations, pod: &PodDefinition) {
    if pod.scaling.kind != "fixed" {
        v.add("/scaling/kind", "is not one of (fixed)");
    }
    if pod.scaling.instances < 0 {
        v.add(
            "/scaling/instances",
            format!("got {}, expected 0 or more", pod.scaling.instances),
        );
    }
    if let Some(max) = pod.scaling.max_instances {
        if max < pod.scaling.instances {
            v.add(
                "/scaling/maxInstances",
                format!("got {max}, expected {} or more", pod.scaling.instances),
            );
        }
    }
    let scheduling = &pod.scheduling;
    let backoff = scheduling.backoff;
    for (name, value, min) in [
        ("backoff", backoff.backoff, 0.0),
        ("backoffFactor", backoff.backoff_factor, 0.0),
        ("maxLaunchDelay", backoff.max_launch_delay, 0.0),
    ] {
        if value.is_nan() || value < min {
            v.add(
                &format!("/scheduling/backoff/{name}"),
                format!(
                    "got {}, expected {} or more",
                    jvm_double(value),
                    jvm_double(min)
                ),
            );
        }
    }
    for (name, value) in [
        (
            "minimumHealthCapacity",
            scheduling.upgrade.minimum_health_capacity,
        ),
        (
            "maximumOverCapacity",
            scheduling.upgrade.maximum_over_capacity,
        ),
    ] {
        if !(0.0..=1.0).contains(&value) {
            v.add(
                &format!("/scheduling/upgrade/{name}"),
                format!("got {}, expected between 0.0 and 1.0", jvm_double(value)),
            );
        }
    }
    for (i, constraint) in scheduling.placement.constraints.iter().enumerate() {
        if let Some(error) = constraint_errors(&constraint.as_app_constraint()) {
            v.add(&format!("/scheduling/placement/constraints({i})"), error);
        }
    }
    if let UnreachableStrategy::Enabled {
        inactive_after_seconds: inactive,
        expunge_after_seconds: expunge,
    } = scheduling.unreachable_strategy
    {
        if inactive < 0 || expunge < 0 || inactive > expunge {
            v.add(
                "/scheduling/unreachableStrategy",
                format!(
                    "inactiveAfterSeconds ({inactive}) must be 0 or more and less or equal to expungeAfterSeconds, which is {expunge}"
                ),
            );
        }
    }
    let executor = pod.executor_resources;
    for (name, value, min) in [
        ("cpus", executor.cpus, 0.1),
        ("mem", executor.mem, 32.0),
        ("disk", executor.disk, 10.0),
    ] {
        if value.is_nan() || value < min {
            v.add(
                &format!("/executorResources/{name}"),
                format!(
                    "got {}, expected {} or more",
                    jvm_double(value),
                    jvm_double(min)
                ),
            );
        }
    }
    if pod.role.as_ref().is_some_and(|role| role.is_empty()) {
        v.add("/role", "must not be empty");
    }
}

fn command_is_empty(command: &MesosCommand) -> bool {
    match command {
        MesosCommand::Shell { shell } => shell.trim().is_empty(),
        MesosCommand::Argv { argv } => argv.is_empty(),
    }
}

fn check_name(v: &mut Violations, at: &str, name: &str) {
    if name.is_empty() || name.len() > 63 {
        v.add(at, "must have a length between 1 and 63");
    } else if !NAME.is_match(name) {
        v.add(
            at,
            format!("must fully match regular expression '{NAME_PATTERN}'"),
        );
    }
}

fn check_environment<'a>(v: &mut Violations, at: &str, keys: impl Iterator<Item = &'a String>) {
    for key in keys {
        if !ENV_KEY.is_match(key) {
            v.add(
                at,
                format!(
                    "{key} must fully match regular expression '^[a-zA-Z_][a-zA-Z0-9_]{{0,253}}$'"
                ),
            );
        }
    }
}

fn check_port(v: &mut Violations, at: &str, port: i64, min: i64) {
    if !(min..=65535).contains(&port) {
        v.add(at, format!("got {port}, expected between {min} and 65535"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validate::by_field;

    fn errors(json: &str) -> std::collections::BTreeMap<String, Vec<String>> {
        let pod: PodDefinition = serde_json::from_str(json).unwrap();
        validate_pod(&pod, &pod.id.clone())
            .err()
            .map(|violations| by_field(&violations))
            .unwrap_or_default()
    }

    #[test]
    fn a_plain_pod_is_valid() {
        assert!(errors(
            r#"{"id": "/p", "volumes": [{"name": "shared"}],
                "containers": [
                  {"name": "a", "exec": {"command": {"shell": "sleep 100"}},
                   "volumeMounts": [{"name": "shared", "mountPath": "data"}],
                   "endpoints": [{"name": "http", "hostPort": 0}],
                   "healthCheck": {"http": {"endpoint": "http"}}},
                  {"name": "b", "exec": {"command": {"argv": ["sleep", "100"]}},
                   "volumeMounts": [{"name": "shared", "mountPath": "data"}]}]}"#
        )
        .is_empty());
    }

    #[test]
    fn broken_pods_name_each_field() {
        let found = errors(
            r#"{"id": "/P", "volumes": [{"name": "lonely"}],
                "scaling": {"instances": -1},
                "scheduling": {"upgrade": {"maximumOverCapacity": 2},
                               "placement": {"constraints": [{"fieldName": "hostname", "operator": "UNIQUE", "value": "x"}]}},
                "containers": [
                  {"name": "Web", "resources": {"cpus": 0},
                   "endpoints": [{"name": "http", "containerPort": 80}],
                   "volumeMounts": [{"name": "missing", "mountPath": "/m"}],
                   "healthCheck": {"tcp": {"endpoint": "nope"}, "timeoutSeconds": 60}},
                  {"name": "_app", "exec": {"command": {"shell": " "}},
                   "endpoints": [{"name": "http", "hostPort": 70000}]}]}"#,
        );
        let has = |path: &str, text: &str| {
            assert!(
                found
                    .get(path)
                    .is_some_and(|errors| errors.iter().any(|e| e.contains(text))),
                "{path}: {text} not in {found:#?}"
            )
        };
        has("id", "must fully match");
        has("containers(0)/name", "must fully match");
        has(
            "containers(0)/resources/cpus",
            "got 0.0, expected 0.001 or more",
        );
        has("containers(0)/exec", "needs a command");
        has(
            "containers(0)/endpoints(0)/containerPort",
            "not allowed in host network mode",
        );
        has(
            "containers(0)/volumeMounts(0)/name",
            "volume missing is not defined",
        );
        has("containers(0)/healthCheck", "nope is not an endpoint");
        has(
            "containers(0)/healthCheck/timeoutSeconds",
            "less than intervalSeconds",
        );
        has("containers(1)/name", "must not be _app");
        has("containers(1)/exec/command", "must not be empty");
        has("containers(1)/endpoints(0)/hostPort", "between 0 and 65535");
        has("containers", "endpoint names are not unique");
        has("volumes(0)/name", "not mounted by any container");
        has("scaling/instances", "expected 0 or more");
        has(
            "scheduling/upgrade/maximumOverCapacity",
            "between 0.0 and 1.0",
        );
        has(
            "scheduling/placement/constraints(0)",
            "UNIQUE does not accept a value",
        );
    }

    #[test]
    fn container_networks_need_container_ports() {
        let found = errors(
            r#"{"id": "/p", "networks": [{"mode": "container/bridge"}],
                "containers": [{"name": "a", "exec": {"command": {"shell": "true"}},
                                "endpoints": [{"name": "web", "hostPort": 0}]}]}"#,
        );
        assert_eq!(
            found["containers(0)/endpoints(0)/containerPort"],
            vec!["is required in container network mode"]
        );
    }
}
