//! Virtual IPs in DC/OS's form: a port label `VIP_<n>` whose value is an address
//! (`127.77.0.10:8080`) or a name (`/my-app:80`). A named VIP gets an address from
//! `--vip-range` (default `127.77.0.0/16`, local on Linux without any set-up), worked out from
//! the name alone so that every balancer (the leader's and each `stride lb`) gives it the same
//! one without sharing state: the name's hash picks a slot, and names that hash to one slot take
//! the next free ones in name order. Every app whose port carries the same VIP is behind it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

/// What a `VIP_<n>` label says.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VipLabel {
    /// `/name:port`: an address from the range.
    Named { name: String, port: u16 },
    /// `ip:port`: this address.
    Address { ip: IpAddr, port: u16 },
}

impl VipLabel {
    /// Parses a label's value; `None` for what is neither form.
    pub fn parse(value: &str) -> Option<VipLabel> {
        let (host, port) = value.trim().rsplit_once(':')?;
        let port: u16 = port.parse().ok().filter(|&p| p > 0)?;
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Some(VipLabel::Address { ip, port });
        }
        let name = host.trim_start_matches('/');
        let valid = !name.is_empty()
            && name.split('/').all(|segment| {
                !segment.is_empty()
                    && segment
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            });
        valid.then(|| VipLabel::Named {
            name: format!("/{name}"),
            port,
        })
    }

    /// How it is written in a label (`/name:port` or `ip:port`).
    pub fn text(&self) -> String {
        match self {
            VipLabel::Named { name, port } => format!("{name}:{port}"),
            VipLabel::Address { ip, port } => format!("{ip}:{port}"),
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            VipLabel::Named { port, .. } | VipLabel::Address { port, .. } => *port,
        }
    }
}

/// The labels of a port that declare VIPs (`VIP_0`, `VIP_1`, …), parsed.
pub fn vips_of(labels: &BTreeMap<String, String>) -> Vec<VipLabel> {
    labels
        .iter()
        .filter(|(key, _)| {
            key.strip_prefix("VIP_")
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
        .filter_map(|(_, value)| VipLabel::parse(value))
        .collect()
}

/// Where named VIPs get their addresses: an IPv4 network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipRange {
    network: u32,
    prefix: u8,
}

impl Default for VipRange {
    fn default() -> Self {
        VipRange {
            network: u32::from(Ipv4Addr::new(127, 77, 0, 0)),
            prefix: 16,
        }
    }
}

impl FromStr for VipRange {
    type Err = String;

    /// `a.b.c.d/len`, with room for at least two addresses.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (ip, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text} is not a network like 127.77.0.0/16"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("{ip} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|&p| p <= 30)
            .ok_or_else(|| format!("/{prefix} is not a prefix length of 0 to 30"))?;
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        Ok(VipRange {
            network: u32::from(ip) & mask,
            prefix,
        })
    }
}

impl VipRange {
    /// How many addresses it hands out (all but the network's and the broadcast address).
    fn slots(self) -> u32 {
        (1u32 << (32 - u32::from(self.prefix))) - 2
    }

    fn address(self, slot: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 1 + slot)
    }
}

/// FNV-1a: stable across processes and versions, unlike the standard hasher.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The address of each of `names` in `range`; `None` for the names that do not fit (more names
/// than addresses).
pub fn addresses(names: &BTreeSet<String>, range: VipRange) -> BTreeMap<String, Ipv4Addr> {
    let slots = range.slots();
    let mut taken: BTreeSet<u32> = BTreeSet::new();
    let mut out = BTreeMap::new();
    for name in names.iter().take(slots as usize) {
        let mut slot = (fnv1a(name) % u64::from(slots)) as u32;
        while !taken.insert(slot) {
            slot = (slot + 1) % slots;
        }
        out.insert(name.clone(), range.address(slot));
    }
    out
}

/// A VIP's DNS name, as Mesos-DNS names an app (`/prod/api` → `api-prod`), under
/// `l4lb.<framework>.mesos`.
pub fn dns_name(vip_name: &str, framework: &str) -> String {
    let label: Vec<&str> = vip_name.trim_matches('/').split('/').rev().collect();
    format!("{}.l4lb.{framework}.mesos", label.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn labels_name_an_address_or_a_name() {
        assert_eq!(
            VipLabel::parse("/prod/api:80"),
            Some(VipLabel::Named {
                name: "/prod/api".into(),
                port: 80
            })
        );
        assert_eq!(
            VipLabel::parse("my-app:8080").map(|v| v.text()),
            Some("/my-app:8080".into())
        );
        assert_eq!(
            VipLabel::parse("127.77.0.10:9090"),
            Some(VipLabel::Address {
                ip: "127.77.0.10".parse().unwrap(),
                port: 9090
            })
        );
        for bad in ["/app", "/app:0", "/app:x", ":80", "/a b:80", "/a//b:80"] {
            assert_eq!(VipLabel::parse(bad), None, "{bad}");
        }
        let labels = BTreeMap::from([
            ("VIP_0".to_string(), "/web:80".to_string()),
            ("VIP_X".to_string(), "/other:80".to_string()),
            ("HAPROXY_GROUP".to_string(), "external".to_string()),
        ]);
        assert_eq!(vips_of(&labels).len(), 1);
        assert_eq!(
            dns_name("/prod/api", "stride"),
            "api-prod.l4lb.stride.mesos"
        );
    }

    #[test]
    fn ranges_parse_as_networks() {
        let range: VipRange = "127.77.0.0/16".parse().unwrap();
        assert_eq!(range, VipRange::default());
        assert_eq!(range.address(0), Ipv4Addr::new(127, 77, 0, 1));
        assert!("127.77.0.0".parse::<VipRange>().is_err());
        assert!("127.77.0.0/31".parse::<VipRange>().is_err());
        let tiny: VipRange = "10.0.0.7/30".parse().unwrap();
        assert_eq!(tiny.slots(), 2);
        assert_eq!(
            tiny.address(1),
            Ipv4Addr::new(10, 0, 0, 6),
            "10.0.0.4 is the network"
        );
    }

    proptest! {
        /// Every name gets an address of the range, no two the same, and the same one whatever
        /// else is there unless it collides.
        #[test]
        fn named_vips_get_distinct_addresses_in_the_range(
            names in prop::collection::btree_set("[a-z]{1,6}", 0..40),
        ) {
            let range: VipRange = "127.77.0.0/26".parse().unwrap();
            let names: BTreeSet<String> = names.into_iter().map(|n| format!("/{n}")).collect();
            let given = addresses(&names, range);
            prop_assert_eq!(given.len(), names.len());
            let distinct: BTreeSet<&Ipv4Addr> = given.values().collect();
            prop_assert_eq!(distinct.len(), given.len());
            for ip in given.values() {
                let n = u32::from(*ip);
                prop_assert!(n > range.network && n < range.network + 63);
            }
            // Alone, each name gets the slot its hash picks; among others, the same when no
            // other name before it took that slot.
            for (name, ip) in &given {
                let alone = addresses(&BTreeSet::from([name.clone()]), range)[name];
                let earlier_collision = given
                    .iter()
                    .any(|(other, other_ip)| other < name && *other_ip == alone);
                if !earlier_collision {
                    prop_assert_eq!(*ip, alone);
                }
            }
        }
    }
}
