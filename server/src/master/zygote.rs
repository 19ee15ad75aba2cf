//! `stride zygote`: a small single-threaded process that the built-in agent starts once and asks
//! to fork a [`supervisor`](super::supervisor) for each group of tasks.
//!
//! Why: exec'ing the 32 MB `stride` binary costs about 2.3 ms per task on the reference machine
//! (dynamic relocation and start-up), more than the task's own `fork`+`exec`. A fork of a process
//! that is already running, small and single-threaded costs a fraction of that, and the forked
//! child may then do anything (allocate, read files, spawn the command) because no other thread
//! can have held a lock at the fork. `stride` itself cannot fork supervisors: it is multi-threaded.
//!
//! # Protocol
//! A `SOCK_SEQPACKET` socket pair; the zygote's end is its stdin.
//! - Request: the sandbox paths of a group of tasks (bytes, separated by NUL), with one
//!   descriptor attached: the write end of the
//!   readiness pipe, which becomes the supervisor's stdout.
//! - Reply: JSON [`ForkReply`], with the supervisor's pidfd attached when the kernel has pidfds.
//!   The zygote opens it before it can reap the child, so it names the supervisor for certain.
//!
//! The zygote reaps its exited children (SIGCHLD through a signalfd) and exits when the agent's
//! end of the socket closes; supervisors still running then are re-parented and live on.

use super::host;
use super::supervisor;
use serde::{Deserialize, Serialize};
use std::ffi::{c_int, OsStr};
use std::fs::File;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::ptr;
use std::sync::{Mutex, PoisonError};
use tracing::warn;

/// Longest request or reply: a group's sandbox paths, or a short JSON reply.
const MAX_MESSAGE: usize = 64 * 1024;
/// The process name supervisors show in `ps` and `top` (at most 15 bytes).
const SUPERVISOR_NAME: &[u8] = b"stride-supervis\0";

/// The zygote's answer to one fork request.
#[derive(Debug, Serialize, Deserialize)]
enum ForkReply {
    Forked { pid: i32, start_ticks: u64 },
    Failed(String),
}

/// A supervisor the zygote forked.
pub(crate) struct Forked {
    pub pid: i32,
    pub start_ticks: u64,
    /// `None` where the kernel has no pidfds.
    pub pidfd: Option<OwnedFd>,
}

/// The agent's handle on its zygote, started on first use and again if it dies.
pub(crate) struct Zygote {
    exe: PathBuf,
    connection: Mutex<Option<Connection>>,
}

struct Connection {
    socket: OwnedFd,
    process: Child,
}

impl Zygote {
    /// `exe` is the `stride` binary, run as `stride zygote`.
    pub fn new(exe: PathBuf) -> Self {
        Self {
            exe,
            connection: Mutex::new(None),
        }
    }

    /// Forks a supervisor for the tasks of `sandboxes` whose stdout is `readiness`. Blocks for the
    /// round trip;
    /// one request at a time.
    pub fn fork_supervisor(&self, sandboxes: &[PathBuf], readiness: OwnedFd) -> io::Result<Forked> {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut restarted = false;
        loop {
            let live = match connection.as_mut() {
                Some(live) => live,
                None => connection.insert(Connection::start(&self.exe)?),
            };
            match live.request(sandboxes, &readiness) {
                Ok(forked) => return forked,
                Err(e) if !restarted => {
                    warn!("the task zygote stopped answering ({e}); starting a new one");
                    *connection = None;
                    restarted = true;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Connection {
    fn start(exe: &Path) -> io::Result<Self> {
        let (ours, theirs) = seqpacket_pair()?;
        let process = Command::new(exe)
            .arg("zygote")
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .spawn()?;
        Ok(Self {
            socket: ours,
            process,
        })
    }

    /// The outer result is the transport (a dead zygote), the inner one the fork.
    fn request(
        &self,
        sandboxes: &[PathBuf],
        readiness: &OwnedFd,
    ) -> io::Result<io::Result<Forked>> {
        let paths: Vec<&[u8]> = sandboxes
            .iter()
            .map(|sandbox| sandbox.as_os_str().as_bytes())
            .collect();
        send_message(&self.socket, &paths.join(&0), &[readiness.as_raw_fd()])?;
        let mut buffer = vec![0; MAX_MESSAGE];
        let (length, mut descriptors) = receive_message(&self.socket, &mut buffer)?;
        if length == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        let reply: ForkReply = serde_json::from_slice(&buffer[..length])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(match reply {
            ForkReply::Forked { pid, start_ticks } => Ok(Forked {
                pid,
                start_ticks,
                pidfd: descriptors.pop(),
            }),
            ForkReply::Failed(message) => Err(io::Error::other(message)),
        })
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Killing the zygote leaves its supervisors alone: each leads its own session.
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Runs the `zygote` subcommand until the agent goes away; the process's exit code.
pub fn run() -> i32 {
    match serve() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("stride zygote: {e}");
            1
        }
    }
}

fn serve() -> io::Result<()> {
    // SAFETY: stdin is the socket the agent handed us, and nothing else in this process owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(libc::STDIN_FILENO) };
    let child_exits = ChildExits::watch()?;
    // Cached, and inherited by every supervisor forked from here.
    let _ = host::boot_id();
    let mut buffer = vec![0; MAX_MESSAGE];
    loop {
        let mut watched = [
            libc::pollfd {
                fd: socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: child_exits.signalfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `watched` is a valid array of two pollfds that outlives the call.
        if unsafe { libc::poll(watched.as_mut_ptr(), 2, -1) } < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        if watched[1].revents != 0 {
            child_exits.reap();
        }
        if watched[0].revents != 0 {
            let (length, descriptors) = receive_message(&socket, &mut buffer)?;
            if length == 0 {
                return Ok(());
            }
            let sandboxes: Vec<PathBuf> = buffer[..length]
                .split(|&byte| byte == 0)
                .map(|path| PathBuf::from(OsStr::from_bytes(path)))
                .collect();
            let (reply, pidfd) = fork_supervisor(&sandboxes, descriptors, &child_exits);
            let encoded = serde_json::to_vec(&reply).map_err(io::Error::other)?;
            let attached: Vec<RawFd> = pidfd.iter().map(AsRawFd::as_raw_fd).collect();
            send_message(&socket, &encoded, &attached)?;
        }
    }
}

fn fork_supervisor(
    sandboxes: &[PathBuf],
    descriptors: Vec<OwnedFd>,
    child_exits: &ChildExits,
) -> (ForkReply, Option<OwnedFd>) {
    let Some(readiness) = descriptors.into_iter().next() else {
        return (ForkReply::Failed("no readiness pipe attached".into()), None);
    };
    // SAFETY: this process has a single thread, so the child starts in a consistent state.
    match unsafe { libc::fork() } {
        -1 => {
            let error = io::Error::last_os_error();
            (ForkReply::Failed(format!("fork failed: {error}")), None)
        }
        0 => {
            let code = become_supervisor(sandboxes, readiness, child_exits);
            std::process::exit(code)
        }
        pid => {
            drop(readiness);
            // The child cannot be reaped before we return to poll, so its pid is still its own.
            let start_ticks = host::process_stat(pid).map_or(0, |stat| stat.start_ticks);
            let reply = ForkReply::Forked { pid, start_ticks };
            (reply, host::pidfd_open(pid).ok())
        }
    }
}

/// In the forked child: gives up the zygote's descriptors, sets up stdin (`/dev/null`, which
/// also closes the zygote's socket there) and stdout (the pipe of start reports), and runs the
/// supervisor. Its stderr stays the zygote's, which is Stride's.
fn become_supervisor(sandboxes: &[PathBuf], readiness: OwnedFd, child_exits: &ChildExits) -> i32 {
    let redirected = File::open("/dev/null").and_then(|null| {
        redirect(&null, libc::STDIN_FILENO)?;
        redirect(&readiness, libc::STDOUT_FILENO)
    });
    // SAFETY: the signalfd belongs to the zygote, which this child no longer serves (its owner
    // is never dropped here: the child leaves through `exit`). PR_SET_NAME reads a
    // NUL-terminated name of at most 16 bytes.
    unsafe {
        libc::close(child_exits.signalfd.as_raw_fd());
        libc::prctl(libc::PR_SET_NAME, SUPERVISOR_NAME.as_ptr());
    }
    if let Err(e) = redirected {
        eprintln!("stride supervisor: cannot set up its standard streams: {e}");
        return 1;
    }
    drop(readiness);
    supervisor::run(sandboxes)
}

fn redirect(from: &impl AsRawFd, to: c_int) -> io::Result<()> {
    // SAFETY: dup2 only replaces descriptor `to`; `from` stays open during the call.
    if unsafe { libc::dup2(from.as_raw_fd(), to) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// SIGCHLD, blocked and delivered through a signalfd so that `poll` sees it.
struct ChildExits {
    signalfd: OwnedFd,
}

impl ChildExits {
    fn watch() -> io::Result<Self> {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset; the calls touch only it,
        // this single thread's signal mask, and a new descriptor we then own.
        unsafe {
            let mut set: libc::sigset_t = mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            let result = libc::pthread_sigmask(libc::SIG_BLOCK, &set, ptr::null_mut());
            if result != 0 {
                return Err(io::Error::from_raw_os_error(result));
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Self {
                signalfd: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    /// Drains the signalfd and reaps every exited child (signals of several exits may merge).
    fn reap(&self) {
        let mut info = [0u8; mem::size_of::<libc::signalfd_siginfo>()];
        // SAFETY: read(2) writes at most `info.len()` bytes into `info`, which we own.
        while unsafe {
            libc::read(
                self.signalfd.as_raw_fd(),
                info.as_mut_ptr().cast(),
                info.len(),
            )
        } > 0
        {}
        // SAFETY: waitpid with a null status pointer writes nothing; WNOHANG never blocks.
        while unsafe { libc::waitpid(-1, ptr::null_mut(), libc::WNOHANG) } > 0 {}
    }
}

fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into `fds`, which we then own.
    let result = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just created both descriptors for us.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Room for a control message carrying up to `count` descriptors.
fn control_space(count: usize) -> usize {
    // SAFETY: CMSG_SPACE is pure arithmetic.
    unsafe { libc::CMSG_SPACE((count * mem::size_of::<RawFd>()) as u32) as usize }
}

fn send_message(socket: &OwnedFd, bytes: &[u8], descriptors: &[RawFd]) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    let mut control = vec![0u8; control_space(descriptors.len().max(1))];
    // SAFETY: msghdr is plain data; every pointer set below points into buffers that outlive
    // sendmsg, the control buffer has room for the descriptors (CMSG_SPACE), and the CMSG
    // macros stay inside it.
    unsafe {
        let mut message: libc::msghdr = mem::zeroed();
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        if !descriptors.is_empty() {
            let data_length = mem::size_of_val(descriptors) as u32;
            message.msg_control = control.as_mut_ptr().cast();
            message.msg_controllen = libc::CMSG_SPACE(data_length) as _;
            let header = libc::CMSG_FIRSTHDR(&message);
            (*header).cmsg_level = libc::SOL_SOCKET;
            (*header).cmsg_type = libc::SCM_RIGHTS;
            (*header).cmsg_len = libc::CMSG_LEN(data_length) as _;
            ptr::copy_nonoverlapping(
                descriptors.as_ptr(),
                libc::CMSG_DATA(header).cast::<RawFd>(),
                descriptors.len(),
            );
        }
        loop {
            if libc::sendmsg(socket.as_raw_fd(), &message, libc::MSG_NOSIGNAL) >= 0 {
                return Ok(());
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }
}

/// Receives one message into `buffer`: its length (0 when the peer closed) and the descriptors
/// attached to it (close-on-exec).
fn receive_message(socket: &OwnedFd, buffer: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    const MAX_DESCRIPTORS: usize = 4;
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    let mut control = vec![0u8; control_space(MAX_DESCRIPTORS)];
    // SAFETY: as in send_message; the kernel writes at most msg_controllen control bytes, and
    // we read descriptors only from SCM_RIGHTS headers it filled in.
    unsafe {
        let mut message: libc::msghdr = mem::zeroed();
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = control.len() as _;
        let length = loop {
            let received = libc::recvmsg(socket.as_raw_fd(), &mut message, libc::MSG_CMSG_CLOEXEC);
            if received >= 0 {
                break received as usize;
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        };
        let mut descriptors = Vec::new();
        let mut header = libc::CMSG_FIRSTHDR(&message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(header).cast::<RawFd>();
                let bytes = (*header).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for index in 0..bytes / mem::size_of::<RawFd>() {
                    descriptors.push(OwnedFd::from_raw_fd(data.add(index).read_unaligned()));
                }
            }
            header = libc::CMSG_NXTHDR(&message, header);
        }
        if message.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message or its descriptors truncated",
            ));
        }
        Ok((length, descriptors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_bytes_and_descriptors() {
        let (left, right) = seqpacket_pair().unwrap();
        let file = File::open("/dev/null").unwrap();
        send_message(&left, b"/some/sandbox", &[file.as_raw_fd()]).unwrap();
        let mut buffer = vec![0; MAX_MESSAGE];
        let (length, descriptors) = receive_message(&right, &mut buffer).unwrap();
        assert_eq!(&buffer[..length], b"/some/sandbox");
        assert_eq!(descriptors.len(), 1);
        assert_ne!(descriptors[0].as_raw_fd(), file.as_raw_fd());

        send_message(&left, b"{}", &[]).unwrap();
        let (length, descriptors) = receive_message(&right, &mut buffer).unwrap();
        assert_eq!((length, descriptors.len()), (2, 0));

        drop(left);
        let (length, _) = receive_message(&right, &mut buffer).unwrap();
        assert_eq!(length, 0, "a closed peer reads as an empty message");
    }
}
