//! Dynamic reservations and persistent volumes on the built-in agents: ACCEPT's RESERVE,
//! CREATE, DESTROY and UNRESERVE, tasks launched on reserved resources with their volumes, and
//! the agent's checkpoint of both (so that they outlive a restart, as a Mesos agent's
//! `resources.info` does).
//!
//! A reservation is one role and one set of labels. Its resources are offered only in offers
//! allocated to its role, beside the agent's unreserved ones; they are taken when a task is
//! launched on them, not when offered (an agent has one outstanding offer, so nothing else
//! can take them meanwhile). A volume is a directory, where Mesos puts it: on the root disk
//! `volumes/roles/<role>/<persistence id>` under the agent's work dir, on a PATH disk the same
//! under the disk's root, on a MOUNT disk the disk's root itself. It is bounded to its size
//! where the host allows it (`volume_fs`) and linked into the sandbox of the task that uses it
//! (as Mesos' `filesystem/posix` isolator does).

use super::resources::Resources;
use super::volume_fs::{self, SizeBound};
use super::State;
use crate::master::disks::{DiskKind, DiskRoot};
use proto::mesos::v1 as mesos;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const CHECKPOINT: &str = "reservations.json";

/// Resources reserved for one role with one set of labels, and the volumes created on them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Reservation {
    pub(super) role: String,
    pub(super) labels: Vec<(String, String)>,
    /// Everything reserved, the volumes' disk included.
    pub(super) total: Resources,
    pub(super) volumes: Vec<Volume>,
    /// Not used by a task now (the disk of volumes not in use included).
    #[serde(skip)]
    pub(super) free: Resources,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Volume {
    pub(super) persistence_id: String,
    pub(super) container_path: String,
    pub(super) size: f64,
    /// The PATH or MOUNT disk it is on; `None` on the root disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) source: Option<DiskRoot>,
    /// How its size is held to; `None` for a volume of an agent without a work dir
    /// (simulated agents keep no data).
    #[serde(default)]
    pub(super) bound: Option<SizeBound>,
    /// Mounted into a live task's sandbox.
    #[serde(skip)]
    pub(super) in_use: bool,
}

impl Volume {
    /// The disk it takes, where it takes it.
    fn resources(&self) -> Resources {
        match &self.source {
            None => Resources {
                disk: self.size,
                ..Resources::default()
            },
            Some(at) => Resources::on_disk(at, self.size),
        }
    }

    /// On a MOUNT disk: the volume is the disk's root.
    fn takes_whole_disk(&self) -> bool {
        self.source
            .as_ref()
            .is_some_and(|at| at.kind == DiskKind::Mount)
    }

    fn dir(&self, agent_dir: &Path, role: &str) -> PathBuf {
        volume_dir(agent_dir, role, &self.persistence_id, self.source.as_ref())
    }
}

/// The disk `volumes` take.
fn volumes_resources<'a>(volumes: impl Iterator<Item = &'a Volume>) -> Resources {
    volumes.fold(Resources::default(), |sum, v| sum.plus(&v.resources()))
}

/// A task's share of one reservation, given back when it ends.
#[derive(Clone, Debug, Default)]
pub(super) struct ReservedUse {
    pub(super) role: String,
    pub(super) labels: Vec<(String, String)>,
    /// Its resources besides the volumes.
    pub(super) resources: Resources,
    pub(super) volumes: Vec<String>,
}

/// What a task's resources are: unreserved, or one reservation's (with volumes).
pub(super) enum TaskResources {
    Unreserved(Resources),
    Reserved(ReservedUse),
}

/// Sorts a task's resources by where they come from; a task on several reservations, or on
/// reserved and unreserved resources at once, is refused with the reason.
pub(super) fn task_resources(resources: &[mesos::Resource]) -> Result<TaskResources, String> {
    let mut unreserved = Vec::new();
    let mut used: Option<ReservedUse> = None;
    for resource in resources {
        let Some((role, labels)) = resource.dynamic_reservation() else {
            if resource.disk_source().is_some() {
                return Err(
                    "Stride's built-in agent gives PATH and MOUNT disks to persistent volumes only"
                        .into(),
                );
            }
            unreserved.push(resource.clone());
            continue;
        };
        let share = used.get_or_insert_with(|| ReservedUse {
            role: role.clone(),
            labels: labels.clone(),
            ..Default::default()
        });
        if share.role != role || share.labels != labels {
            return Err("Stride's built-in agent runs a task on one reservation at most".into());
        }
        match resource.persistence() {
            Some((id, _)) => share.volumes.push(id),
            None => {
                share.resources = share
                    .resources
                    .plus(&Resources::of_proto(std::slice::from_ref(resource)))
            }
        }
    }
    match used {
        None => Ok(TaskResources::Unreserved(Resources::of_proto(&unreserved))),
        Some(_) if !unreserved.is_empty() => Err(
            "Stride's built-in agent runs a task on reserved or on unreserved resources, not both"
                .into(),
        ),
        Some(share) => Ok(TaskResources::Reserved(share)),
    }
}

/// Where a volume's data lives on its agent (Mesos' `getPersistentVolumePath`).
fn volume_dir(
    agent_dir: &Path,
    role: &str,
    persistence_id: &str,
    source: Option<&DiskRoot>,
) -> PathBuf {
    let base = match source {
        None => agent_dir,
        Some(at) if at.kind == DiskKind::Mount => return PathBuf::from(&at.root),
        Some(at) => Path::new(&at.root),
    };
    base.join("volumes")
        .join("roles")
        .join(role.replace('/', "_"))
        .join(persistence_id)
}

/// Runs file system work (mkfs, mount, deleting a volume's data) on a blocking thread.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("the volume's file system work failed: {e}"))
}

fn valid_persistence_id(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".." && !id.contains('/')
}

impl State {
    fn reservation_mut(
        &mut self,
        agent: usize,
        role: &str,
        labels: &[(String, String)],
    ) -> Option<&mut Reservation> {
        self.agents[agent]
            .reservations
            .iter_mut()
            .find(|r| r.role == role && r.labels == labels)
    }

    /// RESERVE: `resources` (one reservation each) out of the offer's `remaining` unreserved
    /// resources, for a role of the framework.
    pub(super) fn reserve(
        &mut self,
        agent: usize,
        roles: &[String],
        resources: &[mesos::Resource],
        remaining: &mut Resources,
    ) -> Result<(), String> {
        for resource in resources {
            let (role, labels) = resource
                .dynamic_reservation()
                .ok_or("RESERVE of a resource without a dynamic reservation")?;
            if role == "*" || !roles.contains(&role) {
                return Err(format!(
                    "Invalid RESERVE: the framework cannot reserve for role '{role}'"
                ));
            }
            let amount = Resources::of_proto(std::slice::from_ref(resource));
            if !amount.fits_in(remaining) {
                return Err("Invalid RESERVE: the offer does not have the resources".into());
            }
            *remaining = remaining.minus(&amount);
            match self.reservation_mut(agent, &role, &labels) {
                Some(r) => {
                    r.total = r.total.plus(&amount);
                    r.free = r.free.plus(&amount);
                }
                None => self.agents[agent].reservations.push(Reservation {
                    role,
                    labels,
                    total: amount.clone(),
                    volumes: Vec::new(),
                    free: amount,
                }),
            }
        }
        self.checkpoint_reservations(agent);
        Ok(())
    }

    /// CREATE: volumes on reserved disk that no volume takes yet. Their directories and file
    /// systems are made on a blocking thread, not on the runtime's.
    pub(super) async fn create_volumes(
        &mut self,
        agent: usize,
        volumes: &[mesos::Resource],
    ) -> Result<(), String> {
        let agent_dir = self.agents[agent].work_dir.clone();
        for volume in volumes {
            let (role, labels) = volume
                .dynamic_reservation()
                .ok_or("Invalid CREATE: the volume is not on reserved disk")?;
            let (id, container_path) = volume
                .persistence()
                .ok_or("Invalid CREATE: the volume has no persistence id")?;
            if !valid_persistence_id(&id) {
                return Err(format!("Invalid CREATE: persistence id '{id}'"));
            }
            let size = volume.scalar.as_ref().map_or(0.0, |s| s.value);
            let source =
                DiskRoot::of_resource(volume).map_err(|e| format!("Invalid CREATE: {e}"))?;
            let Some(r) = self.reservation_mut(agent, &role, &labels) else {
                return Err("Invalid CREATE: no such reservation".into());
            };
            if r.volumes.iter().any(|v| v.persistence_id == id) {
                return Err(format!("Invalid CREATE: volume '{id}' exists"));
            }
            let unclaimed = r.total.minus(&volumes_resources(r.volumes.iter()));
            let new = Volume {
                persistence_id: id,
                container_path,
                size,
                source,
                bound: None,
                in_use: false,
            };
            if !new.resources().fits_in(&unclaimed) {
                return Err(if new.takes_whole_disk() {
                    "Invalid CREATE: a volume on a MOUNT disk takes all of its reserved disk".into()
                } else {
                    "Invalid CREATE: not enough reserved disk".into()
                });
            }
            let bound = match &agent_dir {
                Some(dir) => {
                    let (dir, whole_disk) = (new.dir(dir, &role), new.takes_whole_disk());
                    Some(off_runtime(move || volume_fs::create(&dir, size, whole_disk)).await??)
                }
                None => None,
            };
            if let Some(r) = self.reservation_mut(agent, &role, &labels) {
                r.volumes.push(Volume { bound, ..new });
            }
        }
        self.checkpoint_reservations(agent);
        Ok(())
    }

    /// DESTROY: volumes no task uses; their data is deleted (on a blocking thread).
    pub(super) async fn destroy_volumes(
        &mut self,
        agent: usize,
        volumes: &[mesos::Resource],
    ) -> Result<(), String> {
        let agent_dir = self.agents[agent].work_dir.clone();
        for volume in volumes {
            let (role, labels) = volume
                .dynamic_reservation()
                .ok_or("Invalid DESTROY: not reserved")?;
            let (id, _) = volume
                .persistence()
                .ok_or("Invalid DESTROY: not a volume")?;
            let Some(r) = self.reservation_mut(agent, &role, &labels) else {
                return Err("Invalid DESTROY: no such reservation".into());
            };
            let gone = match r.volumes.iter().position(|v| v.persistence_id == id) {
                Some(i) if r.volumes[i].in_use => {
                    return Err(format!("Invalid DESTROY: volume '{id}' is in use"))
                }
                Some(i) => r.volumes.remove(i),
                None => return Err(format!("Invalid DESTROY: no volume '{id}'")),
            };
            if let Some(dir) = &agent_dir {
                let (dir, whole_disk) = (gone.dir(dir, &role), gone.takes_whole_disk());
                off_runtime(move || volume_fs::destroy(&dir, whole_disk)).await?;
            }
        }
        self.checkpoint_reservations(agent);
        Ok(())
    }

    /// UNRESERVE: free reserved resources (no volume on them) become the offer's unreserved
    /// `remaining` again.
    pub(super) fn unreserve(
        &mut self,
        agent: usize,
        resources: &[mesos::Resource],
        remaining: &mut Resources,
    ) -> Result<(), String> {
        for resource in resources {
            let (role, labels) = resource
                .dynamic_reservation()
                .ok_or("Invalid UNRESERVE: not reserved")?;
            let amount = Resources::of_proto(std::slice::from_ref(resource));
            let Some(r) = self.reservation_mut(agent, &role, &labels) else {
                return Err("Invalid UNRESERVE: no such reservation".into());
            };
            let unclaimed = r
                .free
                .minus(&volumes_resources(r.volumes.iter().filter(|v| !v.in_use)));
            if !amount.fits_in(&unclaimed) {
                return Err("Invalid UNRESERVE: the resources are in use or not reserved".into());
            }
            r.total = r.total.minus(&amount);
            r.free = r.free.minus(&amount);
            *remaining = remaining.plus(&amount);
        }
        self.agents[agent].reservations.retain(|r| {
            r.total.is_useful()
                || r.total.disk > 0.0005
                || !r.total.ports.is_empty()
                || !r.total.disks.is_empty()
        });
        self.checkpoint_reservations(agent);
        Ok(())
    }

    /// Takes a task's share of its reservation; the volumes' directories to link, by the path
    /// in the sandbox.
    pub(super) fn take_reserved(
        &mut self,
        agent: usize,
        share: &ReservedUse,
    ) -> Result<Vec<(String, PathBuf)>, String> {
        let agent_dir = self.agents[agent].work_dir.clone();
        let Some(r) = self.reservation_mut(agent, &share.role, &share.labels) else {
            return Err("Task uses a reservation the agent does not have".into());
        };
        let unclaimed = r
            .free
            .minus(&volumes_resources(r.volumes.iter().filter(|v| !v.in_use)));
        if !share.resources.fits_in(&unclaimed) {
            return Err("Task uses more resources than the reservation has".into());
        }
        let mut mounts = Vec::new();
        for id in &share.volumes {
            let Some(volume) = r.volumes.iter().find(|v| &v.persistence_id == id) else {
                return Err(format!("Task uses volume '{id}', which does not exist"));
            };
            if volume.in_use {
                return Err(format!("Task uses volume '{id}', which another task uses"));
            }
            let dir = agent_dir
                .as_ref()
                .map(|d| volume.dir(d, &r.role))
                .unwrap_or_default();
            mounts.push((volume.container_path.clone(), dir));
        }
        let mut taken = share.resources.clone();
        for volume in r
            .volumes
            .iter_mut()
            .filter(|v| share.volumes.contains(&v.persistence_id))
        {
            volume.in_use = true;
            taken = taken.plus(&volume.resources());
        }
        r.free = r.free.minus(&taken);
        Ok(mounts)
    }

    /// A task on reserved resources ended: its share is free again.
    pub(super) fn return_reserved(&mut self, agent: usize, share: &ReservedUse) {
        if let Some(r) = self.reservation_mut(agent, &share.role, &share.labels) {
            let mut back = share.resources.clone();
            for volume in r
                .volumes
                .iter_mut()
                .filter(|v| share.volumes.contains(&v.persistence_id))
            {
                volume.in_use = false;
                back = back.plus(&volume.resources());
            }
            r.free = r.free.plus(&back);
        }
        self.allocation_pending = true;
    }

    /// The agent's free reserved resources for `role`, as an offer lists them.
    pub(super) fn offered_reservations(&self, agent: usize, role: &str) -> Vec<mesos::Resource> {
        self.agents[agent]
            .reservations
            .iter()
            .filter(|r| r.role == role)
            .flat_map(|r| reservation_resources(r, true))
            .collect()
    }

    fn checkpoint_reservations(&self, agent: usize) {
        let Some(dir) = &self.agents[agent].work_dir else {
            return;
        };
        let path = dir.join(CHECKPOINT);
        let written = serde_json::to_vec_pretty(&self.agents[agent].reservations)
            .map_err(std::io::Error::other)
            .and_then(|json| {
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, json)?;
                std::fs::rename(&tmp, &path)
            });
        if let Err(e) = written {
            tracing::error!("cannot checkpoint reservations to {}: {e}", path.display());
        }
    }
}

/// The reservations an agent checkpointed, all free (tasks recovered take their share after).
pub(super) fn load_reservations(agent_dir: &Path) -> std::io::Result<Vec<Reservation>> {
    match std::fs::read(agent_dir.join(CHECKPOINT)) {
        Ok(json) => {
            let mut reservations: Vec<Reservation> =
                serde_json::from_slice(&json).map_err(std::io::Error::other)?;
            for r in &mut reservations {
                r.free = r.total.clone();
                for volume in &r.volumes {
                    if let Some(bound) = &volume.bound {
                        volume_fs::remount(&volume.dir(agent_dir, &r.role), bound);
                    }
                }
            }
            Ok(reservations)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// A reservation's resources in Mesos' form: `free_only` lists what is not in use (an
/// offer), otherwise everything (`/master/state`). Volumes are disk with their persistence.
pub(super) fn reservation_resources(r: &Reservation, free_only: bool) -> Vec<mesos::Resource> {
    let amounts = if free_only { &r.free } else { &r.total };
    let volumes: Vec<&Volume> = r
        .volumes
        .iter()
        .filter(|v| !free_only || !v.in_use)
        .collect();
    let plain = amounts.minus(&volumes_resources(volumes.iter().copied()));
    let mut out = Vec::new();
    for (name, value) in [
        ("cpus", plain.cpus),
        ("mem", plain.mem),
        ("disk", plain.disk),
    ] {
        if value > 0.0005 {
            out.push(
                mesos::Resource::scalar(name, value, &r.role).reserved_for(&r.role, &r.labels),
            );
        }
    }
    for disk in &plain.disks {
        out.push(
            mesos::Resource::scalar("disk", disk.size_mb, &r.role)
                .on_disk_source(disk.at.source())
                .reserved_for(&r.role, &r.labels),
        );
    }
    if !amounts.ports.is_empty() {
        out.push(
            mesos::Resource::ranges(
                "ports",
                amounts.ports.iter().map(|&(b, e)| (b as u64, e as u64)),
                &r.role,
            )
            .reserved_for(&r.role, &r.labels),
        );
    }
    out.extend(volumes.iter().map(|v| {
        let volume = mesos::Resource::persistent_volume(
            v.size,
            &r.role,
            &r.labels,
            &v.persistence_id,
            &v.container_path,
        );
        match &v.source {
            Some(at) => volume.on_disk_source(at.source()),
            None => volume,
        }
    }));
    out
}
