//! The built-in agent against real processes: launches through the zygote and its supervisors, environments,
//! exit codes, kill escalation, cgroup limits, and recovery after the agent is gone (dropped, or
//! its whole process killed with SIGKILL).
//!
//! Every test keeps its work directory in a [`WorkDir`], whose drop kills whatever the test's
//! tasks left running (checking pids against their recorded start times) and removes their
//! cgroups, so a failed assertion leaves no process behind. Every wait has a timeout.

mod common;

use common::{read_json, signal, start_ticks};

use server::master::agent::{
    AgentOptions, AgentUpdate, CommandSpec, ProcessAgent, TaskLaunch, TaskState, UpdateReason,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::time::timeout;

const UPDATE_TIMEOUT: Duration = Duration::from_secs(15);

struct WorkDir {
    dir: TempDir,
}

impl WorkDir {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    fn agent(&self) -> (ProcessAgent, UnboundedReceiver<AgentUpdate>) {
        agent_in(self.dir.path())
    }
}

fn agent_in(dir: &Path) -> (ProcessAgent, UnboundedReceiver<AgentUpdate>) {
    let (updates, receiver) = mpsc::unbounded_channel();
    let options = AgentOptions {
        work_dir: dir.join("agent"),
        stride_exe: PathBuf::from(env!("CARGO_BIN_EXE_stride")),
        hostname: "test-host".to_owned(),
        images: std::sync::Arc::new(server::images::ImageStore::new(
            dir.join("images"),
            &Default::default(),
        )),
        docker_socket: dir.join("no-docker.sock"),
    };
    (ProcessAgent::new(options, updates), receiver)
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let Ok(sandboxes) = fs::read_dir(self.dir.path().join("agent/sandboxes")) else {
            return;
        };
        for sandbox in sandboxes.flatten().map(|entry| entry.path()) {
            common::kill_sandbox_leftovers(&sandbox);
        }
    }
}

fn task(command: &str) -> TaskLaunch {
    TaskLaunch {
        task_id: format!("test-app.{}", uuid::Uuid::new_v4()),
        framework_id: "test-framework".to_owned(),
        command: CommandSpec {
            shell: true,
            value: command.to_owned(),
            arguments: Vec::new(),
        },
        env: vec![
            ("PORT0".to_owned(), "31234".to_owned()),
            ("MARATHON_APP_ID".to_owned(), "/test-app".to_owned()),
        ],
        cpus: 0.5,
        mem_mb: 64.0,
        disk_mb: 0.0,
        ports: vec![31234],
        kill_grace: Duration::from_secs(1),
        health_check: None,
        volumes: Vec::new(),
        reservation: None,
        image: None,
        container: None,
        docker: None,
        host_volumes: Vec::new(),
    }
}

async fn next_update(updates: &mut UnboundedReceiver<AgentUpdate>) -> AgentUpdate {
    timeout(UPDATE_TIMEOUT, updates.recv())
        .await
        .expect("timed out waiting for an agent update")
        .expect("the agent's update channel closed")
}

async fn expect_state(
    updates: &mut UnboundedReceiver<AgentUpdate>,
    task_id: &str,
    state: TaskState,
) -> AgentUpdate {
    let update = next_update(updates).await;
    assert_eq!(
        (update.task_id.as_str(), update.state),
        (task_id, state),
        "{update:?}"
    );
    update
}

fn task_pids(agent: &ProcessAgent, task_id: &str) -> serde_json::Value {
    read_json(&agent.sandbox_dir(task_id).join("pids.json")).expect("pids.json")
}

fn pid_of(pids: &serde_json::Value, key: &str) -> i32 {
    pids[key].as_i64().expect("pid") as i32
}

fn process_group_exists(pgid: i32) -> bool {
    signal(-pgid, 0)
}

/// Whether the process group is gone within a few seconds; killed processes stay visible until
/// whoever inherited them reaps them.
async fn process_group_ends(pgid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_group_exists(pgid) {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Whether the process exits within a few seconds.
async fn process_ends(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while common::process_alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Field `index` of /proc/<pid>/stat counted from the state (0) after the process name.
fn stat_field(pid: i32, index: usize) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(index)?.parse().ok()
}

/// The zygote that forked a supervisor is its parent.
fn zygote_of(supervisor_pid: i32) -> i32 {
    let zygote = stat_field(supervisor_pid, 1).expect("the supervisor's parent");
    let cmdline = fs::read(format!("/proc/{zygote}/cmdline")).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("zygote"),
        "the supervisor's parent {zygote} is not a zygote"
    );
    zygote
}

async fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + UPDATE_TIMEOUT;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn runs_a_real_process_with_its_environment_and_kills_it() {
    let work = WorkDir::new();
    let (agent, mut updates) = work.agent();
    let launch = task("sleep 30");
    let id = launch.task_id.clone();
    agent.launch(launch).await;
    expect_state(&mut updates, &id, TaskState::Starting).await;
    expect_state(&mut updates, &id, TaskState::Running).await;
    assert_eq!(agent.running_tasks(), vec![id.clone()]);

    let sandbox = agent.sandbox_dir(&id);
    let task_pid = pid_of(&task_pids(&agent, &id), "task_pid");
    let environ = fs::read(format!("/proc/{task_pid}/environ")).expect("task environ");
    let environ: Vec<String> = environ
        .split(|&b| b == 0)
        .map(|var| String::from_utf8_lossy(var).into_owned())
        .collect();
    for expected in [
        "PORT0=31234".to_owned(),
        "MARATHON_APP_ID=/test-app".to_owned(),
        format!("MESOS_SANDBOX={}", sandbox.display()),
        format!("HOME={}", sandbox.display()),
        "PATH=/usr/local/bin:/usr/bin:/bin".to_owned(),
    ] {
        assert!(environ.contains(&expected), "{expected} not in {environ:?}");
    }
    assert!(
        !environ.iter().any(|var| var.starts_with("CARGO_")),
        "the agent's own environment leaked into the task: {environ:?}"
    );
    assert_eq!(
        fs::read_link(format!("/proc/{task_pid}/cwd")).unwrap(),
        sandbox
    );
    let status = fs::read_to_string(format!("/proc/{task_pid}/status")).unwrap();
    let signal_set = |name: &str| {
        let line = status.lines().find_map(|l| l.strip_prefix(name)).unwrap();
        u64::from_str_radix(line.trim(), 16).unwrap()
    };
    assert_eq!(
        signal_set("SigBlk:"),
        0,
        "the task starts with signals blocked"
    );
    // Bits 0-30 are the standard signals 1-31; glibc keeps 32 and 33 for itself.
    assert_eq!(
        signal_set("SigIgn:") & 0x7fff_ffff,
        0,
        "the task starts with signals ignored"
    );

    agent.kill("no-such-task");
    agent.kill(&id);
    let killed = expect_state(&mut updates, &id, TaskState::Killed).await;
    assert_eq!(killed.message, "Command terminated with signal SIGTERM");
    assert_eq!(killed.reason, None);
    assert!(agent.running_tasks().is_empty());
    assert!(process_group_ends(task_pid).await);
    assert!(
        updates.try_recv().is_err(),
        "killing an unknown task must not send updates"
    );
}

#[tokio::test]
async fn failing_command_reports_its_status_and_keeps_its_output() {
    let work = WorkDir::new();
    let (agent, mut updates) = work.agent();
    let launch = task("echo hi; echo oops >&2; exit 3");
    let id = launch.task_id.clone();
    agent.launch(launch).await;
    expect_state(&mut updates, &id, TaskState::Starting).await;
    expect_state(&mut updates, &id, TaskState::Running).await;
    let failed = expect_state(&mut updates, &id, TaskState::Failed).await;
    assert_eq!(failed.message, "Command exited with status 3");
    let sandbox = agent.sandbox_dir(&id);
    assert_eq!(fs::read_to_string(sandbox.join("stdout")).unwrap(), "hi\n");
    assert_eq!(
        fs::read_to_string(sandbox.join("stderr")).unwrap(),
        "oops\n"
    );
    let exit = read_json(&sandbox.join("exit.json")).unwrap();
    assert_eq!(
        (exit["exit_code"].as_i64(), exit["killed"].as_bool()),
        (Some(3), Some(false))
    );
}

#[tokio::test]
async fn kill_escalates_to_sigkill_for_the_whole_group_after_the_grace_period() {
    let work = WorkDir::new();
    let (agent, mut updates) = work.agent();
    let grace = Duration::from_millis(1500);
    let launch = TaskLaunch {
        kill_grace: grace,
        health_check: None,
        volumes: Vec::new(),
        reservation: None,
        ..task("trap '' TERM; sleep 31 & sleep 32 & echo ready; wait")
    };
    let id = launch.task_id.clone();
    agent.launch(launch).await;
    expect_state(&mut updates, &id, TaskState::Starting).await;
    expect_state(&mut updates, &id, TaskState::Running).await;
    // Kill only once the shell ignores SIGTERM, or it would die of the first signal.
    let stdout = agent.sandbox_dir(&id).join("stdout");
    let deadline = Instant::now() + UPDATE_TIMEOUT;
    while fs::read_to_string(&stdout).unwrap_or_default() != "ready\n" {
        assert!(Instant::now() < deadline, "the task never got ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pgid = pid_of(&task_pids(&agent, &id), "task_pgid");

    let kill_sent = Instant::now();
    agent.kill(&id);
    tokio::time::sleep(grace / 2).await;
    assert!(
        process_group_exists(pgid),
        "SIGTERM is ignored: the group must live on"
    );
    let killed = expect_state(&mut updates, &id, TaskState::Killed).await;
    let took = kill_sent.elapsed();
    assert!(
        took >= grace,
        "killed after {took:?}, before the grace period ended"
    );
    assert!(
        took < grace + Duration::from_secs(3),
        "killed only after {took:?}"
    );
    assert_eq!(killed.message, "Command terminated with signal SIGKILL");
    assert!(
        process_group_ends(pgid).await,
        "a process of the task's group survived"
    );
}

#[tokio::test]
async fn missing_executable_fails_with_a_clear_message() {
    let work = WorkDir::new();
    let (agent, mut updates) = work.agent();
    let missing = "/nonexistent/stride-test-no-such-binary";
    let launch = TaskLaunch {
        command: CommandSpec {
            shell: false,
            value: missing.to_owned(),
            arguments: vec![missing.to_owned(), "--flag".to_owned()],
        },
        ..task("")
    };
    let id = launch.task_id.clone();
    agent.launch(launch).await;
    expect_state(&mut updates, &id, TaskState::Starting).await;
    let failed = expect_state(&mut updates, &id, TaskState::Failed).await;
    assert_eq!(failed.reason, Some(UpdateReason::ContainerLaunchFailed));
    assert!(
        failed.message.contains(missing) && failed.message.contains("No such file or directory"),
        "{}",
        failed.message
    );
    assert!(agent.running_tasks().is_empty());
}

#[tokio::test]
async fn invalid_or_duplicate_task_ids_are_refused() {
    let work = WorkDir::new();
    let (agent, mut updates) = work.agent();
    agent
        .launch(TaskLaunch {
            task_id: "../escape".to_owned(),
            ..task("true")
        })
        .await;
    let refused = expect_state(&mut updates, "../escape", TaskState::Error).await;
    assert_eq!(refused.reason, Some(UpdateReason::TaskInvalid));

    let launch = task("sleep 30");
    let id = launch.task_id.clone();
    agent.launch(launch.clone()).await;
    agent.launch(launch).await;
    // The refusal is immediate; STARTING comes when the first launch is being started.
    let (first, second) = (
        next_update(&mut updates).await,
        next_update(&mut updates).await,
    );
    let (duplicate, starting) = match first.state {
        TaskState::Error => (first, second),
        _ => (second, first),
    };
    assert_eq!(
        (duplicate.task_id.as_str(), duplicate.state),
        (id.as_str(), TaskState::Error)
    );
    assert_eq!(duplicate.reason, Some(UpdateReason::TaskInvalid));
    assert_eq!(
        (starting.task_id.as_str(), starting.state),
        (id.as_str(), TaskState::Starting)
    );
    expect_state(&mut updates, &id, TaskState::Running).await;
    agent.kill(&id);
    expect_state(&mut updates, &id, TaskState::Killed).await;
}

/// Tasks launched together share one supervisor, yet each is killed, ends and is recorded on its
/// own, and they outlive their agent like any task.
#[tokio::test]
async fn tasks_launched_together_share_a_supervisor_but_end_on_their_own() {
    let work = WorkDir::new();
    let (first, mut updates) = work.agent();
    let group = [task("sleep 30"), task("sleep 30"), task("exit 3")];
    let ids: Vec<String> = group.iter().map(|launch| launch.task_id.clone()).collect();
    // Launched without yielding in between, so one launcher takes all three at once.
    for launch in group {
        first.launch(launch).await;
    }
    let mut running = Vec::new();
    let mut failed = None;
    while running.len() < 2 || failed.is_none() {
        let update = next_update(&mut updates).await;
        match update.state {
            TaskState::Running if update.task_id != ids[2] => running.push(update.task_id),
            TaskState::Failed => failed = Some(update),
            TaskState::Starting | TaskState::Running => {}
            _ => panic!("unexpected update {update:?}"),
        }
    }
    let failed = failed.unwrap();
    assert_eq!(
        (failed.task_id.as_str(), failed.message.as_str()),
        (ids[2].as_str(), "Command exited with status 3")
    );
    first.forget(&ids[2]);
    let supervisor = pid_of(&task_pids(&first, &ids[0]), "supervisor_pid");
    for id in &ids[1..] {
        assert_eq!(
            pid_of(&task_pids(&first, id), "supervisor_pid"),
            supervisor,
            "one supervisor for the tasks launched together"
        );
    }
    let commands: Vec<i32> = ids[..2]
        .iter()
        .map(|id| pid_of(&task_pids(&first, id), "task_pid"))
        .collect();

    drop(first);
    let (second, mut updates) = work.agent();
    let mut recovered: Vec<(String, bool)> = second
        .recover()
        .await
        .unwrap()
        .into_iter()
        .map(|task| (task.launch.task_id, task.alive))
        .collect();
    recovered.sort();
    let mut expected = vec![(ids[0].clone(), true), (ids[1].clone(), true)];
    expected.sort();
    assert_eq!(recovered, expected);

    second.kill(&ids[0]);
    expect_state(&mut updates, &ids[0], TaskState::Killed).await;
    assert!(
        process_ends(commands[0]).await,
        "the killed task's command ends"
    );
    assert!(
        common::process_alive(commands[1]) && common::process_alive(supervisor),
        "the other task and its supervisor go on"
    );
    second.kill(&ids[1]);
    expect_state(&mut updates, &ids[1], TaskState::Killed).await;
    assert!(
        process_ends(supervisor).await,
        "the supervisor ends with its last task"
    );
}

#[tokio::test]
async fn applies_cgroup_limits_where_the_host_allows() {
    let work = WorkDir::new();
    let (agent, mut updates) = work.agent();
    let launch = task("sleep 30");
    let id = launch.task_id.clone();
    agent.launch(launch).await;
    expect_state(&mut updates, &id, TaskState::Starting).await;
    expect_state(&mut updates, &id, TaskState::Running).await;
    let task_json = read_json(&agent.sandbox_dir(&id).join("task.json")).unwrap();
    let cgroups: Vec<PathBuf> = task_json["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|dir| PathBuf::from(dir.as_str().unwrap()))
        .collect();
    if cgroups.is_empty() {
        eprintln!("this host offers no writable cgroups: limits not checked");
    } else {
        let task_pid = pid_of(&task_pids(&agent, &id), "task_pid").to_string();
        let read = |file: &str| {
            cgroups
                .iter()
                .find_map(|dir| fs::read_to_string(dir.join(file)).ok())
                .map(|text| text.trim().to_owned())
        };
        for dir in &cgroups {
            let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap();
            assert!(
                procs.lines().any(|pid| pid == task_pid),
                "task not in {}",
                dir.display()
            );
        }
        let memory = read("memory.max").or_else(|| read("memory.limit_in_bytes"));
        assert_eq!(memory.as_deref(), Some("67108864"));
        let cpu = read("cpu.max").or_else(|| read("cpu.cfs_quota_us"));
        assert!(
            matches!(cpu.as_deref(), Some("50000 100000" | "50000")),
            "{cpu:?}"
        );
    }
    agent.kill(&id);
    expect_state(&mut updates, &id, TaskState::Killed).await;
    for dir in &cgroups {
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
}

#[tokio::test]
async fn recovery_readopts_a_running_task_without_duplicating_it() {
    let work = WorkDir::new();
    let (first, mut first_updates) = work.agent();
    let launch = task("sleep 60");
    let id = launch.task_id.clone();
    first.launch(launch).await;
    expect_state(&mut first_updates, &id, TaskState::Starting).await;
    expect_state(&mut first_updates, &id, TaskState::Running).await;
    let pids = task_pids(&first, &id);
    let (supervisor_pid, task_pid) = (pid_of(&pids, "supervisor_pid"), pid_of(&pids, "task_pid"));
    let zygote = zygote_of(supervisor_pid);

    drop(first);
    let closed = timeout(UPDATE_TIMEOUT, first_updates.recv()).await;
    assert_eq!(
        closed,
        Ok(None),
        "the dropped agent must stop watching its tasks"
    );
    assert!(
        start_ticks(supervisor_pid).is_some(),
        "the supervisor died with its agent"
    );
    assert!(
        start_ticks(task_pid).is_some(),
        "the task died with its agent"
    );
    assert!(process_ends(zygote).await, "the zygote outlived its agent");

    let (second, mut second_updates) = work.agent();
    let recovered = second.recover().await.unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(
        (recovered[0].launch.task_id.as_str(), recovered[0].alive),
        (id.as_str(), true)
    );
    assert_eq!(second.running_tasks(), vec![id.clone()]);
    assert_eq!(
        task_pids(&second, &id),
        pids,
        "the task must not be started again"
    );
    let sandbox = second.sandbox_dir(&id);
    let task_pgid = pid_of(&pids, "task_pgid");
    let outside_the_task: Vec<i32> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd == sandbox))
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .filter(|pid| stat_field(*pid, 2) != Some(task_pgid))
        .collect();
    assert_eq!(
        outside_the_task,
        Vec::<i32>::new(),
        "only the task's own processes work in its sandbox: nothing was started again"
    );
    assert!(
        start_ticks(supervisor_pid).is_some(),
        "the same supervisor still runs"
    );
    assert!(
        second_updates.try_recv().is_err(),
        "a live task has nothing to report"
    );

    second.kill(&id);
    let killed = expect_state(&mut second_updates, &id, TaskState::Killed).await;
    assert_eq!(killed.message, "Command terminated with signal SIGTERM");
    assert!(process_group_ends(task_pid).await);
}

/// Names the work directory of [`agent_process_to_be_killed`] when it runs as a helper process.
const KILLED_AGENT_DIR: &str = "STRIDE_TEST_KILLED_AGENT_DIR";

/// Runs in a child process of [`recovery_survives_kill_9_of_the_agent_process`], which kills it
/// once its task runs; does nothing when run on its own.
#[tokio::test]
#[ignore = "helper process of recovery_survives_kill_9_of_the_agent_process"]
async fn agent_process_to_be_killed() {
    let Ok(dir) = std::env::var(KILLED_AGENT_DIR) else {
        return;
    };
    let (agent, mut updates) = agent_in(Path::new(&dir));
    let launch = task("sleep 60");
    let id = launch.task_id.clone();
    agent.launch(launch).await;
    expect_state(&mut updates, &id, TaskState::Starting).await;
    expect_state(&mut updates, &id, TaskState::Running).await;
    println!("RUNNING {id}");
    tokio::time::sleep(UPDATE_TIMEOUT).await;
}

#[tokio::test]
async fn recovery_survives_kill_9_of_the_agent_process() {
    let work = WorkDir::new();
    let mut agent_process = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "agent_process_to_be_killed",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(KILLED_AGENT_DIR, work.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(agent_process.stdout.take().unwrap()).lines();
    let id = timeout(UPDATE_TIMEOUT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(id) = line.strip_prefix("RUNNING ") {
                return id.to_owned();
            }
        }
        panic!("the agent process ended before its task ran");
    })
    .await
    .expect("timed out waiting for the agent process's task");
    let (agent, mut updates) = work.agent();
    let pids = task_pids(&agent, &id);
    let (supervisor_pid, task_pid) = (pid_of(&pids, "supervisor_pid"), pid_of(&pids, "task_pid"));
    let zygote = zygote_of(supervisor_pid);
    agent_process.kill().await.unwrap();

    assert!(
        process_ends(zygote).await,
        "the zygote outlived its agent's process"
    );
    assert!(
        start_ticks(task_pid).is_some(),
        "the task died with its agent"
    );
    let recovered = agent.recover().await.unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(
        (recovered[0].launch.task_id.as_str(), recovered[0].alive),
        (id.as_str(), true)
    );
    assert_eq!(
        task_pids(&agent, &id),
        pids,
        "the task must not be started again"
    );

    agent.kill(&id);
    let killed = expect_state(&mut updates, &id, TaskState::Killed).await;
    assert_eq!(killed.message, "Command terminated with signal SIGTERM");
    assert!(process_group_ends(task_pid).await);
    assert!(
        process_ends(supervisor_pid).await,
        "the supervisor outlived its task"
    );
}

#[tokio::test]
async fn recovery_reports_tasks_that_ended_while_no_agent_ran() {
    let work = WorkDir::new();
    let (first, mut first_updates) = work.agent();
    let launch = task("sleep 0.3; exit 7");
    let id = launch.task_id.clone();
    first.launch(launch).await;
    expect_state(&mut first_updates, &id, TaskState::Starting).await;
    expect_state(&mut first_updates, &id, TaskState::Running).await;
    let sandbox = first.sandbox_dir(&id);
    drop(first);
    wait_for_file(&sandbox.join("exit.json")).await;

    let (second, mut second_updates) = work.agent();
    let recovered = second.recover().await.unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(
        (recovered[0].launch.task_id.as_str(), recovered[0].alive),
        (id.as_str(), false)
    );
    let failed = expect_state(&mut second_updates, &id, TaskState::Failed).await;
    assert_eq!(failed.message, "Command exited with status 7");
    assert!(second.running_tasks().is_empty());

    second.forget(&id);
    let (third, mut third_updates) = work.agent();
    assert!(
        third.recover().await.unwrap().is_empty(),
        "a forgotten task came back"
    );
    assert!(third_updates.try_recv().is_err());
    assert!(
        sandbox.join("stdout").exists(),
        "forgetting must keep the sandbox's files"
    );
}

#[tokio::test]
async fn recovery_kills_a_task_whose_supervisor_vanished() {
    let work = WorkDir::new();
    let (first, mut first_updates) = work.agent();
    let launch = task("sleep 60");
    let id = launch.task_id.clone();
    first.launch(launch).await;
    expect_state(&mut first_updates, &id, TaskState::Starting).await;
    expect_state(&mut first_updates, &id, TaskState::Running).await;
    let pids = task_pids(&first, &id);
    drop(first);
    let (supervisor_pid, task_pgid) = (pid_of(&pids, "supervisor_pid"), pid_of(&pids, "task_pgid"));
    signal(supervisor_pid, libc::SIGKILL);
    let deadline = Instant::now() + UPDATE_TIMEOUT;
    while start_ticks(supervisor_pid).is_some() {
        assert!(Instant::now() < deadline, "the supervisor survived SIGKILL");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (second, mut second_updates) = work.agent();
    let recovered = second.recover().await.unwrap();
    assert_eq!(recovered.len(), 1);
    assert!(!recovered[0].alive);
    let failed = expect_state(&mut second_updates, &id, TaskState::Failed).await;
    assert_eq!(failed.reason, Some(UpdateReason::ExecutorTerminated));
    assert!(failed.message.contains("supervisor"), "{}", failed.message);
    assert!(
        process_group_ends(task_pgid).await,
        "the orphaned task was left running"
    );
}

/// Launches 1,000 `sleep 3600` tasks: `cargo test -p server --test agent -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: starts 1,000 processes"]
async fn thousand_sleeping_tasks() {
    const TASKS: usize = 1000;
    let work = WorkDir::new();
    let (agent, mut updates) = work.agent();
    let started = Instant::now();
    for _ in 0..TASKS {
        agent.launch(task("sleep 3600")).await;
    }
    let launched = started.elapsed();
    let mut running = 0;
    while running < TASKS {
        let update = next_update(&mut updates).await;
        match update.state {
            TaskState::Starting => {}
            TaskState::Running => running += 1,
            _ => panic!("unexpected update {update:?}"),
        }
    }
    let all_running = started.elapsed();
    let kill_started = Instant::now();
    for id in agent.running_tasks() {
        agent.kill(&id);
    }
    let mut killed = 0;
    while killed < TASKS {
        let update = next_update(&mut updates).await;
        assert_eq!(update.state, TaskState::Killed, "{update:?}");
        killed += 1;
    }
    println!(
        "{TASKS} tasks: launch calls {launched:?}, all running after {all_running:?}, \
         all killed {:?} after the kill requests",
        kill_started.elapsed()
    );
}
