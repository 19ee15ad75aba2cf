//! Which records a name has, in Mesos-DNS's naming for the framework (`<fw>`, Stride's
//! `--framework-name`):
//!
//! - `<app>.<fw>.mesos` A: the agents of the app's running tasks, where `<app>` is the app's
//!   name and then its groups, innermost first (`/prod/api/web` → `web-api-prod`);
//! - `_<app>._tcp.<fw>.mesos` / `_<app>._udp.<fw>.mesos` SRV: each running task's host ports of
//!   that protocol, on `<agent>.slave.<fw>.mesos`, which has an A record too;
//! - `<vip>.l4lb.<fw>.mesos` A: a named VIP's address;
//! - `leader.<fw>.mesos` A: the leading Stride.
//!
//! Anything else is unknown (NXDOMAIN); a known name asked for another type has no records.

use crate::lb::routes::{ServiceApp, TaskPhase, Vip};
use crate::lb::vips::{dns_name, VipLabel};
use app::model::Protocol;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// What a query asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    A,
    Srv,
    Any,
    /// A type Stride has no records of (AAAA, TXT, …).
    Other,
}

/// One answer record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Answer {
    A(IpAddr),
    /// Port and target host name (fully qualified, without the final dot).
    Srv {
        port: u16,
        target: String,
    },
}

/// What the zone says about a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Found(Vec<Answer>),
    /// No such name.
    Unknown,
}

/// Everything the DNS server answers from.
pub struct Zone<'a> {
    pub framework: &'a str,
    pub apps: &'a [ServiceApp],
    pub vips: &'a [Vip],
    pub leader: Option<IpAddr>,
    /// Agents' addresses, by hostname.
    pub hosts: &'a BTreeMap<String, IpAddr>,
}

/// Mesos-DNS's label of an app: its name, then its groups innermost first.
pub fn app_label(app_id: &str) -> String {
    let segments: Vec<&str> = app_id.trim_matches('/').split('/').rev().collect();
    segments.join("-").to_ascii_lowercase()
}

/// A hostname as one DNS label.
fn host_label(host: &str) -> String {
    host.to_ascii_lowercase().replace('.', "-")
}

/// The hosts whose addresses [`Zone::lookup`] may need.
pub fn hosts_of(apps: &[ServiceApp]) -> BTreeSet<String> {
    apps.iter()
        .flat_map(|app| app.tasks.iter())
        .filter(|task| task.phase == TaskPhase::Running)
        .map(|task| task.host.clone())
        .collect()
}

impl Zone<'_> {
    /// The records of `name` (case-insensitive, with or without the final dot).
    pub fn lookup(&self, name: &str, wanted: Wanted) -> Lookup {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let Some(found) = self.records(&name) else {
            return Lookup::Unknown;
        };
        Lookup::Found(
            found
                .into_iter()
                .filter(|answer| {
                    matches!(
                        (wanted, answer),
                        (Wanted::Any, _)
                            | (Wanted::A, Answer::A(_))
                            | (Wanted::Srv, Answer::Srv { .. })
                    )
                })
                .collect(),
        )
    }

    fn records(&self, name: &str) -> Option<Vec<Answer>> {
        let zone = format!(".{}.mesos", self.framework.to_ascii_lowercase());
        let inner = name.strip_suffix(&zone)?;
        if inner == "leader" {
            return Some(self.leader.map(Answer::A).into_iter().collect());
        }
        if let Some(host) = inner.strip_suffix(".slave") {
            let ip = self
                .hosts
                .iter()
                .find(|(h, _)| host_label(h) == host)
                .map(|(_, ip)| *ip)?;
            return Some(vec![Answer::A(ip)]);
        }
        if inner.ends_with(".l4lb") {
            let vip = self.vips.iter().find(|vip| match &vip.label {
                VipLabel::Named { name: vip_name, .. } => {
                    dns_name(vip_name, self.framework).to_ascii_lowercase() == name
                }
                VipLabel::Address { .. } => false,
            })?;
            return Some(vec![Answer::A(vip.address.ip())]);
        }
        if let Some(service) = inner.strip_prefix('_') {
            let (label, protocol) = match service.rsplit_once("._") {
                Some((label, "tcp")) => (label, Protocol::Tcp),
                Some((label, "udp")) => (label, Protocol::Udp),
                _ => return None,
            };
            let app = self.apps.iter().find(|a| app_label(&a.id) == label)?;
            let mut answers: BTreeSet<Answer> = BTreeSet::new();
            for task in app.tasks.iter().filter(|t| t.phase == TaskPhase::Running) {
                for service_port in app
                    .service_ports
                    .iter()
                    .filter(|p| p.protocols.contains(&protocol))
                {
                    if let Some(port) = task.ports.get(service_port.index) {
                        answers.insert(Answer::Srv {
                            port: *port as u16,
                            target: format!("{}.slave{zone}", host_label(&task.host)),
                        });
                    }
                }
            }
            return Some(answers.into_iter().collect());
        }
        let app = self.apps.iter().find(|a| app_label(&a.id) == inner)?;
        let addresses: BTreeSet<Answer> = app
            .tasks
            .iter()
            .filter(|t| t.phase == TaskPhase::Running)
            .filter_map(|t| self.hosts.get(&t.host).copied())
            .map(Answer::A)
            .collect();
        Some(addresses.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::routes::TaskEndpoint;
    use app::model::ServicePort;

    fn app(id: &str, hosts: &[&str]) -> ServiceApp {
        ServiceApp {
            id: id.into(),
            has_health_checks: false,
            service_ports: vec![ServicePort {
                index: 0,
                port: 10000,
                protocols: vec![Protocol::Tcp],
                name: None,
                labels: Default::default(),
            }],
            tasks: hosts
                .iter()
                .enumerate()
                .map(|(i, host)| TaskEndpoint {
                    task_id: format!("t{i}"),
                    host: host.to_string(),
                    ports: vec![31000 + i as u32],
                    phase: TaskPhase::Running,
                    healthy: None,
                    ready: true,
                })
                .collect(),
        }
    }

    #[test]
    fn names_follow_mesos_dns() {
        let apps = [app("/prod/api/web", &["node-1", "node-2"])];
        let hosts = BTreeMap::from([
            ("node-1".to_string(), "127.0.0.1".parse().unwrap()),
            ("node-2".to_string(), "127.0.0.2".parse().unwrap()),
        ]);
        let zone = Zone {
            framework: "stride",
            apps: &apps,
            vips: &[],
            leader: Some("127.0.0.9".parse().unwrap()),
            hosts: &hosts,
        };
        assert_eq!(app_label("/prod/api/web"), "web-api-prod");
        let a = zone.lookup("web-api-prod.stride.mesos.", Wanted::A);
        assert_eq!(
            a,
            Lookup::Found(vec![
                Answer::A("127.0.0.1".parse().unwrap()),
                Answer::A("127.0.0.2".parse().unwrap())
            ])
        );
        let Lookup::Found(srv) = zone.lookup("_web-api-prod._tcp.stride.mesos", Wanted::Srv) else {
            panic!("the SRV name is known");
        };
        assert_eq!(
            srv[0],
            Answer::Srv {
                port: 31000,
                target: "node-1.slave.stride.mesos".into()
            }
        );
        assert_eq!(
            zone.lookup("node-2.slave.stride.mesos", Wanted::A),
            Lookup::Found(vec![Answer::A("127.0.0.2".parse().unwrap())])
        );
        assert_eq!(
            zone.lookup("_web-api-prod._udp.stride.mesos", Wanted::Srv),
            Lookup::Found(vec![]),
            "no udp port: no records, but the name is known"
        );
        assert_eq!(
            zone.lookup("LEADER.stride.mesos", Wanted::A),
            Lookup::Found(vec![Answer::A("127.0.0.9".parse().unwrap())])
        );
        assert_eq!(
            zone.lookup("web-api-prod.stride.mesos", Wanted::Other),
            Lookup::Found(vec![])
        );
        for unknown in [
            "nope.stride.mesos",
            "web-api-prod.other.mesos",
            "example.org",
        ] {
            assert_eq!(
                zone.lookup(unknown, Wanted::A),
                Lookup::Unknown,
                "{unknown}"
            );
        }
    }
}
