//! Tasks: kills, reconciliation, and status updates delivered reliably (retried until
//! acknowledged), with the agent's reasons translated into Mesos'.

use super::resources::Resources;
use super::{event_of, is_terminal, Runner, State, DEFAULT_KILL_GRACE, FIRST_UPDATE_RETRY};
use crate::images::{Credential, ImageRequest};
use crate::master::agent::{
    AgentUpdate, CommandSpec, LaunchReservation, TaskLaunch, TaskState as AgentState, UpdateReason,
};
use crate::master::checks::{CheckKind, HealthCheckSpec};
use crate::master::docker::{DockerLaunch, DockerNetwork, DockerPort, HostVolume};
use proto::mesos::v1 as mesos;
use proto::mesos::v1::scheduler::{self, event};
use std::time::Duration;
use tokio::time::Instant;

impl State {
    /// Asks the task's agent to kill it.
    pub(super) fn kill_task(&mut self, task_id: &str) {
        let Some(index) = self.tasks.get(task_id).map(|task| task.agent) else {
            return;
        };
        let agent = &mut self.agents[index];
        if !agent.is_reachable() {
            agent.held_kills.push(task_id.to_string());
            return;
        }
        match &agent.runner {
            Runner::Processes(processes) => {
                processes.kill(task_id);
                // As a Mesos executor does for a framework that understands it: the task is
                // being killed, and its grace period runs.
                if self.understands_killing(task_id) {
                    let killing = self.status(
                        Some(index),
                        task_id,
                        mesos::TaskState::TaskKilling,
                        "",
                        None,
                    );
                    self.queue_update(task_id, killing);
                }
            }
            Runner::Simulated => {
                let killed = self.status(
                    Some(index),
                    task_id,
                    mesos::TaskState::TaskKilled,
                    "Command terminated with signal SIGTERM",
                    None,
                );
                self.queue_update(task_id, killed);
            }
        }
    }

    /// Whether the framework of a live task asked for TASK_KILLING (its TASK_KILLING_STATE
    /// capability).
    fn understands_killing(&self, task_id: &str) -> bool {
        use mesos::framework_info::capability::Type;
        let Some(task) = self.tasks.get(task_id).filter(|t| !t.is_terminal()) else {
            return false;
        };
        self.frameworks.get(&task.framework_id).is_some_and(|f| {
            f.info
                .capabilities
                .iter()
                .any(|c| c.r#type() == Type::TaskKillingState)
        })
    }

    pub(super) fn kill(&mut self, framework_id: &str, task_id: &str) {
        match self.tasks.get(task_id) {
            Some(t) if !t.is_terminal() => self.kill_task(task_id),
            Some(_) => {}
            None => {
                let mut update = event_of(event::Type::Update);
                update.update = Some(event::Update {
                    status: self.status(
                        None,
                        task_id,
                        mesos::TaskState::TaskUnknown,
                        "Kill: Task is unknown to the master",
                        Some(mesos::task_status::Reason::Reconciliation),
                    ),
                });
                self.send(framework_id, update);
            }
        }
    }

    pub(super) fn acknowledge(&mut self, task_id: &str, uuid: &[u8]) {
        let Some(task) = self.tasks.get_mut(task_id) else {
            return;
        };
        if task.pending.front().and_then(|s| s.uuid.as_deref()) != Some(uuid) {
            return;
        }
        task.pending.pop_front();
        task.retry_interval = FIRST_UPDATE_RETRY;
        task.next_retry = None;
        if !task.pending.is_empty() {
            self.deliver_pending(task_id);
        } else if task.is_terminal() {
            let agent = task.agent;
            self.tasks.remove(task_id);
            if let Runner::Processes(processes) = &self.agents[agent].runner {
                processes.forget(task_id);
            }
        }
    }

    pub(super) fn reconcile(&mut self, framework_id: &str, reconcile: scheduler::call::Reconcile) {
        let statuses: Vec<mesos::TaskStatus> = if reconcile.tasks.is_empty() {
            self.tasks
                .values()
                .filter(|t| t.framework_id == framework_id)
                .map(|t| t.status.clone())
                .collect()
        } else {
            reconcile
                .tasks
                .iter()
                .map(|r| match self.tasks.get(&r.task_id.value) {
                    Some(t) if t.framework_id == framework_id => t.status.clone(),
                    // As a real master answers a partition-aware framework: a registered
                    // agent that lacks the task has lost it for good.
                    _ => match r
                        .agent_id
                        .as_ref()
                        .and_then(|agent| self.agent_index.get(&agent.value))
                    {
                        Some(&agent) => self.status(
                            Some(agent),
                            &r.task_id.value,
                            mesos::TaskState::TaskGone,
                            "Reconciliation: Task is unknown to the agent",
                            Some(mesos::task_status::Reason::Reconciliation),
                        ),
                        None => self.status(
                            None,
                            &r.task_id.value,
                            mesos::TaskState::TaskUnknown,
                            "Reconciliation: Task is unknown to the master",
                            Some(mesos::task_status::Reason::Reconciliation),
                        ),
                    },
                })
                .collect()
        };
        for mut status in statuses {
            status.set_reason(mesos::task_status::Reason::Reconciliation);
            status.set_source(mesos::task_status::Source::Master);
            let mut update = event_of(event::Type::Update);
            update.update = Some(event::Update { status });
            self.send(framework_id, update);
        }
    }

    /// News from the process agent at index `from`, held back while that agent is cut off.
    pub(super) fn on_agent_update(&mut self, from: usize, update: AgentUpdate) {
        if self.agents[from].gone {
            // Its tasks were reported gone already.
            return;
        }
        if !self.agents[from].is_reachable() {
            self.agents[from].held_updates.push(update);
            return;
        }
        let (state, default_reason) = match update.state {
            AgentState::Starting => (mesos::TaskState::TaskStarting, None),
            AgentState::Running => (mesos::TaskState::TaskRunning, None),
            AgentState::Finished => (mesos::TaskState::TaskFinished, None),
            AgentState::Failed => (
                mesos::TaskState::TaskFailed,
                Some(mesos::task_status::Reason::CommandExecutorFailed),
            ),
            AgentState::Killed => (mesos::TaskState::TaskKilled, None),
            AgentState::Error => (
                mesos::TaskState::TaskError,
                Some(mesos::task_status::Reason::TaskInvalid),
            ),
            AgentState::Lost => (mesos::TaskState::TaskLost, None),
        };
        let reason = update.reason.map(reason_of).or(default_reason);
        let Some(agent) = self
            .tasks
            .get(&update.task_id)
            .map(|task| task.agent)
            .filter(|agent| *agent == from)
        else {
            return;
        };
        let mut status = self.status(Some(agent), &update.task_id, state, &update.message, reason);
        if let Some(UpdateReason::HealthCheck { healthy }) = update.reason {
            status.healthy = Some(healthy);
        }
        self.queue_update(&update.task_id, status);
    }

    /// Records a task's new status and queues it for reliable delivery (retried until
    /// acknowledged); a terminal status frees the task's resources.
    pub(super) fn queue_update(&mut self, task_id: &str, mut status: mesos::TaskStatus) {
        let Some(task) = self.tasks.get_mut(task_id) else {
            return;
        };
        task.status = status.clone();
        let freed = if is_terminal(status.state()) {
            Some((
                task.agent,
                std::mem::take(&mut task.resources),
                task.reserved.take(),
            ))
        } else {
            None
        };
        status.uuid = Some(uuid::Uuid::new_v4().as_bytes().to_vec());
        task.pending.push_back(status);
        let first = task.pending.len() == 1;
        if let Some((agent, resources, reserved)) = freed {
            match reserved {
                Some(share) => self.return_reserved(agent, &share),
                None => self.free(agent, &resources),
            }
        }
        if first {
            self.deliver_pending(task_id);
        }
    }

    /// Sends the task's oldest unacknowledged update now, and again later until acknowledged.
    pub(super) fn deliver_pending(&mut self, task_id: &str) {
        let Some(task) = self.tasks.get_mut(task_id) else {
            return;
        };
        let Some(status) = task.pending.front().cloned() else {
            return;
        };
        task.retry_interval = FIRST_UPDATE_RETRY;
        task.next_retry = Some(Instant::now() + FIRST_UPDATE_RETRY);
        let framework_id = task.framework_id.clone();
        let mut update = event_of(event::Type::Update);
        update.update = Some(event::Update { status });
        self.send(&framework_id, update);
    }
}

pub(super) fn reason_of(reason: UpdateReason) -> mesos::task_status::Reason {
    use mesos::task_status::Reason;
    match reason {
        UpdateReason::CommandExecutorFailed => Reason::CommandExecutorFailed,
        UpdateReason::ExecutorTerminated => Reason::ExecutorTerminated,
        UpdateReason::ContainerLaunchFailed => Reason::ContainerLaunchFailed,
        UpdateReason::ContainerLimitationMemory => Reason::ContainerLimitationMemory,
        UpdateReason::TaskKilledDuringLaunch => Reason::TaskKilledDuringLaunch,
        UpdateReason::TaskInvalid => Reason::TaskInvalid,
        UpdateReason::AgentRestarted => Reason::AgentRestarted,
        UpdateReason::HealthCheck { .. } => Reason::TaskHealthCheckStatusUpdated,
    }
}

/// Stride's agent runs commands and containers, but does not fetch files yet, and a DOCKER
/// container needs an image: such a task is refused with a clear reason rather than run
/// without what it expects.
pub(super) fn unsupported_container(task: &mesos::TaskInfo) -> Option<String> {
    let docker_without_image = task.container.as_ref().is_some_and(|container| {
        container.r#type() == mesos::container_info::Type::Docker
            && container
                .docker
                .as_ref()
                .is_none_or(|docker| docker.image.is_empty())
    });
    if docker_without_image {
        return Some("A DOCKER container needs a Docker image (ContainerInfo.docker.image)".into());
    }
    let fetch = task
        .command
        .as_ref()
        .map_or(0, |command| command.uris.len());
    (fetch > 0).then(|| {
        format!(
            "Stride's built-in agent does not fetch URIs yet ({fetch} in the app's fetch); \
             run this app on an Apache Mesos agent"
        )
    })
}

/// The agent's form of a task of `framework_id`: on `resources`, with persistent `volumes`
/// (sandbox path, directory) when it runs on its `reservation`.
pub(super) fn launch_of(
    framework_id: &str,
    task: &mesos::TaskInfo,
    resources: Resources,
    volumes: Vec<(String, std::path::PathBuf)>,
    reservation: Option<LaunchReservation>,
) -> TaskLaunch {
    let command = task.command.clone().unwrap_or_default();
    let env = command
        .environment
        .as_ref()
        .map(|e| {
            e.variables
                .iter()
                .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let kill_grace = task
        .kill_policy
        .as_ref()
        .and_then(|k| k.grace_period.as_ref())
        .map_or(DEFAULT_KILL_GRACE, |d| {
            Duration::from_nanos(d.nanoseconds.max(0) as u64)
        });
    let image = image_of(task);
    let docker = docker_of(task);
    let host_volumes = match (&image, &task.container) {
        (Some(_), Some(container)) => host_volumes_of(container),
        _ => Vec::new(),
    };
    // Marathon names no executable for an app with a container (its `args` go to the image's
    // entrypoint); without an image, the first argument is the program, as Mesos runs it.
    let value = match (&command.value, image.is_some() || docker.is_some()) {
        (Some(value), _) => value.clone(),
        (None, true) => String::new(),
        (None, false) => command.arguments.first().cloned().unwrap_or_default(),
    };
    TaskLaunch {
        task_id: task.task_id.value.clone(),
        framework_id: framework_id.to_string(),
        command: CommandSpec {
            shell: command.shell(),
            value,
            arguments: command.arguments.clone(),
        },
        env,
        cpus: resources.cpus,
        mem_mb: resources.mem,
        disk_mb: resources.disk,
        ports: resources.port_list(),
        kill_grace,
        health_check: task.health_check.as_ref().and_then(check_of),
        volumes,
        reservation,
        image,
        container: None,
        docker,
        host_volumes,
    }
}

/// A DOCKER container, as Mesos' `ContainerInfo.docker` and `volumes` describe it.
fn docker_of(task: &mesos::TaskInfo) -> Option<DockerLaunch> {
    use mesos::container_info::docker_info::Network;
    let container = task.container.as_ref()?;
    if container.r#type() != mesos::container_info::Type::Docker {
        return None;
    }
    let docker = container.docker.as_ref()?;
    let network = match docker.network() {
        Network::Host => DockerNetwork::Host,
        Network::Bridge => DockerNetwork::Bridge,
        Network::None => DockerNetwork::None,
        Network::User => DockerNetwork::User,
    };
    Some(DockerLaunch {
        image: docker.image.clone(),
        network,
        port_mappings: docker
            .port_mappings
            .iter()
            .map(|mapping| DockerPort {
                host_port: mapping.host_port,
                container_port: mapping.container_port,
                protocol: mapping.protocol.clone().unwrap_or_else(|| "tcp".into()),
            })
            .collect(),
        privileged: docker.privileged(),
        parameters: docker
            .parameters
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect(),
        force_pull: docker.force_pull_image(),
        volumes: host_volumes_of(container),
        credential: None,
        command: None,
        socket: Default::default(),
        stop_grace: Duration::ZERO,
    })
}

/// The volumes of `container` with a host path.
fn host_volumes_of(container: &mesos::ContainerInfo) -> Vec<HostVolume> {
    container
        .volumes
        .iter()
        .filter_map(|volume| {
            Some(HostVolume {
                host_path: volume.host_path.clone()?.into(),
                container_path: volume.container_path.clone(),
                read_only: volume.mode() == mesos::volume::Mode::Ro,
            })
        })
        .collect()
}

/// The Docker image of a MESOS container, as Mesos' `ContainerInfo.mesos.image` names it.
fn image_of(task: &mesos::TaskInfo) -> Option<ImageRequest> {
    let image = task.container.as_ref()?.mesos.as_ref()?.image.as_ref()?;
    let docker = image.docker.as_ref()?;
    Some(ImageRequest {
        name: docker.name.clone(),
        force_pull: !image.cached(),
        credential: docker.credential.as_ref().map(|credential| Credential {
            principal: credential.principal.clone(),
            secret: credential.secret.clone().unwrap_or_default(),
        }),
    })
}

/// The agent's form of `TaskInfo.health_check`; `None` for a check it cannot run.
pub(super) fn check_of(check: &mesos::HealthCheck) -> Option<HealthCheckSpec> {
    use mesos::health_check::Type;
    let kind = match check.r#type() {
        Type::Command => CheckKind::Command {
            shell: check.command.as_ref()?.value.clone()?,
        },
        Type::Http => {
            let http = check.http.as_ref()?;
            CheckKind::Http {
                port: u16::try_from(http.port).ok()?,
                path: http.path.clone().unwrap_or_else(|| "/".into()),
                https: http.scheme.as_deref() == Some("https"),
            }
        }
        Type::Tcp => CheckKind::Tcp {
            port: u16::try_from(check.tcp.as_ref()?.port).ok()?,
        },
        Type::Unknown => return None,
    };
    let seconds = |s: f64| Duration::from_secs_f64(s.max(0.0));
    Some(HealthCheckSpec {
        kind,
        delay: seconds(check.delay_seconds()),
        interval: seconds(check.interval_seconds()),
        timeout: seconds(check.timeout_seconds()),
        grace: seconds(check.grace_period_seconds()),
        consecutive_failures: check.consecutive_failures(),
    })
}
