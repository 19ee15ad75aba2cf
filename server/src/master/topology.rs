//! The agents of the built-in master: `--agent SPEC` parsed into a hostname, attributes and a
//! fault domain ([`AgentSpec`]), and one machine's resources divided among them
//! ([`divide_resources`]) so that no two agents hand out the same port.

use super::host::{parse_attributes, AttributeValue, HostResources};

/// A Mesos fault domain: the region and zone an agent is in (`@region`, `@zone` in constraints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultDomain {
    pub region: String,
    pub zone: String,
}

/// One agent as `--agent` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    pub hostname: String,
    pub attributes: Vec<(String, AttributeValue)>,
    pub domain: Option<FaultDomain>,
}

impl AgentSpec {
    /// Parses `HOSTNAME[;name:value…]`, Mesos' attribute syntax after the hostname; the entries
    /// `@region:R` and `@zone:Z` set the fault domain instead (both or neither, as in Mesos).
    pub fn parse(spec: &str) -> Result<AgentSpec, String> {
        let (hostname, rest) = spec.split_once(';').unwrap_or((spec, ""));
        let hostname = hostname.trim();
        let hostname_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
        if hostname.is_empty() || !hostname.chars().all(hostname_chars) || hostname.starts_with('.')
        {
            return Err(format!(
                "'{spec}' does not start with a hostname (HOSTNAME;name:value;…; letters, digits, \
                 '-', '.' and '_')"
            ));
        }
        let mut region = None;
        let mut zone = None;
        let mut attributes = Vec::new();
        for (name, value) in parse_attributes(rest)? {
            let slot = match name.as_str() {
                "@region" => &mut region,
                "@zone" => &mut zone,
                _ => {
                    if attributes.iter().any(|(seen, _)| *seen == name) {
                        return Err(format!("'{spec}' names attribute '{name}' twice"));
                    }
                    attributes.push((name, value));
                    continue;
                }
            };
            *slot = Some(match value {
                AttributeValue::Text(text) => text,
                AttributeValue::Scalar(number) => number.to_string(),
                AttributeValue::Ranges(_) => {
                    return Err(format!("'{spec}': {name} must be a name, not ranges"))
                }
            });
        }
        let domain = match (region, zone) {
            (Some(region), Some(zone)) => Some(FaultDomain { region, zone }),
            (None, None) => None,
            _ => {
                return Err(format!(
                    "'{spec}': a fault domain needs both @region and @zone"
                ))
            }
        };
        Ok(AgentSpec {
            hostname: hostname.to_string(),
            attributes,
            domain,
        })
    }

    /// Parses every spec (each value may hold several, separated by whitespace, as
    /// `STRIDE_AGENTS` does) and refuses two agents of one hostname.
    pub fn parse_all(values: &[String]) -> Result<Vec<AgentSpec>, String> {
        let mut specs: Vec<AgentSpec> = Vec::new();
        for spec in values.iter().flat_map(|value| value.split_whitespace()) {
            let spec = AgentSpec::parse(spec)?;
            if specs.iter().any(|seen| seen.hostname == spec.hostname) {
                return Err(format!("two agents are named '{}'", spec.hostname));
            }
            specs.push(spec);
        }
        Ok(specs)
    }
}

/// What each of `count` agents gets: `total` divided evenly when `split_scalars` (the machine's
/// detected resources), or `total` each when not (resources given per agent). Port ranges are
/// always divided, in contiguous shares, so that agents of one machine never hand out one port
/// twice; an agent's share may be empty when there are fewer ports than agents.
pub fn divide_resources(
    total: &HostResources,
    count: usize,
    split_scalars: bool,
) -> Vec<HostResources> {
    let count = count.max(1);
    let ports: Vec<u32> = total
        .ports
        .iter()
        .flat_map(|&(begin, end)| begin..=end)
        .collect();
    let share = ports.len() / count;
    let scalar = |amount: f64| {
        if split_scalars {
            amount / count as f64
        } else {
            amount
        }
    };
    (0..count)
        .map(|n| {
            let end = if n + 1 == count {
                ports.len()
            } else {
                (n + 1) * share
            };
            HostResources {
                cpus: scalar(total.cpus),
                mem_mb: scalar(total.mem_mb),
                disk_mb: scalar(total.disk_mb),
                ports: ranges_of(&ports[n * share..end]),
                // Each agent has the disks as its own: relative roots are under its work dir.
                disks: total.disks.clone(),
            }
        })
        .collect()
}

/// Sorted ports as inclusive ranges.
fn ranges_of(ports: &[u32]) -> Vec<(u32, u32)> {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for &port in ports {
        match ranges.last_mut() {
            Some(last) if last.1 + 1 == port => last.1 = port,
            _ => ranges.push((port, port)),
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_spec_names_hostname_attributes_and_domain() {
        let spec = AgentSpec::parse("node-1;rack:r1;level:3;@region:eu;@zone:a").unwrap();
        assert_eq!(spec.hostname, "node-1");
        assert_eq!(
            spec.attributes,
            vec![
                ("rack".to_string(), AttributeValue::Text("r1".into())),
                ("level".to_string(), AttributeValue::Scalar(3.0)),
            ]
        );
        assert_eq!(
            spec.domain,
            Some(FaultDomain {
                region: "eu".into(),
                zone: "a".into()
            })
        );
        assert_eq!(AgentSpec::parse("bare").unwrap().attributes, vec![]);
        assert!(AgentSpec::parse("rack:r1").is_err(), "no hostname");
        assert!(
            AgentSpec::parse("n;@zone:a").is_err(),
            "zone without region"
        );
        assert!(AgentSpec::parse("n;rack:a;rack:b").is_err());
        let all = AgentSpec::parse_all(&["a;rack:1 b;rack:2".into(), "c".into()]).unwrap();
        let names: Vec<&str> = all.iter().map(|s| s.hostname.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(AgentSpec::parse_all(&["a a".into()]).is_err());
    }

    #[test]
    fn machine_resources_are_divided_and_given_ones_repeated() {
        let total = HostResources {
            cpus: 4.0,
            mem_mb: 8000.0,
            disk_mb: 1000.0,
            ports: vec![(31000, 31009)],
            disks: vec![],
        };
        let split = divide_resources(&total, 4, true);
        assert_eq!(split[0].cpus, 1.0);
        assert_eq!(split[3].mem_mb, 2000.0);
        assert_eq!(split[0].ports, vec![(31000, 31001)]);
        assert_eq!(
            split[3].ports,
            vec![(31006, 31009)],
            "the last takes the rest"
        );
        let given = divide_resources(&total, 2, false);
        assert_eq!(given[1].cpus, 4.0);
        assert_eq!(given[1].ports, vec![(31005, 31009)]);
    }

    proptest! {
        #[test]
        fn every_port_goes_to_exactly_one_agent(
            ranges in prop::collection::vec((1000u32..2000, 0u32..50), 0..4),
            count in 1usize..12,
        ) {
            let mut ports: Vec<(u32, u32)> = ranges.iter().map(|&(b, len)| (b, b + len)).collect();
            ports.sort();
            let mut merged: Vec<(u32, u32)> = Vec::new();
            for (b, e) in ports {
                match merged.last_mut() {
                    Some(last) if b <= last.1 + 1 => last.1 = last.1.max(e),
                    _ => merged.push((b, e)),
                }
            }
            let total = HostResources { ports: merged.clone(), ..Default::default() };
            let mut given: Vec<u32> = divide_resources(&total, count, true)
                .iter()
                .flat_map(|r| r.ports.iter().flat_map(|&(b, e)| b..=e).collect::<Vec<_>>())
                .collect();
            let expected: Vec<u32> = merged.iter().flat_map(|&(b, e)| b..=e).collect();
            given.sort();
            prop_assert_eq!(given, expected);
        }
    }
}
