//! The Agents page's rows: from the built-in master's own account of its agents, or, with
//! another master, from what Stride learnt of agents through offers and its tasks.

use crate::core::Snapshot;
use crate::master::local::AgentStatus;
use crate::scheduler::instance::Condition;
use app::model::{AgentRow, AgentState, Timestamp};
use std::collections::HashMap;

/// Stride's instances on one agent, and the resources their apps ask for.
#[derive(Default)]
struct OnAgent {
    running: u32,
    unreachable: u32,
    cpus: f64,
    mem: f64,
}

fn by_agent(snapshot: &Snapshot) -> HashMap<&str, OnAgent> {
    let mut by_agent: HashMap<&str, OnAgent> = HashMap::new();
    for instance in snapshot.instances.values() {
        let Some(placement) = &instance.placement else {
            continue;
        };
        let on = by_agent.entry(placement.agent_id.as_str()).or_default();
        match instance.condition {
            Condition::Running => on.running += 1,
            c if c.is_unreachable() => on.unreachable += 1,
            _ => {}
        }
        if instance.condition.is_active() {
            if let Some(app) = snapshot.apps.get(&instance.app_id) {
                on.cpus += app.cpus;
                on.mem += app.mem;
            }
        }
    }
    by_agent
}

/// Rows for the built-in master's agents, as it reports them.
pub fn from_master(snapshot: &Snapshot, statuses: Vec<AgentStatus>) -> Vec<AgentRow> {
    let on = by_agent(snapshot);
    statuses
        .into_iter()
        .map(|agent| {
            let state = if agent.gone {
                AgentState::Gone
            } else if agent.unreachable_since.is_some() {
                AgentState::Unreachable
            } else if agent.draining {
                AgentState::Draining
            } else if !agent.active {
                AgentState::Deactivated
            } else {
                AgentState::Active
            };
            let tasks = on.get(agent.id.as_str());
            AgentRow {
                unreachable_since: agent.unreachable_since.map(|at| {
                    let millis = at
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as i64);
                    Timestamp::from_millis(millis)
                }),
                domain: agent.domain.map(|d| (d.region, d.zone)),
                state,
                cpus_used: agent.cpus.used,
                cpus_total: agent.cpus.total,
                mem_used: agent.mem.used,
                mem_total: agent.mem.total,
                tasks_running: tasks.map_or(0, |t| t.running),
                tasks_unreachable: tasks.map_or(0, |t| t.unreachable),
                id: agent.id,
                hostname: agent.hostname,
                attributes: agent.attributes,
            }
        })
        .collect()
}

/// Rows for the agents another master offered or runs Stride's tasks on: resources are what
/// Stride's tasks use beside what the agent last offered.
pub fn from_offers(snapshot: &Snapshot) -> Vec<AgentRow> {
    let on = by_agent(snapshot);
    let mut rows: Vec<AgentRow> = snapshot
        .agents
        .iter()
        .map(|(id, agent)| {
            let tasks = on.get(id.as_str());
            let (cpus, mem) = tasks.map_or((0.0, 0.0), |t| (t.cpus, t.mem));
            let unreachable = tasks.map_or(0, |t| t.unreachable);
            AgentRow {
                id: id.clone(),
                hostname: agent.hostname.clone(),
                attributes: agent.attributes.clone(),
                domain: None,
                state: if unreachable > 0 {
                    AgentState::Unreachable
                } else {
                    AgentState::Active
                },
                unreachable_since: None,
                cpus_used: cpus,
                cpus_total: cpus + agent.offered_cpus,
                mem_used: mem,
                mem_total: mem + agent.offered_mem,
                tasks_running: tasks.map_or(0, |t| t.running),
                tasks_unreachable: unreachable,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    rows
}
