//! Containers of the built-in agent, as Mesos' unified containerizer runs a task with a Docker
//! image: the image's layers stacked by overlayfs as the root file system (a private upper layer
//! per task), the sandbox mounted at `/mnt/mesos/sandbox`, the host's network, pids and IPC
//! (Mesos' defaults without the `namespaces/*` isolators), and the image's entrypoint, command,
//! environment, user and working directory combined with the task's command as Mesos combines
//! them ([`process_of`]).
//!
//! The container is started by `runc` (Debian's), the task's command being `runc run` under the
//! task's supervisor like any command, so kills, exit codes, cgroup limits and re-adoption after
//! a restart of Stride work as for commands. runc rather than crun: Debian's crun (1.8) refuses
//! to start anything on hosts that mount cgroup v1 with a v2 hierarchy holding a controller (as
//! this project's build machines do), even with its cgroup manager disabled; runc does not.
//!
//! Each task's container lives in `<agent work dir>/containers/<task id>/`: `config.json` (the
//! OCI runtime bundle), `rootfs` (the overlay mount), `upper` and `work` (overlayfs' own). runc
//! keeps its state in `<agent work dir>/runc`. [`teardown`] undoes all of it.

use super::agent::CommandSpec;
use crate::images::ImageConfig;
use serde_json::json;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the sandbox is inside the container, as in Mesos.
pub const SANDBOX_IN_CONTAINER: &str = "/mnt/mesos/sandbox";
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How the supervisor starts a task's container and the agent ends it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Runtime {
    /// The runc binary.
    pub runc: PathBuf,
    /// runc's `--root`: its state of this agent's containers.
    pub state_dir: PathBuf,
    /// The container's directory, the OCI bundle.
    pub bundle: PathBuf,
    /// runc's name of the container: the task ID.
    pub id: String,
}

impl Runtime {
    /// The command that runs the container in the foreground; runc passes the signals it gets
    /// on to the container's first process and exits with its status.
    pub fn run_argv(&self) -> Vec<String> {
        vec![
            "runc".to_owned(),
            "--root".to_owned(),
            self.state_dir.display().to_string(),
            "run".to_owned(),
            "--bundle".to_owned(),
            self.bundle.display().to_string(),
            self.id.clone(),
        ]
    }
}

/// The `runc` on this machine's `PATH` (or in `/usr/sbin`, `/usr/bin`), if there is one.
pub fn find_runc() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into()])
        .map(|dir| dir.join("runc"))
        .find(|candidate| candidate.is_file())
}

/// The container's first process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerProcess {
    pub args: Vec<String>,
    /// `NAME=value` entries.
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
}

/// The files of the root file system that name users and groups, to resolve an image's `User`.
#[derive(Debug, Default, Clone)]
pub struct Accounts {
    pub passwd: String,
    pub group: String,
}

/// The process Mesos starts for `command` in a container of `image`: a shell command runs with
/// `/bin/sh -c`, ignoring the image's entrypoint and command; an executable given as the
/// command's value runs with the command's arguments; otherwise the image's entrypoint runs with
/// the command's arguments, or with the image's command when there are none. The environment is
/// the image's, then the task's, then `MESOS_SANDBOX`; the working directory the image's, or the
/// sandbox.
pub fn process_of(
    image: &ImageConfig,
    command: &CommandSpec,
    task_env: &[(String, String)],
    accounts: &Accounts,
) -> Result<ContainerProcess, String> {
    let args: Vec<String> = if command.shell {
        vec!["/bin/sh".into(), "-c".into(), command.value.clone()]
    } else if !command.value.is_empty() {
        match command.arguments.as_slice() {
            [] => vec![command.value.clone()],
            arguments => arguments.to_vec(),
        }
    } else {
        let entrypoint = image.entrypoint.clone().unwrap_or_default();
        let rest = match command.arguments.as_slice() {
            [] => image.cmd.clone().unwrap_or_default(),
            arguments => arguments.to_vec(),
        };
        entrypoint.into_iter().chain(rest).collect()
    };
    if args.is_empty() {
        return Err(
            "the app gives no command and the image has neither an entrypoint nor a command"
                .to_owned(),
        );
    }
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |name: &str, value: &str| match env.iter_mut().find(|(n, _)| n == name) {
        Some(entry) => entry.1 = value.to_owned(),
        None => env.push((name.to_owned(), value.to_owned())),
    };
    set("PATH", DEFAULT_PATH);
    for entry in image.env.iter().flatten() {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        set(name, value);
    }
    for (name, value) in task_env {
        set(name, value);
    }
    set("MESOS_SANDBOX", SANDBOX_IN_CONTAINER);
    let (uid, gid) = user_of(image.user.as_deref().unwrap_or(""), accounts)?;
    let cwd = match image.working_dir.as_deref() {
        Some(dir) if !dir.is_empty() => dir.to_owned(),
        _ => SANDBOX_IN_CONTAINER.to_owned(),
    };
    Ok(ContainerProcess {
        args,
        env: env.into_iter().map(|(n, v)| format!("{n}={v}")).collect(),
        cwd,
        uid,
        gid,
    })
}

/// The uid and gid of an image's `User`: empty (root), `user`, `user:group`, each a name from
/// the image's own `/etc/passwd` and `/etc/group` or a number.
fn user_of(user: &str, accounts: &Accounts) -> Result<(u32, u32), String> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd_entry = accounts.passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let matches = fields.first() == Some(&user_part) || fields.get(2) == Some(&user_part);
        (matches && fields.len() >= 4).then(|| (fields[2].parse().ok(), fields[3].parse().ok()))
    });
    let uid: u32 = match (user_part.parse(), passwd_entry) {
        (Ok(uid), _) => uid,
        (Err(_), Some((Some(uid), _))) => uid,
        _ => {
            return Err(format!(
                "the image's user '{user_part}' is not in its /etc/passwd"
            ))
        }
    };
    let gid = match group_part {
        None => passwd_entry.and_then(|(_, gid)| gid).unwrap_or(0),
        Some(group) => match group.parse() {
            Ok(gid) => gid,
            Err(_) => accounts
                .group
                .lines()
                .find_map(|line| {
                    let fields: Vec<&str> = line.split(':').collect();
                    (fields.first() == Some(&group) && fields.len() >= 3)
                        .then(|| fields[2].parse().ok())
                        .flatten()
                })
                .ok_or_else(|| format!("the image's group '{group}' is not in its /etc/group"))?,
        },
    };
    Ok((uid, gid))
}

/// A directory bound into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub host: PathBuf,
    pub container: String,
    pub read_only: bool,
}

/// The OCI runtime configuration (`config.json`) of a task's container: its process on
/// `rootfs`, the sandbox and `binds` mounted, only a mount namespace of its own, and its cgroups
/// nested under those the supervisor put runc in (which hold the task's limits).
pub fn bundle_config(
    process: &ContainerProcess,
    rootfs: &Path,
    sandbox: &Path,
    binds: &[BindMount],
    id: &str,
) -> serde_json::Value {
    let bind = |host: &Path, container: &str, read_only: bool| {
        let mode = if read_only { "ro" } else { "rw" };
        json!({"destination": container, "type": "bind", "source": host,
               "options": ["rbind", "nosuid", "nodev", mode]})
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ];
    // The host's network, so its name service files, as Mesos' network/cni isolator does.
    for file in ["/etc/resolv.conf", "/etc/hosts"] {
        if Path::new(file).exists() {
            mounts.push(bind(Path::new(file), file, true));
        }
    }
    mounts.push(bind(sandbox, SANDBOX_IN_CONTAINER, false));
    for mount in binds {
        mounts.push(bind(&mount.host, &mount.container, mount.read_only));
    }
    // Docker's default set: what images expect of a root process, without the host's power.
    let capabilities = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ];
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": process.uid, "gid": process.gid},
            "args": process.args,
            "env": process.env,
            "cwd": process.cwd,
            "capabilities": {
                "bounding": capabilities,
                "effective": capabilities,
                "permitted": capabilities,
            },
        },
        "root": {"path": rootfs, "readonly": false},
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": "mount"}],
            "cgroupsPath": id,
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    })
}

/// The root file system's directory in a container's directory.
pub fn rootfs_of(bundle: &Path) -> PathBuf {
    bundle.join("rootfs")
}

/// Mounts the layers (bottom first) as the container's root file system, with a fresh upper
/// layer of its own.
pub fn mount_rootfs(bundle: &Path, layers: &[PathBuf]) -> io::Result<PathBuf> {
    let rootfs = rootfs_of(bundle);
    let upper = bundle.join("upper");
    let work = bundle.join("work");
    for dir in [&rootfs, &upper, &work] {
        std::fs::create_dir_all(dir)?;
    }
    if layers.is_empty() {
        return Err(io::Error::other("the image has no layers"));
    }
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|l| l.display().to_string())
        .collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    let c = |text: &[u8]| CString::new(text).map_err(io::Error::other);
    let (source, target, fs_type, data) = (
        c(b"overlay")?,
        c(rootfs.as_os_str().as_bytes())?,
        c(b"overlay")?,
        c(options.as_bytes())?,
    );
    // SAFETY: every argument is a NUL-terminated string that outlives the call.
    let mounted = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fs_type.as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    };
    if mounted != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("overlay mount: {e}")));
    }
    Ok(rootfs)
}

/// SIGKILL to every process of the container, through runc, so that `runc run` (their
/// parent) reaps them and exits with the status: killing runc itself would orphan them, and
/// their cgroups would then stay until whoever inherits them reaps them.
pub fn kill_all(runtime: &Runtime) -> io::Result<()> {
    let status = Command::new(&runtime.runc)
        .arg("--root")
        .arg(&runtime.state_dir)
        .args(["kill", "--all", &runtime.id, "KILL"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    match status.success() {
        true => Ok(()),
        false => Err(io::Error::other(format!("runc kill: {status}"))),
    }
}

/// Ends what is left of a task's container: runc's container (its processes killed), the
/// root file system's mount and the container's directory. Safe to call more than once.
pub fn teardown(runtime: &Runtime) -> Vec<String> {
    let mut problems = Vec::new();
    // runc may leave its cgroups behind when it removes them while a killed process is still
    // leaving, so they are taken from its state first and removed again afterwards.
    let cgroups = runc_cgroups(runtime);
    let deleted = Command::new(&runtime.runc)
        .arg("--root")
        .arg(&runtime.state_dir)
        .args(["delete", "--force", &runtime.id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output();
    match deleted {
        Ok(output) if !output.status.success() => {
            let said = String::from_utf8_lossy(&output.stderr);
            // The container is gone already when runc run ended by itself.
            if !said.contains("does not exist") && !said.contains("not exist") {
                problems.push(format!("runc delete: {}", said.trim()));
            }
        }
        Err(e) => problems.push(format!("cannot run runc delete: {e}")),
        Ok(_) => {}
    }
    super::host::kill_cgroup_processes(&cgroups, super::host::CGROUP_EMPTYING_PATIENCE);
    super::host::remove_cgroups(&cgroups);
    let rootfs = rootfs_of(&runtime.bundle);
    if let Ok(target) = CString::new(rootfs.as_os_str().as_bytes()) {
        // SAFETY: `target` is NUL-terminated and outlives the call.
        let unmounted = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        let e = io::Error::last_os_error();
        if unmounted != 0
            && e.raw_os_error() != Some(libc::EINVAL)
            && e.kind() != io::ErrorKind::NotFound
        {
            problems.push(format!("cannot unmount {}: {e}", rootfs.display()));
        }
    }
    match std::fs::remove_dir_all(&runtime.bundle) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            problems.push(format!("cannot delete {}: {e}", runtime.bundle.display()))
        }
        _ => {}
    }
    problems
}

/// The cgroup directories of the container, as runc's `state.json` records them (deepest
/// first), or none when runc has no state of it.
fn runc_cgroups(runtime: &Runtime) -> Vec<PathBuf> {
    let state = runtime.state_dir.join(&runtime.id).join("state.json");
    let Ok(bytes) = std::fs::read(state) else {
        return Vec::new();
    };
    let state: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let mut dirs: Vec<PathBuf> = state["cgroup_paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.values())
        .filter_map(|path| path.as_str())
        .map(PathBuf::from)
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs.reverse();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(line: &str) -> CommandSpec {
        CommandSpec {
            shell: true,
            value: line.into(),
            arguments: Vec::new(),
        }
    }

    fn args(arguments: &[&str]) -> CommandSpec {
        CommandSpec {
            shell: false,
            value: String::new(),
            arguments: arguments.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn image() -> ImageConfig {
        ImageConfig {
            entrypoint: Some(vec!["/entry".into()]),
            cmd: Some(vec!["--serve".into()]),
            env: Some(vec!["PATH=/bin".into(), "MODE=image".into()]),
            user: None,
            working_dir: Some("/srv".into()),
        }
    }

    #[test]
    fn commands_combine_with_the_image_as_mesos_combines_them() {
        let accounts = Accounts::default();
        let run =
            |command: &CommandSpec| process_of(&image(), command, &[], &accounts).unwrap().args;
        assert_eq!(run(&shell("echo $HOME")), ["/bin/sh", "-c", "echo $HOME"]);
        assert_eq!(run(&args(&[])), ["/entry", "--serve"]);
        assert_eq!(run(&args(&["--port", "80"])), ["/entry", "--port", "80"]);
        let no_entrypoint = ImageConfig {
            entrypoint: None,
            ..image()
        };
        let direct = process_of(&no_entrypoint, &args(&["httpd", "-f"]), &[], &accounts);
        assert_eq!(direct.unwrap().args, ["httpd", "-f"]);
        let nothing = ImageConfig::default();
        assert!(process_of(&nothing, &args(&[]), &[], &accounts).is_err());
    }

    #[test]
    fn the_task_environment_overrides_the_image_and_the_sandbox_is_named() {
        let env = [("MODE".to_string(), "task".to_string())];
        let process = process_of(&image(), &args(&[]), &env, &Accounts::default()).unwrap();
        assert_eq!(
            process.env,
            ["PATH=/bin", "MODE=task", "MESOS_SANDBOX=/mnt/mesos/sandbox"]
        );
        assert_eq!(process.cwd, "/srv");
        let no_workdir = ImageConfig {
            working_dir: None,
            env: None,
            ..image()
        };
        let process = process_of(&no_workdir, &args(&[]), &[], &Accounts::default()).unwrap();
        assert_eq!(process.cwd, SANDBOX_IN_CONTAINER);
        assert!(process.env[0].starts_with("PATH=/usr/local/sbin"));
    }

    #[test]
    fn users_resolve_by_name_or_number_in_the_images_own_files() {
        let accounts = Accounts {
            passwd: "root:x:0:0::/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\n".into(),
            group: "root:x:0:\nstaff:x:50:\n".into(),
        };
        assert_eq!(user_of("", &accounts), Ok((0, 0)));
        assert_eq!(user_of("www", &accounts), Ok((33, 34)));
        assert_eq!(user_of("www:staff", &accounts), Ok((33, 50)));
        assert_eq!(user_of("1000:1000", &accounts), Ok((1000, 1000)));
        assert_eq!(user_of("33", &accounts), Ok((33, 34)));
        assert!(user_of("nobody", &accounts).unwrap_err().contains("nobody"));
        assert!(user_of("www:wheel", &accounts)
            .unwrap_err()
            .contains("wheel"));
    }

    #[test]
    fn the_bundle_shares_the_hosts_network_and_mounts_the_sandbox() {
        let process = process_of(&image(), &args(&[]), &[], &Accounts::default()).unwrap();
        let binds = [BindMount {
            host: "/data/vol".into(),
            container: "/var/lib/data".into(),
            read_only: true,
        }];
        let config = bundle_config(
            &process,
            Path::new("/c/rootfs"),
            Path::new("/s"),
            &binds,
            "t1",
        );
        assert_eq!(config["linux"]["namespaces"], json!([{"type": "mount"}]));
        assert_eq!(config["root"]["path"], "/c/rootfs");
        let mounts = config["mounts"].as_array().unwrap();
        let sandbox = mounts
            .iter()
            .find(|m| m["destination"] == SANDBOX_IN_CONTAINER)
            .unwrap();
        assert_eq!(sandbox["source"], "/s");
        let volume = mounts
            .iter()
            .find(|m| m["destination"] == "/var/lib/data")
            .unwrap();
        assert!(volume["options"].as_array().unwrap().contains(&json!("ro")));
        assert_eq!(config["process"]["args"], json!(["/entry", "--serve"]));
    }
}
