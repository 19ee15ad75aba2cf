//! The supervisor: the small process, like Mesos' command executor, that starts a group of
//! tasks launched together and records how each ended. The built-in agent has the
//! [`zygote`](super::zygote) fork it, detached (own session), so that the tasks outlive a crash or
//! restart of `stride`. One supervisor per group rather than per task: a thousand tasks launched
//! at once then cost a few dozen forks beside their own, not a thousand.
//!
//! It also defines the files through which the agent and the supervisor talk, all in the sandbox:
//! - `task.json` ([`TaskFile`], written by the agent): what to run, its limits and cgroups;
//! - `pids.json` ([`Pids`]): written once the command runs;
//! - `kill` ([`KILL_FILE`], written by the agent): a kill request, which the agent follows with
//!   SIGTERM to the supervisor;
//! - `exit.json` ([`ExitRecord`]): how the command ended, once it has;
//! - `stdout`, `stderr`: the command's output; the supervisor's own complaints go to `stderr`
//!   too, as the Mesos command executor's do.
//!
//! On its stdout, a pipe the agent reads, the supervisor reports how each task started
//! ([`StartReport`], in the order of the request), then closes it.
//!
//! Every file is an inode to allocate, which on some file systems (ext4 without a journal) costs
//! more than the fork: the sandbox holds only these, and `TMPDIR` is the sandbox itself.
//!
//! The supervisor is plain std and libc and single-threaded: it blocks SIGTERM, SIGINT and SIGCHLD
//! and takes them one at a time with `sigtimedwait`, whose timeout is the nearest end of a kill
//! grace period. So there are no signal handlers, and no async runtime to start.

use super::agent::TaskLaunch;
use super::container;
use super::host;
use super::spawn::Spawn;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::ffi::{c_int, OsStr};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(crate) const TASK_FILE: &str = "task.json";
pub(crate) const PIDS_FILE: &str = "pids.json";
pub(crate) const EXIT_FILE: &str = "exit.json";
pub(crate) const STDOUT_FILE: &str = "stdout";
pub(crate) const STDERR_FILE: &str = "stderr";
/// Written by the agent into a sandbox to ask for the task's kill (then it signals us).
pub(crate) const KILL_FILE: &str = "kill";

/// The `PATH` tasks start with; their own environment may replace it.
const TASK_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// `task.json`: the launch and the cgroups the agent prepared for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TaskFile {
    #[serde(flatten)]
    pub launch: TaskLaunch,
    /// Cgroup directories the command joins; empty where the host offers none.
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
}

/// `pids.json`: the processes of a running task. Start times (clock ticks since `boot_id`'s boot)
/// tell a live process from a later one that was given the same pid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pids {
    pub supervisor_pid: i32,
    pub supervisor_start_ticks: u64,
    pub task_pid: i32,
    pub task_pgid: i32,
    pub task_start_ticks: u64,
    pub boot_id: String,
    pub started_at_ms: u64,
}

/// `exit.json`: how the command ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ExitRecord {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// A kill was requested (the supervisor got SIGTERM) before the command ended.
    pub killed: bool,
    /// The kernel's OOM killer acted in the task's memory cgroup.
    #[serde(default)]
    pub oom_killed: bool,
    /// The command could not be started; this says why.
    #[serde(default)]
    pub launch_error: Option<String>,
    pub finished_at_ms: u64,
}

pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<T> {
    serde_json::from_slice(&fs::read(path)?).map_err(io::Error::other)
}

/// Writes through a temporary file and a rename, so readers see the whole file or none of it.
pub(crate) fn write_json_atomically<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let temporary = path.with_extension("json.tmp");
    fs::write(
        &temporary,
        serde_json::to_vec(value).map_err(io::Error::other)?,
    )?;
    fs::rename(&temporary, path)
}

/// This process's start time, read once: every task of the group records it.
fn own_start_ticks() -> u64 {
    static START_TICKS: OnceLock<u64> = OnceLock::new();
    *START_TICKS.get_or_init(|| {
        host::process_stat(std::process::id() as i32).map_or(0, |stat| stat.start_ticks)
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// Supervises the tasks of `sandboxes` (each holds task.json and receives pids.json, exit.json,
/// stdout and stderr) until all have ended; the process's exit code. It is 0 whenever every task's
/// `exit.json` was written, even for commands that failed: the records, not this code, say how
/// the tasks ended.
pub(crate) fn run(sandboxes: &[PathBuf]) -> i32 {
    match supervise(sandboxes) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("stride supervisor: {e}");
            1
        }
    }
}

/// One task this supervisor started and has not yet recorded the end of.
struct Supervised {
    sandbox: PathBuf,
    task: TaskFile,
    pid: i32,
    start_ticks: u64,
    /// A kill was requested (the agent's `kill` file), so SIGTERM went to the group.
    killed: bool,
    /// When SIGKILL follows the SIGTERM, once the grace period is over.
    escalate_at: Option<Instant>,
}

fn supervise(sandboxes: &[PathBuf]) -> io::Result<()> {
    // SAFETY: setsid has no memory effects. It fails only if we already lead a process group,
    // in which case we are detached enough. Ignoring SIGPIPE keeps a vanished agent from
    // killing us through the start reports; commands get every signal's default back.
    unsafe {
        libc::setsid();
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let signals = SignalWaiter::block(&[libc::SIGTERM, libc::SIGINT, libc::SIGCHLD])?;
    let mut tasks = Vec::with_capacity(sandboxes.len());
    for sandbox in sandboxes {
        let report = match start(sandbox) {
            Some(supervised) => {
                let report = StartReport::Running {
                    pid: supervised.pid,
                    start_ticks: supervised.start_ticks,
                };
                tasks.push(supervised);
                report
            }
            None => StartReport::Failed,
        };
        if let Err(e) = report.send() {
            eprintln!("cannot tell the agent how a task started: {e}");
        }
    }
    close_stdout()?;
    // From here on the commands run: whatever fails, the supervisor must still end them and
    // record how they ended.
    while !tasks.is_empty() {
        let deadline = tasks.iter().filter_map(|task| task.escalate_at).min();
        let signal = signals.wait(deadline).unwrap_or_else(|e| {
            eprintln!("cannot wait for signals, killing the commands: {e}");
            for task in &mut tasks {
                task.killed = true;
                signal_group(task.pid, libc::SIGKILL);
            }
            Some(libc::SIGCHLD)
        });
        match signal {
            Some(libc::SIGCHLD) => {
                let (ended, running) = tasks.into_iter().partition(|task| has_exited(task.pid));
                tasks = running;
                ended.into_iter().for_each(finish);
            }
            Some(_) => {
                // The agent asks for kills by writing `kill` into sandboxes, then signalling.
                for task in tasks.iter_mut().filter(|task| !task.killed) {
                    if task.sandbox.join(KILL_FILE).exists() {
                        task.killed = true;
                        signal_group(task.pid, libc::SIGTERM);
                        // A grace period too long to represent never ends.
                        task.escalate_at = Instant::now().checked_add(task.task.launch.kill_grace);
                    }
                }
            }
            None => {
                let now = Instant::now();
                for task in &mut tasks {
                    if task.escalate_at.is_some_and(|at| at <= now) {
                        let container_killed = task
                            .task
                            .launch
                            .container
                            .as_ref()
                            .is_some_and(|runtime| container::kill_all(runtime).is_ok());
                        if !container_killed {
                            signal_group(task.pid, libc::SIGKILL);
                        }
                        host::kill_cgroup_processes(&task.task.cgroups, Duration::ZERO);
                        task.escalate_at = None;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Why a task could not start, and the cgroups and container to remove.
struct LaunchFailure {
    message: String,
    cgroups: Vec<PathBuf>,
    container: Option<Box<container::Runtime>>,
}

/// Starts the task of `sandbox`; a task that cannot start has its `exit.json` written already.
fn start(sandbox: &Path) -> Option<Supervised> {
    try_start(sandbox)
        .inspect_err(|failure| {
            for problem in failure
                .container
                .iter()
                .flat_map(|c| container::teardown(c))
            {
                note(sandbox, &problem);
            }
            record_launch_failure(sandbox, &failure.cgroups, &failure.message)
        })
        .ok()
}

fn try_start(sandbox: &Path) -> Result<Supervised, LaunchFailure> {
    let task: TaskFile = read_json(&sandbox.join(TASK_FILE)).map_err(|e| LaunchFailure {
        message: format!("Cannot read {TASK_FILE}: {e}"),
        cgroups: Vec::new(),
        container: None,
    })?;
    let failure = |message| LaunchFailure {
        message,
        cgroups: task.cgroups.clone(),
        container: task.launch.container.clone().map(Box::new),
    };
    let spawn = task_command(sandbox, &task)
        .map_err(|e| failure(format!("Cannot prepare the sandbox: {e}")))?;
    let pid = spawn.and_then(|spawn| spawn.spawn()).map_err(|e| {
        failure(format!(
            "Failed to launch command '{}': {e}",
            task.launch.command.value
        ))
    })?;
    // The unreaped child keeps its /proc entry even if it has exited already.
    let start_ticks = host::process_stat(pid).map_or(0, |stat| stat.start_ticks);
    let pids = Pids {
        supervisor_pid: std::process::id() as i32,
        supervisor_start_ticks: own_start_ticks(),
        task_pid: pid,
        // The command leads a process group of its own.
        task_pgid: pid,
        task_start_ticks: start_ticks,
        boot_id: host::boot_id().unwrap_or_default(),
        started_at_ms: now_ms(),
    };
    if let Err(e) = write_json_atomically(&sandbox.join(PIDS_FILE), &pids) {
        signal_group(pid, libc::SIGKILL);
        reap(pid);
        return Err(failure(format!("Cannot record the task's pids: {e}")));
    }
    Ok(Supervised {
        sandbox: sandbox.to_owned(),
        task,
        pid,
        start_ticks,
        killed: false,
        escalate_at: None,
    })
}

/// Records how an exited command ended, after ending whatever its group and cgroups still hold.
fn finish(task: Supervised) {
    // The command's group may still hold processes it started. Kill them while the unreaped
    // leader still pins the group id, so the signal cannot reach a group that reused the id.
    signal_group(task.pid, libc::SIGKILL);
    let (exit_code, signal) = reap(task.pid);
    // runc's container leads a session of its own, out of reach of the group's signal.
    if let Some(runtime) = &task.task.launch.container {
        for problem in container::teardown(runtime) {
            note(&task.sandbox, &problem);
        }
    }
    host::kill_cgroup_processes(&task.task.cgroups, host::CGROUP_EMPTYING_PATIENCE);
    let record = ExitRecord {
        exit_code,
        signal,
        killed: task.killed,
        oom_killed: host::cgroup_oom_killed(&task.task.cgroups),
        launch_error: None,
        finished_at_ms: now_ms(),
    };
    if let Err(e) = write_json_atomically(&task.sandbox.join(EXIT_FILE), &record) {
        note(
            &task.sandbox,
            &format!("cannot record how the task ended: {e}"),
        );
    }
    host::remove_cgroups(&task.task.cgroups);
}

/// Writes the supervisor's own message about a task to the task's `stderr`, as the Mesos command
/// executor does, and to the supervisor's stderr when that file cannot be written.
fn note(sandbox: &Path, message: &str) {
    use std::io::Write;
    let written = OpenOptions::new()
        .create(true)
        .append(true)
        .open(sandbox.join(STDERR_FILE))
        .and_then(|mut file| writeln!(file, "{message}"));
    if written.is_err() {
        eprintln!("{}: {message}", sandbox.display());
    }
}

/// What the supervisor tells the agent about each of its tasks, in the order of the request,
/// on its stdout: a fixed-size record per task, then the end of the pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartReport {
    /// The command runs as `pid`, started at `start_ticks`, and `pids.json` is written.
    Running { pid: i32, start_ticks: u64 },
    /// The command never ran; `exit.json` says why.
    Failed,
}

impl StartReport {
    /// A kind byte, the pid and the start time, little-endian.
    pub const SIZE: usize = 13;

    pub fn encode(self) -> [u8; Self::SIZE] {
        let (kind, pid, start_ticks) = match self {
            StartReport::Running { pid, start_ticks } => (b'R', pid, start_ticks),
            StartReport::Failed => (b'F', 0, 0),
        };
        let mut record = [0; Self::SIZE];
        record[0] = kind;
        record[1..5].copy_from_slice(&pid.to_le_bytes());
        record[5..].copy_from_slice(&start_ticks.to_le_bytes());
        record
    }

    pub fn decode(record: [u8; Self::SIZE]) -> Option<Self> {
        let pid = i32::from_le_bytes(record[1..5].try_into().ok()?);
        let start_ticks = u64::from_le_bytes(record[5..].try_into().ok()?);
        match record[0] {
            b'R' => Some(StartReport::Running { pid, start_ticks }),
            b'F' => Some(StartReport::Failed),
            _ => None,
        }
    }

    fn send(self) -> io::Result<()> {
        let record = self.encode();
        // SAFETY: write(2) reads `record`, which outlives the call. Records are far smaller than
        // PIPE_BUF, so each is written whole or not at all.
        if unsafe { libc::write(libc::STDOUT_FILENO, record.as_ptr().cast(), record.len()) }
            != record.len() as isize
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Writes the launch failure into `exit.json` and the task's `stderr`, and removes its cgroups.
fn record_launch_failure(sandbox: &Path, cgroups: &[PathBuf], message: &str) {
    note(sandbox, message);
    let record = ExitRecord {
        exit_code: None,
        signal: None,
        killed: false,
        oom_killed: false,
        launch_error: Some(message.to_owned()),
        finished_at_ms: now_ms(),
    };
    if let Err(e) = write_json_atomically(&sandbox.join(EXIT_FILE), &record) {
        note(sandbox, &format!("cannot record the launch failure: {e}"));
    }
    host::remove_cgroups(cgroups);
}

/// Points stdout at /dev/null: the end of the start reports for the agent, which reads the
/// other end of the pipe.
fn close_stdout() -> io::Result<()> {
    let null = File::open("/dev/null")?;
    // SAFETY: dup2 only replaces descriptor 1; `null` stays open until after the call.
    if unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Prepares the command: clean environment, output into the sandbox, and the task's cgroups,
/// joined between clone and exec so that not even its first instruction runs outside them. The
/// outer error is the sandbox's; the inner one means the command cannot be started.
fn task_command(sandbox: &Path, task: &TaskFile) -> io::Result<io::Result<Spawn>> {
    let launch = &task.launch;
    let spec = &launch.command;
    let path = task_path(launch);
    let container_argv = launch.container.as_ref().map(|runtime| runtime.run_argv());
    let (program, argv): (PathBuf, Vec<&OsStr>) = if let Some(runtime) = &launch.container {
        let argv = container_argv.iter().flatten().map(OsStr::new).collect();
        (runtime.runc.clone(), argv)
    } else if spec.shell {
        match plain_command(&spec.value, sandbox, &path) {
            Some((executable, words)) => (executable, words.into_iter().map(OsStr::new).collect()),
            None => (
                PathBuf::from("/bin/sh"),
                vec![OsStr::new("sh"), OsStr::new("-c"), OsStr::new(&spec.value)],
            ),
        }
    } else {
        let argv = match spec.arguments.as_slice() {
            [] => vec![OsStr::new(&spec.value)],
            arguments => arguments.iter().map(OsStr::new).collect(),
        };
        match find_program(&spec.value, sandbox, &path) {
            Some(program) => (program, argv),
            None => return Ok(Err(io::Error::from(io::ErrorKind::NotFound))),
        }
    };
    let append = |name: &str| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(sandbox.join(name))
    };
    let streams = [
        File::open("/dev/null")?,
        append(STDOUT_FILE)?,
        append(STDERR_FILE)?,
    ];
    let cgroup_procs: Vec<File> = task
        .cgroups
        .iter()
        .filter_map(|dir| {
            let procs = dir.join("cgroup.procs");
            OpenOptions::new()
                .write(true)
                .open(&procs)
                .inspect_err(|e| eprintln!("running without {}: {e}", procs.display()))
                .ok()
        })
        .collect();
    let defaults = [
        (OsStr::new("PATH"), OsStr::new(TASK_PATH)),
        (OsStr::new("HOME"), sandbox.as_os_str()),
        (OsStr::new("TMPDIR"), sandbox.as_os_str()),
        (OsStr::new("MESOS_SANDBOX"), sandbox.as_os_str()),
    ];
    // A container's environment is in its bundle; runc itself gets only the defaults.
    let own = launch
        .env
        .iter()
        .filter(|_| launch.container.is_none())
        .map(|(name, value)| (OsStr::new(name), OsStr::new(value)));
    let env = environment(defaults.into_iter().chain(own));
    Ok(Spawn::new(
        &program,
        &argv,
        &env,
        sandbox,
        streams,
        cgroup_procs,
    ))
}

/// The environment from `pairs` in order, a later value replacing an earlier one of the same
/// name in its place.
fn environment<'a>(
    pairs: impl Iterator<Item = (&'a OsStr, &'a OsStr)>,
) -> Vec<(&'a OsStr, &'a OsStr)> {
    let mut env: Vec<(&OsStr, &OsStr)> = Vec::new();
    for (name, value) in pairs {
        match env.iter_mut().find(|(existing, _)| *existing == name) {
            Some(entry) => entry.1 = value,
            None => env.push((name, value)),
        }
    }
    env
}

/// Where `program` is, as `execvp` would look for it: a name with a slash is a path (relative to
/// the sandbox, the command's working directory), anything else is searched on `path`.
fn find_program(program: &str, sandbox: &Path, path: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') {
        return Some(sandbox.join(program));
    }
    path.split(':')
        .map(|dir| {
            sandbox
                .join(if dir.is_empty() { "." } else { dir })
                .join(program)
        })
        .find(|candidate| {
            fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// The `PATH` the command will see.
fn task_path(launch: &TaskLaunch) -> String {
    launch
        .env
        .iter()
        .rev()
        .find(|(name, _)| name == "PATH")
        .map_or_else(|| TASK_PATH.to_owned(), |(_, value)| value.clone())
}

/// A shell command line that is nothing but words (no quotes, expansions, globs, redirections,
/// comments or operators) whose first word names a program means the same when that program is
/// executed directly, as `bash -c` does too: the task then is the program itself, one process
/// and one exec less, and signals reach it without a shell in between. The program and the
/// words, or `None` for anything the shell has to interpret.
fn plain_command<'a>(line: &'a str, sandbox: &Path, path: &str) -> Option<(PathBuf, Vec<&'a str>)> {
    let words = plain_words(line)?;
    let program = words[0];
    let executable = if program.contains('/') {
        Some(sandbox.join(program)).filter(|candidate| is_program(candidate))
    } else {
        let directories: Vec<&str> = path.split(':').collect();
        // An empty or relative entry means a directory the shell resolves against its own
        // working directory, at its own moment: leave those lookups to the shell.
        if directories.iter().any(|dir| !dir.starts_with('/')) {
            return None;
        }
        directories
            .iter()
            .map(|dir| Path::new(dir).join(program))
            .find(|candidate| is_program(candidate))
    }?;
    Some((executable, words))
}

/// The words of `line` if the shell would take it literally, split as the shell would.
fn plain_words(line: &str) -> Option<Vec<&str>> {
    let literal = |c: char| c.is_ascii_alphanumeric() || "-_./:,+@%=".contains(c);
    if !line.chars().all(|c| literal(c) || c == ' ' || c == '\t') {
        return None;
    }
    let words: Vec<&str> = line.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
    // `NAME=value` first would be an assignment.
    words.first().filter(|program| !program.contains('='))?;
    Some(words)
}

/// An executable file the kernel runs by itself: a binary or a script with `#!`. The shell also
/// runs scripts without `#!`, so those stay with it.
fn is_program(path: &Path) -> bool {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let executable = fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0);
    let mut magic = [0u8; 4];
    executable
        && File::open(path)
            .and_then(|mut file| file.read_exact(&mut magic))
            .is_ok_and(|()| magic == *b"\x7fELF" || magic.starts_with(b"#!"))
}

fn signal_group(pgid: i32, signal: c_int) {
    // SAFETY: kill(2) has no memory effects; a negative pid addresses the process group.
    unsafe { libc::kill(-pgid, signal) };
}

/// Whether our child `pid` has exited, leaving it unreaped (WNOWAIT) so its pid and process group
/// id stay reserved.
fn has_exited(pid: i32) -> bool {
    // SAFETY: siginfo_t is plain data for which all zeroes is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: waitid only writes into `info`, which we own.
    if unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) } != 0 {
        // ECHILD: the child is gone already; there is nothing left to wait for.
        return true;
    }
    // SAFETY: after a successful waitid the kernel filled the SIGCHLD fields, si_pid among them
    // (still zero when no child changed state).
    unsafe { info.si_pid() == pid }
}

/// Reaps our exited child: its exit code, or the signal that ended it.
fn reap(pid: i32) -> (Option<i32>, Option<i32>) {
    let mut status = 0;
    loop {
        // SAFETY: waitpid only writes `status`, which we own.
        let reaped = unsafe { libc::waitpid(pid, &mut status, 0) };
        if reaped == pid {
            break;
        }
        if reaped < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return (None, None);
    }
    if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    }
}

/// Signals taken synchronously: blocked, then waited for with `sigtimedwait`.
struct SignalWaiter {
    set: libc::sigset_t,
}

impl SignalWaiter {
    /// Blocks `signals` for this (only) thread, first resetting their handling to the default: a
    /// signal ignored by whoever started us would otherwise stay ignored in the command.
    fn block(signals: &[c_int]) -> io::Result<Self> {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it before use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: these calls only touch `set` and this process's signal dispositions and this
        // thread's signal mask; the supervisor has no other threads and installs no handlers.
        unsafe {
            libc::sigemptyset(&mut set);
            for &signal in signals {
                libc::signal(signal, libc::SIG_DFL);
                libc::sigaddset(&mut set, signal);
            }
            let result = libc::pthread_sigmask(libc::SIG_BLOCK, &set, ptr::null_mut());
            if result != 0 {
                return Err(io::Error::from_raw_os_error(result));
            }
        }
        Ok(Self { set })
    }

    /// The next blocked signal, or `None` once `deadline` passes (never, without a deadline).
    fn wait(&self, deadline: Option<Instant>) -> io::Result<Option<c_int>> {
        loop {
            let timeout = deadline.map(|deadline| {
                let left = deadline.saturating_duration_since(Instant::now());
                libc::timespec {
                    tv_sec: left.as_secs() as libc::time_t,
                    tv_nsec: left.subsec_nanos().into(),
                }
            });
            let timeout_ptr = timeout.as_ref().map_or(ptr::null(), ptr::from_ref);
            // SAFETY: `self.set` is an initialised signal set and `timeout_ptr` is null or points
            // to `timeout`, which outlives the call; no siginfo is requested.
            let signal = unsafe { libc::sigtimedwait(&self.set, ptr::null_mut(), timeout_ptr) };
            if signal >= 0 {
                return Ok(Some(signal));
            }
            let error = io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(None),
                Some(libc::EINTR) => continue,
                _ => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    #[test]
    fn plain_command_lines_run_without_a_shell() {
        let sandbox = Path::new("/nonexistent-sandbox");
        let (program, words) = plain_command("sleep  3600", sandbox, TASK_PATH).unwrap();
        assert!(program.ends_with("sleep"), "{}", program.display());
        assert_eq!(words, ["sleep", "3600"]);
        let (program, _) = plain_command("/bin/sh -x", sandbox, "/nowhere").unwrap();
        assert_eq!(program, Path::new("/bin/sh"));

        for shell_work in [
            "sleep $PORT0",
            "sleep 1; sleep 2",
            "echo 'hi'",
            "ls *",
            "cat < x",
            "echo ~",
            "exit 3",
            "X=1 sleep 5",
            "no-such-program-here 1",
            "sleep 1 # comment",
            "sleep 1\nsleep 2",
            "",
            "   ",
        ] {
            assert!(
                plain_command(shell_work, sandbox, TASK_PATH).is_none(),
                "{shell_work:?} needs the shell"
            );
        }
        assert!(
            plain_command("sleep 1", sandbox, ":/usr/bin").is_none(),
            "a relative PATH entry is left to the shell"
        );
    }

    proptest! {
        #[test]
        fn a_line_with_shell_syntax_is_never_plain(
            before in "[a-z ]{0,8}",
            special in prop::sample::select(vec![
                '$', '`', '\'', '"', '\\', ';', '&', '|', '<', '>', '(', ')', '*', '?', '[',
                ']', '{', '}', '~', '#', '!', '\n',
            ]),
            after in "[a-z ]{0,8}",
        ) {
            let line = format!("{before}{special}{after}");
            prop_assert!(plain_words(&line).is_none());
        }

        #[test]
        fn plain_words_split_like_the_shell(words in prop::collection::vec("[a-z0-9./:@%+,_-]{1,6}", 1..5)) {
            let line = words.join("  ");
            prop_assert_eq!(plain_words(&line), Some(words.iter().map(String::as_str).collect()));
        }
    }

    #[test]
    fn signal_wait_times_out_without_signals() {
        let signals = SignalWaiter::block(&[libc::SIGUSR2]).unwrap();
        let started = Instant::now();
        let deadline = Some(started + Duration::from_millis(50));
        assert_eq!(signals.wait(deadline).unwrap(), None);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
