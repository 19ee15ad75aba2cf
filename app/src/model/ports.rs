//! An app's service ports (SEMANTICS.md §15): where they are in its definition and their
//! protocols, as the load balancer, VIPs, DNS and the dashboard read them.
//!
//! With port mappings (`container.portMappings`, or the older `container.docker.portMappings`)
//! the service ports are the mappings' `servicePort`s; otherwise the port definitions' `port`s.
//! A 0 is a port still to be assigned (Stride assigns one from `--local-port-min`…`max` when the
//! app is deployed).

use super::app::AppDefinition;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// What a service port carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// A task's place behind its app's service ports, in the load balancer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Rotation {
    /// Gets new connections.
    In,
    /// Being killed: gets no new connections; the ones it has go on.
    Draining,
    /// Running but failing its health checks (or without a result yet).
    Unhealthy,
    /// Running but not ready yet.
    NotReady,
}

impl Rotation {
    /// How the dashboard says it.
    pub fn label(self) -> &'static str {
        match self {
            Rotation::In => "In rotation",
            Rotation::Draining => "Draining",
            Rotation::Unhealthy => "Out: unhealthy",
            Rotation::NotReady => "Out: not ready",
        }
    }
}

/// One service port of an app, with what it says about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct ServicePort {
    /// Its position among the app's ports (the host port of the same index on a task serves it).
    pub index: usize,
    pub port: u32,
    pub protocols: Vec<Protocol>,
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// `tcp`, `udp` or `udp,tcp`, as Marathon writes a port's protocol.
pub fn protocols_of(text: &str) -> Vec<Protocol> {
    let mut out: Vec<Protocol> = text
        .split(',')
        .filter_map(|p| match p.trim() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// How an app's tasks are networked (SEMANTICS.md §15): `networks`' first mode, or the older
/// `container.docker.network`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkMode {
    /// The agent's own network: ports are the port definitions' host ports.
    Host,
    /// Docker's bridge: each port mapping has a host port (0 or absent: any).
    Bridge,
    /// A container network: a mapping has a host port only when it names one.
    Container,
}

/// A host port that a task needs from its agent's offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostPort {
    /// Any free port of the offer.
    Any,
    /// This port (`requirePorts`, or a mapping's non-zero `hostPort`).
    Fixed(u32),
}

/// A port mapping that got a host port: what the container listens on behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct MappedPort {
    /// 0: the same as the host port.
    pub container_port: u32,
    pub protocol: String,
    pub name: Option<String>,
}

impl AppDefinition {
    /// Its port mappings in the container, when it has any (the newer place first).
    fn port_mappings(&self) -> Option<&Vec<Value>> {
        let container = self.container.as_ref()?;
        container
            .get("portMappings")
            .and_then(Value::as_array)
            .filter(|m| !m.is_empty())
            .or_else(|| {
                container
                    .pointer("/docker/portMappings")
                    .and_then(Value::as_array)
                    .filter(|m| !m.is_empty())
            })
    }

    fn port_mappings_mut(&mut self) -> Option<&mut Vec<Value>> {
        let container = self.container.as_mut()?;
        let newer = container
            .get("portMappings")
            .and_then(Value::as_array)
            .is_some_and(|m| !m.is_empty());
        let pointer = if newer {
            "/portMappings"
        } else {
            "/docker/portMappings"
        };
        container.pointer_mut(pointer).and_then(Value::as_array_mut)
    }

    /// How its tasks are networked.
    pub fn network_mode(&self) -> NetworkMode {
        let mode = self
            .networks
            .first()
            .and_then(|network| network.get("mode"))
            .and_then(Value::as_str);
        let docker_network = self
            .container
            .as_ref()
            .and_then(|container| container.pointer("/docker/network"))
            .and_then(Value::as_str);
        match (mode, docker_network) {
            (Some("container/bridge"), _) | (None | Some("host"), Some("BRIDGE")) => {
                NetworkMode::Bridge
            }
            (Some("container"), _) | (None | Some("host"), Some("USER")) => NetworkMode::Container,
            _ => NetworkMode::Host,
        }
    }

    /// The port mappings that get a host port, with that port's request, in order: the host
    /// ports of a task are theirs, one each. Without mappings a bridged app has Marathon's
    /// default one (`containerPort: 0`).
    fn mappings_with_host_ports(&self) -> Vec<(HostPort, MappedPort)> {
        let mode = self.network_mode();
        let default = [serde_json::json!({"containerPort": 0, "name": "default"})];
        let mappings = match self.port_mappings() {
            Some(mappings) => mappings.as_slice(),
            None if mode == NetworkMode::Bridge => &default,
            None => &[],
        };
        mappings
            .iter()
            .filter_map(|mapping| {
                let host = match (mapping.get("hostPort").and_then(Value::as_u64), mode) {
                    (Some(0), _) | (None, NetworkMode::Bridge) => HostPort::Any,
                    (Some(port), _) => HostPort::Fixed(u32::try_from(port).ok()?),
                    (None, _) => return None,
                };
                let text = |key: &str| mapping.get(key).and_then(Value::as_str).map(str::to_string);
                let container_port = mapping.get("containerPort").and_then(Value::as_u64);
                Some((
                    host,
                    MappedPort {
                        container_port: container_port.and_then(|p| u32::try_from(p).ok())?,
                        protocol: text("protocol").unwrap_or_else(|| "tcp".into()),
                        name: text("name"),
                    },
                ))
            })
            .collect()
    }

    /// The host ports each task needs, in the order the task's `ports` list them.
    pub fn host_ports(&self) -> Vec<HostPort> {
        if let Some(pod) = &self.pod {
            return pod
                .host_endpoints()
                .map(
                    |(_, endpoint)| match endpoint.host_port.map(u32::try_from) {
                        Some(Ok(port)) if port != 0 => HostPort::Fixed(port),
                        _ => HostPort::Any,
                    },
                )
                .collect();
        }
        if self.network_mode() != NetworkMode::Host {
            return self
                .mappings_with_host_ports()
                .into_iter()
                .map(|(host, _)| host)
                .collect();
        }
        self.port_definitions
            .iter()
            .map(|pd| match u32::try_from(pd.port) {
                Ok(port) if self.require_ports && port != 0 => HostPort::Fixed(port),
                _ => HostPort::Any,
            })
            .collect()
    }

    /// What the container listens on behind each host port (empty on host networking).
    pub fn mapped_ports(&self) -> Vec<MappedPort> {
        if self.network_mode() == NetworkMode::Host {
            return Vec::new();
        }
        self.mappings_with_host_ports()
            .into_iter()
            .map(|(_, mapped)| mapped)
            .collect()
    }

    /// Its service ports as the definition holds them (0: to be assigned), in order.
    pub fn requested_service_ports(&self) -> Vec<i64> {
        match self.port_mappings() {
            Some(mappings) => mappings
                .iter()
                .map(|m| m.get("servicePort").and_then(Value::as_i64).unwrap_or(0))
                .collect(),
            None => self.port_definitions.iter().map(|pd| pd.port).collect(),
        }
    }

    /// Sets its service ports, in the place [`Self::requested_service_ports`] reads them.
    pub fn set_service_ports(&mut self, ports: &[i64]) {
        match self.port_mappings_mut() {
            Some(mappings) => {
                for (mapping, port) in mappings.iter_mut().zip(ports) {
                    if let Some(object) = mapping.as_object_mut() {
                        object.insert("servicePort".into(), Value::from(*port));
                    }
                }
            }
            None => {
                for (pd, port) in self.port_definitions.iter_mut().zip(ports) {
                    pd.port = *port;
                }
            }
        }
    }

    /// Its assigned service ports with their protocols, names and labels.
    pub fn service_ports(&self) -> Vec<ServicePort> {
        let ports = self.requested_service_ports();
        let entries: Vec<(String, Option<String>, BTreeMap<String, String>)> = match self
            .port_mappings()
        {
            Some(mappings) => mappings
                .iter()
                .map(|m| {
                    let text = |key: &str| m.get(key).and_then(Value::as_str).map(str::to_string);
                    let labels = m
                        .get("labels")
                        .and_then(Value::as_object)
                        .map(|labels| {
                            labels
                                .iter()
                                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                                .collect()
                        })
                        .unwrap_or_default();
                    (
                        text("protocol").unwrap_or_else(|| "tcp".into()),
                        text("name"),
                        labels,
                    )
                })
                .collect(),
            None => self
                .port_definitions
                .iter()
                .map(|pd| (pd.protocol.clone(), pd.name.clone(), pd.labels.clone()))
                .collect(),
        };
        ports
            .into_iter()
            .zip(entries)
            .enumerate()
            .filter_map(|(index, (port, (protocol, name, labels)))| {
                Some(ServicePort {
                    index,
                    port: u32::try_from(port).ok().filter(|&p| p > 0)?,
                    protocols: protocols_of(&protocol),
                    name,
                    labels,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AppUpdate, PortDefinition, Timestamp};

    fn app(update: AppUpdate) -> AppDefinition {
        AppDefinition::create("/web".into(), update, Timestamp::from_millis(0))
    }

    #[test]
    fn bridged_mappings_get_host_ports_and_container_networks_only_named_ones() {
        let bridged = app(AppUpdate {
            container: Some(
                serde_json::json!({"type": "DOCKER", "docker": {"image": "x"},
                "portMappings": [{"containerPort": 80, "hostPort": 0, "name": "http"},
                                 {"containerPort": 53, "protocol": "udp"},
                                 {"containerPort": 9000, "hostPort": 31999}]}),
            ),
            networks: Some(vec![serde_json::json!({"mode": "container/bridge"})]),
            ..Default::default()
        });
        assert_eq!(bridged.network_mode(), NetworkMode::Bridge);
        assert_eq!(
            bridged.host_ports(),
            vec![HostPort::Any, HostPort::Any, HostPort::Fixed(31999)]
        );
        let mapped = bridged.mapped_ports();
        assert_eq!(mapped[0].name.as_deref(), Some("http"));
        assert_eq!(mapped[1].protocol, "udp");
        assert_eq!(mapped[2].container_port, 9000);

        let user = app(AppUpdate {
            container: Some(serde_json::json!({"type": "DOCKER",
                "docker": {"image": "x", "network": "USER",
                           "portMappings": [{"containerPort": 80}, {"containerPort": 81, "hostPort": 0}]}})),
            ..Default::default()
        });
        assert_eq!(user.network_mode(), NetworkMode::Container);
        assert_eq!(user.host_ports(), vec![HostPort::Any]);
        assert_eq!(user.mapped_ports()[0].container_port, 81);

        let default_bridge = app(AppUpdate {
            container: Some(
                serde_json::json!({"type": "DOCKER", "docker": {"image": "x", "network": "BRIDGE"}}),
            ),
            ..Default::default()
        });
        assert_eq!(default_bridge.host_ports(), vec![HostPort::Any]);
        assert_eq!(default_bridge.mapped_ports()[0].container_port, 0);

        let mut host = app(AppUpdate::default());
        assert_eq!(host.network_mode(), NetworkMode::Host);
        assert_eq!(host.host_ports(), vec![HostPort::Any]);
        assert!(host.mapped_ports().is_empty());
        host.port_definitions[0].port = 8080;
        host.require_ports = true;
        assert_eq!(host.host_ports(), vec![HostPort::Fixed(8080)]);
    }

    #[test]
    fn service_ports_come_from_mappings_when_there_are_any() {
        let mut defined = app(AppUpdate {
            port_definitions: Some(vec![
                PortDefinition {
                    port: 0,
                    protocol: "tcp".into(),
                    name: Some("http".into()),
                    labels: BTreeMap::new(),
                },
                PortDefinition {
                    port: 10005,
                    protocol: "udp,tcp".into(),
                    name: None,
                    labels: BTreeMap::new(),
                },
            ]),
            ..Default::default()
        });
        assert_eq!(defined.requested_service_ports(), vec![0, 10005]);
        defined.set_service_ports(&[10001, 10005]);
        let ports = defined.service_ports();
        assert_eq!(ports[0].port, 10001);
        assert_eq!(ports[0].name.as_deref(), Some("http"));
        assert_eq!(ports[1].protocols, vec![Protocol::Tcp, Protocol::Udp]);

        let mut mapped = app(AppUpdate {
            container: Some(
                serde_json::json!({"type": "DOCKER", "docker": {"image": "x",
                "portMappings": [{"containerPort": 80, "servicePort": 0,
                                  "labels": {"VIP_0": "/web:80"}}]}}),
            ),
            ..Default::default()
        });
        assert_eq!(mapped.requested_service_ports(), vec![0]);
        mapped.set_service_ports(&[10002]);
        assert_eq!(
            mapped.container.as_ref().unwrap()["docker"]["portMappings"][0]["servicePort"],
            10002
        );
        let ports = mapped.service_ports();
        assert_eq!(ports[0].labels["VIP_0"], "/web:80");
        assert_eq!(ports[0].protocols, vec![Protocol::Tcp]);
    }
}
