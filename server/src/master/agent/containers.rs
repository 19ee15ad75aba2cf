//! The agent's part in container tasks: before a task with an image joins the launch queue,
//! its image is pulled (the task is `Starting` with "Pulling image …" meanwhile) and its
//! container prepared: root file system mounted, OCI bundle written. A pull or preparation that
//! fails fails the task with the reason (`ContainerLaunchFailed`, which counts for backoff); a
//! kill that comes during the pull ends it before anything is mounted.

use super::{AgentUpdate, Shared, TaskLaunch, TaskState, UpdateReason};
use crate::images::Image;
use crate::master::container::{self, Accounts, BindMount, Runtime};
use std::path::Path;
use std::sync::Arc;
use tracing::warn;

impl Shared {
    pub(super) async fn prepare_container(self: Arc<Self>, mut launch: TaskLaunch) {
        let Some(request) = launch.image.clone() else {
            return;
        };
        let task_id = launch.task_id.clone();
        self.send(AgentUpdate {
            task_id: task_id.clone(),
            state: TaskState::Starting,
            message: format!("Pulling image {}", request.name),
            reason: None,
        });
        let fail = |message: String| AgentUpdate {
            task_id: task_id.clone(),
            state: TaskState::Failed,
            message,
            reason: Some(UpdateReason::ContainerLaunchFailed),
        };
        let Some(runc) = self.runc.clone() else {
            self.lock_tasks().remove(&task_id);
            self.send(fail(
                "This agent cannot run containers: no OCI runtime (install Debian's runc)"
                    .to_owned(),
            ));
            return;
        };
        let image = match self.options.images.pull(&request).await {
            Ok(image) => image,
            Err(e) => {
                self.lock_tasks().remove(&task_id);
                self.send(fail(e.to_string()));
                return;
            }
        };
        if self.killed_before_start(&task_id) {
            return;
        }
        let runtime = Runtime {
            runc,
            state_dir: self.options.work_dir.join("runc"),
            bundle: self.options.work_dir.join("containers").join(&task_id),
            id: task_id.clone(),
        };
        let sandbox = self.sandbox_dir(&task_id);
        let prepared = {
            let (launch, runtime) = (launch.clone(), runtime.clone());
            tokio::task::spawn_blocking(move || prepare(&launch, &image, &runtime, &sandbox)).await
        };
        match prepared {
            Ok(Ok(())) => {
                launch.container = Some(runtime);
                self.enqueue(launch);
            }
            outcome => {
                let reason = match outcome {
                    Ok(Err(reason)) => reason,
                    Err(panic) => format!("preparing the container stopped: {panic}"),
                    Ok(Ok(())) => unreachable!(),
                };
                for problem in container::teardown(&runtime) {
                    warn!(task_id, "{problem}");
                }
                self.lock_tasks().remove(&task_id);
                self.send(fail(format!("Cannot prepare the container: {reason}")));
            }
        }
    }

    /// Whether a kill came while the image was pulled; if so the task ends here, `Killed`.
    pub(super) fn killed_before_start(&self, task_id: &str) -> bool {
        let killed = {
            let mut tasks = self.lock_tasks();
            let killed = tasks.get(task_id).is_some_and(|entry| entry.kill.is_some());
            if killed {
                tasks.remove(task_id);
            }
            killed
        };
        if killed {
            self.send(AgentUpdate {
                task_id: task_id.to_owned(),
                state: TaskState::Killed,
                message: "Task killed while its image was pulled".to_owned(),
                reason: Some(UpdateReason::TaskKilledDuringLaunch),
            });
        }
        killed
    }
}

/// Mounts the container's root file system and writes its OCI bundle.
fn prepare(
    launch: &TaskLaunch,
    image: &Image,
    runtime: &Runtime,
    sandbox: &Path,
) -> Result<(), String> {
    std::fs::create_dir_all(&runtime.bundle)
        .and_then(|()| {
            let layers = serde_json::to_vec(&image.layers).expect("plain data");
            std::fs::write(runtime.bundle.join(crate::images::LAYERS_FILE), layers)
        })
        .map_err(|e| format!("cannot write the container's directory: {e}"))?;
    let rootfs = container::mount_rootfs(&runtime.bundle, &image.layers)
        .map_err(|e| format!("cannot mount the image's layers: {e}"))?;
    let read = |file: &str| std::fs::read_to_string(rootfs.join(file)).unwrap_or_default();
    let accounts = Accounts {
        passwd: read("etc/passwd"),
        group: read("etc/group"),
    };
    let process = container::process_of(&image.config, &launch.command, &launch.env, &accounts)?;
    let binds: Vec<BindMount> = launch
        .volumes
        .iter()
        .map(|(container_path, dir)| BindMount {
            host: dir.clone(),
            container: in_sandbox(container_path),
            read_only: false,
        })
        .chain(launch.host_volumes.iter().map(|volume| BindMount {
            host: volume.host_path.clone(),
            // As Mesos has it: a relative path is in the sandbox.
            container: match volume.container_path.starts_with('/') {
                true => volume.container_path.clone(),
                false => in_sandbox(&volume.container_path),
            },
            read_only: volume.read_only,
        }))
        .collect();
    let config = container::bundle_config(&process, &rootfs, sandbox, &binds, &runtime.id);
    let bytes = serde_json::to_vec_pretty(&config).expect("plain data");
    std::fs::write(runtime.bundle.join("config.json"), bytes)
        .map_err(|e| format!("cannot write config.json: {e}"))
}

/// Where `path`, relative to the sandbox, is inside the container.
fn in_sandbox(path: &str) -> String {
    format!("{}/{path}", container::SANDBOX_IN_CONTAINER)
}
