//! What the load balancer routes where, worked out from the apps and their tasks alone: for
//! each service port of each app, the tasks behind it and each task's place in the rotation.
//! The same table comes from the leader's own state (in-process) and from its REST API
//! (`stride lb --leader`), so both balance alike.

use super::vips::{addresses, vips_of, VipLabel, VipRange};
pub use app::model::Rotation;
use app::model::{Protocol, ServicePort};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A task as routing sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskEndpoint {
    pub task_id: String,
    /// The agent it runs on.
    pub host: String,
    /// Its host ports, by port index.
    pub ports: Vec<u32>,
    pub phase: TaskPhase,
    /// Whether its health checks pass: `None` while one has no result yet.
    pub healthy: Option<bool>,
    /// `false` while a readiness check of its deployment says it is not ready.
    pub ready: bool,
}

/// Where a task is in its life, for routing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskPhase {
    /// Launched, not running yet.
    Starting,
    Running,
    /// Being killed (or about to be: its instance is decommissioned).
    Killing,
    /// Ended, lost or unreachable.
    Gone,
}

/// One app with what routing needs of it.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceApp {
    pub id: String,
    pub has_health_checks: bool,
    pub service_ports: Vec<ServicePort>,
    pub tasks: Vec<TaskEndpoint>,
}

/// A task behind a service port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Backend {
    pub task_id: String,
    pub host: String,
    pub port: u32,
    pub rotation: Rotation,
}

/// Where one listening port routes to.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// What it is for: the app of a service port, or a VIP as its label says.
    pub owner: String,
    pub backends: Vec<Backend>,
}

/// Where the balancer listens: a service port on its own address (`ip: None`), or a VIP's
/// address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Listen {
    pub ip: Option<IpAddr>,
    pub protocol: Protocol,
    pub port: u32,
}

/// Every address the balancer listens on, with where it routes.
pub type RouteTable = BTreeMap<Listen, Route>;

/// One VIP: its label, its address, and the tasks of every app behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct Vip {
    pub label: VipLabel,
    pub address: SocketAddr,
    pub protocols: Vec<Protocol>,
    /// (app id, backend), by app and task.
    pub backends: Vec<(String, Backend)>,
}

/// Where `task` stands for an app with (or without) health checks; `None`: it has no place at
/// all (not running yet, or gone).
pub fn rotation_of(task: &TaskEndpoint, has_health_checks: bool) -> Option<Rotation> {
    match task.phase {
        TaskPhase::Starting | TaskPhase::Gone => None,
        TaskPhase::Killing => Some(Rotation::Draining),
        TaskPhase::Running if has_health_checks && task.healthy != Some(true) => {
            Some(Rotation::Unhealthy)
        }
        TaskPhase::Running if !task.ready => Some(Rotation::NotReady),
        TaskPhase::Running => Some(Rotation::In),
    }
}

/// The tasks of `app` behind its service port `service_port`.
fn backends_of(app: &ServiceApp, service_port: &ServicePort) -> Vec<Backend> {
    app.tasks
        .iter()
        .filter_map(|task| {
            let rotation = rotation_of(task, app.has_health_checks)?;
            Some(Backend {
                task_id: task.task_id.clone(),
                host: task.host.clone(),
                port: *task.ports.get(service_port.index)?,
                rotation,
            })
        })
        .collect()
}

/// The table for `apps`: their service ports, and their VIPs (named ones at their address in
/// `vip_range`). Two apps claiming one service port share it, the first app by id keeping it
/// (Marathon does not refuse explicit service ports other apps have).
pub fn route_table(apps: &[ServiceApp], vip_range: VipRange) -> RouteTable {
    let mut table = RouteTable::new();
    for app in apps {
        for service_port in &app.service_ports {
            let backends = backends_of(app, service_port);
            for protocol in &service_port.protocols {
                let listen = Listen {
                    ip: None,
                    protocol: *protocol,
                    port: service_port.port,
                };
                table.entry(listen).or_insert_with(|| Route {
                    owner: app.id.clone(),
                    backends: backends.clone(),
                });
            }
        }
    }
    for vip in vips(apps, vip_range) {
        for protocol in &vip.protocols {
            let listen = Listen {
                ip: Some(vip.address.ip()),
                protocol: *protocol,
                port: u32::from(vip.address.port()),
            };
            table.insert(
                listen,
                Route {
                    owner: vip.label.text(),
                    backends: vip.backends.iter().map(|(_, b)| b.clone()).collect(),
                },
            );
        }
    }
    table
}

/// Every VIP the apps' ports declare, each with the tasks of all the apps that declare it.
pub fn vips(apps: &[ServiceApp], vip_range: VipRange) -> Vec<Vip> {
    let mut declared: BTreeMap<VipLabel, Vip> = BTreeMap::new();
    let mut names = BTreeSet::new();
    for app in apps {
        for service_port in &app.service_ports {
            for label in vips_of(&service_port.labels) {
                if let VipLabel::Named { name, .. } = &label {
                    names.insert(name.clone());
                }
                let vip = declared.entry(label.clone()).or_insert_with(|| Vip {
                    label: label.clone(),
                    address: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), label.port()),
                    protocols: Vec::new(),
                    backends: Vec::new(),
                });
                for protocol in &service_port.protocols {
                    if !vip.protocols.contains(protocol) {
                        vip.protocols.push(*protocol);
                    }
                }
                vip.backends.extend(
                    backends_of(app, service_port)
                        .into_iter()
                        .map(|b| (app.id.clone(), b)),
                );
            }
        }
    }
    let named = addresses(&names, vip_range);
    declared
        .into_values()
        .filter_map(|mut vip| {
            let ip = match &vip.label {
                VipLabel::Address { ip, .. } => *ip,
                VipLabel::Named { name, .. } => IpAddr::V4(*named.get(name)?),
            };
            vip.address = SocketAddr::new(ip, vip.label.port());
            vip.protocols.sort();
            Some(vip)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn task(id: &str, phase: TaskPhase, healthy: Option<bool>) -> TaskEndpoint {
        TaskEndpoint {
            task_id: id.into(),
            host: "node-1".into(),
            ports: vec![31000, 31001],
            phase,
            healthy,
            ready: true,
        }
    }

    fn service(protocol: Protocol, port: u32) -> Listen {
        Listen {
            ip: None,
            protocol,
            port,
        }
    }

    #[test]
    fn a_vip_routes_to_every_app_that_declares_it() {
        let with_vip = |id: &str, port_number: u32, vip: &str| {
            let mut p = port(0, port_number, vec![Protocol::Tcp]);
            p.labels.insert("VIP_0".into(), vip.into());
            ServiceApp {
                id: id.into(),
                has_health_checks: false,
                service_ports: vec![p],
                tasks: vec![task(&format!("{id}-task"), TaskPhase::Running, None)],
            }
        };
        let apps = [
            with_vip("/blue", 10000, "/web:80"),
            with_vip("/green", 10001, "/web:80"),
            with_vip("/db", 10002, "127.77.0.10:5432"),
        ];
        let found = vips(&apps, VipRange::default());
        assert_eq!(found.len(), 2);
        let web = found.iter().find(|v| v.label.text() == "/web:80").unwrap();
        assert_eq!(web.backends.len(), 2, "both apps behind it");
        assert_eq!(web.address.port(), 80);
        let table = route_table(&apps, VipRange::default());
        let db = Listen {
            ip: Some("127.77.0.10".parse().unwrap()),
            protocol: Protocol::Tcp,
            port: 5432,
        };
        assert_eq!(table[&db].backends[0].task_id, "/db-task");
        assert_eq!(table.len(), 3 + 2, "three service ports and two VIPs");
    }

    fn port(index: usize, port: u32, protocols: Vec<Protocol>) -> ServicePort {
        ServicePort {
            index,
            port,
            protocols,
            name: None,
            labels: Default::default(),
        }
    }

    #[test]
    fn tasks_are_in_draining_or_out_as_their_state_says() {
        let app = ServiceApp {
            id: "/web".into(),
            has_health_checks: true,
            service_ports: vec![
                port(0, 10000, vec![Protocol::Tcp]),
                port(1, 10001, vec![Protocol::Tcp, Protocol::Udp]),
            ],
            tasks: vec![
                task("healthy", TaskPhase::Running, Some(true)),
                task("failing", TaskPhase::Running, Some(false)),
                task("unknown", TaskPhase::Running, None),
                task("killing", TaskPhase::Killing, Some(true)),
                task("starting", TaskPhase::Starting, None),
                task("gone", TaskPhase::Gone, Some(true)),
            ],
        };
        let table = route_table(&[app], VipRange::default());
        assert_eq!(table.len(), 3, "10000/tcp, 10001/tcp and 10001/udp");
        let route = &table[&service(Protocol::Tcp, 10000)];
        let seen: Vec<(&str, u32, Rotation)> = route
            .backends
            .iter()
            .map(|b| (b.task_id.as_str(), b.port, b.rotation))
            .collect();
        assert_eq!(
            seen,
            [
                ("healthy", 31000, Rotation::In),
                ("failing", 31000, Rotation::Unhealthy),
                ("unknown", 31000, Rotation::Unhealthy),
                ("killing", 31000, Rotation::Draining),
            ]
        );
        assert_eq!(
            table[&service(Protocol::Udp, 10001)].backends[0].port,
            31001
        );
    }

    #[test]
    fn without_health_checks_a_running_task_is_in_unless_not_ready() {
        let mut not_ready = task("b", TaskPhase::Running, None);
        not_ready.ready = false;
        let app = ServiceApp {
            id: "/web".into(),
            has_health_checks: false,
            service_ports: vec![port(0, 10000, vec![Protocol::Tcp])],
            tasks: vec![task("a", TaskPhase::Running, None), not_ready],
        };
        let rotations: Vec<Rotation> = route_table(&[app], VipRange::default())
            [&service(Protocol::Tcp, 10000)]
            .backends
            .iter()
            .map(|b| b.rotation)
            .collect();
        assert_eq!(rotations, [Rotation::In, Rotation::NotReady]);
    }

    fn phase() -> impl Strategy<Value = TaskPhase> {
        prop_oneof![
            Just(TaskPhase::Starting),
            Just(TaskPhase::Running),
            Just(TaskPhase::Killing),
            Just(TaskPhase::Gone),
        ]
    }

    proptest! {
        /// Only running tasks that pass their checks and are ready get new connections; every
        /// task being killed drains; nothing not running or gone is listed.
        #[test]
        fn only_healthy_ready_running_tasks_are_in(
            tasks in prop::collection::vec((phase(), prop::option::of(any::<bool>()), any::<bool>()), 0..12),
            has_health_checks in any::<bool>(),
        ) {
            let tasks: Vec<TaskEndpoint> = tasks
                .iter()
                .enumerate()
                .map(|(i, (phase, healthy, ready))| TaskEndpoint {
                    ready: *ready,
                    ..task(&format!("t{i}"), *phase, *healthy)
                })
                .collect();
            let app = ServiceApp {
                id: "/a".into(),
                has_health_checks,
                service_ports: vec![port(0, 10000, vec![Protocol::Tcp])],
                tasks: tasks.clone(),
            };
            let table = route_table(&[app], VipRange::default());
            let backends = &table[&service(Protocol::Tcp, 10000)].backends;
            for t in &tasks {
                let listed = backends.iter().find(|b| b.task_id == t.task_id);
                match t.phase {
                    TaskPhase::Starting | TaskPhase::Gone => prop_assert!(listed.is_none()),
                    TaskPhase::Killing => prop_assert_eq!(listed.unwrap().rotation, Rotation::Draining),
                    TaskPhase::Running => {
                        let in_rotation = listed.unwrap().rotation == Rotation::In;
                        let should = t.ready && (!has_health_checks || t.healthy == Some(true));
                        prop_assert_eq!(in_rotation, should);
                    }
                }
            }
        }
    }
}
