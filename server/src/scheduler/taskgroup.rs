//! What to launch for a pod instance: a Mesos task group (LAUNCH_GROUP) with one task per
//! container under Mesos' default executor.

use super::instance::container_task_id;
use super::placement::Allocation;
use super::taskbuild::{CheckSeconds, TaskCheck, TaskCheckKind, TaskSpec};
use app::model::pod::{container_task_env, MesosCommand, PodContainer, PodTaskEnv};
use app::model::{NetworkMode, PodDefinition};
use std::collections::BTreeMap;
use std::time::Duration;

/// A task group ready to be put into a Mesos LAUNCH_GROUP operation.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskGroupSpec {
    /// `instance-<safe pod path>.<uuid>`, Marathon's executor id for pod instances.
    pub executor_id: String,
    pub agent_id: String,
    pub role: String,
    /// What the executor itself takes, beside its tasks.
    pub executor_cpus: f64,
    pub executor_mem: f64,
    pub executor_disk: f64,
    /// One per container, in the pod's order.
    pub tasks: Vec<TaskSpec>,
}

/// Marathon's executor id of a pod instance: `<safe path>.instance-<uuid>` becomes
/// `instance-<safe path>.<uuid>`.
pub fn executor_id(instance_id: &str) -> String {
    match instance_id.rsplit_once(".instance-") {
        Some((safe_path, uuid)) => format!("instance-{safe_path}.{uuid}"),
        None => format!("instance-{instance_id}"),
    }
}

/// The instance's task group for `pod` on the allocation's offer: each container's task gets
/// its resources, the host ports of its endpoints (the allocation's, in endpoint order), the
/// pod's environment and its health check.
pub fn build_task_group(
    pod: &PodDefinition,
    instance_id: &str,
    incarnation: u32,
    allocation: &Allocation,
    agent_id: &str,
) -> TaskGroupSpec {
    let host_ports: BTreeMap<String, u32> = pod
        .host_endpoints()
        .map(|(_, endpoint)| endpoint.name.clone())
        .zip(allocation.ports.iter().copied())
        .collect();
    let executor_id = executor_id(instance_id);
    let role = pod.role.clone().unwrap_or_else(|| "*".to_string());
    let tasks = pod
        .containers
        .iter()
        .map(|container| {
            let task_id = container_task_id(instance_id, &container.name, incarnation);
            container_task(
                pod,
                container,
                &task_id,
                &executor_id,
                &host_ports,
                agent_id,
                &role,
            )
        })
        .collect();
    TaskGroupSpec {
        executor_id,
        agent_id: agent_id.to_string(),
        role,
        executor_cpus: pod.executor_resources.cpus,
        executor_mem: pod.executor_resources.mem,
        executor_disk: pod.executor_resources.disk,
        tasks,
    }
}

fn container_task(
    pod: &PodDefinition,
    container: &PodContainer,
    task_id: &str,
    executor_id: &str,
    host_ports: &BTreeMap<String, u32>,
    agent_id: &str,
    role: &str,
) -> TaskSpec {
    let env = container_task_env(
        pod,
        &container.name,
        &PodTaskEnv {
            task_id,
            executor_id,
            host_ports,
        },
    );
    let (shell_command, args) = match container.exec.as_ref().map(|exec| &exec.command) {
        Some(MesosCommand::Shell { shell }) => (Some(shell.clone()), Vec::new()),
        Some(MesosCommand::Argv { argv }) => (None, argv.clone()),
        None => (None, Vec::new()),
    };
    let own_ports: Vec<(String, u32)> = container
        .endpoints
        .iter()
        .filter_map(|e| Some((e.name.clone(), *host_ports.get(&e.name)?)))
        .collect();
    TaskSpec {
        task_id: task_id.to_string(),
        name: container.name.clone(),
        agent_id: agent_id.to_string(),
        cpus: container.resources.cpus,
        mem: container.resources.mem,
        disk: container.resources.disk,
        ports: own_ports.iter().map(|(_, port)| *port).collect(),
        role: role.to_string(),
        shell_command,
        args,
        env,
        labels: container
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        kill_grace: container
            .lifecycle
            .and_then(|l| l.kill_grace_period_seconds)
            .map(|s| Duration::from_secs_f64(s.max(0.0))),
        // A container image runs as a MESOS container, as Mesos' default executor runs them.
        container: container.image.as_ref().map(|image| {
            serde_json::json!({
                "type": "MESOS",
                "docker": {"image": image.id, "forcePullImage": image.force_pull},
            })
        }),
        fetch: Vec::new(),
        port_names: own_ports
            .iter()
            .map(|(name, _)| (Some(name.clone()), "tcp".to_string()))
            .collect(),
        network: NetworkMode::Host,
        port_mappings: Vec::new(),
        health_check: container_check(container, host_ports),
        reservation: None,
    }
}

/// The container's health check as Mesos runs it, on its endpoint's host port.
fn container_check(
    container: &PodContainer,
    host_ports: &BTreeMap<String, u32>,
) -> Option<TaskCheck> {
    let check = container.health_check.as_ref()?;
    let port_of = |endpoint: &str| host_ports.get(endpoint).copied();
    let kind = if let Some(http) = &check.http {
        TaskCheckKind::Http {
            port: port_of(&http.endpoint)?,
            path: http.path.clone().unwrap_or_else(|| "/".into()),
            https: http.scheme == "HTTPS",
        }
    } else if let Some(tcp) = &check.tcp {
        TaskCheckKind::Tcp {
            port: port_of(&tcp.endpoint)?,
        }
    } else {
        TaskCheckKind::Command(match &check.exec.as_ref()?.command {
            MesosCommand::Shell { shell } => shell.clone(),
            MesosCommand::Argv { argv } => shell_words(argv),
        })
    };
    Some(TaskCheck::new(
        kind,
        CheckSeconds {
            delay: check.delay_seconds,
            interval: check.interval_seconds,
            timeout: check.timeout_seconds,
            grace: check.grace_period_seconds,
            max_consecutive_failures: check.max_consecutive_failures,
        },
    ))
}

/// `argv` as one `/bin/sh -c` command that runs exactly those words: each single-quoted.
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|word| format!("'{}'", word.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_container_becomes_a_task_of_the_group_with_its_ports_and_check() {
        let pod: PodDefinition = serde_json::from_str(
            r#"{"id": "/shop/cart", "containers": [
                 {"name": "web", "resources": {"cpus": 0.5, "mem": 64},
                  "exec": {"command": {"shell": "httpd -f -p $ENDPOINT_HTTP"}},
                  "endpoints": [{"name": "http", "hostPort": 0}],
                  "healthCheck": {"http": {"endpoint": "http", "path": "/ok"}, "maxConsecutiveFailures": 2},
                  "lifecycle": {"killGracePeriodSeconds": 2.5}},
                 {"name": "side", "exec": {"command": {"argv": ["sleep", "100"]}},
                  "image": {"kind": "DOCKER", "id": "busybox:1"},
                  "endpoints": [{"name": "admin", "hostPort": 9000}]}]}"#,
        )
        .unwrap();
        let allocation = Allocation {
            instance_id: "shop_cart.instance-u1".into(),
            app_id: "/shop/cart".into(),
            cpus: 1.6,
            mem: 224.0,
            disk: 10.0,
            ports: vec![31001, 9000],
            volumes: Vec::new(),
        };
        let group = build_task_group(&pod, "shop_cart.instance-u1", 2, &allocation, "agent-1");
        assert_eq!(group.executor_id, "instance-shop_cart.u1");
        assert_eq!(group.executor_mem, 32.0);
        let [web, side] = &group.tasks[..] else {
            panic!("two tasks: {group:?}")
        };
        assert_eq!(web.task_id, "shop_cart.instance-u1.web.2");
        assert_eq!((web.cpus, web.mem), (0.5, 64.0));
        assert_eq!(web.ports, vec![31001]);
        assert_eq!(
            web.shell_command.as_deref(),
            Some("httpd -f -p $ENDPOINT_HTTP")
        );
        assert_eq!(web.kill_grace, Some(Duration::from_millis(2500)));
        let check = web.health_check.as_ref().expect("web's check");
        assert_eq!(
            check.kind,
            TaskCheckKind::Http {
                port: 31001,
                path: "/ok".into(),
                https: false
            }
        );
        assert_eq!(check.consecutive_failures, 2);
        assert!(web
            .env
            .contains(&("EP_HOST_ADMIN".to_string(), "9000".to_string())));
        assert_eq!(side.task_id, "shop_cart.instance-u1.side.2");
        assert_eq!(side.args, vec!["sleep", "100"]);
        assert_eq!(side.ports, vec![9000]);
        assert_eq!(
            side.container
                .as_ref()
                .and_then(|c| c.pointer("/docker/image")),
            Some(&serde_json::json!("busybox:1"))
        );
    }

    #[test]
    fn an_argv_check_runs_exactly_its_words() {
        let words = ["test", "-f", "it's here"].map(String::from);
        assert_eq!(shell_words(&words), r"'test' '-f' 'it'\''s here'");
    }
}
