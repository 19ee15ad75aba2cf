//! Disks beside an agent's root disk (Mesos' PATH and MOUNT disk sources), and which of them a
//! resident app's `path` and `mount` volumes go on (SEMANTICS.md §14, Marathon's
//! `ResourceMatcher`):
//!
//! - a **path** volume takes its size out of a PATH disk, which several volumes can share; the
//!   disk with the most room left is chosen, so that volumes spread out;
//! - a **mount** volume takes a MOUNT disk whole: the smallest disk of at least `size` (and at
//!   most `maxSize`) is chosen, and the volume grows to the disk's size;
//! - both only go on a disk whose root path its `persistent.constraints` allow
//!   (`["path", "LIKE"|"UNLIKE", regex]`) and whose profile is the volume's `profileName` (no
//!   profile matches a disk without one).
//!
//! Volumes are placed biggest first, as Marathon does.

use super::constraint::RegexCache;
use app::model::{AppDefinition, DiskType};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The kind of a disk that is not the root disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A directory: volumes take parts of it.
    Path,
    /// A mounted file system: one volume takes all of it.
    Mount,
}

/// Where a disk is: its kind, its root directory on the agent, and its profile if it has one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DiskSource {
    pub kind: SourceKind,
    pub root: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// An unreserved disk of an offer, with its size.
#[derive(Clone, Debug, PartialEq)]
pub struct OfferedDisk {
    pub source: DiskSource,
    pub size_mib: f64,
}

/// A `persistent.constraints` entry: the disk's root path must (not) match the regex whole.
#[derive(Clone, Debug)]
enum PathRule {
    Like(Arc<Regex>),
    Unlike(Arc<Regex>),
    /// Not a rule a disk can satisfy (validation refuses these; a stored one matches nothing).
    Never,
}

impl PathRule {
    fn allows(&self, root: &str) -> bool {
        match self {
            PathRule::Like(regex) => regex.is_match(root),
            PathRule::Unlike(regex) => !regex.is_match(root),
            PathRule::Never => false,
        }
    }
}

/// One of an app's path or mount volumes, as placement looks at it.
#[derive(Clone, Debug)]
pub struct VolumeNeed {
    /// Its position in the app's persistent volumes.
    pub index: usize,
    pub kind: SourceKind,
    pub size_mib: f64,
    pub max_size_mib: Option<f64>,
    pub profile: Option<String>,
    rules: Vec<PathRule>,
}

impl VolumeNeed {
    fn accepts(&self, disk: &OfferedDisk) -> bool {
        disk.source.kind == self.kind
            && disk.source.profile == self.profile
            && self.rules.iter().all(|rule| rule.allows(&disk.source.root))
            && match self.kind {
                SourceKind::Path => disk.size_mib + EPSILON >= self.size_mib,
                SourceKind::Mount => {
                    disk.size_mib + EPSILON >= self.size_mib
                        && self
                            .max_size_mib
                            .is_none_or(|max| disk.size_mib <= max + EPSILON)
                }
            }
    }
}

/// A volume placed on a disk: the disk it is on and how much of it it takes.
#[derive(Clone, Debug, PartialEq)]
pub struct PlacedVolume {
    /// Its position in the app's persistent volumes.
    pub index: usize,
    pub source: DiskSource,
    pub size_mib: f64,
}

const EPSILON: f64 = 1e-9;

/// `app`'s volumes that need a disk other than the root disk, biggest first; the MiB its root
/// volumes take is [`root_volume_disk`].
pub fn volume_needs(app: &AppDefinition, regexes: &mut RegexCache) -> Vec<VolumeNeed> {
    let mut needs: Vec<VolumeNeed> = app
        .persistent_volumes()
        .into_iter()
        .enumerate()
        .filter_map(|(index, (_, volume))| {
            let persistent = volume.persistent;
            let kind = match persistent.disk_type {
                DiskType::Root => return None,
                DiskType::Path => SourceKind::Path,
                DiskType::Mount => SourceKind::Mount,
            };
            let rules = persistent
                .constraints
                .iter()
                .map(|c| path_rule(c, regexes))
                .collect();
            Some(VolumeNeed {
                index,
                kind,
                size_mib: persistent.size.max(0) as f64,
                max_size_mib: persistent.max_size.map(|m| m as f64),
                profile: persistent.profile_name,
                rules,
            })
        })
        .collect();
    needs.sort_by(|a, b| b.size_mib.total_cmp(&a.size_mib));
    needs
}

fn path_rule(constraint: &[String], regexes: &mut RegexCache) -> PathRule {
    let [field, operator, pattern] = constraint else {
        return PathRule::Never;
    };
    if field != "path" {
        return PathRule::Never;
    }
    match (operator.as_str(), regexes.full_match(pattern)) {
        ("LIKE", Some(regex)) => PathRule::Like(regex),
        ("UNLIKE", Some(regex)) => PathRule::Unlike(regex),
        _ => PathRule::Never,
    }
}

/// MiB of `app`'s volumes on the root disk.
pub fn root_volume_disk(app: &AppDefinition) -> f64 {
    app.persistent_volumes()
        .iter()
        .filter(|(_, v)| v.persistent.disk_type == DiskType::Root)
        .map(|(_, v)| v.persistent.size.max(0) as f64)
        .sum()
}

/// Places every one of `needs` (biggest first) on `disks`, taking what they use out of
/// `disks`; `None`, and `disks` untouched, when one of them finds no disk.
pub fn place_volumes(
    needs: &[VolumeNeed],
    disks: &mut Vec<OfferedDisk>,
) -> Option<Vec<PlacedVolume>> {
    if needs.is_empty() {
        return Some(Vec::new());
    }
    let mut left = disks.clone();
    let mut placed = Vec::with_capacity(needs.len());
    for need in needs {
        let candidates = left
            .iter()
            .enumerate()
            .filter(|(_, disk)| need.accepts(disk));
        let chosen = match need.kind {
            SourceKind::Path => candidates.max_by(|a, b| a.1.size_mib.total_cmp(&b.1.size_mib)),
            SourceKind::Mount => candidates.min_by(|a, b| a.1.size_mib.total_cmp(&b.1.size_mib)),
        };
        let (at, _) = chosen?;
        let size_mib = match need.kind {
            SourceKind::Path => {
                left[at].size_mib -= need.size_mib;
                let source = left[at].source.clone();
                if left[at].size_mib <= EPSILON {
                    left.remove(at);
                }
                placed.push(PlacedVolume {
                    index: need.index,
                    source,
                    size_mib: need.size_mib,
                });
                continue;
            }
            SourceKind::Mount => left[at].size_mib,
        };
        let disk = left.remove(at);
        placed.push(PlacedVolume {
            index: need.index,
            source: disk.source,
            size_mib,
        });
    }
    *disks = left;
    Some(placed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::app_with;
    use proptest::prelude::*;

    fn disk(kind: SourceKind, root: &str, size_mib: f64) -> OfferedDisk {
        OfferedDisk {
            source: DiskSource {
                kind,
                root: root.into(),
                profile: None,
            },
            size_mib,
        }
    }

    fn app_with_volumes(volumes: serde_json::Value) -> AppDefinition {
        let mut app = app_with(1, 0);
        app.container = Some(serde_json::json!({ "type": "MESOS", "volumes": volumes }));
        app
    }

    fn needs_of(volumes: serde_json::Value) -> Vec<VolumeNeed> {
        volume_needs(&app_with_volumes(volumes), &mut RegexCache::default())
    }

    #[test]
    fn a_mount_volume_takes_the_smallest_disk_that_fits_whole() {
        let needs = needs_of(serde_json::json!([
            {"containerPath": "data", "mode": "RW",
             "persistent": {"type": "mount", "size": 500, "maxSize": 3000}}
        ]));
        let mut disks = vec![
            disk(SourceKind::Mount, "/mnt/big", 4000.0),
            disk(SourceKind::Mount, "/mnt/small", 400.0),
            disk(SourceKind::Mount, "/mnt/mid", 2000.0),
            disk(SourceKind::Path, "/srv/path", 1000.0),
        ];
        let placed = place_volumes(&needs, &mut disks).expect("fits on /mnt/mid");
        assert_eq!(placed[0].source.root, "/mnt/mid");
        assert_eq!(placed[0].size_mib, 2000.0, "the volume grows to the disk");
        let roots: Vec<&str> = disks.iter().map(|d| d.source.root.as_str()).collect();
        assert_eq!(roots, ["/mnt/big", "/mnt/small", "/srv/path"]);
        // No mount disk between size and maxSize: nothing placed, nothing taken.
        let mut only_big = vec![disk(SourceKind::Mount, "/mnt/big", 4000.0)];
        assert_eq!(place_volumes(&needs, &mut only_big), None);
        assert_eq!(only_big.len(), 1);
    }

    #[test]
    fn path_volumes_share_the_roomiest_path_disk() {
        let needs = needs_of(serde_json::json!([
            {"containerPath": "a", "mode": "RW", "persistent": {"type": "path", "size": 300}},
            {"containerPath": "b", "mode": "RW", "persistent": {"type": "path", "size": 600}},
            {"containerPath": "r", "mode": "RW", "persistent": {"size": 50}}
        ]));
        assert_eq!(needs.len(), 2, "the root volume is not a disk's");
        let mut disks = vec![
            disk(SourceKind::Path, "/srv/one", 1000.0),
            disk(SourceKind::Path, "/srv/two", 700.0),
        ];
        let placed = place_volumes(&needs, &mut disks).unwrap();
        // The bigger (b, index 1) goes first onto the roomiest disk; a then onto /srv/two,
        // which has more left than /srv/one's 400.
        assert_eq!(
            (placed[0].index, placed[0].source.root.as_str()),
            (1, "/srv/one")
        );
        assert_eq!(
            (placed[1].index, placed[1].source.root.as_str()),
            (0, "/srv/two")
        );
        assert_eq!(disks[0].size_mib, 400.0);
        assert_eq!(disks[1].size_mib, 400.0);
    }

    #[test]
    fn path_constraints_and_profiles_choose_the_disk() {
        let needs = needs_of(serde_json::json!([
            {"containerPath": "d", "mode": "RW",
             "persistent": {"type": "path", "size": 10, "constraints": [["path", "LIKE", "/ssd/.*"]]}}
        ]));
        let mut disks = vec![
            disk(SourceKind::Path, "/hdd/1", 5000.0),
            disk(SourceKind::Path, "/ssd/1", 100.0),
        ];
        let placed = place_volumes(&needs, &mut disks).unwrap();
        assert_eq!(placed[0].source.root, "/ssd/1");
        let unlike = needs_of(serde_json::json!([
            {"containerPath": "d", "mode": "RW",
             "persistent": {"type": "path", "size": 10, "constraints": [["path", "UNLIKE", "/ssd/.*"]]}}
        ]));
        let placed = place_volumes(&unlike, &mut disks).unwrap();
        assert_eq!(placed[0].source.root, "/hdd/1");
        let profiled = needs_of(serde_json::json!([
            {"containerPath": "d", "mode": "RW",
             "persistent": {"type": "path", "size": 10, "profileName": "fast"}}
        ]));
        assert_eq!(
            place_volumes(&profiled, &mut disks),
            None,
            "no disk has the profile"
        );
        disks[0].source.profile = Some("fast".into());
        assert_eq!(
            place_volumes(&profiled, &mut disks).unwrap()[0].source.root,
            "/hdd/1"
        );
    }

    proptest! {
        /// Whatever the volumes and disks: every volume is on a disk of its kind that existed,
        /// no disk gives more than it had, a mount disk goes to one volume whole, and what is
        /// left is the rest.
        #[test]
        fn placed_volumes_fit_their_disks(
            volumes in prop::collection::vec((any::<bool>(), 1i64..400), 0..5),
            offered in prop::collection::vec((any::<bool>(), 1u32..800), 0..6),
        ) {
            let volumes: Vec<serde_json::Value> = volumes
                .iter()
                .enumerate()
                .map(|(i, (mount, size))| serde_json::json!({
                    "containerPath": format!("v{i}"), "mode": "RW",
                    "persistent": {"type": if *mount { "mount" } else { "path" }, "size": size}
                }))
                .collect();
            let needs = needs_of(serde_json::Value::Array(volumes));
            let before: Vec<OfferedDisk> = offered
                .iter()
                .enumerate()
                .map(|(i, (mount, size))| {
                    let kind = if *mount { SourceKind::Mount } else { SourceKind::Path };
                    disk(kind, &format!("/d{i}"), f64::from(*size))
                })
                .collect();
            let mut disks = before.clone();
            let Some(placed) = place_volumes(&needs, &mut disks) else {
                prop_assert_eq!(&disks, &before);
                return Ok(());
            };
            prop_assert_eq!(placed.len(), needs.len());
            for original in &before {
                let on_it: Vec<&PlacedVolume> =
                    placed.iter().filter(|p| p.source == original.source).collect();
                let taken: f64 = on_it.iter().map(|p| p.size_mib).sum();
                let left: f64 = disks
                    .iter()
                    .filter(|d| d.source == original.source)
                    .map(|d| d.size_mib)
                    .sum();
                prop_assert!((taken + left - original.size_mib).abs() < 1e-6);
                if original.source.kind == SourceKind::Mount && !on_it.is_empty() {
                    prop_assert_eq!(on_it.len(), 1);
                    prop_assert_eq!(on_it[0].size_mib, original.size_mib);
                }
            }
            for p in &placed {
                let need = needs.iter().find(|n| n.index == p.index).unwrap();
                prop_assert_eq!(need.kind, p.source.kind);
                prop_assert!(p.size_mib + 1e-9 >= need.size_mib);
            }
        }
    }
}
