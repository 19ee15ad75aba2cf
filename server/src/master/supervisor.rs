//! The supervisor: the small per-task process, like Mesos' command executor, that the built-in
//! agent has the [`zygote`](super::zygote) fork, detached (own session) so that the task outlives
//! a crash or restart of `stride`, and that records how the task ended.
//!
//! It also defines the files through which the agent and the supervisor talk, all in the sandbox:
//! - `task.json` ([`TaskFile`], written by the agent): what to run, its limits and cgroups;
//! - `pids.json` ([`Pids`]): written once the command runs; the supervisor then writes
//!   [`RUNNING_BYTE`] to its stdout and closes it, which tells the agent (holding the other end
//!   of that pipe) that the task is running;
//! - `exit.json` ([`ExitRecord`]): how the command ended, written before the supervisor exits;
//! - `stdout`, `stderr`: the command's output; the supervisor's own complaints go to `stderr`
//!   too, as the Mesos command executor's do.
//!
//! Every file is an inode to allocate, which on some file systems (ext4 without a journal) costs
//! more than the fork: the sandbox holds only these, and `TMPDIR` is the sandbox itself.
//!
//! The supervisor is plain std and libc and single-threaded: it blocks SIGTERM, SIGINT and SIGCHLD
//! and takes them one at a time with `sigtimedwait`, whose timeout is the kill grace period. So
//! there are no signal handlers, and no async runtime to start.

use super::agent::TaskLaunch;
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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(crate) const TASK_FILE: &str = "task.json";
pub(crate) const PIDS_FILE: &str = "pids.json";
pub(crate) const EXIT_FILE: &str = "exit.json";
pub(crate) const STDOUT_FILE: &str = "stdout";
pub(crate) const STDERR_FILE: &str = "stderr";
/// What the supervisor writes to its stdout once the command runs.
pub(crate) const RUNNING_BYTE: &[u8; 1] = b"R";

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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// Supervises the task of `sandbox` (which holds task.json and receives pids.json, exit.json,
/// stdout and stderr); the process's exit code. It is 0 whenever `exit.json` was written, even
/// for a command that failed: the record, not this code, says how the task ended.
pub(crate) fn run(sandbox: &Path) -> i32 {
    match supervise(sandbox) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("stride supervisor: {e}");
            1
        }
    }
}

fn supervise(sandbox: &Path) -> io::Result<()> {
    // SAFETY: setsid has no memory effects. It fails only if we already lead a process group,
    // in which case we are detached enough.
    unsafe { libc::setsid() };
    let signals = SignalWaiter::block(&[libc::SIGTERM, libc::SIGINT, libc::SIGCHLD])?;

    let task: TaskFile = match read_json(&sandbox.join(TASK_FILE)) {
        Ok(task) => task,
        Err(e) => {
            return record_launch_failure(sandbox, &[], format!("Cannot read {TASK_FILE}: {e}"))
        }
    };
    let spawn = match task_command(sandbox, &task) {
        Ok(spawn) => spawn,
        Err(e) => {
            let message = format!("Cannot prepare the sandbox: {e}");
            return record_launch_failure(sandbox, &task.cgroups, message);
        }
    };
    let task_pid = match spawn.and_then(|spawn| spawn.spawn()) {
        Ok(pid) => pid,
        Err(e) => {
            let message = format!(
                "Failed to launch command '{}': {e}",
                task.launch.command.value
            );
            return record_launch_failure(sandbox, &task.cgroups, message);
        }
    };
    // The command leads a process group of its own.
    let task_pgid = task_pid;

    let pids = Pids {
        supervisor_pid: std::process::id() as i32,
        supervisor_start_ticks: host::process_stat(std::process::id() as i32)
            .map_or(0, |stat| stat.start_ticks),
        task_pid,
        task_pgid,
        // The unreaped child keeps its /proc entry even if it has exited already.
        task_start_ticks: host::process_stat(task_pid).map_or(0, |stat| stat.start_ticks),
        boot_id: host::boot_id().unwrap_or_default(),
        started_at_ms: now_ms(),
    };
    if let Err(e) = write_json_atomically(&sandbox.join(PIDS_FILE), &pids) {
        signal_group(task_pgid, libc::SIGKILL);
        reap(task_pid);
        let message = format!("Cannot record the task's pids: {e}");
        return record_launch_failure(sandbox, &task.cgroups, message);
    }
    // From here on the command runs: whatever fails, the supervisor must still end it and
    // record how it ended.
    if let Err(e) = report_running() {
        eprintln!("cannot tell the agent that the task runs: {e}");
    }
    let killed = wait_for_exit(&signals, task_pid, task_pgid, &task).unwrap_or_else(|e| {
        eprintln!("cannot wait for signals, killing the command: {e}");
        false
    });
    // The command's group may still hold processes it started. Kill them while the unreaped
    // leader still pins the group id, so the signal cannot reach a group that reused the id.
    signal_group(task_pgid, libc::SIGKILL);
    let (exit_code, signal) = reap(task_pid);
    host::kill_cgroup_processes(&task.cgroups, host::CGROUP_EMPTYING_PATIENCE);
    let record = ExitRecord {
        exit_code,
        signal,
        killed,
        oom_killed: host::cgroup_oom_killed(&task.cgroups),
        launch_error: None,
        finished_at_ms: now_ms(),
    };
    let written = write_json_atomically(&sandbox.join(EXIT_FILE), &record);
    host::remove_cgroups(&task.cgroups);
    written
}

/// Prepares the command: clean environment, output into the sandbox, and the task's cgroups,
/// joined between clone and exec so that not even its first instruction runs outside them. The
/// outer error is the sandbox's; the inner one means the command cannot be started.
fn task_command(sandbox: &Path, task: &TaskFile) -> io::Result<io::Result<Spawn>> {
    let launch = &task.launch;
    let spec = &launch.command;
    let path = task_path(launch);
    let (program, argv): (PathBuf, Vec<&OsStr>) = if spec.shell {
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
    let own = launch
        .env
        .iter()
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

/// Waits until the command exits, handling kill requests (SIGTERM to the group, then SIGKILL
/// once the grace period is over); whether a kill was requested.
fn wait_for_exit(
    signals: &SignalWaiter,
    task_pid: i32,
    task_pgid: i32,
    task: &TaskFile,
) -> io::Result<bool> {
    let mut killed = false;
    let mut escalate_at: Option<Instant> = None;
    loop {
        match signals.wait(escalate_at)? {
            Some(libc::SIGCHLD) => {
                if has_exited(task_pid) {
                    return Ok(killed);
                }
            }
            Some(_) => {
                if !killed {
                    killed = true;
                    signal_group(task_pgid, libc::SIGTERM);
                    // A grace period too long to represent never ends.
                    escalate_at = Instant::now().checked_add(task.launch.kill_grace);
                }
            }
            None => {
                signal_group(task_pgid, libc::SIGKILL);
                host::kill_cgroup_processes(&task.cgroups, Duration::ZERO);
                escalate_at = None;
            }
        }
    }
}

fn record_launch_failure(sandbox: &Path, cgroups: &[PathBuf], message: String) -> io::Result<()> {
    eprintln!("{message}");
    let record = ExitRecord {
        exit_code: None,
        signal: None,
        killed: false,
        oom_killed: false,
        launch_error: Some(message),
        finished_at_ms: now_ms(),
    };
    let written = write_json_atomically(&sandbox.join(EXIT_FILE), &record);
    host::remove_cgroups(cgroups);
    written
}

/// Tells the agent, which reads our stdout pipe until it closes, that the command runs and
/// `pids.json` is written: one byte, then stdout points at /dev/null. A pipe closed without that
/// byte means the command never started.
fn report_running() -> io::Result<()> {
    // SAFETY: write(2) reads one byte of a static buffer.
    if unsafe { libc::write(libc::STDOUT_FILENO, RUNNING_BYTE.as_ptr().cast(), 1) } != 1 {
        return Err(io::Error::last_os_error());
    }
    let null = File::open("/dev/null")?;
    // SAFETY: dup2 only replaces descriptor 1; `null` stays open until after the call.
    if unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
