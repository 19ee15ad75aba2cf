//! Starting a task's command from its supervisor the way `posix_spawn` does: a child that shares
//! the supervisor's memory (`CLONE_VM | CLONE_VFORK`) and runs on a stack of its own until it
//! executes the command. Unlike a `fork`, nothing of the supervisor's address space is copied and
//! then thrown away by the exec, which matters when a thousand tasks start at once.
//!
//! `posix_spawn` itself cannot do what the task needs between the clone and the exec (join the
//! task's cgroups), so this does the same with those steps added. Everything the child touches is
//! prepared beforehand; the child only makes system calls: no allocation, no locks, no unwinding.

use std::ffi::{c_char, c_int, c_void, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicI32, Ordering};

/// The child's stack: enough for a handful of system calls, as glibc's `posix_spawn` allows.
const CHILD_STACK_BYTES: usize = 64 * 1024;

/// A command ready to start: its program, argv and whole environment, working directory,
/// standard streams, and the `cgroup.procs` files the child writes itself into before the exec.
pub(crate) struct Spawn {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    dir: CString,
    stdin: File,
    stdout: File,
    stderr: File,
    cgroup_procs: Vec<File>,
}

/// What the child reads: raw views of a [`Spawn`], and where it reports a failure.
struct ChildPlan {
    program: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    dir: *const c_char,
    streams: [RawFd; 3],
    cgroup_procs: *const RawFd,
    cgroup_count: usize,
    /// The errno of the step that failed, or 0 while the exec has not failed.
    error: AtomicI32,
}

impl Spawn {
    pub fn new(
        program: &Path,
        argv: &[&OsStr],
        env: &[(&OsStr, &OsStr)],
        dir: &Path,
        [stdin, stdout, stderr]: [File; 3],
        cgroup_procs: Vec<File>,
    ) -> io::Result<Self> {
        let env = env.iter().map(|(name, value)| {
            let mut pair = name.as_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(value.as_bytes());
            CString::new(pair)
        });
        Ok(Self {
            program: c_string(program.as_os_str())?,
            argv: argv
                .iter()
                .map(|arg| c_string(arg))
                .collect::<io::Result<_>>()?,
            envp: env.collect::<Result<_, _>>()?,
            dir: c_string(dir.as_os_str())?,
            stdin,
            stdout,
            stderr,
            cgroup_procs,
        })
    }

    /// Starts the command as the leader of a new process group, with no blocked signals and
    /// every signal's default action; its pid. Returns once the command runs, or with the error
    /// that kept it from running (the failed child is reaped).
    pub fn spawn(&self) -> io::Result<i32> {
        let argv = null_terminated(&self.argv);
        let envp = null_terminated(&self.envp);
        let cgroup_procs: Vec<RawFd> = self.cgroup_procs.iter().map(AsRawFd::as_raw_fd).collect();
        let plan = ChildPlan {
            program: self.program.as_ptr(),
            argv: argv.as_ptr(),
            envp: envp.as_ptr(),
            dir: self.dir.as_ptr(),
            streams: [
                self.stdin.as_raw_fd(),
                self.stdout.as_raw_fd(),
                self.stderr.as_raw_fd(),
            ],
            cgroup_procs: cgroup_procs.as_ptr(),
            cgroup_count: cgroup_procs.len(),
            error: AtomicI32::new(0),
        };
        let mut stack = vec![0u128; CHILD_STACK_BYTES / size_of::<u128>()];
        // SAFETY: the stack grows down from one past its end, which stays 16-byte aligned.
        let stack_top = unsafe { stack.as_mut_ptr().add(stack.len()) }.cast::<c_void>();
        // SAFETY: with CLONE_VFORK this thread is suspended until the child has executed the
        // command or exited, so `plan`, the vectors it points into and `stack` outlive every use
        // by the child. The child only makes async-signal-safe system calls (see `exec_child`).
        // Without CLONE_FILES and CLONE_SIGHAND its descriptor table and signal actions are its
        // own, so its dup2 and sigaction calls leave the supervisor's untouched.
        let pid = unsafe {
            libc::clone(
                exec_child,
                stack_top,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                ptr::from_ref(&plan).cast_mut().cast(),
            )
        };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        match plan.error.load(Ordering::Acquire) {
            0 => Ok(pid),
            errno => {
                let mut status = 0;
                // SAFETY: waitpid only writes `status`; the child exited already.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                Err(io::Error::from_raw_os_error(errno))
            }
        }
    }
}

/// The child: cgroups, process group, signals, streams, directory, then the command.
extern "C" fn exec_child(plan: *mut c_void) -> c_int {
    // SAFETY: `plan` is the ChildPlan that `spawn` keeps alive while this child runs, and each
    // call below is an async-signal-safe system call on values prepared by the parent.
    unsafe {
        let plan = &*plan.cast::<ChildPlan>();
        let fail = |plan: &ChildPlan| -> c_int {
            plan.error
                .store(*libc::__errno_location(), Ordering::Release);
            libc::_exit(127)
        };
        // Writing "0" to cgroup.procs moves the writing process, so the command starts inside
        // its limits. A failed write leaves it unlimited rather than failing the launch.
        for index in 0..plan.cgroup_count {
            libc::write(*plan.cgroup_procs.add(index), b"0".as_ptr().cast(), 1);
        }
        if libc::setpgid(0, 0) != 0 {
            return fail(plan);
        }
        for (target, &fd) in plan.streams.iter().enumerate() {
            if libc::dup2(fd, target as c_int) < 0 {
                return fail(plan);
            }
        }
        if libc::chdir(plan.dir) != 0 {
            return fail(plan);
        }
        reset_signals();
        libc::execve(plan.program, plan.argv, plan.envp);
        fail(plan)
    }
}

/// No blocked signals and every action back to default, whatever the supervisor blocked or
/// whoever started Stride ignored (both survive exec).
///
/// # Safety
/// Only calls sigprocmask and sigaction, which are async-signal-safe; in a vfork-style child
/// the caller must not share signal actions with its parent (no CLONE_SIGHAND).
unsafe fn reset_signals() {
    // SAFETY: sigset_t and sigaction are plain data for which all zeroes is valid; the calls
    // only read them.
    unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        for signal in 1..libc::SIGRTMIN() {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::sigaction(signal, &default, ptr::null_mut());
            }
        }
        let mut nothing: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut nothing);
        libc::sigprocmask(libc::SIG_SETMASK, &nothing, ptr::null_mut());
    }
}

fn c_string(text: &OsStr) -> io::Result<CString> {
    CString::new(text.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} contains a NUL byte", text.to_string_lossy()),
        )
    })
}

fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(ptr::null()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn streams(dir: &Path) -> [File; 3] {
        let out = |name: &str| File::create(dir.join(name)).unwrap();
        [File::open("/dev/null").unwrap(), out("out"), out("err")]
    }

    fn wait(pid: i32) -> i32 {
        let mut status = 0;
        // SAFETY: waitpid only writes `status`.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        libc::WEXITSTATUS(status)
    }

    #[test]
    fn the_command_gets_exactly_its_argv_environment_directory_and_streams() {
        let dir = tempfile::tempdir().unwrap();
        let spawn = Spawn::new(
            Path::new("/bin/sh"),
            &[
                OsStr::new("task-shell"),
                OsStr::new("-c"),
                OsStr::new("echo \"$0 $ONLY $(pwd) $(env | wc -l)\"; echo oops >&2; exit 3"),
            ],
            &[(OsStr::new("ONLY"), OsStr::new("this"))],
            dir.path(),
            streams(dir.path()),
            Vec::new(),
        )
        .unwrap();
        let pid = spawn.spawn().unwrap();
        assert_eq!(wait(pid), 3);
        let out = fs::read_to_string(dir.path().join("out")).unwrap();
        // sh adds PWD, SHLVL and `_` of its own.
        let expected_dir = dir.path().canonicalize().unwrap();
        assert!(
            out.starts_with(&format!("task-shell this {}", expected_dir.display())),
            "{out}"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("err")).unwrap(),
            "oops\n"
        );
    }

    #[test]
    fn the_command_leads_its_own_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let spawn = Spawn::new(
            Path::new("/bin/sh"),
            &[
                OsStr::new("sh"),
                OsStr::new("-c"),
                OsStr::new("ps -o pgid= -p $$"),
            ],
            &[(OsStr::new("PATH"), OsStr::new("/usr/bin:/bin"))],
            dir.path(),
            streams(dir.path()),
            Vec::new(),
        )
        .unwrap();
        let pid = spawn.spawn().unwrap();
        assert_eq!(wait(pid), 0);
        let pgid: i32 = fs::read_to_string(dir.path().join("out"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(pgid, pid);
    }

    #[test]
    fn a_program_that_cannot_run_is_an_error_not_a_child() {
        let dir = tempfile::tempdir().unwrap();
        let spawn = Spawn::new(
            &dir.path().join("missing"),
            &[OsStr::new("missing")],
            &[],
            dir.path(),
            streams(dir.path()),
            Vec::new(),
        )
        .unwrap();
        let error = spawn.spawn().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
