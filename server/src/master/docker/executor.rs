//! `stride docker-executor`: a DOCKER task's command, started by its supervisor in the
//! sandbox. It reads the task from `task.json`, has the engine create and start the task's
//! container, copies the container's output to its own stdout and stderr (the sandbox's files),
//! asks the engine to stop the container within the task's grace period when it gets SIGTERM,
//! and exits with the container's exit code once the container is gone.
//!
//! When the engine, not the task, ended it — a refused create or start, an engine that stopped
//! answering, a container removed behind the task's back — it says so in
//! [`ENGINE_FILE`](super::ENGINE_FILE) for the agent to report.

use super::{container_name, create_body, Engine, EngineReport, ENGINE_FILE};
use crate::master::supervisor::{read_json, write_json_atomically, TaskFile, TASK_FILE};
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    CreateContainerOptions, LogsOptions, StopContainerOptions, WaitContainerOptions,
};
use futures::StreamExt;
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// How long a request to the engine may take: a wait for the container returns when it ends.
const LONGEST_REQUEST: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The exit code when the engine, not the container, ended the task.
const ENGINE_ENDED: i32 = 125;

/// Runs the task of the sandbox in the current directory; returns the process's exit code.
pub fn run() -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("docker-executor: cannot start: {e}");
            return ENGINE_ENDED;
        }
    };
    let sandbox = std::env::current_dir().unwrap_or_default();
    match runtime.block_on(execute(&sandbox)) {
        Ok(code) => code,
        Err(report) => {
            let message = match &report {
                EngineReport::LaunchFailed(message)
                | EngineReport::EngineFailed(message)
                | EngineReport::Vanished(message) => message.clone(),
            };
            eprintln!("docker-executor: {message}");
            if let Err(e) = write_json_atomically(&sandbox.join(ENGINE_FILE), &report) {
                eprintln!("docker-executor: cannot record how the container ended: {e}");
            }
            ENGINE_ENDED
        }
    }
}

async fn execute(sandbox: &Path) -> Result<i32, EngineReport> {
    let task: TaskFile = read_json(&sandbox.join(TASK_FILE))
        .map_err(|e| EngineReport::LaunchFailed(format!("cannot read {TASK_FILE}: {e}")))?;
    let launch = task.launch;
    let docker = launch
        .docker
        .clone()
        .ok_or_else(|| EngineReport::LaunchFailed("the task has no Docker container".into()))?;
    let launch_failed =
        |what: &str, e: &dyn std::fmt::Display| EngineReport::LaunchFailed(format!("{what}: {e}"));
    // The wait and the output are requests as long as the container lives.
    let engine = Engine::connect(&docker.socket, LONGEST_REQUEST)
        .map_err(|e| launch_failed("connecting to the engine", &e))?;
    let client = engine.client();
    let name = container_name(&launch.task_id);
    // A container of this name is left from an executor that did not live to remove it.
    engine
        .remove(&name)
        .await
        .map_err(|e| launch_failed("removing an old container", &e))?;
    let body = create_body(&launch, &docker, sandbox)
        .map_err(|e| launch_failed("the container cannot be created", &e))?;
    let options = CreateContainerOptions {
        name: Some(name.clone()),
        ..Default::default()
    };
    client
        .create_container(Some(options), body)
        .await
        .map_err(|e| launch_failed("the engine did not create the container", &e))?;
    if let Err(e) = client.start_container(&name, None).await {
        let _ = engine.remove(&name).await;
        return Err(launch_failed("the engine did not start the container", &e));
    }
    let output = tokio::spawn(copy_output(engine.clone(), name.clone()));
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| launch_failed("cannot take SIGTERM", &e))?;
    let ended = loop {
        let mut wait = client.wait_container(&name, None::<WaitContainerOptions>);
        tokio::select! {
            _ = wait.next() => {}
            _ = terminate.recv() => {
                let options = StopContainerOptions {
                    t: Some(i32::try_from(docker.stop_grace.as_secs()).unwrap_or(i32::MAX)),
                    ..Default::default()
                };
                // The engine sends SIGTERM, then SIGKILL after the grace period.
                if let Err(e) = client.stop_container(&name, Some(options)).await {
                    eprintln!("docker-executor: stopping the container: {e}");
                }
                continue;
            }
        }
        // The wait ends with the container, or with the engine: ask which.
        match client.inspect_container(&name, None).await {
            Ok(container) => {
                let state = container.state.unwrap_or_default();
                if state.running != Some(true) {
                    break Ok(state.exit_code.unwrap_or(ENGINE_ENDED as i64));
                }
            }
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                break Err(EngineReport::Vanished(format!(
                    "the container {name} is gone from the Docker engine"
                )))
            }
            Err(e) => {
                break Err(EngineReport::EngineFailed(format!(
                    "the Docker engine at {} stopped answering: {e}",
                    docker.socket.display()
                )))
            }
        }
    };
    if ended.is_ok() {
        // The output ends with the container; what is still on its way is copied first.
        let _ = tokio::time::timeout(Duration::from_secs(5), output).await;
        if let Err(e) = engine.remove(&name).await {
            eprintln!("docker-executor: removing the container: {e}");
        }
    }
    ended.map(|code| i32::try_from(code).unwrap_or(ENGINE_ENDED))
}

/// Copies the container's stdout and stderr to ours until it ends.
async fn copy_output(engine: Engine, name: String) {
    let options = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let mut logs = engine.client().logs(&name, Some(options));
    while let Some(Ok(chunk)) = logs.next().await {
        let written = match chunk {
            LogOutput::StdErr { message } => std::io::stderr().write_all(&message),
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                std::io::stdout().write_all(&message)
            }
            LogOutput::StdIn { .. } => Ok(()),
        };
        if written.is_err() {
            return;
        }
    }
}
