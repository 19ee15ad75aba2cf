//! Disks a built-in agent offers beside its root disk, for persistent volumes: Mesos' PATH
//! disks (a directory that volumes take parts of) and MOUNT disks (a file system that one
//! volume takes whole), declared in `--agent-resources` in Mesos' JSON form:
//!
//! ```text
//! [{"name":"disk","type":"SCALAR","scalar":{"value":2048},
//!   "disk":{"source":{"type":"MOUNT","mount":{"root":"disks/fast"}}}}]
//! ```
//!
//! As in Mesos, a relative root is under the agent's work dir, so that every agent of one
//! machine has disks of its own. A MOUNT root that is not a mount point yet gets a file system
//! of the disk's size when a volume is created on it (`local::volume_fs`).

use super::host::HostResources;
use proto::mesos::v1 as mesos;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DiskKind {
    Path,
    Mount,
}

/// Which disk: its kind and root directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DiskRoot {
    pub kind: DiskKind,
    pub root: String,
}

/// A disk and an amount of it in MiB (all of it, for what an agent offers).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostDisk {
    #[serde(flatten)]
    pub at: DiskRoot,
    pub size_mb: f64,
}

impl DiskRoot {
    /// Mesos' disk source for it.
    pub fn source(&self) -> mesos::resource::disk_info::Source {
        use mesos::resource::disk_info::source::Type;
        let kind = match self.kind {
            DiskKind::Path => Type::Path,
            DiskKind::Mount => Type::Mount,
        };
        mesos::resource::disk_info::Source::at_root(kind, &self.root, None)
    }

    /// The disk a resource is on, if it is a PATH or MOUNT disk; `Err` for the kinds the
    /// built-in agent does not have (BLOCK, RAW).
    pub fn of_resource(resource: &mesos::Resource) -> Result<Option<DiskRoot>, String> {
        use mesos::resource::disk_info::source::Type;
        let Some(source) = resource.disk_source() else {
            return Ok(None);
        };
        let kind = match source.r#type() {
            Type::Path => DiskKind::Path,
            Type::Mount => DiskKind::Mount,
            other => {
                return Err(format!(
                    "{} disks are not supported by the built-in agent",
                    other.as_str_name()
                ))
            }
        };
        Ok(Some(DiskRoot {
            kind,
            root: source.root().to_string(),
        }))
    }
}

/// `resources` with every relative disk root made absolute under `work_dir`.
pub fn rooted_under(mut resources: HostResources, work_dir: &Path) -> HostResources {
    for disk in &mut resources.disks {
        if Path::new(&disk.at.root).is_relative() {
            disk.at.root = work_dir.join(&disk.at.root).to_string_lossy().into_owned();
        }
    }
    resources
}

/// Applies resources in Mesos' JSON form (an array of `Resource`) to `resources`: the named
/// scalars and ports are replaced; if any PATH or MOUNT disk is listed, they replace the
/// agent's disks.
pub(super) fn apply_json(resources: &mut HostResources, spec: &str) -> Result<(), String> {
    let items: Vec<serde_json::Value> =
        serde_json::from_str(spec).map_err(|e| format!("not a JSON array of resources: {e}"))?;
    let mut disks = Vec::new();
    for item in items {
        let text = item.to_string();
        let resource: mesos::Resource = proto::json::from_json(text.as_bytes())
            .map_err(|e| format!("{text} is not a Mesos resource: {e}"))?;
        if resource.role.as_deref().is_some_and(|r| r != "*")
            || resource.reservation.is_some()
            || !resource.reservations.is_empty()
        {
            return Err(format!(
                "{text}: the built-in agent has no static reservations (leave out the role)"
            ));
        }
        let scalar = || {
            resource
                .scalar
                .as_ref()
                .map(|s| s.value)
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("{text}: needs a non-negative scalar value"))
        };
        match resource.name.as_str() {
            "cpus" => resources.cpus = scalar()?,
            "mem" => resources.mem_mb = scalar()?,
            "disk" => match DiskRoot::of_resource(&resource).map_err(|e| format!("{text}: {e}"))? {
                None => resources.disk_mb = scalar()?,
                Some(at) if at.root.is_empty() => {
                    return Err(format!("{text}: a PATH or MOUNT disk needs a root"))
                }
                Some(at) if disks.iter().any(|d: &HostDisk| d.at.root == at.root) => {
                    return Err(format!("{text}: two disks have the root '{}'", at.root))
                }
                Some(at) => disks.push(HostDisk {
                    at,
                    size_mb: scalar()?,
                }),
            },
            "ports" => {
                let ranges = resource
                    .ranges
                    .as_ref()
                    .map(|r| r.range.as_slice())
                    .unwrap_or_default();
                resources.ports = ranges
                    .iter()
                    .map(|r| match (u32::try_from(r.begin), u32::try_from(r.end)) {
                        (Ok(b), Ok(e)) if b <= e && e <= 65535 => Ok((b, e)),
                        _ => Err(format!("{text}: {}-{} is not a port range", r.begin, r.end)),
                    })
                    .collect::<Result<_, _>>()?;
            }
            other => {
                return Err(format!(
                    "unknown resource '{other}' (expected cpus, mem, disk or ports)"
                ))
            }
        }
    }
    if !disks.is_empty() {
        resources.disks = disks;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_resources_declare_path_and_mount_disks() {
        let mut resources = HostResources {
            cpus: 2.0,
            mem_mb: 1000.0,
            disk_mb: 5000.0,
            ports: vec![(31000, 32000)],
            disks: vec![],
        };
        resources
            .apply_overrides(
                r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":3}},
                    {"name":"disk","type":"SCALAR","scalar":{"value":2048},
                     "disk":{"source":{"type":"MOUNT","mount":{"root":"disks/m1"}}}},
                    {"name":"disk","type":"SCALAR","scalar":{"value":512},
                     "disk":{"source":{"type":"PATH","path":{"root":"/srv/p"}}}},
                    {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":40000,"end":40009}]}}]"#,
            )
            .unwrap();
        assert_eq!((resources.cpus, resources.disk_mb), (3.0, 5000.0));
        assert_eq!(resources.ports, vec![(40000, 40009)]);
        assert_eq!(
            resources.disks,
            vec![
                HostDisk {
                    at: DiskRoot {
                        kind: DiskKind::Mount,
                        root: "disks/m1".into()
                    },
                    size_mb: 2048.0
                },
                HostDisk {
                    at: DiskRoot {
                        kind: DiskKind::Path,
                        root: "/srv/p".into()
                    },
                    size_mb: 512.0
                },
            ]
        );
        let rooted = rooted_under(resources, Path::new("/data/agents/n1"));
        assert_eq!(rooted.disks[0].at.root, "/data/agents/n1/disks/m1");
        assert_eq!(rooted.disks[1].at.root, "/srv/p", "absolute roots stay");
    }

    #[test]
    fn json_resources_refuse_what_the_agent_cannot_offer() {
        let mut resources = HostResources::default();
        for bad in [
            r#"{"name":"cpus"}"#,
            r#"[{"name":"gpus","type":"SCALAR","scalar":{"value":1}}]"#,
            r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1},"role":"data"}]"#,
            r#"[{"name":"disk","type":"SCALAR","scalar":{"value":1},
                 "disk":{"source":{"type":"BLOCK"}}}]"#,
            r#"[{"name":"disk","type":"SCALAR","scalar":{"value":1},
                 "disk":{"source":{"type":"PATH","path":{}}}}]"#,
            r#"[{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":70000,"end":70001}]}}]"#,
        ] {
            assert!(
                resources.apply_overrides(bad).is_err(),
                "{bad} was accepted"
            );
        }
        assert_eq!(resources, HostResources::default());
    }
}
