//! A persistent volume's storage on its built-in agent. The volume is a directory under the
//! agent's work dir; where the host allows it (Stride runs as root, `mkfs.ext4` and `mount`
//! are installed, a loop device is free) an ext4 file system in an image file of exactly the
//! volume's size is loop-mounted on that directory, so that a task cannot write more than the
//! volume's size (it gets ENOSPC) and the volume never takes more of the host's disk. Where the
//! host does not allow it, the volume is a plain directory and the reason its size is not
//! enforced is kept with it, logged, and listed in `/master/state`.
//!
//! The image sits beside the directory (`<persistence id>.ext4`) and is sparse: it takes
//! only what was written. Mounts outlive Stride (a restart or `kill -9` keeps them); after a
//! reboot the agent mounts its volumes again when it starts.
//!
//! A volume on a MOUNT disk is the disk's root. When the operator mounted a file system there,
//! that file system bounds the volume and is left mounted when the volume is destroyed (only
//! its contents go); otherwise the root gets an image of the disk's size like any volume.

use serde::{Deserialize, Serialize};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How a volume's size is held to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum SizeBound {
    /// An ext4 file system of the volume's size, loop-mounted on its directory.
    LoopMountedExt4,
    /// The file system the operator mounted on a MOUNT disk's root.
    OwnFileSystem,
    /// A plain directory: nothing stops a task writing more; why.
    NotEnforced(String),
}

impl SizeBound {
    /// How `/master/state` says it.
    pub(super) fn describe(&self) -> String {
        match self {
            SizeBound::LoopMountedExt4 => "enforced: loop-mounted ext4 of the volume's size".into(),
            SizeBound::OwnFileSystem => "enforced: the mount disk's own file system".into(),
            SizeBound::NotEnforced(why) => format!("not enforced: {why}"),
        }
    }
}

/// Creates the volume's directory at `dir`, of `size_mib`, bounded where the host allows it;
/// `whole_disk`: `dir` is a MOUNT disk's root, bounded already if a file system is mounted on it.
pub(super) fn create(dir: &Path, size_mib: f64, whole_disk: bool) -> Result<SizeBound, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("Cannot create the volume's directory: {e}"))?;
    if whole_disk && is_mount_point(dir) && !image_of(dir).exists() {
        return Ok(SizeBound::OwnFileSystem);
    }
    match make_file_system(dir, size_mib).and_then(|()| mount(dir)) {
        Ok(()) => Ok(SizeBound::LoopMountedExt4),
        Err(why) => {
            let _ = std::fs::remove_file(image_of(dir));
            tracing::warn!(
                "the volume {} is a plain directory; its size of {size_mib} MiB is not enforced: {why}",
                dir.display()
            );
            Ok(SizeBound::NotEnforced(why))
        }
    }
}

/// Mounts a bounded volume again if it is not (the host rebooted since it was created).
pub(super) fn remount(dir: &Path, bound: &SizeBound) {
    if *bound != SizeBound::LoopMountedExt4 || is_mount_point(dir) {
        return;
    }
    if let Err(why) = mount(dir) {
        tracing::error!("cannot mount the volume {} again: {why}", dir.display());
    }
}

/// Unmounts the volume if it is mounted on its image and deletes its data and image; on a
/// file system the operator mounted, only the data. A MOUNT disk's root (`whole_disk`) stays,
/// empty, for the disk's next volume.
pub(super) fn destroy(dir: &Path, whole_disk: bool) {
    let own_image = image_of(dir).exists();
    if own_image && is_mount_point(dir) {
        // Lazy: a process that still has a file open there (a task's orphan) cannot keep the
        // volume; the file system goes when that process does.
        if let Err(why) = run(Command::new("umount").arg("--lazy").arg(dir)) {
            tracing::warn!("cannot unmount the volume {}: {why}", dir.display());
        }
    }
    if whole_disk || is_mount_point(dir) {
        clear(dir);
    } else if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!("cannot delete the volume {}: {e}", dir.display());
    }
    match std::fs::remove_file(image_of(dir)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!("cannot delete the volume's image {}: {e}", dir.display())
        }
        _ => {}
    }
}

/// Deletes everything in `dir`, keeping `dir`.
fn clear(dir: &Path) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!("cannot read the volume {}: {e}", dir.display());
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let removed = match entry.file_type() {
            Ok(kind) if kind.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        if let Err(e) = removed {
            tracing::warn!("cannot delete {} of a volume: {e}", path.display());
        }
    }
}

fn image_of(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(".ext4");
    PathBuf::from(name)
}

fn make_file_system(dir: &Path, size_mib: f64) -> Result<(), String> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("Stride does not run as root, so it cannot mount a file system".into());
    }
    let bytes = (size_mib * 1024.0 * 1024.0).round() as u64;
    let image = image_of(dir);
    std::fs::File::create(&image)
        .and_then(|file| file.set_len(bytes))
        .map_err(|e| format!("cannot create the image {}: {e}", image.display()))?;
    // No blocks reserved for root (the task is the only user); the inode tables and journal
    // initialised lazily, so that a large volume is created at once.
    run(Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-m",
            "0",
            "-E",
            "lazy_itable_init=1,lazy_journal_init=1",
        ])
        .arg(&image))
}

fn mount(dir: &Path) -> Result<(), String> {
    run(Command::new("mount")
        .args(["-t", "ext4", "-o", "loop,nodev,nosuid"])
        .arg(image_of(dir))
        .arg(dir))?;
    // The task sees its own files only, as on a Mesos volume.
    let _ = std::fs::remove_dir(dir.join("lost+found"));
    Ok(())
}

/// Whether a file system is mounted on `dir` (it is on another device than its parent).
fn is_mount_point(dir: &Path) -> bool {
    let device = |path: &Path| std::fs::metadata(path).map(|m| m.dev()).ok();
    match (device(dir), dir.parent().and_then(device)) {
        (Some(own), Some(parent)) => own != parent,
        _ => false,
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let words = String::from_utf8_lossy(&output.stderr);
    Err(format!(
        "{program} failed ({}): {}",
        output.status,
        words.trim()
    ))
}
