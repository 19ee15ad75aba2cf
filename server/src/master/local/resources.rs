//! The master's resource arithmetic (scalars, inclusive port ranges and PATH/MOUNT disks), and
//! agent attributes and fault domains as Mesos writes them.

use crate::master::agent::TaskLaunch;
use crate::master::disks::{DiskKind, DiskRoot, HostDisk};
use crate::master::host::{AttributeValue, HostResources};
use crate::master::topology::FaultDomain;
use proto::mesos::v1 as mesos;

/// Inclusive port ranges sorted, with overlapping and adjacent ones merged.
pub(super) fn normalize_ranges(ranges: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut sorted: Vec<(u32, u32)> = ranges.iter().copied().filter(|(b, e)| b <= e).collect();
    sorted.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(sorted.len());
    for (begin, end) in sorted {
        match merged.last_mut() {
            Some(last) if begin <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => merged.push((begin, end)),
        }
    }
    merged
}

/// `from` without `taken`, both normalized.
pub(super) fn subtract_ranges(from: &[(u32, u32)], taken: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut next_taken = 0;
    for &(begin, end) in from {
        // u64, so that one past the end of a range cannot overflow.
        let (mut start, end) = (u64::from(begin), u64::from(end));
        while next_taken < taken.len() && u64::from(taken[next_taken].1) < start {
            next_taken += 1;
        }
        let mut index = next_taken;
        while start <= end && index < taken.len() && u64::from(taken[index].0) <= end {
            let (t_begin, t_end) = (u64::from(taken[index].0), u64::from(taken[index].1));
            if t_begin > start {
                out.push((start as u32, (t_begin - 1) as u32));
            }
            start = start.max(t_end + 1);
            index += 1;
        }
        if start <= end {
            out.push((start as u32, end as u32));
        }
    }
    out
}

/// Scalar resources, port ranges and disks beside the root disk, as the master accounts for
/// them.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct Resources {
    pub(super) cpus: f64,
    pub(super) mem: f64,
    /// The root disk.
    pub(super) disk: f64,
    pub(super) ports: Vec<(u32, u32)>,
    /// PATH and MOUNT disks, one entry per disk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) disks: Vec<HostDisk>,
}

/// Mesos keeps three decimal digits of scalars.
const PRECISION: f64 = 0.0005;

impl Resources {
    pub(super) fn from_host(host: &HostResources) -> Resources {
        Resources {
            cpus: host.cpus,
            mem: host.mem_mb,
            disk: host.disk_mb,
            ports: host.ports.clone(),
            disks: host.disks.clone(),
        }
    }

    /// `size` MiB of the disk `at`.
    pub(super) fn on_disk(at: &DiskRoot, size: f64) -> Resources {
        Resources {
            disks: vec![HostDisk {
                at: at.clone(),
                size_mb: size,
            }],
            ..Resources::default()
        }
    }

    pub(super) fn of_launch(launch: &TaskLaunch) -> Resources {
        Resources {
            cpus: launch.cpus,
            mem: launch.mem_mb,
            disk: launch.disk_mb,
            ports: launch.ports.iter().map(|&p| (p, p)).collect(),
            disks: Vec::new(),
        }
    }

    /// The resources' amounts; a disk of a kind the agent does not have (BLOCK, RAW) counts
    /// as root disk it does not have either, so that it never fits.
    pub(super) fn of_proto(resources: &[mesos::Resource]) -> Resources {
        let mut r = Resources::default();
        for resource in resources {
            let scalar = resource.scalar.as_ref().map_or(0.0, |s| s.value);
            match resource.name.as_str() {
                "cpus" => r.cpus += scalar,
                "mem" => r.mem += scalar,
                "disk" => match DiskRoot::of_resource(resource) {
                    Ok(None) => r.disk += scalar,
                    Ok(Some(at)) => r = r.plus(&Resources::on_disk(&at, scalar)),
                    Err(_) => r.disk += f64::INFINITY,
                },
                "ports" => r.ports.extend(
                    resource
                        .ranges
                        .iter()
                        .flat_map(|rs| rs.range.iter())
                        .map(|range| (range.begin as u32, range.end as u32)),
                ),
                _ => {}
            }
        }
        r
    }

    pub(super) fn port_list(&self) -> Vec<u32> {
        self.ports.iter().flat_map(|&(b, e)| b..=e).collect()
    }

    /// How much of the disk `at` there is.
    pub(super) fn disk_at(&self, at: &DiskRoot) -> f64 {
        self.disks
            .iter()
            .filter(|d| d.at == *at)
            .map(|d| d.size_mb)
            .sum()
    }

    /// `self` minus `used`; ports by value.
    pub(super) fn minus(&self, used: &Resources) -> Resources {
        let disks = self
            .disks
            .iter()
            .map(|d| HostDisk {
                at: d.at.clone(),
                size_mb: d.size_mb - used.disk_at(&d.at),
            })
            .filter(|d| d.size_mb > PRECISION)
            .collect();
        Resources {
            cpus: (self.cpus - used.cpus).max(0.0),
            mem: (self.mem - used.mem).max(0.0),
            disk: (self.disk - used.disk).max(0.0),
            ports: subtract_ranges(
                &normalize_ranges(&self.ports),
                &normalize_ranges(&used.ports),
            ),
            disks,
        }
    }

    pub(super) fn plus(&self, other: &Resources) -> Resources {
        let mut ports = self.ports.clone();
        ports.extend(other.ports.iter().copied());
        let mut disks = self.disks.clone();
        for more in &other.disks {
            match disks.iter_mut().find(|d| d.at == more.at) {
                Some(d) => d.size_mb += more.size_mb,
                None => disks.push(more.clone()),
            }
        }
        Resources {
            cpus: self.cpus + other.cpus,
            mem: self.mem + other.mem,
            disk: self.disk + other.disk,
            ports: normalize_ranges(&ports),
            disks,
        }
    }

    /// Whether `self` fits into `available` (with Mesos' three-decimal precision). A MOUNT
    /// disk cannot be divided: only all of it fits.
    pub(super) fn fits_in(&self, available: &Resources) -> bool {
        let wanted = normalize_ranges(&self.ports);
        let disk_fits = |d: &HostDisk| {
            let there = available.disk_at(&d.at);
            d.size_mb <= there + PRECISION
                && (d.at.kind == DiskKind::Path || d.size_mb + PRECISION >= there)
        };
        self.cpus <= available.cpus + PRECISION
            && self.mem <= available.mem + PRECISION
            && self.disk <= available.disk + PRECISION
            && self.disks.iter().all(disk_fits)
            && subtract_ranges(&wanted, &normalize_ranges(&available.ports)).is_empty()
    }

    pub(super) fn is_useful(&self) -> bool {
        self.cpus >= 0.01 || self.mem >= 1.0
    }

    /// As Mesos' state endpoints write resources: scalars (disk counting every disk), and
    /// ports as `[b-e,b-e]`.
    pub(super) fn to_json(&self) -> serde_json::Value {
        let ports: Vec<String> = self.ports.iter().map(|(b, e)| format!("{b}-{e}")).collect();
        serde_json::json!({
            "cpus": self.cpus,
            "mem": self.mem,
            "disk": self.disk + self.disks.iter().map(|d| d.size_mb).sum::<f64>(),
            "ports": format!("[{}]", ports.join(",")),
        })
    }

    pub(super) fn to_proto(&self) -> Vec<mesos::Resource> {
        // Mesos keeps three decimal digits of scalars.
        let scalar = |name: &str, value: f64| {
            mesos::Resource::scalar(name, (value * 1000.0).floor() / 1000.0, "*")
        };
        let mut out = vec![
            scalar("cpus", self.cpus),
            scalar("mem", self.mem),
            scalar("disk", self.disk),
        ];
        if !self.ports.is_empty() {
            out.push(mesos::Resource::ranges(
                "ports",
                self.ports.iter().map(|&(b, e)| (b as u64, e as u64)),
                "*",
            ));
        }
        out.extend(
            self.disks
                .iter()
                .map(|d| scalar("disk", d.size_mb).on_disk_source(d.at.source())),
        );
        out
    }
}

pub(super) fn domain_of(domain: &FaultDomain) -> mesos::DomainInfo {
    use mesos::domain_info::fault_domain::{RegionInfo, ZoneInfo};
    mesos::DomainInfo {
        fault_domain: Some(mesos::domain_info::FaultDomain {
            region: RegionInfo {
                name: domain.region.clone(),
            },
            zone: ZoneInfo {
                name: domain.zone.clone(),
            },
        }),
    }
}

/// Each attribute's name and its value as Mesos prints it (`rack: r1`, `weight: 2.5`).
pub(super) fn attribute_texts(attributes: &[(String, AttributeValue)]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|attribute| {
            let attribute = attribute_of(attribute);
            let text = attribute.canonical_text();
            (attribute.name, text)
        })
        .collect()
}

pub(super) fn attribute_of((name, value): &(String, AttributeValue)) -> mesos::Attribute {
    let mut attribute = mesos::Attribute {
        name: name.clone(),
        ..Default::default()
    };
    match value {
        AttributeValue::Text(text) => {
            attribute.set_type(mesos::value::Type::Text);
            attribute.text = Some(mesos::value::Text {
                value: text.clone(),
            });
        }
        AttributeValue::Scalar(v) => {
            attribute.set_type(mesos::value::Type::Scalar);
            attribute.scalar = Some(mesos::value::Scalar { value: *v });
        }
        AttributeValue::Ranges(ranges) => {
            attribute.set_type(mesos::value::Type::Ranges);
            attribute.ranges = Some(mesos::value::Ranges {
                range: ranges
                    .iter()
                    .map(|&(begin, end)| mesos::value::Range { begin, end })
                    .collect(),
            });
        }
    }
    attribute
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn port_range_arithmetic_matches_sets_of_ports(
            from in proptest::collection::vec((31000u32..31060, 0u32..8), 0..6),
            taken in proptest::collection::vec((31000u32..31060, 0u32..8), 0..6),
        ) {
            let ranges = |spec: &[(u32, u32)]| -> Vec<(u32, u32)> {
                spec.iter().map(|&(begin, length)| (begin, begin + length)).collect()
            };
            let ports = |ranges: &[(u32, u32)]| -> std::collections::BTreeSet<u32> {
                ranges.iter().flat_map(|&(b, e)| b..=e).collect()
            };
            let (from, taken) = (normalize_ranges(&ranges(&from)), normalize_ranges(&ranges(&taken)));
            let left = subtract_ranges(&from, &taken);
            let expected: std::collections::BTreeSet<u32> =
                ports(&from).difference(&ports(&taken)).copied().collect();
            proptest::prop_assert_eq!(ports(&left), expected);
            proptest::prop_assert_eq!(normalize_ranges(&left), left.clone(), "normalized");
        }
    }

    #[test]
    fn resource_arithmetic_splits_port_ranges() {
        let total = Resources {
            cpus: 2.0,
            mem: 1024.0,
            disk: 100.0,
            ports: vec![(31000, 31010)],
            disks: vec![],
        };
        let used = Resources {
            cpus: 0.5,
            mem: 128.0,
            disk: 0.0,
            ports: vec![(31000, 31000), (31005, 31005)],
            disks: vec![],
        };
        let free = total.minus(&used);
        assert_eq!(free.ports, vec![(31001, 31004), (31006, 31010)]);
        assert!((free.cpus - 1.5).abs() < 1e-9);
        assert!(used.fits_in(&total));
        assert!(!used.fits_in(&free));
    }

    #[test]
    fn a_path_disk_divides_and_a_mount_disk_goes_whole() {
        let path = DiskRoot {
            kind: DiskKind::Path,
            root: "/srv/p".into(),
        };
        let mount = DiskRoot {
            kind: DiskKind::Mount,
            root: "/mnt/m".into(),
        };
        let total = Resources::on_disk(&path, 1000.0).plus(&Resources::on_disk(&mount, 500.0));
        let part = Resources::on_disk(&path, 300.0);
        assert!(part.fits_in(&total));
        let left = total.minus(&part);
        assert_eq!(left.disk_at(&path), 700.0);
        assert!(
            !Resources::on_disk(&mount, 200.0).fits_in(&total),
            "part of a mount"
        );
        let whole = Resources::on_disk(&mount, 500.0);
        assert!(whole.fits_in(&total));
        assert!(total.minus(&whole).disks.iter().all(|d| d.at != mount));
        assert_eq!(left.plus(&part), total);
        assert!(!Resources::on_disk(&path, 1.0).fits_in(&Resources::default()));
    }
}
