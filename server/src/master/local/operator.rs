//! The operator side of Mesos' v1 API (`POST /api/v1`) that the built-in master supports:
//! listing agents and tasks, deactivating, draining and marking agents gone.
//!
//! An agent marked gone never comes back: its tasks are killed and reported TASK_GONE_BY_OPERATOR
//! (the framework replaces them at once). A deactivated agent keeps its tasks but offers nothing;
//! a drained one also has its tasks killed, and is marked gone afterwards when asked to.

use super::resources::attribute_texts;
use super::{MasterError, Runner, State};
use proto::mesos::v1 as mesos;
use serde_json::{json, Value};

/// An operator call, already decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperatorCall {
    GetAgents,
    GetTasks,
    /// By agent id, as every agent call here.
    MarkAgentGone(String),
    DeactivateAgent(String),
    ReactivateAgent(String),
    DrainAgent {
        agent_id: String,
        mark_gone: bool,
    },
}

impl State {
    pub(super) fn operate(&mut self, call: OperatorCall) -> Result<Value, MasterError> {
        let index = |state: &State, id: &str| {
            state
                .agent_index
                .get(id)
                .copied()
                .ok_or_else(|| MasterError {
                    status: 404,
                    message: format!("Agent {id} not found"),
                })
        };
        match call {
            OperatorCall::GetAgents => return Ok(self.agents_json()),
            OperatorCall::GetTasks => return Ok(self.tasks_json()),
            OperatorCall::MarkAgentGone(id) => {
                let agent = index(self, &id)?;
                self.mark_gone(agent);
            }
            OperatorCall::DeactivateAgent(id) => {
                let agent = index(self, &id)?;
                self.agents[agent].active = false;
                self.return_offers_of_agent(agent);
            }
            OperatorCall::ReactivateAgent(id) => {
                let agent = index(self, &id)?;
                if self.agents[agent].gone {
                    return Err(MasterError::bad_request(format!("Agent {id} is gone")));
                }
                self.agents[agent].active = true;
                self.agents[agent].drain_then_gone = None;
                self.allocation_pending = true;
            }
            OperatorCall::DrainAgent {
                agent_id,
                mark_gone,
            } => {
                let agent = index(self, &agent_id)?;
                self.agents[agent].active = false;
                self.agents[agent].drain_then_gone = Some(mark_gone);
                self.return_offers_of_agent(agent);
                for task_id in self.live_tasks_of(agent) {
                    self.kill_task(&task_id);
                }
                self.finish_drains();
            }
        }
        Ok(Value::Null)
    }

    /// Drained agents whose tasks have all ended are marked gone, if that was asked for.
    pub(super) fn finish_drains(&mut self) {
        for agent in 0..self.agents.len() {
            if self.agents[agent].drain_then_gone == Some(true)
                && !self.agents[agent].gone
                && self.live_tasks_of(agent).is_empty()
            {
                self.mark_gone(agent);
            }
        }
    }

    fn mark_gone(&mut self, agent: usize) {
        if self.agents[agent].gone {
            return;
        }
        self.agents[agent].gone = true;
        self.agents[agent].active = false;
        self.return_offers_of_agent(agent);
        for task_id in self.live_tasks_of(agent) {
            if let Runner::Processes(processes) = &self.agents[agent].runner {
                processes.kill(&task_id);
            }
            let mut status = self.status(
                Some(agent),
                &task_id,
                mesos::TaskState::TaskGoneByOperator,
                "Agent marked gone by the operator",
                Some(mesos::task_status::Reason::AgentRemovedByOperator),
            );
            status.set_source(mesos::task_status::Source::Master);
            self.queue_update(&task_id, status);
        }
        tracing::info!(hostname = %self.agents[agent].hostname, "agent marked gone");
    }

    fn agents_json(&self) -> Value {
        let agents: Vec<Value> = self
            .agents
            .iter()
            .filter(|agent| !agent.gone)
            .map(|agent| {
                let attributes: Vec<Value> = attribute_texts(&agent.attributes)
                    .into_iter()
                    .map(|(name, text)| json!({"name": name, "text": {"value": text}}))
                    .collect();
                json!({
                    "agent_info": {
                        "id": {"value": agent.id},
                        "hostname": agent.hostname,
                        "attributes": attributes,
                    },
                    "active": agent.active && agent.is_reachable(),
                    "deactivated": !agent.active,
                    "total_resources": agent.total.to_json(),
                })
            })
            .collect();
        json!({"type": "GET_AGENTS", "get_agents": {"agents": agents, "recovered_agents": []}})
    }

    fn tasks_json(&self) -> Value {
        let mut live = Vec::new();
        let mut unreachable = Vec::new();
        let mut completed = Vec::new();
        let mut ids: Vec<&String> = self.tasks.keys().collect();
        ids.sort();
        for id in ids {
            let task = &self.tasks[id];
            let entry = json!({
                "task_id": {"value": id},
                "framework_id": {"value": task.framework_id},
                "agent_id": {"value": self.agents[task.agent].id},
                "state": task.status.state().as_str_name(),
            });
            match task.status.state() {
                mesos::TaskState::TaskUnreachable => unreachable.push(entry),
                _ if task.is_terminal() => completed.push(entry),
                _ => live.push(entry),
            }
        }
        json!({"type": "GET_TASKS", "get_tasks": {
            "tasks": live, "unreachable_tasks": unreachable, "completed_tasks": completed,
        }})
    }
}
