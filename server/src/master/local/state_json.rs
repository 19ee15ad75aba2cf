//! `/master/state`: a subset of Mesos' JSON, as the master sees its frameworks, agents and
//! tasks.

use super::reservations::reservation_resources;
use super::resources::attribute_texts;
use super::resources::Resources;
use super::{AgentStatus, State, Usage};
use proto::mesos::v1 as mesos;
use std::collections::HashMap;

impl State {
    /// The resources of each agent's outstanding offers, by agent id.
    fn offered_by_agent(&self) -> HashMap<&str, Resources> {
        let mut offered_by_agent: HashMap<&str, Resources> = HashMap::new();
        for offer in self.offers.values() {
            let offered = offered_by_agent
                .entry(&self.agents[offer.agent].id)
                .or_default();
            *offered = offered.plus(&offer.resources);
        }
        offered_by_agent
    }

    pub(super) fn agent_statuses(&self) -> Vec<AgentStatus> {
        let offered_by_agent = self.offered_by_agent();
        self.agents
            .iter()
            .map(|agent| {
                let offered = offered_by_agent
                    .get(agent.id.as_str())
                    .cloned()
                    .unwrap_or_default();
                let used = agent.total.minus(&agent.free.plus(&offered));
                let usage = |used: f64, total: f64| Usage { used, total };
                AgentStatus {
                    id: agent.id.clone(),
                    hostname: agent.hostname.clone(),
                    attributes: attribute_texts(&agent.attributes),
                    domain: agent.domain.clone(),
                    unreachable_since: agent.unreachable_since,
                    active: agent.active,
                    draining: agent.drain_then_gone.is_some(),
                    gone: agent.gone,
                    cpus: usage(used.cpus, agent.total.cpus),
                    mem: usage(used.mem, agent.total.mem),
                }
            })
            .collect()
    }

    pub(super) fn state_json(&self) -> serde_json::Value {
        use serde_json::json;
        let framework_json = |id: &str, info: &mesos::FrameworkInfo, active: bool| {
            let tasks: Vec<serde_json::Value> = self
                .tasks
                .iter()
                .filter(|(_, task)| task.framework_id == id)
                .map(|(task_id, task)| {
                    json!({
                        "id": task_id,
                        "framework_id": id,
                        "slave_id": self.agents[task.agent].id,
                        "state": task.status.state().as_str_name(),
                        "resources": task.resources.to_json(),
                    })
                })
                .collect();
            let offers: Vec<serde_json::Value> = self
                .offers
                .iter()
                .filter(|(_, offer)| offer.framework_id == id)
                .map(|(offer_id, offer)| {
                    json!({"id": offer_id, "slave_id": self.agents[offer.agent].id, "resources": offer.resources.to_json()})
                })
                .collect();
            json!({
                "id": id,
                "name": info.name,
                "user": info.user,
                "hostname": info.hostname,
                "webui_url": info.webui_url,
                "roles": info.roles,
                "principal": info.principal,
                "failover_timeout": info.failover_timeout.unwrap_or(0.0),
                "active": active,
                "connected": active,
                "tasks": tasks,
                "offers": offers,
            })
        };
        let frameworks: Vec<serde_json::Value> = self
            .frameworks
            .iter()
            .map(|(id, f)| framework_json(id, &f.info, f.events.is_some()))
            .collect();
        let completed: Vec<serde_json::Value> = self
            .removed
            .iter()
            .map(|(id, info)| framework_json(id, info, false))
            .collect();
        let offered_by_agent = self.offered_by_agent();
        let slaves: Vec<serde_json::Value> = self
            .agents
            .iter()
            .map(|agent| {
                let attributes: serde_json::Map<String, serde_json::Value> =
                    attribute_texts(&agent.attributes)
                        .into_iter()
                        .map(|(name, text)| (name, json!(text)))
                        .collect();
                let offered = offered_by_agent
                    .get(agent.id.as_str())
                    .cloned()
                    .unwrap_or_default();
                let domain = agent.domain.as_ref().map(|d| {
                    json!({"fault_domain": {"region": {"name": d.region}, "zone": {"name": d.zone}}})
                });
                // Per role, as Mesos lists them: each reservation's resources, volumes as disk
                // with their persistence id and container path.
                let mut reserved: serde_json::Map<String, serde_json::Value> = Default::default();
                for reservation in &agent.reservations {
                    let entry = reserved
                        .entry(reservation.role.clone())
                        .or_insert_with(|| json!([]));
                    for resource in reservation_resources(reservation, false) {
                        let text = proto::json::to_json(&resource).unwrap_or_default();
                        let value: serde_json::Value =
                            serde_json::from_slice(&text).unwrap_or_default();
                        if let Some(list) = entry.as_array_mut() {
                            list.push(value);
                        }
                    }
                }
                // Stride's own: each volume and whether its size is enforced (and if not, why).
                let volumes: Vec<serde_json::Value> = agent
                    .reservations
                    .iter()
                    .flat_map(|r| r.volumes.iter().map(move |v| (r, v)))
                    .map(|(r, v)| {
                        json!({
                            "role": r.role,
                            "persistence_id": v.persistence_id,
                            "container_path": v.container_path,
                            "size": v.size,
                            "disk_source": v.source,
                            "size_enforcement": v.bound.as_ref().map(|b| b.describe()),
                        })
                    })
                    .collect();
                json!({
                    "id": agent.id,
                    "hostname": agent.hostname,
                    "reserved_resources_full": reserved,
                    "persistent_volumes": volumes,
                    "active": agent.is_reachable(),
                    "domain": domain,
                    "resources": agent.total.to_json(),
                    "used_resources": agent.total.minus(&agent.free.plus(&offered)).to_json(),
                    "offered_resources": offered.to_json(),
                    "attributes": attributes,
                })
            })
            .collect();
        json!({
            "id": self.master_id,
            "hostname": self.hostname,
            "activated_slaves": self.agents.iter().filter(|a| a.is_reachable()).count(),
            "unreachable_slaves": self.agents.iter().filter(|a| !a.is_reachable()).count(),
            "frameworks": frameworks,
            "completed_frameworks": completed,
            "slaves": slaves,
        })
    }
}
