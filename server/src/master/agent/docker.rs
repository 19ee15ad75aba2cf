//! The agent's part in DOCKER tasks: before one joins the launch queue, the agent makes sure
//! its engine answers and has the image (pulling it, the task `Starting` with "Pulling image …"
//! meanwhile), then hands the supervisor `stride docker-executor` as the task's command. No
//! engine, or a failed pull, fails the task with the reason (`ContainerLaunchFailed`, which
//! counts for backoff). Once a DOCKER task has ended, its container is removed if the executor
//! did not live to do it.

use super::{AgentUpdate, CommandSpec, Shared, TaskLaunch, TaskState, UpdateReason};
use crate::master::docker::{container_name, Engine};
use std::sync::Arc;
use std::time::Duration;
use tracing::warn;

/// How long the agent's own requests to the engine may take (a pull is many requests).
const AGENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// What the supervisor adds to a DOCKER task's grace period before it kills the executor:
/// time for the engine's own stop (SIGTERM, then SIGKILL after the grace) to finish first.
const EXECUTOR_GRACE_MARGIN: Duration = Duration::from_secs(10);

impl Shared {
    pub(super) async fn prepare_docker(self: Arc<Self>, mut launch: TaskLaunch) {
        let Some(mut docker) = launch.docker.take() else {
            return;
        };
        let task_id = launch.task_id.clone();
        let fail = |message: String| {
            self.lock_tasks().remove(&task_id);
            self.send(AgentUpdate {
                task_id: task_id.clone(),
                state: TaskState::Failed,
                message,
                reason: Some(UpdateReason::ContainerLaunchFailed),
            });
        };
        let socket = self.options.docker_socket.clone();
        let answering = match Engine::connect(&socket, AGENT_REQUEST_TIMEOUT) {
            Ok(engine) => engine.ping().await.map(|()| engine),
            Err(e) => Err(e),
        };
        let engine = match answering {
            Ok(engine) => engine,
            Err(e) => {
                return fail(format!(
                    "no Docker engine on agent {}: {e}",
                    self.options.hostname
                ))
            }
        };
        if docker.force_pull || !engine.has_image(&docker.image).await {
            self.send(AgentUpdate {
                task_id: task_id.clone(),
                state: TaskState::Starting,
                message: format!("Pulling image {}", docker.image),
                reason: None,
            });
            if let Err(e) = engine.pull(&docker.image, docker.credential.as_ref()).await {
                return fail(e.to_string());
            }
        }
        if self.killed_before_start(&task_id) {
            return;
        }
        let exe = self.options.stride_exe.to_string_lossy().into_owned();
        docker.command = Some(std::mem::replace(
            &mut launch.command,
            CommandSpec {
                shell: false,
                value: exe.clone(),
                arguments: vec![exe, "docker-executor".to_owned()],
            },
        ));
        docker.socket = socket;
        docker.stop_grace = launch.kill_grace;
        launch.kill_grace += EXECUTOR_GRACE_MARGIN;
        launch.docker = Some(docker);
        self.enqueue(launch);
    }

    /// Removes an ended DOCKER task's container, in case its executor did not.
    pub(super) async fn remove_container(&self, task_id: &str) {
        let socket = &self.options.docker_socket;
        let removed = match Engine::connect(socket, AGENT_REQUEST_TIMEOUT) {
            Ok(engine) => engine.remove(&container_name(task_id)).await,
            Err(e) => Err(e),
        };
        if let Err(e) = removed {
            warn!(task_id, "cannot remove the task's container: {e}");
        }
    }
}
