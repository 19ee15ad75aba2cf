//! What to launch for an instance: the command, resources and Marathon's task environment.

use super::placement::Allocation;
use super::residency::ReservationSpec;
use app::model::{validate::label_env_key, AppDefinition, EnvValue, HealthProtocol, NetworkMode};
use std::time::Duration;

/// A task ready to be put into a Mesos LAUNCH operation.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskSpec {
    pub task_id: String,
    /// Mesos task name: the app id in hostname form, as Marathon names tasks.
    pub name: String,
    pub agent_id: String,
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    pub ports: Vec<u32>,
    pub role: String,
    /// `Some(cmd)` runs through `/bin/sh -c`, otherwise `args` are exec'd.
    pub shell_command: Option<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
    pub kill_grace: Option<Duration>,
    /// The app's `container` definition when it asks for one (e.g. Docker).
    pub container: Option<serde_json::Value>,
    /// What the agent fetches into the sandbox before the command starts (the app's `fetch`).
    pub fetch: Vec<FetchUri>,
    /// Name and protocol of each of `ports`, from the app's port definitions (or mappings).
    pub port_names: Vec<(Option<String>, String)>,
    /// How the task is networked; off the host's network, `port_mappings` say what
    /// container port each host port leads to.
    pub network: NetworkMode,
    pub port_mappings: Vec<PortMapping>,
    /// The health check the agent runs next to the task (the app's COMMAND or MESOS_* check).
    pub health_check: Option<TaskCheck>,
    /// A resident task runs on resources reserved for its instance, with its volumes.
    pub reservation: Option<ReservationSpec>,
}

/// A host port of a task and the container port behind it (Mesos' `DockerInfo.PortMapping`).
#[derive(Clone, Debug, PartialEq)]
pub struct PortMapping {
    pub host_port: u32,
    pub container_port: u32,
    pub protocol: String,
}

/// A health check for Mesos to run (`TaskInfo.health_check`).
#[derive(Clone, Debug, PartialEq)]
pub struct TaskCheck {
    pub kind: TaskCheckKind,
    pub delay: Duration,
    pub interval: Duration,
    pub timeout: Duration,
    pub grace: Duration,
    /// Failures in a row after which the task is killed (0: never).
    pub consecutive_failures: u32,
}

/// A check's timing as Marathon's JSON gives it (apps' and pod containers' alike), in seconds.
pub struct CheckSeconds {
    pub delay: i64,
    pub interval: i64,
    pub timeout: i64,
    pub grace: i64,
    pub max_consecutive_failures: i64,
}

impl TaskCheck {
    pub fn new(kind: TaskCheckKind, timing: CheckSeconds) -> TaskCheck {
        let seconds = |s: i64| Duration::from_secs(s.max(0) as u64);
        TaskCheck {
            kind,
            delay: seconds(timing.delay),
            interval: seconds(timing.interval),
            timeout: seconds(timing.timeout),
            grace: seconds(timing.grace),
            consecutive_failures: u32::try_from(timing.max_consecutive_failures.max(0))
                .unwrap_or(u32::MAX),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum TaskCheckKind {
    /// Run with `/bin/sh -c` in the task's sandbox and environment; healthy when it exits 0.
    Command(String),
    /// GET on the task's port; healthy on 2xx or 3xx.
    Http {
        port: u32,
        path: String,
        https: bool,
    },
    /// A connection to the task's port.
    Tcp { port: u32 },
}

/// The app's check that Mesos runs, for a task with these host ports.
fn task_check(app: &AppDefinition, ports: &[u32]) -> Option<TaskCheck> {
    let check = app
        .health_checks
        .iter()
        .find(|c| !c.protocol.is_probed_by_scheduler())?;
    let port = || match (check.port, check.port_index) {
        (Some(port), _) => u32::try_from(port).ok(),
        (None, Some(index)) => ports.get(usize::try_from(index).ok()?).copied(),
        (None, None) => None,
    };
    let kind = match check.protocol {
        HealthProtocol::Command => TaskCheckKind::Command(check.command.as_ref()?.value.clone()),
        HealthProtocol::MesosTcp => TaskCheckKind::Tcp { port: port()? },
        HealthProtocol::MesosHttp | HealthProtocol::MesosHttps => TaskCheckKind::Http {
            port: port()?,
            path: check.path.clone().unwrap_or_else(|| "/".into()),
            https: check.protocol == HealthProtocol::MesosHttps,
        },
        HealthProtocol::Http | HealthProtocol::Https | HealthProtocol::Tcp => return None,
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

/// One entry of an app's `fetch` (Mesos' `CommandInfo.URI`).
#[derive(Debug, Clone, PartialEq)]
pub struct FetchUri {
    pub uri: String,
    pub executable: bool,
    pub extract: bool,
    pub cache: bool,
    pub output_file: Option<String>,
}

impl FetchUri {
    /// Marathon's `fetch` item: `{"uri": …, "executable", "extract" (default true), "cache",
    /// "destPath"}`; `None` without a `uri`.
    fn of(item: &serde_json::Value) -> Option<FetchUri> {
        let flag = |name: &str, default: bool| item[name].as_bool().unwrap_or(default);
        Some(FetchUri {
            uri: item["uri"].as_str()?.to_owned(),
            executable: flag("executable", false),
            extract: flag("extract", true),
            cache: flag("cache", false),
            output_file: item["destPath"].as_str().map(str::to_owned),
        })
    }
}

/// A number as the JVM prints a double (`0.1`, `128.0`), which is what Marathon's env shows.
fn jvm_number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.1}")
    } else {
        v.to_string()
    }
}

/// Marathon's task environment (SEMANTICS.md §19); the app's own `env` is applied last and wins.
pub fn task_env(
    app: &AppDefinition,
    task_id: &str,
    host: &str,
    ports: &[u32],
) -> Vec<(String, String)> {
    let mut env = vec![
        ("MESOS_TASK_ID".to_string(), task_id.to_string()),
        ("MARATHON_APP_ID".to_string(), app.id.clone()),
        ("MARATHON_APP_VERSION".to_string(), app.version.to_string()),
        (
            "MARATHON_APP_RESOURCE_CPUS".to_string(),
            jvm_number(app.cpus),
        ),
        ("MARATHON_APP_RESOURCE_MEM".to_string(), jvm_number(app.mem)),
        (
            "MARATHON_APP_RESOURCE_DISK".to_string(),
            jvm_number(app.disk),
        ),
        (
            "MARATHON_APP_RESOURCE_GPUS".to_string(),
            app.gpus.to_string(),
        ),
    ];
    let docker_image = app
        .container
        .as_ref()
        .filter(|_| app.runs_in_docker())
        .and_then(|container| container.pointer("/docker/image"))
        .and_then(serde_json::Value::as_str);
    if let Some(image) = docker_image {
        env.push(("MARATHON_APP_DOCKER_IMAGE".to_string(), image.to_string()));
    }
    let label_keys: Vec<String> = app
        .labels
        .keys()
        .filter(|k| k.len() < 493)
        .map(|k| label_env_key(k))
        .collect();
    env.push(("MARATHON_APP_LABELS".to_string(), label_keys.join(" ")));
    for (key, value) in &app.labels {
        if key.len() < 493 && value.len() < 512 {
            env.push((
                format!("MARATHON_APP_LABEL_{}", label_env_key(key)),
                value.clone(),
            ));
        }
    }
    for ((index, port), (requested, name)) in ports.iter().enumerate().zip(requested_ports(app)) {
        env.push((format!("PORT{index}"), port.to_string()));
        let requested = if requested != 0 { requested } else { *port };
        env.push((format!("PORT_{requested}"), port.to_string()));
        if let Some(name) = &name {
            env.push((format!("PORT_{}", label_env_key(name)), port.to_string()));
        }
    }
    if let Some(first) = ports.first() {
        env.push(("PORT".to_string(), first.to_string()));
    }
    env.push((
        "PORTS".to_string(),
        ports
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
    ));
    env.push(("HOST".to_string(), host.to_string()));
    for (key, value) in &app.env {
        if let EnvValue::Plain(v) = value {
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), v.clone()));
        }
    }
    env
}

/// The port each host port of a task was asked for (a port definition's `port`, or a mapping's
/// `containerPort`; 0 for none) and its name, in the order of the task's ports.
fn requested_ports(app: &AppDefinition) -> Vec<(u32, Option<String>)> {
    let mapped = app.mapped_ports();
    if app.network_mode() != NetworkMode::Host {
        return mapped
            .into_iter()
            .map(|port| (port.container_port, port.name))
            .collect();
    }
    app.port_definitions
        .iter()
        .map(|pd| (u32::try_from(pd.port).unwrap_or(0), pd.name.clone()))
        .collect()
}

/// `/prod/web` → `web.prod`, the hostname form Marathon uses for task names.
fn hostname_form(app_id: &str) -> String {
    app_id
        .split('/')
        .filter(|s| !s.is_empty())
        .rev()
        .collect::<Vec<_>>()
        .join(".")
}

pub fn build_task(
    app: &AppDefinition,
    task_id: String,
    allocation: &Allocation,
    agent_id: &str,
    host: &str,
) -> TaskSpec {
    let mapped = app.mapped_ports();
    TaskSpec {
        env: task_env(app, &task_id, host, &allocation.ports),
        task_id,
        name: hostname_form(&app.id),
        agent_id: agent_id.to_string(),
        cpus: allocation.cpus,
        mem: allocation.mem,
        disk: allocation.disk,
        ports: allocation.ports.clone(),
        role: app.role.clone(),
        shell_command: app.cmd.clone(),
        args: app.args.clone(),
        labels: app
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        kill_grace: app
            .task_kill_grace_period_seconds
            .map(|s| Duration::from_secs(s.max(0) as u64)),
        container: app.container.clone(),
        fetch: app.fetch.iter().filter_map(FetchUri::of).collect(),
        port_names: match app.network_mode() {
            NetworkMode::Host => app
                .port_definitions
                .iter()
                .map(|definition| (definition.name.clone(), definition.protocol.clone()))
                .take(allocation.ports.len())
                .collect(),
            _ => mapped
                .iter()
                .map(|port| (port.name.clone(), port.protocol.clone()))
                .collect(),
        },
        network: app.network_mode(),
        port_mappings: allocation
            .ports
            .iter()
            .zip(&mapped)
            .map(|(&host_port, port)| PortMapping {
                host_port,
                // Marathon: a container port of 0 is the host port.
                container_port: if port.container_port == 0 {
                    host_port
                } else {
                    port.container_port
                },
                protocol: port.protocol.clone(),
            })
            .collect(),
        health_check: task_check(app, &allocation.ports),
        reservation: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::app_with;

    #[test]
    fn environment_has_marathons_variables_and_app_env_wins() {
        let mut app = app_with(1, 0);
        app.id = "/prod/web".into();
        app.labels.insert("owner.team".into(), "core".into());
        app.env
            .insert("HOST".into(), EnvValue::Plain("override".into()));
        app.port_definitions[0].name = Some("http".into());
        let env = task_env(&app, "t1", "host-1", &[31005]);
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("MESOS_TASK_ID"), Some("t1"));
        assert_eq!(get("MARATHON_APP_ID"), Some("/prod/web"));
        assert_eq!(get("MARATHON_APP_RESOURCE_CPUS"), Some("0.1"));
        assert_eq!(get("MARATHON_APP_RESOURCE_MEM"), Some("32.0"));
        assert_eq!(get("MARATHON_APP_LABEL_OWNER_TEAM"), Some("core"));
        assert_eq!(get("PORT0"), Some("31005"));
        assert_eq!(get("PORT"), Some("31005"));
        assert_eq!(get("PORTS"), Some("31005"));
        assert_eq!(get("PORT_HTTP"), Some("31005"));
        assert_eq!(get("HOST"), Some("override"));
        assert_eq!(hostname_form(&app.id), "web.prod");
    }

    #[test]
    fn the_check_mesos_runs_goes_with_the_task_on_its_port() {
        let mut app = app_with(1, 0);
        let check = |json: &str| -> app::model::HealthCheck {
            serde_json::from_str::<app::model::HealthCheck>(json)
                .unwrap()
                .normalized(true)
        };
        app.health_checks = vec![
            check(r#"{"protocol": "HTTP"}"#),
            check(r#"{"protocol": "MESOS_HTTP", "path": "/ok", "maxConsecutiveFailures": 5}"#),
        ];
        let task = task_check(&app, &[31007]).expect("the MESOS_HTTP check");
        assert_eq!(
            task.kind,
            TaskCheckKind::Http {
                port: 31007,
                path: "/ok".into(),
                https: false
            }
        );
        assert_eq!(task.consecutive_failures, 5);
        assert_eq!(task.delay, Duration::from_secs(15));
        app.health_checks = vec![check(
            r#"{"protocol": "COMMAND", "command": {"value": "true"}}"#,
        )];
        assert_eq!(
            task_check(&app, &[]).map(|c| c.kind),
            Some(TaskCheckKind::Command("true".into()))
        );
        app.health_checks = vec![check(r#"{"protocol": "TCP"}"#)];
        assert_eq!(
            task_check(&app, &[31007]),
            None,
            "Stride probes TCP checks itself"
        );
    }
}
