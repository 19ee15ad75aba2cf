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
