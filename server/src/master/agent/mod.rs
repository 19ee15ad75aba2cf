//! The built-in agent's task runner, [`ProcessAgent`]: every task is a real process on this
//! machine, started in its own sandbox `<work_dir>/sandboxes/<task-id>/` by a detached
//! [`supervisor`](super::supervisor), which the agent's [`zygote`](super::zygote) forks. Launches
//! that arrive together (up to [`GROUP_SIZE`]) share one supervisor, so a burst of a thousand
//! tasks costs a few dozen forks beside the tasks' own. The supervisor, not `stride`, is the
//! tasks' parent, so they survive a `kill -9` of `stride`; [`ProcessAgent::recover`] re-adopts
//! them from the sandboxes' files when it restarts, and reports those that ended meanwhile.
//!
//! # Updates
//! A launch yields `Starting` when its group is being started, then `Running` once the supervisor
//! reports the command running (and `pids.json` written), then one terminal state (`Finished`,
//! `Failed`, `Killed`, or `Error` for an invalid launch). A task leaves
//! [`ProcessAgent::running_tasks`] before its terminal update is sent.
//!
//! # Watching processes
//! Each running task's command, and each supervisor, is watched through a pidfd registered with
//! the reactor, which costs nothing while it runs and reacts at once. A pidfd names one process
//! for good, so an exit cannot be confused with a later process that reuses the pid, and signals
//! sent through it cannot hit such a process either. It works the same for processes re-adopted
//! after a restart, which are not our children (the supervisor is the command's parent, the
//! zygote the supervisor's). A task has ended once its command exited and the supervisor wrote its
//! `exit.json`, or once its supervisor is gone. Where pidfds are unavailable (kernels before 5.3,
//! or no descriptors left), processes are checked in `/proc/<pid>/stat` every 500 ms.
//!
//! # Kills
//! The agent writes a `kill` file into the sandbox and sends SIGTERM to the supervisor, which
//! then sends SIGTERM to the task's process group and SIGKILL after the task's grace period.
//! Files, not a connection, so kills work the same for tasks re-adopted after a restart.

mod containers;
mod docker;

use super::checks::{self, HealthCheckSpec, Verdict};
use super::container;
use super::docker::{DockerLaunch, EngineReport, HostVolume, ENGINE_FILE};
use super::host::{self, pidfd_open, Cgroups};
use super::supervisor::{
    read_json, write_json_atomically, ExitRecord, Pids, StartReport, TaskFile, EXIT_FILE,
    KILL_FILE, PIDS_FILE, STDERR_FILE, TASK_FILE,
};
use super::zygote::{Forked, Zygote};
use crate::images::{ImageRequest, ImageStore};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::ffi::c_int;
use std::fs;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, Interest};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

/// Marks a sandbox whose terminal update was acknowledged: recovery leaves it alone.
const DONE_FILE: &str = "done";
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Tasks started by one supervisor, at most: launches that arrive together (Mesos sends a whole
/// offer's worth in one ACCEPT) share one fork of the zygote and one supervisor process.
const GROUP_SIZE: usize = 32;
/// Groups being prepared and forked at the same time: enough to keep this machine's cores busy
/// during a burst, without parking hundreds of blocking threads.
const CONCURRENT_GROUPS: usize = 2;
/// How often a task whose command has exited is checked for its supervisor's `exit.json`, at
/// first and at most.
const EXIT_RECORD_FIRST_CHECK: Duration = Duration::from_millis(2);
const EXIT_RECORD_LAST_CHECK: Duration = Duration::from_millis(200);
/// Each watched task holds a pidfd, so a thousand tasks need more descriptors than the common
/// soft limit of 1024; tasks inherit the limit, so stay far below the usual hard limits.
const WANTED_OPEN_FILES: libc::rlim_t = 65536;

pub struct AgentOptions {
    /// The agent's directory, `<data-dir>/agent`; sandboxes live in its `sandboxes` folder.
    pub work_dir: PathBuf,
    /// The `stride` binary, run as `stride zygote` to fork the tasks' supervisors.
    pub stride_exe: PathBuf,
    /// The hostname the agent reports.
    pub hostname: String,
    /// Where the images of container tasks come from; shared by the agents of one Stride.
    pub images: Arc<ImageStore>,
    /// The Docker-API engine that runs DOCKER containers.
    pub docker_socket: PathBuf,
}

/// What to run, like Mesos' `CommandInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandSpec {
    /// Run `value` with `/bin/sh -c`; otherwise execute `value` directly with `arguments`.
    pub shell: bool,
    pub value: String,
    /// The whole argv when not `shell`, `arguments[0]` being argv[0] (as in Mesos, and as
    /// Marathon sends an app's `args`); argv[0] defaults to `value` when empty.
    pub arguments: Vec<String>,
}

/// One task to run; `task.json` in the sandbox holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskLaunch {
    pub task_id: String,
    pub framework_id: String,
    pub command: CommandSpec,
    /// The task's whole environment, besides `MESOS_SANDBOX` and defaults for `PATH`, `HOME`
    /// and `TMPDIR` that it may override.
    pub env: Vec<(String, String)>,
    pub cpus: f64,
    pub mem_mb: f64,
    pub disk_mb: f64,
    pub ports: Vec<u32>,
    /// Time between SIGTERM and SIGKILL when the task is killed.
    #[serde(rename = "kill_grace_ms", with = "duration_ms")]
    pub kill_grace: Duration,
    /// The check the agent runs next to the task, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSpec>,
    /// Persistent volumes linked into the sandbox: the path there, and the volume's directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<(String, PathBuf)>,
    /// The reservation the task's resources come from, so that a restarted master knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<LaunchReservation>,
    /// The task runs in a container of this image rather than on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRequest>,
    /// How its container runs: set by the agent once the image is there and the container's
    /// root file system mounted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<container::Runtime>,
    /// The task runs in a DOCKER container of the agent's Docker engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerLaunch>,
    /// Host paths bound into its MESOS container (a DOCKER container has its own in `docker`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_volumes: Vec<HostVolume>,
}

/// A task's reservation: its role, labels and the volumes it uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchReservation {
    pub role: String,
    pub labels: Vec<(String, String)>,
    pub volumes: Vec<String>,
}

/// A task's state as this agent knows it; Mesos' `TaskState` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Starting,
    Running,
    Finished,
    Failed,
    Killed,
    /// The launch was invalid; nothing ran.
    Error,
    /// The task's container is gone without a trace of how it ended.
    Lost,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentUpdate {
    pub task_id: String,
    pub state: TaskState,
    pub message: String,
    pub reason: Option<UpdateReason>,
}

/// Why a task reached its state, named after Mesos' `TaskStatus.Reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateReason {
    /// The task's supervisor could not be started.
    CommandExecutorFailed,
    /// The task's supervisor ended without recording how the task ended.
    ExecutorTerminated,
    /// The sandbox could not be prepared or the command could not be executed.
    ContainerLaunchFailed,
    /// The task exceeded its memory limit and the kernel killed it.
    ContainerLimitationMemory,
    /// A kill request arrived before the task was running.
    TaskKilledDuringLaunch,
    /// The task ID is malformed or already used on this agent.
    TaskInvalid,
    /// `stride` stopped while it was launching the task.
    AgentRestarted,
    /// The task's health check changed its verdict.
    HealthCheck { healthy: bool },
}

/// A task found in the sandboxes by [`ProcessAgent::recover`].
#[derive(Debug, Clone)]
pub struct RecoveredTask {
    pub launch: TaskLaunch,
    /// Its supervisor still runs and is watched again; otherwise its terminal update was sent.
    pub alive: bool,
}

/// Runs tasks as supervised processes; cheap to clone. Dropping the last clone stops watching
/// (as a crash would) but leaves the tasks running, for the next agent to recover.
#[derive(Clone)]
pub struct ProcessAgent {
    shared: Arc<Shared>,
    /// Held only to be dropped with the last clone, which ends the background work.
    _shutdown: Arc<watch::Sender<()>>,
}

struct Shared {
    options: AgentOptions,
    /// The OCI runtime that starts container tasks, if this machine has one.
    runc: Option<PathBuf>,
    updates: mpsc::UnboundedSender<AgentUpdate>,
    tasks: Mutex<HashMap<String, TaskEntry>>,
    launches: Mutex<LaunchQueue>,
    cgroups: Option<Cgroups>,
    boot_id: String,
    zygote: Zygote,
    /// Changes (closes) when the last [`ProcessAgent`] is dropped.
    shutdown: watch::Receiver<()>,
    cgroup_failure_logged: Once,
    pidfd_failure_logged: Once,
}

/// A task between its launch (or recovery) and its terminal update.
#[derive(Default)]
struct TaskEntry {
    /// Set once the supervisor has started the command; a kill requested earlier waits for it.
    supervisor: Option<Arc<Watched>>,
    kill: Option<KillRequest>,
}

/// Launches waiting for a supervisor, and how many launchers take them.
#[derive(Default)]
struct LaunchQueue {
    waiting: VecDeque<TaskLaunch>,
    launchers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillRequest {
    BeforeRunning,
    WhileRunning,
}

/// A supervisor freshly forked for a group of tasks.
struct StartedGroup {
    supervisor: Forked,
    /// The tasks it starts, in the order of its reports.
    task_ids: Vec<String>,
    /// Read end of the supervisor's stdout, where its [`StartReport`]s come.
    reports: OwnedFd,
}

impl ProcessAgent {
    /// Sets the agent up without touching any task: call [`recover`](Self::recover) before
    /// launching. Finds the host's cgroups (logging once why tasks run without limits if there
    /// are none) and raises this process's soft limit of open files for the tasks' pidfds.
    pub fn new(options: AgentOptions, updates: mpsc::UnboundedSender<AgentUpdate>) -> Self {
        // The supervisor runs in the sandbox, so the paths handed to it must not be relative.
        let options = AgentOptions {
            work_dir: std::path::absolute(&options.work_dir).unwrap_or(options.work_dir),
            stride_exe: std::path::absolute(&options.stride_exe).unwrap_or(options.stride_exe),
            hostname: options.hostname,
            images: options.images,
            docker_socket: options.docker_socket,
        };
        raise_open_files_limit();
        let cgroups = Cgroups::detect()
            .inspect_err(|reason| {
                warn!("cgroups not usable ({reason}): running tasks without cpu/memory limits")
            })
            .ok();
        let (shutdown, shutdown_seen) = watch::channel(());
        Self {
            shared: Arc::new(Shared {
                updates,
                tasks: Mutex::new(HashMap::new()),
                launches: Mutex::new(LaunchQueue::default()),
                cgroups,
                boot_id: host::boot_id().unwrap_or_default(),
                zygote: Zygote::new(options.stride_exe.clone()),
                runc: container::find_runc(),
                shutdown: shutdown_seen,
                options,
                cgroup_failure_logged: Once::new(),
                pidfd_failure_logged: Once::new(),
            }),
            _shutdown: Arc::new(shutdown),
        }
    }

    /// Scans the sandboxes after a restart: re-adopts tasks whose supervisor still runs (the
    /// same process: pid and start time must match) and sends the terminal update of those
    /// that ended meanwhile. Sandboxes marked by [`forget`](Self::forget) and tasks this agent
    /// already watches are skipped.
    pub async fn recover(&self) -> io::Result<Vec<RecoveredTask>> {
        let sandboxes = self.shared.sandboxes_dir();
        let found = tokio::task::spawn_blocking(move || scan_sandboxes(&sandboxes))
            .await
            .map_err(io::Error::other)??;
        let mut recovered = Vec::new();
        for sandbox in found {
            let (launch, pids) = match sandbox {
                FoundSandbox::Launched(launch, pids) => (*launch, pids),
                FoundSandbox::Unlaunched(task_id) => {
                    if !self.shared.lock_tasks().contains_key(&task_id) {
                        self.shared.send(AgentUpdate {
                            task_id,
                            state: TaskState::Failed,
                            message: "Stride stopped while launching the task, before it started"
                                .to_owned(),
                            reason: Some(UpdateReason::AgentRestarted),
                        });
                    }
                    continue;
                }
            };
            if self.shared.lock_tasks().contains_key(&launch.task_id) {
                continue;
            }
            let task_id = launch.task_id.clone();
            let alive = match pids.and_then(|pids| self.shared.adopt(&pids)) {
                Some((supervisor, command)) => {
                    let entry = TaskEntry {
                        supervisor: Some(supervisor.clone()),
                        kill: None,
                    };
                    self.shared.lock_tasks().insert(task_id.clone(), entry);
                    let shared = self.shared.clone();
                    self.shared.check_health(&task_id);
                    self.shared
                        .until_shutdown(shared.watch_until_exit(task_id, supervisor, command));
                    true
                }
                None => {
                    let sandbox = self.sandbox_dir(&task_id);
                    let (update, docker) =
                        tokio::task::spawn_blocking(move || conclude(task_id, &sandbox, None))
                            .await
                            .map_err(io::Error::other)?;
                    if docker {
                        self.shared.remove_container(&update.task_id).await;
                    }
                    self.shared.send(update);
                    false
                }
            };
            recovered.push(RecoveredTask { launch, alive });
        }
        info!(
            hostname = %self.shared.options.hostname,
            alive = recovered.iter().filter(|task| task.alive).count(),
            ended = recovered.iter().filter(|task| !task.alive).count(),
            "recovered tasks from the sandboxes"
        );
        Ok(recovered)
    }

    /// Starts a task. Returns at once, having sent `Error` for an invalid or duplicate task ID;
    /// otherwise the supervisor is spawned in the background (a few at a time), `Starting` is
    /// sent when that begins, and the rest of the task's updates follow through the channel.
    pub async fn launch(&self, launch: TaskLaunch) {
        let task_id = launch.task_id.clone();
        let refusal = match validate_task_id(&task_id) {
            Err(problem) => Some(problem),
            Ok(()) => match self.shared.lock_tasks().entry(task_id.clone()) {
                Entry::Occupied(_) => Some(format!("Task '{task_id}' already runs on this agent")),
                Entry::Vacant(vacant) => {
                    vacant.insert(TaskEntry::default());
                    None
                }
            },
        };
        if let Some(message) = refusal {
            self.shared.send(AgentUpdate {
                task_id,
                state: TaskState::Error,
                message,
                reason: Some(UpdateReason::TaskInvalid),
            });
            return;
        }
        if launch.docker.is_some() {
            let shared = self.shared.clone();
            self.shared
                .until_shutdown(async move { shared.prepare_docker(launch).await });
            return;
        }
        if launch.image.is_some() {
            let shared = self.shared.clone();
            self.shared
                .until_shutdown(async move { shared.prepare_container(launch).await });
            return;
        }
        self.shared.enqueue(launch);
    }

    /// Asks the task's supervisor to kill it: SIGTERM to the task's process group, SIGKILL after
    /// the task's grace period. Does nothing for tasks this agent does not run.
    pub fn kill(&self, task_id: &str) {
        self.shared.kill(task_id);
    }

    /// Records that the task's terminal update was acknowledged, so that [`recover`]
    /// (Self::recover) ignores its sandbox from now on; the sandbox stays for its logs. Ignored
    /// while the task still runs.
    pub fn forget(&self, task_id: &str) {
        if validate_task_id(task_id).is_err() || self.shared.lock_tasks().contains_key(task_id) {
            return;
        }
        let done = self.sandbox_dir(task_id).join(DONE_FILE);
        match fs::write(&done, b"") {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                warn!(task_id, "cannot mark the sandbox as done: {e}")
            }
            _ => {}
        }
    }

    pub fn sandbox_dir(&self, task_id: &str) -> PathBuf {
        self.shared.sandbox_dir(task_id)
    }

    /// Tasks between launch (or recovery) and their terminal update, sorted.
    pub fn running_tasks(&self) -> Vec<String> {
        let mut task_ids: Vec<String> = self.shared.lock_tasks().keys().cloned().collect();
        task_ids.sort();
        task_ids
    }
}

impl Shared {
    fn lock_tasks(&self) -> MutexGuard<'_, HashMap<String, TaskEntry>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, update: AgentUpdate) {
        // Nobody listening means the agent is shutting down: nothing to report to.
        let _ = self.updates.send(update);
    }

    fn sandboxes_dir(&self) -> PathBuf {
        self.options.work_dir.join("sandboxes")
    }

    fn sandbox_dir(&self, task_id: &str) -> PathBuf {
        self.sandboxes_dir().join(task_id)
    }

    fn lock_launches(&self) -> MutexGuard<'_, LaunchQueue> {
        self.launches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a launch for the next free launcher, starting one if fewer than
    /// [`CONCURRENT_GROUPS`] run.
    fn enqueue(self: &Arc<Self>, launch: TaskLaunch) {
        let start_launcher = {
            let mut launches = self.lock_launches();
            launches.waiting.push_back(launch);
            let idle = launches.launchers < CONCURRENT_GROUPS;
            launches.launchers += usize::from(idle);
            idle
        };
        if start_launcher {
            let shared = self.clone();
            self.until_shutdown(shared.launch_groups());
        }
    }

    /// Runs `work` in the background until it ends or the agent is dropped.
    fn until_shutdown(&self, work: impl Future<Output = ()> + Send + 'static) {
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = work => {}
                _ = shutdown.changed() => {}
            }
        });
    }

    /// Takes waiting launches a group at a time and starts each group's supervisor, until none
    /// are left.
    async fn launch_groups(self: Arc<Self>) {
        loop {
            let group: Vec<TaskLaunch> = {
                let mut launches = self.lock_launches();
                let size = launches.waiting.len().min(GROUP_SIZE);
                if size == 0 {
                    launches.launchers -= 1;
                    return;
                }
                launches.waiting.drain(..size).collect()
            };
            self.start_group(group).await;
        }
    }

    /// Sends `Starting` for each task of `group` (or `Killed` if a kill came first), prepares
    /// their sandboxes and forks their supervisor; its reports are followed in the background.
    async fn start_group(self: &Arc<Self>, group: Vec<TaskLaunch>) {
        let mut starting = Vec::with_capacity(group.len());
        for launch in group {
            let killed_early = {
                let mut tasks = self.lock_tasks();
                let killed = tasks
                    .get(&launch.task_id)
                    .is_some_and(|entry| entry.kill.is_some());
                if killed {
                    tasks.remove(&launch.task_id);
                }
                killed
            };
            if killed_early {
                if let Some(runtime) = &launch.container {
                    for problem in container::teardown(runtime) {
                        warn!(task_id = launch.task_id, "{problem}");
                    }
                }
                self.send(AgentUpdate {
                    task_id: launch.task_id,
                    state: TaskState::Killed,
                    message: "Task killed before it was started".to_owned(),
                    reason: Some(UpdateReason::TaskKilledDuringLaunch),
                });
                continue;
            }
            // Like Mesos' executors, STARTING says the task is being started now, not queued.
            self.send(AgentUpdate {
                task_id: launch.task_id.clone(),
                state: TaskState::Starting,
                message: String::new(),
                reason: None,
            });
            starting.push(launch);
        }
        if starting.is_empty() {
            return;
        }
        let task_ids: Vec<String> = starting.iter().map(|l| l.task_id.clone()).collect();
        let shared = self.clone();
        let (started, failures) =
            match tokio::task::spawn_blocking(move || shared.start_supervisor(&starting)).await {
                Ok(result) => result,
                Err(panic) => {
                    let failures = task_ids
                        .into_iter()
                        .map(|task_id| AgentUpdate {
                            task_id,
                            state: TaskState::Failed,
                            message: format!("Launching the task's supervisor failed: {panic}"),
                            reason: Some(UpdateReason::CommandExecutorFailed),
                        })
                        .collect();
                    (None, failures)
                }
            };
        for failure in failures {
            self.lock_tasks().remove(&failure.task_id);
            self.send(failure);
        }
        if let Some(started) = started {
            let pidfd = started
                .supervisor
                .pidfd
                .ok_or_else(|| io::Error::from(io::ErrorKind::Unsupported));
            let supervisor = Arc::new(self.watch(
                started.supervisor.pid,
                started.supervisor.start_ticks,
                pidfd,
            ));
            let shared = self.clone();
            self.until_shutdown(shared.follow_starts(
                started.task_ids,
                supervisor,
                started.reports,
            ));
        }
    }

    /// Prepares the sandboxes of `group` and forks their supervisor: the group it started (none
    /// if no task could be prepared), and the updates of tasks that failed before it.
    fn start_supervisor(&self, group: &[TaskLaunch]) -> (Option<StartedGroup>, Vec<AgentUpdate>) {
        let mut failures = Vec::new();
        let mut prepared = Vec::with_capacity(group.len());
        for launch in group {
            match self.prepare_sandbox(launch) {
                Ok(cgroups) => prepared.push((launch.task_id.clone(), cgroups)),
                Err(failure) => failures.push(failure),
            }
        }
        if prepared.is_empty() {
            return (None, failures);
        }
        let sandboxes: Vec<PathBuf> = prepared
            .iter()
            .map(|(task_id, _)| self.sandbox_dir(task_id))
            .collect();
        let forked = pipe().and_then(|(reports, supervisor_stdout)| {
            let supervisor = self.zygote.fork_supervisor(&sandboxes, supervisor_stdout)?;
            Ok((supervisor, reports))
        });
        match forked {
            Ok((supervisor, reports)) => {
                let task_ids = prepared.into_iter().map(|(task_id, _)| task_id).collect();
                let started = StartedGroup {
                    supervisor,
                    task_ids,
                    reports,
                };
                (Some(started), failures)
            }
            Err(e) => {
                for (task_id, cgroups) in prepared {
                    host::remove_cgroups(&cgroups);
                    failures.push(AgentUpdate {
                        task_id,
                        state: TaskState::Failed,
                        message: format!("Cannot start the task's supervisor: {e}"),
                        reason: Some(UpdateReason::CommandExecutorFailed),
                    });
                }
                (None, failures)
            }
        }
    }

    /// Creates the task's sandbox with its `task.json` and its cgroups (returned); the failure
    /// is the update to send.
    fn prepare_sandbox(&self, launch: &TaskLaunch) -> Result<Vec<PathBuf>, AgentUpdate> {
        let task_id = &launch.task_id;
        let sandbox = self.sandbox_dir(task_id);
        let failed = |message| AgentUpdate {
            task_id: task_id.clone(),
            state: TaskState::Failed,
            message,
            reason: Some(UpdateReason::ContainerLaunchFailed),
        };
        fs::create_dir_all(self.sandboxes_dir())
            .map_err(|e| failed(format!("Cannot create the sandboxes directory: {e}")))?;
        match fs::create_dir(&sandbox) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(AgentUpdate {
                    task_id: task_id.clone(),
                    state: TaskState::Error,
                    message: format!("Task ID '{task_id}' was already used on this agent"),
                    reason: Some(UpdateReason::TaskInvalid),
                });
            }
            Err(e) => {
                let message = format!("Cannot create the sandbox {}: {e}", sandbox.display());
                return Err(failed(message));
            }
        }
        for (container_path, volume) in &launch.volumes {
            if validate_task_id(container_path).is_err() {
                return Err(failed(format!(
                    "A volume's container path must be one name in the sandbox, not '{container_path}'"
                )));
            }
            // As Mesos' filesystem/posix isolator: the volume appears in the sandbox as a link,
            // or in a container as a mount on a directory there (a link would point outside).
            let linked = match launch.container {
                Some(_) => fs::create_dir(sandbox.join(container_path)),
                None => std::os::unix::fs::symlink(volume, sandbox.join(container_path)),
            };
            if let Err(e) = linked {
                return Err(failed(format!(
                    "Cannot link the volume {} into the sandbox: {e}",
                    volume.display()
                )));
            }
        }
        let task = TaskFile {
            launch: launch.clone(),
            cgroups: self.create_cgroups(launch),
        };
        match write_json_atomically(&sandbox.join(TASK_FILE), &task) {
            Ok(()) => Ok(task.cgroups),
            Err(e) => {
                host::remove_cgroups(&task.cgroups);
                Err(failed(format!("Cannot write {TASK_FILE}: {e}")))
            }
        }
    }

    fn create_cgroups(&self, launch: &TaskLaunch) -> Vec<PathBuf> {
        let Some(cgroups) = &self.cgroups else {
            return Vec::new();
        };
        cgroups
            .create(&launch.task_id, launch.cpus, launch.mem_mb)
            .unwrap_or_else(|e| {
                self.cgroup_failure_logged.call_once(|| {
                    warn!(
                        "cannot create task cgroups ({e}): running tasks without cpu/memory limits"
                    )
                });
                Vec::new()
            })
    }

    /// Reads the supervisor's start reports, one per task in order, and follows each task from
    /// there until its terminal update.
    async fn follow_starts(
        self: Arc<Self>,
        task_ids: Vec<String>,
        supervisor: Arc<Watched>,
        reports: OwnedFd,
    ) {
        let mut reports = pipe::Receiver::from_owned_fd(reports)
            .inspect_err(|e| {
                warn!("cannot follow the start of a supervisor's tasks, stopping it: {e}");
                supervisor.signal(libc::SIGKILL);
            })
            .ok();
        for task_id in task_ids {
            let mut record = [0; StartReport::SIZE];
            let report = match &mut reports {
                Some(pipe) => pipe
                    .read_exact(&mut record)
                    .await
                    .ok()
                    .and_then(|_| StartReport::decode(record)),
                None => None,
            };
            let command = match report {
                Some(StartReport::Running { pid, start_ticks }) => {
                    self.mark_running(&task_id, &supervisor);
                    // `None` if it has ended already: then its exit record is awaited.
                    self.watch_if_running(pid, start_ticks)
                }
                // `exit.json` says why it failed; or the supervisor ended (or garbled its
                // reports) before this task, which is concluded once the supervisor is gone.
                Some(StartReport::Failed) | None => {
                    reports = None;
                    None
                }
            };
            let shared = self.clone();
            let supervisor = supervisor.clone();
            self.until_shutdown(shared.watch_until_exit(task_id, supervisor, command));
        }
    }

    /// Sends `Running` for a task whose command started, or passes on a kill that was
    /// requested before.
    fn mark_running(self: &Arc<Self>, task_id: &str, supervisor: &Arc<Watched>) {
        let kill_requested = {
            let mut tasks = self.lock_tasks();
            let Some(entry) = tasks.get_mut(task_id) else {
                return;
            };
            entry.supervisor = Some(supervisor.clone());
            entry.kill.is_some()
        };
        if kill_requested {
            self.request_kill(task_id, supervisor);
        } else {
            self.send(AgentUpdate {
                task_id: task_id.to_owned(),
                state: TaskState::Running,
                message: String::new(),
                reason: None,
            });
            self.check_health(task_id);
        }
    }

    /// Runs the task's health check, if its launch has one, while the task runs.
    fn check_health(self: &Arc<Self>, task_id: &str) {
        let sandbox = self.sandbox_dir(task_id);
        let Ok(task) = read_json::<TaskFile>(&sandbox.join(TASK_FILE)) else {
            return;
        };
        let Some(spec) = task.launch.health_check.clone() else {
            return;
        };
        let shared = self.clone();
        let task_id = task_id.to_owned();
        self.until_shutdown(async move {
            let running = || {
                shared
                    .lock_tasks()
                    .get(&task_id)
                    .is_some_and(|entry| entry.kill.is_none())
            };
            let report = |verdict| match verdict {
                Verdict::Healthy(healthy) => shared.send(AgentUpdate {
                    task_id: task_id.clone(),
                    state: TaskState::Running,
                    message: String::new(),
                    reason: Some(UpdateReason::HealthCheck { healthy }),
                }),
                Verdict::Kill => {
                    info!(task_id = %task_id, "killing a task whose health check failed too often");
                    shared.kill(&task_id);
                }
            };
            checks::run(spec, &sandbox, task.launch.env.clone(), running, report).await;
        });
    }

    /// Asks for the task's kill: at once when its command runs, once it does otherwise.
    fn kill(&self, task_id: &str) {
        let supervisor = {
            let mut tasks = self.lock_tasks();
            let Some(entry) = tasks.get_mut(task_id) else {
                return;
            };
            let request = match entry.supervisor {
                Some(_) => KillRequest::WhileRunning,
                None => KillRequest::BeforeRunning,
            };
            entry.kill.get_or_insert(request);
            entry.supervisor.clone()
        };
        if let Some(supervisor) = supervisor {
            self.request_kill(task_id, &supervisor);
        }
    }

    /// Asks the supervisor for the task's kill: the `kill` file names the task, the signal wakes
    /// the supervisor up to look.
    fn request_kill(&self, task_id: &str, supervisor: &Watched) {
        let request = self.sandbox_dir(task_id).join(KILL_FILE);
        if let Err(e) = fs::write(&request, b"") {
            warn!(task_id, "cannot ask the supervisor to kill the task: {e}");
        }
        supervisor.signal(libc::SIGTERM);
    }

    /// Waits for the task's end — its command exited (when `command` is known) and the
    /// supervisor recorded it, or the supervisor is gone — then sends the terminal update.
    async fn watch_until_exit(
        self: Arc<Self>,
        task_id: String,
        supervisor: Arc<Watched>,
        command: Option<Watched>,
    ) {
        if let Some(command) = command {
            command.exited().await;
        }
        let sandbox = self.sandbox_dir(&task_id);
        tokio::select! {
            () = supervisor.exited() => {}
            () = exit_recorded(&sandbox) => {}
        }
        let kill = self
            .lock_tasks()
            .remove(&task_id)
            .and_then(|entry| entry.kill);
        let fallback_id = task_id.clone();
        let (update, docker) =
            tokio::task::spawn_blocking(move || conclude(task_id, &sandbox, kill))
                .await
                .unwrap_or_else(|panic| {
                    let update = AgentUpdate {
                        task_id: fallback_id,
                        state: TaskState::Failed,
                        message: format!("Reading how the task ended failed: {panic}"),
                        reason: Some(UpdateReason::ExecutorTerminated),
                    };
                    (update, false)
                });
        if docker {
            self.remove_container(&update.task_id).await;
        }
        self.send(update);
    }

    fn watch(&self, pid: i32, start_ticks: u64, pidfd: io::Result<OwnedFd>) -> Watched {
        let pidfd = pidfd
            .and_then(|pidfd| {
                // SAFETY: an OwnedFd keeps its descriptor open and unchanged until the AsyncFd,
                // which owns it, drops it.
                unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) }
                    .map_err(io::Error::from)
            })
            .inspect_err(|e| {
                self.pidfd_failure_logged.call_once(|| {
                    warn!("cannot watch task processes through pidfds ({e}): polling them every 500 ms")
                })
            })
            .ok();
        Watched {
            pid,
            start_ticks,
            pidfd,
        }
    }

    /// The supervisor `pids` names, if it still runs, and the task's command, if it still runs
    /// too (both must be the same processes: pid and start time must match).
    fn adopt(&self, pids: &Pids) -> Option<(Arc<Watched>, Option<Watched>)> {
        if pids.boot_id != self.boot_id {
            return None;
        }
        let supervisor = self.watch_if_running(pids.supervisor_pid, pids.supervisor_start_ticks)?;
        let command = self.watch_if_running(pids.task_pid, pids.task_start_ticks);
        Some((Arc::new(supervisor), command))
    }

    /// Watches the process `pid` started at `start_ticks`, if it still runs.
    fn watch_if_running(&self, pid: i32, start_ticks: u64) -> Option<Watched> {
        if !host::process_running(pid, start_ticks) {
            return None;
        }
        let watched = self.watch(pid, start_ticks, pidfd_open(pid));
        // The process may have exited and its pid been reused before the pidfd was opened; the
        // pidfd pins whatever it opened, so checking now settles which process that is.
        host::process_running(pid, start_ticks).then_some(watched)
    }
}

/// Waits until the task's `exit.json` exists: the supervisor writes it shortly after the command
/// exits.
async fn exit_recorded(sandbox: &Path) {
    let record = sandbox.join(EXIT_FILE);
    let mut pause = EXIT_RECORD_FIRST_CHECK;
    while !tokio::fs::try_exists(&record).await.unwrap_or(false) {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(EXIT_RECORD_LAST_CHECK);
    }
}

/// A process we watch: a supervisor, or a task's command.
struct Watched {
    pid: i32,
    start_ticks: u64,
    pidfd: Option<AsyncFd<OwnedFd>>,
}

impl Watched {
    fn signal(&self, signal: c_int) {
        match &self.pidfd {
            // SAFETY: pidfd_send_signal reads only its arguments: a pidfd we own, a signal
            // number and a null siginfo.
            Some(pidfd) => unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd.as_raw_fd(),
                    signal,
                    ptr::null::<libc::siginfo_t>(),
                    0,
                );
            },
            None if host::process_running(self.pid, self.start_ticks) => {
                // SAFETY: kill(2) has no memory effects; the pid was just seen to still name the
                // supervisor.
                unsafe { libc::kill(self.pid, signal) };
            }
            None => {}
        }
    }

    async fn exited(&self) {
        if let Some(pidfd) = &self.pidfd {
            // A pidfd turns readable when its process exits.
            if pidfd.readable().await.is_ok() {
                return;
            }
        }
        while host::process_running(self.pid, self.start_ticks) {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// A close-on-exec pipe: (read end, write end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors into `fds`, which we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just created both descriptors for us.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn raise_open_files_limit() {
    // SAFETY: getrlimit and setrlimit only read and write the struct we own.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        let wanted = WANTED_OPEN_FILES.min(limit.rlim_max);
        if limit.rlim_cur < wanted {
            limit.rlim_cur = wanted;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Mesos' rule for IDs that name directories: not empty, not `.` or `..`, no `/`, no control
/// characters.
fn validate_task_id(task_id: &str) -> Result<(), String> {
    let unusable = task_id.is_empty()
        || task_id == "."
        || task_id == ".."
        || task_id.contains('/')
        || task_id.chars().any(char::is_control);
    if unusable {
        return Err(format!(
            "Task ID '{}' is invalid: it must be a file name without '/' or control characters",
            task_id.escape_debug()
        ));
    }
    Ok(())
}

/// A sandbox that recovery must look at.
enum FoundSandbox {
    /// `task.json` was written, so a supervisor was (or was about to be) started; `pids.json`
    /// if it started the command.
    Launched(Box<TaskLaunch>, Option<Pids>),
    /// Only the directory exists (named by the task ID): `stride` stopped before any process.
    Unlaunched(String),
}

fn scan_sandboxes(sandboxes: &Path) -> io::Result<Vec<FoundSandbox>> {
    let entries = match fs::read_dir(sandboxes) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        entries => entries?,
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let sandbox = entry.path();
        let Ok(task_id) = entry.file_name().into_string() else {
            continue;
        };
        if !entry.file_type()?.is_dir() || sandbox.join(DONE_FILE).exists() {
            continue;
        }
        found.push(match read_json::<TaskFile>(&sandbox.join(TASK_FILE)) {
            Ok(task) => FoundSandbox::Launched(
                Box::new(task.launch),
                read_json(&sandbox.join(PIDS_FILE)).ok(),
            ),
            Err(_) => FoundSandbox::Unlaunched(task_id),
        });
    }
    Ok(found)
}

/// After the supervisor is gone: the task's terminal update, from the supervisor's exit record,
/// or — if it died without one — after making sure its command does not live on unsupervised.
/// Removes the task's cgroups either way. Says too whether the task had a DOCKER container,
/// which the caller removes.
fn conclude(task_id: String, sandbox: &Path, kill: Option<KillRequest>) -> (AgentUpdate, bool) {
    let (cgroups, container, docker) = read_json::<TaskFile>(&sandbox.join(TASK_FILE))
        .map(|task| {
            let docker = task.launch.docker.is_some();
            (task.cgroups, task.launch.container, docker)
        })
        .unwrap_or_default();
    let engine_report = read_json::<EngineReport>(&sandbox.join(ENGINE_FILE)).ok();
    let (state, message, reason) = match read_json::<ExitRecord>(&sandbox.join(EXIT_FILE)) {
        Ok(record) => match engine_report {
            Some(report) if !record.killed => engine_outcome(report),
            _ => outcome(&record, kill),
        },
        Err(_) => {
            let message = match read_json::<Pids>(&sandbox.join(PIDS_FILE)) {
                Ok(pids) => {
                    kill_orphaned_command(&pids);
                    format!(
                        "The task's supervisor (pid {}) ended without recording how the command \
                         ended; the command was killed",
                        pids.supervisor_pid
                    )
                }
                Err(_) => format!(
                    "The task's supervisor ended before starting the command; see {}",
                    sandbox.join(STDERR_FILE).display()
                ),
            };
            // The supervisor did not live to end the container: its processes, mount and
            // directory are ended here.
            for problem in container.iter().flat_map(container::teardown) {
                warn!(task_id, "{problem}");
            }
            host::kill_cgroup_processes(&cgroups, host::CGROUP_EMPTYING_PATIENCE);
            (
                TaskState::Failed,
                message,
                Some(UpdateReason::ExecutorTerminated),
            )
        }
    };
    host::remove_cgroups(&cgroups);
    let update = AgentUpdate {
        task_id,
        state,
        message,
        reason,
    };
    (update, docker)
}

fn kill_orphaned_command(pids: &Pids) {
    let same_boot = host::boot_id().is_ok_and(|boot_id| boot_id == pids.boot_id);
    if same_boot && host::process_running(pids.task_pid, pids.task_start_ticks) {
        // SAFETY: kill(2) has no memory effects. The group's leader was just seen alive, so the
        // group id still names the command's process group.
        unsafe { libc::kill(-pids.task_pgid, libc::SIGKILL) };
    }
}

/// A DOCKER task that the engine ended: its state, message and reason.
fn engine_outcome(report: EngineReport) -> (TaskState, String, Option<UpdateReason>) {
    match report {
        EngineReport::LaunchFailed(message) => (
            TaskState::Failed,
            message,
            Some(UpdateReason::ContainerLaunchFailed),
        ),
        EngineReport::EngineFailed(message) => (
            TaskState::Failed,
            message,
            Some(UpdateReason::ExecutorTerminated),
        ),
        EngineReport::Vanished(message) => (TaskState::Lost, message, None),
    }
}

/// Maps an exit record to the task's terminal state, message and reason.
fn outcome(
    record: &ExitRecord,
    kill: Option<KillRequest>,
) -> (TaskState, String, Option<UpdateReason>) {
    if let Some(error) = &record.launch_error {
        return (
            TaskState::Failed,
            error.clone(),
            Some(UpdateReason::ContainerLaunchFailed),
        );
    }
    let ending = match (record.exit_code, record.signal) {
        (_, Some(signal)) => format!("Command terminated with signal {}", signal_name(signal)),
        (Some(code), None) => format!("Command exited with status {code}"),
        (None, None) => "Command ended in an unknown way".to_owned(),
    };
    if record.killed {
        let reason = (kill == Some(KillRequest::BeforeRunning))
            .then_some(UpdateReason::TaskKilledDuringLaunch);
        (TaskState::Killed, ending, reason)
    } else if record.exit_code == Some(0) {
        (TaskState::Finished, ending, None)
    } else if record.oom_killed {
        let message = format!("Memory limit exceeded: {ending}");
        (
            TaskState::Failed,
            message,
            Some(UpdateReason::ContainerLimitationMemory),
        )
    } else {
        (TaskState::Failed, ending, None)
    }
}

fn signal_name(signal: c_int) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("{signal}"),
    };
    name.to_owned()
}

/// `kill_grace` as whole milliseconds in `task.json`.
pub(crate) mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(duration.as_millis().try_into().unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(exit_code: Option<i32>, signal: Option<i32>, killed: bool) -> ExitRecord {
        ExitRecord {
            exit_code,
            signal,
            killed,
            oom_killed: false,
            launch_error: None,
            finished_at_ms: 0,
        }
    }

    #[test]
    fn exit_records_map_to_mesos_states() {
        assert_eq!(
            outcome(&record(Some(0), None, false), None),
            (
                TaskState::Finished,
                "Command exited with status 0".into(),
                None
            )
        );
        assert_eq!(
            outcome(&record(Some(3), None, false), None),
            (
                TaskState::Failed,
                "Command exited with status 3".into(),
                None
            )
        );
        assert_eq!(
            outcome(&record(None, Some(libc::SIGSEGV), false), None),
            (
                TaskState::Failed,
                "Command terminated with signal SIGSEGV".into(),
                None
            )
        );
        assert_eq!(
            outcome(
                &record(Some(0), None, true),
                Some(KillRequest::WhileRunning)
            )
            .0,
            TaskState::Killed
        );
        assert_eq!(
            outcome(
                &record(None, Some(libc::SIGTERM), true),
                Some(KillRequest::BeforeRunning)
            ),
            (
                TaskState::Killed,
                "Command terminated with signal SIGTERM".into(),
                Some(UpdateReason::TaskKilledDuringLaunch)
            )
        );
        let oom = ExitRecord {
            oom_killed: true,
            ..record(None, Some(libc::SIGKILL), false)
        };
        assert_eq!(
            outcome(&oom, None).2,
            Some(UpdateReason::ContainerLimitationMemory)
        );
    }

    #[test]
    fn task_ids_must_be_file_names() {
        assert!(validate_task_id("web.8a2f-11ee_app.1").is_ok());
        for bad in ["", ".", "..", "a/b", "a\nb"] {
            assert!(validate_task_id(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn task_json_keeps_grace_in_milliseconds() {
        let launch = TaskLaunch {
            task_id: "t".into(),
            framework_id: "f".into(),
            command: CommandSpec {
                shell: true,
                value: "true".into(),
                arguments: vec![],
            },
            env: vec![("PORT0".into(), "31000".into())],
            cpus: 0.5,
            mem_mb: 64.0,
            disk_mb: 0.0,
            ports: vec![31000],
            kill_grace: Duration::from_millis(2500),
            health_check: None,
            volumes: Vec::new(),
            reservation: None,
            image: None,
            container: None,
            docker: None,
            host_volumes: Vec::new(),
        };
        let json = serde_json::to_value(TaskFile {
            launch,
            cgroups: vec![],
        })
        .unwrap();
        assert_eq!(json["kill_grace_ms"], 2500);
        assert_eq!(json["task_id"], "t");
        let back: TaskFile = serde_json::from_value(json).unwrap();
        assert_eq!(back.launch.kill_grace, Duration::from_millis(2500));
    }
}
