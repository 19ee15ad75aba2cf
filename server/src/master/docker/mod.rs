//! DOCKER containers on the built-in agent, run as Mesos' Docker containerizer runs them:
//! through a Docker-API engine on a unix socket (`--docker-socket`: Docker itself, or podman's
//! `podman system service`).
//!
//! - This module: what a task asks of the engine ([`DockerLaunch`], from Marathon's
//!   `container.docker`), the container the engine creates for it ([`create_body`], pure), and
//!   [`Engine`], the calls made to the engine (ping, pull, remove), and [`watch_engine`],
//!   which keeps asking whether the engine answers, for the agents' offers.
//! - [`executor`]: `stride docker-executor`, the task's command under its supervisor (Mesos'
//!   `mesos-docker-executor`): it creates and starts the container, copies its output into the
//!   sandbox, stops it within the kill grace period on SIGTERM and exits with its exit code. As
//!   the supervisor outlives a restart of `stride`, so does the executor, and the task is
//!   re-adopted like any other.
//!
//! The sandbox is mounted at `/mnt/mesos/sandbox` (`MESOS_SANDBOX`), as Mesos does.

pub mod executor;

use super::agent::{duration_ms, CommandSpec, TaskLaunch};
use crate::images::Credential;
use crate::scheduler::placement::DockerEngine;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{CreateImageOptions, RemoveContainerOptions};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the task's sandbox is inside its container.
pub const CONTAINER_SANDBOX: &str = "/mnt/mesos/sandbox";

/// The file in the sandbox where the executor says how the container ended when that was not
/// the container's own doing ([`EngineReport`]).
pub const ENGINE_FILE: &str = "engine.json";

/// How often the built-in agents' engine is asked whether it answers.
const ENGINE_PROBE_INTERVAL: Duration = Duration::from_secs(2);
const ENGINE_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The first probe holds up the master's start, so that its first offers already say whether
/// the engine answers: a local engine answers in milliseconds, and one that accepts but hangs
/// must not stall the start for long (it is asked again with the longer timeout).
const FIRST_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether the engine at `socket` answers: asked now, then every few seconds for as long as a
/// receiver is held.
pub async fn watch_engine(socket: PathBuf) -> tokio::sync::watch::Receiver<DockerEngine> {
    let (tx, rx) = tokio::sync::watch::channel(probe_engine(&socket, FIRST_PROBE_TIMEOUT).await);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(ENGINE_PROBE_INTERVAL) => {}
                () = tx.closed() => return,
            }
            let now = probe_engine(&socket, ENGINE_PROBE_TIMEOUT).await;
            tx.send_if_modified(|known| {
                let changed = *known != now;
                if changed {
                    match &now {
                        DockerEngine::Missing(why) => {
                            tracing::warn!("the Docker engine is gone: {why}")
                        }
                        _ => {
                            tracing::info!(socket = %socket.display(), "the Docker engine answers")
                        }
                    }
                    *known = now;
                }
                changed
            });
        }
    });
    rx
}

async fn probe_engine(socket: &Path, timeout: Duration) -> DockerEngine {
    let answered = match Engine::connect(socket, timeout) {
        Ok(engine) => engine.ping().await,
        Err(e) => Err(e),
    };
    match answered {
        Ok(()) => DockerEngine::Reachable,
        Err(EngineError::Unreachable { socket, cause }) => {
            DockerEngine::Missing(format!("nothing answers at {socket}: {cause}"))
        }
        Err(e) => DockerEngine::Missing(e.to_string()),
    }
}

/// A DOCKER task: Marathon's `container.docker` with the task's host ports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerLaunch {
    pub image: String,
    pub network: DockerNetwork,
    pub port_mappings: Vec<DockerPort>,
    pub privileged: bool,
    /// `docker run` options as `(name, value)`, e.g. `("label", "team=web")`.
    pub parameters: Vec<(String, String)>,
    pub force_pull: bool,
    /// Host directories mounted into the container.
    pub volumes: Vec<HostVolume>,
    /// For the pull only: never written to the sandbox.
    #[serde(skip)]
    pub credential: Option<Credential>,
    /// The task's own command, run in the container (the supervisor runs the executor).
    #[serde(default)]
    pub command: Option<CommandSpec>,
    /// The engine the executor talks to.
    #[serde(default)]
    pub socket: PathBuf,
    /// How long the engine waits after SIGTERM before it kills the container.
    #[serde(rename = "stop_grace_ms", with = "duration_ms", default)]
    pub stop_grace: Duration,
}

/// Mesos' `DockerInfo.Network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DockerNetwork {
    Host,
    Bridge,
    None,
    /// A named container network (`networks: [{"mode": "container"}]`).
    User,
}

/// A host port published to a container port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerPort {
    pub host_port: u32,
    pub container_port: u32,
    /// `tcp`, `udp` or `udp,tcp`.
    pub protocol: String,
}

/// A host path volume (`container.volumes[]` with a `hostPath`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostVolume {
    pub host_path: PathBuf,
    pub container_path: String,
    pub read_only: bool,
}

/// How a container ended when the engine, not the task, decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EngineReport {
    /// The engine refused to create or start the container.
    LaunchFailed(String),
    /// The engine stopped answering while the container ran.
    EngineFailed(String),
    /// The container is gone from the engine without having been asked to.
    Vanished(String),
}

/// The engine's name for a task's container.
pub fn container_name(task_id: &str) -> String {
    format!("mesos-{task_id}")
}

/// The container a task runs in: the image with the task's command (a shell command through
/// `/bin/sh -c`, replacing the entrypoint, as Mesos does; otherwise its arguments after the
/// image's entrypoint), environment, limits, network and ports, the sandbox and volumes.
/// Fails on a `docker run` parameter it cannot pass to the engine.
pub fn create_body(
    launch: &TaskLaunch,
    docker: &DockerLaunch,
    sandbox: &Path,
) -> Result<ContainerCreateBody, String> {
    let mut env: Vec<String> = launch
        .env
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    env.push(format!("MESOS_SANDBOX={CONTAINER_SANDBOX}"));
    let (entrypoint, cmd) = match &docker.command {
        Some(command) if command.shell => (
            Some(vec!["/bin/sh".to_string()]),
            Some(vec!["-c".to_string(), command.value.clone()]),
        ),
        Some(command) => {
            let mut argv: Vec<String> = Some(command.value.clone())
                .filter(|value| !value.is_empty())
                .into_iter()
                .collect();
            argv.extend(command.arguments.iter().cloned());
            (None, (!argv.is_empty()).then_some(argv))
        }
        None => (None, None),
    };
    let mut binds = vec![format!("{}:{CONTAINER_SANDBOX}", sandbox.display())];
    binds.extend(
        launch
            .volumes
            .iter()
            .map(|(path, dir)| format!("{}:{CONTAINER_SANDBOX}/{path}", dir.display())),
    );
    binds.extend(docker.volumes.iter().map(|volume| {
        let mode = if volume.read_only { "ro" } else { "rw" };
        format!(
            "{}:{}:{mode}",
            volume.host_path.display(),
            volume.container_path
        )
    }));
    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    if docker.network == DockerNetwork::Bridge {
        for port in &docker.port_mappings {
            for protocol in port.protocol.split(',').map(str::trim) {
                let key = format!("{}/{protocol}", port.container_port);
                exposed.push(key.clone());
                bindings
                    .entry(key)
                    .or_default()
                    .get_or_insert_default()
                    .push(PortBinding {
                        host_ip: None,
                        host_port: Some(port.host_port.to_string()),
                    });
            }
        }
    }
    let mut labels = HashMap::from([("stride.task-id".to_string(), launch.task_id.clone())]);
    let mut host = HostConfig {
        network_mode: Some(
            match docker.network {
                DockerNetwork::Host => "host",
                DockerNetwork::Bridge => "bridge",
                DockerNetwork::None => "none",
                DockerNetwork::User => {
                    return Err("container networks (USER) are not available on Stride's \
                                built-in agent; use BRIDGE or HOST"
                        .to_string())
                }
            }
            .to_string(),
        ),
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        privileged: Some(docker.privileged),
        binds: Some(binds),
        memory: Some((launch.mem_mb * 1024.0 * 1024.0) as i64),
        // As Mesos' Docker containerizer: shares by the cpus, 1024 per cpu.
        cpu_shares: Some(((launch.cpus * 1024.0) as i64).max(2)),
        ..Default::default()
    };
    let mut body = ContainerCreateBody {
        image: Some(docker.image.clone()),
        entrypoint,
        cmd,
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        ..Default::default()
    };
    for (name, value) in &docker.parameters {
        let list =
            |list: &mut Option<Vec<String>>| list.get_or_insert_default().push(value.clone());
        match name.as_str() {
            "label" | "l" => {
                let (key, value) = value.split_once('=').unwrap_or((value, ""));
                labels.insert(key.to_string(), value.to_string());
            }
            "env" | "e" => env.push(value.clone()),
            "user" | "u" => body.user = Some(value.clone()),
            "workdir" | "w" => body.working_dir = Some(value.clone()),
            "hostname" | "h" => body.hostname = Some(value.clone()),
            "cap-add" => list(&mut host.cap_add),
            "cap-drop" => list(&mut host.cap_drop),
            "add-host" => list(&mut host.extra_hosts),
            "dns" => list(&mut host.dns),
            "init" => host.init = Some(value != "false"),
            other => {
                return Err(format!(
                    "the docker parameter `{other}` is not one Stride's agent passes to the \
                     engine (label, env, user, workdir, hostname, cap-add, cap-drop, add-host, \
                     dns, init)"
                ))
            }
        }
    }
    body.env = Some(env);
    body.labels = Some(labels);
    body.host_config = Some(host);
    Ok(body)
}

/// What went wrong talking to the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no Docker engine answers at {socket}: {cause}")]
    Unreachable { socket: String, cause: String },
    #[error("pulling image {image} failed: {cause}")]
    Pull { image: String, cause: String },
    #[error("the Docker engine: {0}")]
    Engine(#[from] bollard::errors::Error),
}

/// A Docker-API engine on a unix socket.
#[derive(Clone)]
pub struct Engine {
    docker: bollard::Docker,
    socket: PathBuf,
}

impl Engine {
    /// A client for the engine at `socket` whose requests give up after `timeout`; nothing
    /// is sent until the first call.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Engine, EngineError> {
        let unreachable = |cause: String| EngineError::Unreachable {
            socket: socket.display().to_string(),
            cause,
        };
        let address = socket
            .to_str()
            .ok_or_else(|| unreachable("not UTF-8".into()))?;
        let docker = bollard::Docker::connect_with_unix(
            address,
            timeout.as_secs(),
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| unreachable(e.to_string()))?;
        Ok(Engine {
            docker,
            socket: socket.to_path_buf(),
        })
    }

    pub fn client(&self) -> &bollard::Docker {
        &self.docker
    }

    /// Whether the engine answers.
    pub async fn ping(&self) -> Result<(), EngineError> {
        self.docker
            .ping()
            .await
            .map(|_| ())
            .map_err(|e| EngineError::Unreachable {
                socket: self.socket.display().to_string(),
                cause: e.to_string(),
            })
    }

    /// Whether the engine has `image` already.
    pub async fn has_image(&self, image: &str) -> bool {
        self.docker.inspect_image(image).await.is_ok()
    }

    /// Has the engine pull `image` (a tag defaults to `latest`, as `docker pull` does).
    pub async fn pull(
        &self,
        image: &str,
        credential: Option<&Credential>,
    ) -> Result<(), EngineError> {
        let (from_image, tag) = split_tag(image);
        let options = CreateImageOptions {
            from_image: Some(from_image.to_string()),
            tag: tag.map(str::to_string),
            ..Default::default()
        };
        let credentials = credential.map(|credential| bollard::auth::DockerCredentials {
            username: Some(credential.principal.clone()),
            password: Some(credential.secret.clone()),
            ..Default::default()
        });
        let mut progress = self.docker.create_image(Some(options), None, credentials);
        while let Some(step) = progress.next().await {
            let failure = match step {
                Ok(info) => info.error_detail.and_then(|detail| detail.message),
                Err(e) => Some(e.to_string()),
            };
            if let Some(cause) = failure {
                return Err(EngineError::Pull {
                    image: image.to_string(),
                    cause,
                });
            }
        }
        Ok(())
    }

    /// Removes the container and its anonymous volumes, killing it if it runs; one that is
    /// gone already is no error.
    pub async fn remove(&self, name: &str) -> Result<(), EngineError> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.docker.remove_container(name, Some(options)).await {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            result => result.map_err(EngineError::from),
        }
    }
}

/// `repo:tag` → (`repo`, `tag`); a digest reference stays whole; no tag → `latest`.
fn split_tag(image: &str) -> (&str, Option<&str>) {
    if image.contains('@') {
        return (image, None);
    }
    let name_start = image.rfind('/').map_or(0, |slash| slash + 1);
    match image[name_start..].rfind(':') {
        Some(colon) => (
            &image[..name_start + colon],
            Some(&image[name_start + colon + 1..]),
        ),
        None => (image, Some("latest")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::agent::CommandSpec;

    fn launch() -> (TaskLaunch, DockerLaunch) {
        let launch: TaskLaunch = serde_json::from_value(serde_json::json!({
            "task_id": "web.instance-1._app.1", "framework_id": "f",
            "command": {"shell": false, "value": "", "arguments": []},
            "env": [["PORT0", "31000"]], "cpus": 0.5, "mem_mb": 64.0, "disk_mb": 0.0,
            "ports": [31000], "kill_grace_ms": 3000
        }))
        .unwrap();
        let docker = DockerLaunch {
            image: "registry:5000/web:1".into(),
            network: DockerNetwork::Bridge,
            port_mappings: vec![DockerPort {
                host_port: 31000,
                container_port: 80,
                protocol: "udp,tcp".into(),
            }],
            privileged: false,
            parameters: vec![("label".into(), "team=web".into())],
            force_pull: false,
            volumes: vec![HostVolume {
                host_path: "/srv/data".into(),
                container_path: "/data".into(),
                read_only: true,
            }],
            credential: None,
            command: Some(CommandSpec {
                shell: true,
                value: "httpd -f".into(),
                arguments: vec![],
            }),
            socket: "/run/docker.sock".into(),
            stop_grace: Duration::from_secs(3),
        };
        (launch, docker)
    }

    #[test]
    fn the_container_has_the_tasks_command_ports_limits_sandbox_and_volumes() {
        let (launch, docker) = launch();
        let body = create_body(&launch, &docker, Path::new("/sandboxes/t")).unwrap();
        assert_eq!(body.entrypoint, Some(vec!["/bin/sh".to_string()]));
        assert_eq!(
            body.cmd,
            Some(vec!["-c".to_string(), "httpd -f".to_string()])
        );
        let env = body.env.unwrap();
        assert!(env.contains(&"PORT0=31000".to_string()));
        assert!(env.contains(&"MESOS_SANDBOX=/mnt/mesos/sandbox".to_string()));
        assert_eq!(body.labels.unwrap()["team"], "web");
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("bridge"));
        let bindings = host.port_bindings.unwrap();
        for key in ["80/tcp", "80/udp"] {
            let binding = bindings[key].as_ref().unwrap();
            assert_eq!(binding[0].host_port.as_deref(), Some("31000"));
        }
        assert_eq!(host.memory, Some(64 * 1024 * 1024));
        assert_eq!(host.cpu_shares, Some(512));
        assert_eq!(
            host.binds.unwrap(),
            vec![
                "/sandboxes/t:/mnt/mesos/sandbox".to_string(),
                "/srv/data:/data:ro".to_string()
            ]
        );
    }

    #[test]
    fn arguments_follow_the_entrypoint_and_unknown_parameters_are_refused() {
        let (launch, mut docker) = launch();
        docker.command = Some(CommandSpec {
            shell: false,
            value: String::new(),
            arguments: vec!["--port".into(), "80".into()],
        });
        docker.network = DockerNetwork::Host;
        let body = create_body(&launch, &docker, Path::new("/s")).unwrap();
        assert_eq!(body.entrypoint, None);
        assert_eq!(body.cmd, Some(vec!["--port".to_string(), "80".to_string()]));
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("host"));
        assert_eq!(
            host.port_bindings, None,
            "host networking publishes nothing"
        );

        docker.parameters = vec![("volume-driver".into(), "x".into())];
        let refusal = create_body(&launch, &docker, Path::new("/s")).unwrap_err();
        assert!(refusal.contains("`volume-driver`"), "{refusal}");
    }

    #[test]
    fn tags_default_to_latest_and_digests_stay_whole() {
        assert_eq!(split_tag("busybox"), ("busybox", Some("latest")));
        assert_eq!(
            split_tag("127.0.0.1:5000/team/bb:1"),
            ("127.0.0.1:5000/team/bb", Some("1"))
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/team/bb"),
            ("127.0.0.1:5000/team/bb", Some("latest"))
        );
        assert_eq!(split_tag("bb@sha256:abc"), ("bb@sha256:abc", None));
    }
}
