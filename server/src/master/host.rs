//! This machine as the built-in agent sees it: the resources it offers ([`HostResources`], with the
//! Mesos-style `--agent-resources` overrides), its attributes (`--agent-attributes`), its hostname,
//! the identity of its processes (`/proc/<pid>/stat` start times and the boot id, so that a recycled
//! pid is never mistaken for a task's supervisor), and the cgroups that cap each task's cpu and
//! memory ([`Cgroups`]).

use super::disks::{apply_json, HostDisk};
use std::ffi::{c_int, CString};
use std::fs;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

const MIB: f64 = 1024.0 * 1024.0;

/// Like Mesos: keep 1 GiB of memory for the system, or half of it on machines with less than 2 GiB.
const MEM_RESERVE_MB: f64 = 1024.0;
/// Like Mesos: keep 5 GiB of the data directory's file system, or half of it when smaller than 10 GiB.
const DISK_RESERVE_MB: f64 = 5.0 * 1024.0;
const DEFAULT_PORTS: (u32, u32) = (31000, 32000);

/// What the built-in agent offers: cpus, memory and disk in MiB, port ranges (inclusive), and
/// disks beside the root disk for volumes ([`super::disks`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostResources {
    pub cpus: f64,
    pub mem_mb: f64,
    pub disk_mb: f64,
    pub ports: Vec<(u32, u32)>,
    pub disks: Vec<HostDisk>,
}

impl HostResources {
    /// Measures this machine. Disk is the size of the file system holding `data_dir` (which need
    /// not exist yet), as Mesos counts it: total size, not free space, minus the reserve.
    pub fn detect(data_dir: &Path) -> io::Result<Self> {
        let cpus = thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let meminfo = fs::read_to_string("/proc/meminfo")?;
        let mem_total_kb = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .ok_or_else(|| io::Error::other("/proc/meminfo has no readable MemTotal line"))?;
        let disk_total_mb = file_system_size(data_dir)? as f64 / MIB;
        Ok(Self {
            cpus,
            mem_mb: minus_reserve(mem_total_kb / 1024.0, MEM_RESERVE_MB),
            disk_mb: minus_reserve(disk_total_mb, DISK_RESERVE_MB),
            ports: vec![DEFAULT_PORTS],
            disks: Vec::new(),
        })
    }

    /// Replaces the named resources, Mesos style: `cpus:4;mem:8192;disk:10000;ports:[31000-32000]`,
    /// or Mesos' JSON form (which can also declare PATH and MOUNT disks, see [`super::disks`]).
    /// Resources the spec does not name keep their value.
    pub fn apply_overrides(&mut self, spec: &str) -> Result<(), String> {
        let mut updated = self.clone();
        if spec.trim_start().starts_with('[') {
            apply_json(&mut updated, spec)?;
            *self = updated;
            return Ok(());
        }
        for item in spec
            .split(';')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (name, value) = split_pair(item)?;
            match name {
                "cpus" => updated.cpus = parse_amount(name, value)?,
                "mem" => updated.mem_mb = parse_amount(name, value)?,
                "disk" => updated.disk_mb = parse_amount(name, value)?,
                "ports" => updated.ports = parse_port_ranges(value)?,
                _ => {
                    return Err(format!(
                        "unknown resource '{name}' in '{item}' (expected cpus, mem, disk or ports)"
                    ))
                }
            }
        }
        *self = updated;
        Ok(())
    }
}

fn minus_reserve(total: f64, reserve: f64) -> f64 {
    if total >= 2.0 * reserve {
        total - reserve
    } else {
        total / 2.0
    }
}

/// Size in bytes of the file system holding `path`, measured at its nearest existing ancestor.
fn file_system_size(path: &Path) -> io::Result<u64> {
    let existing = path
        .ancestors()
        .find(|ancestor| ancestor.exists())
        .unwrap_or(Path::new("/"));
    let c_path = CString::new(existing.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("data directory path contains a NUL byte"))?;
    // SAFETY: statvfs only writes into the zeroed struct we own, and `c_path` is a valid
    // NUL-terminated string that outlives the call.
    let stat = unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c_path.as_ptr(), &mut stat) != 0 {
            return Err(io::Error::last_os_error());
        }
        stat
    };
    Ok(stat.f_blocks * stat.f_frsize)
}

/// One value of an agent attribute, typed the way Mesos types them.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    Text(String),
    Scalar(f64),
    /// Inclusive ranges, from a value written `[1-10,20-30]`.
    Ranges(Vec<(u64, u64)>),
}

/// Parses Mesos-style attributes: `rack:a;zone:eu;level:3;ids:[1-10]`. As in Mesos, a value made
/// only of digits and dots is a scalar, one in brackets is a list of ranges, anything else is text.
pub fn parse_attributes(spec: &str) -> Result<Vec<(String, AttributeValue)>, String> {
    spec.split(';')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (name, value) = split_pair(item)?;
            let value =
                if value.starts_with('[') {
                    AttributeValue::Ranges(parse_ranges(value)?)
                } else if value.chars().all(|c| c.is_ascii_digit() || c == '.') {
                    AttributeValue::Scalar(value.parse().map_err(|_| {
                        format!("attribute '{name}' has a malformed number '{value}'")
                    })?)
                } else {
                    AttributeValue::Text(value.to_owned())
                };
            Ok((name.to_owned(), value))
        })
        .collect()
}

fn split_pair(item: &str) -> Result<(&str, &str), String> {
    let (name, value) = item
        .split_once(':')
        .ok_or_else(|| format!("'{item}' is not of the form name:value"))?;
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() || value.is_empty() {
        return Err(format!("'{item}' is not of the form name:value"));
    }
    Ok((name, value))
}

fn parse_amount(name: &str, value: &str) -> Result<f64, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|amount| amount.is_finite() && *amount >= 0.0)
        .ok_or_else(|| format!("{name} must be a non-negative number, not '{value}'"))
}

fn parse_port_ranges(value: &str) -> Result<Vec<(u32, u32)>, String> {
    let port = |n: u64| {
        u32::try_from(n)
            .ok()
            .filter(|&port| port <= 65535)
            .ok_or_else(|| format!("{n} in '{value}' is not a port number"))
    };
    parse_ranges(value)?
        .into_iter()
        .map(|(begin, end)| Ok((port(begin)?, port(end)?)))
        .collect()
}

fn parse_ranges(value: &str) -> Result<Vec<(u64, u64)>, String> {
    let inner = value
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .ok_or_else(|| format!("'{value}' is not a list of ranges like [31000-32000]"))?;
    inner
        .split(',')
        .map(str::trim)
        .map(|range| {
            let bounds = range.split_once('-').and_then(|(begin, end)| {
                Some((
                    begin.trim().parse::<u64>().ok()?,
                    end.trim().parse::<u64>().ok()?,
                ))
            });
            match bounds {
                Some((begin, end)) if begin <= end => Ok((begin, end)),
                _ => Err(format!(
                    "'{range}' in '{value}' is not a range like 31000-32000"
                )),
            }
        })
        .collect()
}

/// The machine's hostname, as the kernel reports it.
pub fn hostname() -> String {
    if let Ok(name) = fs::read_to_string("/proc/sys/kernel/hostname") {
        let name = name.trim();
        if !name.is_empty() {
            return name.to_owned();
        }
    }
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `buffer.len()` bytes into the buffer we own.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return "localhost".to_owned();
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

/// Identifies this boot of the machine: process start times only compare within one boot.
/// Read once per process; the zygote reads it before forking, so supervisors never do.
pub(crate) fn boot_id() -> io::Result<String> {
    static BOOT_ID: OnceLock<String> = OnceLock::new();
    if let Some(boot_id) = BOOT_ID.get() {
        return Ok(boot_id.clone());
    }
    let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id")?
        .trim()
        .to_owned();
    Ok(BOOT_ID.get_or_init(|| boot_id).clone())
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcessStat {
    /// Clock ticks after boot at which the process started; with the pid it names one process.
    pub start_ticks: u64,
    /// The process has exited and waits to be reaped (or is being reaped).
    pub exited: bool,
}

/// Reads a process's start time and state; `None` if no process has this pid.
pub(crate) fn process_stat(pid: i32) -> Option<ProcessStat> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its
    // closing parenthesis, from field 3 (state) on; the start time is field 22.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?;
    let start_ticks = fields.nth(18)?.parse().ok()?;
    Some(ProcessStat {
        start_ticks,
        exited: state == "Z" || state == "X",
    })
}

/// A descriptor naming process `pid` for good (close-on-exec); it turns readable when the
/// process exits.
pub(crate) fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open has no memory arguments; it returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this descriptor (close-on-exec), owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as c_int) })
}

/// Whether the process `pid` that started at `start_ticks` is still running (not a zombie, and
/// not another process that was given the same pid later).
pub(crate) fn process_running(pid: i32, start_ticks: u64) -> bool {
    process_stat(pid).is_some_and(|stat| stat.start_ticks == start_ticks && !stat.exited)
}

/// Per-task cgroups that cap cpu and memory: one cgroup per task under a `stride` cgroup nested in
/// the agent's own cgroup (so tasks stay inside whatever limits the agent itself runs under),
/// using cgroup v2 when it offers the cpu and memory controllers, else the v1 cpu and memory
/// hierarchies.
#[derive(Debug, Clone)]
pub struct Cgroups {
    layout: Layout,
}

#[derive(Debug, Clone)]
enum Layout {
    V2 { parent: PathBuf },
    V1 { cpu: PathBuf, memory: PathBuf },
}

/// The kernel's default period, which every new cgroup starts with.
const CFS_PERIOD_US: u64 = 100_000;
/// The kernel refuses smaller quotas.
const MIN_CFS_QUOTA_US: u64 = 1_000;

impl Cgroups {
    /// Finds where this process may create per-task cgroups, creating the `stride` parent; the
    /// error says why tasks will run without limits.
    pub fn detect() -> Result<Self, String> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let own = fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let mounts: Vec<Mount> = mountinfo.lines().filter_map(Mount::parse).collect();
        let v2 = match Self::detect_v2(&mounts, &own) {
            Ok(cgroups) => return Ok(cgroups),
            Err(reason) => reason,
        };
        Self::detect_v1(&mounts, &own).map_err(|v1| format!("{v2}; {v1}"))
    }

    fn detect_v2(mounts: &[Mount], own: &str) -> Result<Self, String> {
        let mount = mounts
            .iter()
            .find(|mount| mount.fs_type == "cgroup2")
            .ok_or("no cgroup v2 hierarchy is mounted")?;
        let own_path = own
            .lines()
            .find_map(|line| line.strip_prefix("0::"))
            .ok_or("this process is in no cgroup v2 group")?;
        let own_dir = mount.dir_of(own_path)?;
        // A cgroup that holds processes cannot hand controllers to children ("no internal
        // processes"), so nesting under our own cgroup only works when it is a namespace root or
        // delegated that way; otherwise use the hierarchy's root, as Mesos does.
        let mut reasons = Vec::new();
        for parent in [own_dir, mount.mount_point.clone()] {
            match enable_v2_controllers(&parent) {
                Ok(stride) => {
                    return Ok(Self {
                        layout: Layout::V2 { parent: stride },
                    })
                }
                Err(reason) => reasons.push(format!("{}: {reason}", parent.display())),
            }
        }
        Err(format!("cgroup v2 unusable ({})", reasons.join("; ")))
    }

    fn detect_v1(mounts: &[Mount], own: &str) -> Result<Self, String> {
        let stride_dir = |controller: &str| -> Result<PathBuf, String> {
            let mount = mounts
                .iter()
                .find(|mount| mount.fs_type == "cgroup" && mount.has_option(controller))
                .ok_or_else(|| format!("no cgroup v1 {controller} hierarchy is mounted"))?;
            let own_path = own
                .lines()
                .filter_map(|line| {
                    let mut fields = line.splitn(3, ':').skip(1);
                    Some((fields.next()?, fields.next()?))
                })
                .find(|(controllers, _)| controllers.split(',').any(|c| c == controller))
                .map(|(_, path)| path)
                .ok_or_else(|| format!("this process is in no cgroup v1 {controller} group"))?;
            let dir = mount.dir_of(own_path)?.join("stride");
            fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            Ok(dir)
        };
        Ok(Self {
            layout: Layout::V1 {
                cpu: stride_dir("cpu")?,
                memory: stride_dir("memory")?,
            },
        })
    }

    /// Creates the cgroup(s) of one task with its limits (zero means unlimited) and returns their
    /// directories; the task joins each by writing to its `cgroup.procs`.
    pub fn create(&self, name: &str, cpus: f64, mem_mb: f64) -> io::Result<Vec<PathBuf>> {
        let quota_us =
            (cpus > 0.0).then(|| ((cpus * CFS_PERIOD_US as f64) as u64).max(MIN_CFS_QUOTA_US));
        let mem_bytes = (mem_mb > 0.0).then_some((mem_mb * MIB) as u64);
        let dirs = match &self.layout {
            Layout::V2 { parent } => vec![parent.join(name)],
            Layout::V1 { cpu, memory } => vec![cpu.join(name), memory.join(name)],
        };
        let configure = || -> io::Result<()> {
            for dir in &dirs {
                match fs::create_dir(dir) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                    _ => {}
                }
            }
            match &self.layout {
                Layout::V2 { .. } => {
                    if let Some(bytes) = mem_bytes {
                        fs::write(dirs[0].join("memory.max"), bytes.to_string())?;
                    }
                    if let Some(quota) = quota_us {
                        fs::write(dirs[0].join("cpu.max"), format!("{quota} {CFS_PERIOD_US}"))?;
                    }
                }
                Layout::V1 { .. } => {
                    // The new cgroup already has the default period; each write re-applies the
                    // bandwidth on every CPU, so only the quota is written.
                    if let Some(quota) = quota_us {
                        fs::write(dirs[0].join("cpu.cfs_quota_us"), quota.to_string())?;
                    }
                    if let Some(bytes) = mem_bytes {
                        fs::write(dirs[1].join("memory.limit_in_bytes"), bytes.to_string())?;
                    }
                }
            }
            Ok(())
        };
        configure().inspect_err(|_| remove_cgroups(&dirs))?;
        Ok(dirs)
    }
}

/// Makes `parent/stride` a cgroup whose children get the cpu and memory controllers.
fn enable_v2_controllers(parent: &Path) -> Result<PathBuf, String> {
    let enable = |dir: &Path| -> Result<(), String> {
        let available = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        let missing: Vec<&str> = ["cpu", "memory"]
            .into_iter()
            .filter(|c| !available.split_whitespace().any(|a| a == *c))
            .collect();
        if !missing.is_empty() {
            return Err(format!("controllers {missing:?} not available"));
        }
        let enabled = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
        if ["cpu", "memory"]
            .iter()
            .all(|c| enabled.split_whitespace().any(|e| e == *c))
        {
            return Ok(());
        }
        fs::write(dir.join("cgroup.subtree_control"), "+cpu +memory")
            .map_err(|e| format!("cannot enable cpu and memory for children: {e}"))
    };
    enable(parent)?;
    let stride = parent.join("stride");
    match fs::create_dir(&stride) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            return Err(format!("cannot create {}: {e}", stride.display()))
        }
        _ => {}
    }
    enable(&stride)?;
    Ok(stride)
}

/// How long to wait for the killed processes of a finished task's cgroups to be gone.
pub(crate) const CGROUP_EMPTYING_PATIENCE: Duration = Duration::from_secs(1);

/// SIGKILLs every process in the cgroups (also those that left the task's process group), then
/// does so again until they are gone or `patience` has passed.
pub(crate) fn kill_cgroup_processes(dirs: &[PathBuf], patience: Duration) {
    let deadline = Instant::now() + patience;
    loop {
        let pids: Vec<i32> = dirs
            .iter()
            .filter_map(|dir| fs::read_to_string(dir.join("cgroup.procs")).ok())
            .flat_map(|procs| {
                procs
                    .lines()
                    .filter_map(|pid| pid.trim().parse().ok())
                    .collect::<Vec<_>>()
            })
            .collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            // SAFETY: kill(2) has no memory effects; the pid was just listed as a member of the
            // task's cgroup, and a cgroup's members are only ever the task's processes.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if Instant::now() >= deadline {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Whether the kernel's OOM killer killed a process of the task because of its memory limit.
pub(crate) fn cgroup_oom_killed(dirs: &[PathBuf]) -> bool {
    dirs.iter()
        .flat_map(|dir| ["memory.events", "memory.oom_control"].map(|file| dir.join(file)))
        .filter_map(|file| fs::read_to_string(file).ok())
        .any(|text| {
            text.lines()
                .filter_map(|line| line.strip_prefix("oom_kill "))
                .any(|count| count.trim().parse::<u64>().is_ok_and(|n| n > 0))
        })
}

/// Removes the task's cgroups; a cgroup only goes once its last process is gone, so this retries
/// for up to a second.
pub(crate) fn remove_cgroups(dirs: &[PathBuf]) {
    for dir in dirs {
        for attempt in 0.. {
            match fs::remove_dir(dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound && attempt < 100 => {
                    thread::sleep(Duration::from_millis(10))
                }
                _ => break,
            }
        }
    }
}

/// One line of `/proc/self/mountinfo`.
struct Mount {
    /// The directory of the mounted file system that appears at `mount_point`.
    root: PathBuf,
    mount_point: PathBuf,
    fs_type: String,
    super_options: String,
}

impl Mount {
    fn parse(line: &str) -> Option<Self> {
        let (before, after) = line.split_once(" - ")?;
        let mut before = before.split_whitespace().skip(3);
        let mut after = after.split_whitespace();
        Some(Self {
            root: PathBuf::from(before.next()?),
            mount_point: PathBuf::from(before.next()?),
            fs_type: after.next()?.to_owned(),
            super_options: after.nth(1).unwrap_or_default().to_owned(),
        })
    }

    fn has_option(&self, option: &str) -> bool {
        self.super_options.split(',').any(|o| o == option)
    }

    /// Where the cgroup `path` (as `/proc/self/cgroup` names it) appears under this mount.
    fn dir_of(&self, path: &str) -> Result<PathBuf, String> {
        let relative = Path::new(path).strip_prefix(&self.root).map_err(|_| {
            format!(
                "cgroup {path} is outside the hierarchy mounted at {}",
                self.mount_point.display()
            )
        })?;
        Ok(self.mount_point.join(relative))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> HostResources {
        HostResources {
            cpus: 2.0,
            mem_mb: 1000.0,
            disk_mb: 5000.0,
            ports: vec![DEFAULT_PORTS],
            disks: vec![],
        }
    }

    #[test]
    fn overrides_replace_only_named_resources() {
        let mut resources = sample();
        resources
            .apply_overrides("cpus:4; mem:8192;ports:[31000-32000, 33000-33010]")
            .unwrap();
        assert_eq!(
            resources,
            HostResources {
                cpus: 4.0,
                mem_mb: 8192.0,
                disk_mb: 5000.0,
                ports: vec![(31000, 32000), (33000, 33010)],
                disks: vec![],
            }
        );
    }

    #[test]
    fn overrides_reject_unknown_and_malformed_resources() {
        let mut resources = sample();
        let unknown = resources.apply_overrides("cpus:8;gpus:1").unwrap_err();
        assert!(unknown.contains("unknown resource 'gpus'"), "{unknown}");
        for bad in [
            "cpus:-1",
            "cpus:many",
            "mem",
            "ports:31000-32000",
            "ports:[32000-31000]",
        ] {
            assert!(
                resources.apply_overrides(bad).is_err(),
                "{bad} was accepted"
            );
        }
        assert!(resources.apply_overrides("ports:[70000-70001]").is_err());
        assert_eq!(
            resources,
            sample(),
            "a failed override must not leave partial changes"
        );
    }

    #[test]
    fn attributes_are_typed_like_mesos() {
        let attributes =
            parse_attributes("rack:a;zone:eu;level:3;ids:[1-10,20-30];ver:1.5").unwrap();
        assert_eq!(
            attributes,
            vec![
                ("rack".into(), AttributeValue::Text("a".into())),
                ("zone".into(), AttributeValue::Text("eu".into())),
                ("level".into(), AttributeValue::Scalar(3.0)),
                (
                    "ids".into(),
                    AttributeValue::Ranges(vec![(1, 10), (20, 30)])
                ),
                ("ver".into(), AttributeValue::Scalar(1.5)),
            ]
        );
        assert_eq!(parse_attributes("").unwrap(), vec![]);
        assert!(parse_attributes("rack").is_err());
        assert!(parse_attributes("ids:[1-]").is_err());
    }

    #[test]
    fn mountinfo_locates_cgroups_inside_the_mounted_hierarchy() {
        let v1 = Mount::parse(
            "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
        )
        .unwrap();
        assert!(v1.fs_type == "cgroup" && v1.has_option("memory") && !v1.has_option("cpu"));
        assert_eq!(
            v1.dir_of("/process_api/87ee").unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/87ee")
        );
        // In a container, the mount's root is the container's own cgroup.
        let v2 = Mount::parse("41 31 0:38 /ctr /sys/fs/cgroup rw - cgroup2 cgroup2 rw").unwrap();
        assert_eq!(v2.fs_type, "cgroup2");
        assert_eq!(
            v2.dir_of("/ctr/app").unwrap(),
            Path::new("/sys/fs/cgroup/app")
        );
        assert!(v2.dir_of("/elsewhere").is_err());
    }

    #[test]
    fn reserves_follow_mesos() {
        assert_eq!(minus_reserve(16384.0, MEM_RESERVE_MB), 15360.0);
        assert_eq!(minus_reserve(1500.0, MEM_RESERVE_MB), 750.0);
    }

    #[test]
    fn detects_this_machine() {
        let resources = HostResources::detect(Path::new("/nonexistent/stride/data")).unwrap();
        assert!(resources.cpus >= 1.0);
        assert!(resources.mem_mb > 0.0 && resources.disk_mb > 0.0);
        assert!(!hostname().is_empty());
    }

    #[test]
    fn reads_own_process_stat() {
        let stat = process_stat(std::process::id() as i32).unwrap();
        assert!(!stat.exited);
        assert!(process_running(std::process::id() as i32, stat.start_ticks));
        assert!(!process_running(
            std::process::id() as i32,
            stat.start_ticks + 1
        ));
    }
}
