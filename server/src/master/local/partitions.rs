//! Agents cut off and brought back, as a network partition would (Stride's fault injection,
//! `POST /master/agents/{hostname}/disconnect` and `…/reconnect`).
//!
//! Cut off, an agent's processes go on; the master reports its tasks TASK_UNREACHABLE (as Mesos
//! does to partition-aware frameworks), takes its offer back and offers nothing of it, and holds
//! the agent's news and the kills meant for it. Back, the agent re-registers: every task is
//! reported as the agent last knew it, then the held news is delivered and the held kills are
//! carried out. Deciding which of the returned tasks are surplus is the framework's job.

use super::State;
use proto::mesos::v1 as mesos;
use std::time::SystemTime;

impl State {
    pub(super) fn disconnect_agent(&mut self, index: usize) {
        if !self.agents[index].is_reachable() {
            return;
        }
        let now = SystemTime::now();
        self.agents[index].unreachable_since = Some(now);
        self.return_offers_of_agent(index);
        let unreachable_time = mesos::TimeInfo {
            nanoseconds: now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64),
        };
        for task_id in self.live_tasks_of(index) {
            let mut status = self.status(
                Some(index),
                &task_id,
                mesos::TaskState::TaskUnreachable,
                "Agent is unreachable",
                Some(mesos::task_status::Reason::AgentRemoved),
            );
            status.set_source(mesos::task_status::Source::Master);
            status.unreachable_time = Some(unreachable_time);
            if let Some(task) = self.tasks.get_mut(&task_id) {
                task.reachable_status = Some(task.status.clone());
            }
            self.queue_update(&task_id, status);
        }
        tracing::info!(hostname = %self.agents[index].hostname, "agent cut off");
    }

    pub(super) fn reconnect_agent(&mut self, index: usize) {
        if self.agents[index].is_reachable() {
            return;
        }
        self.agents[index].unreachable_since = None;
        for task_id in self.live_tasks_of(index) {
            let Some(known) = self
                .tasks
                .get_mut(&task_id)
                .and_then(|task| task.reachable_status.take())
            else {
                continue;
            };
            let mut status = self.status(
                Some(index),
                &task_id,
                known.state(),
                known.message.as_deref().unwrap_or(""),
                known
                    .reason
                    .and_then(|r| mesos::task_status::Reason::try_from(r).ok()),
            );
            status.healthy = known.healthy;
            self.queue_update(&task_id, status);
        }
        for update in std::mem::take(&mut self.agents[index].held_updates) {
            self.on_agent_update(index, update);
        }
        for task_id in std::mem::take(&mut self.agents[index].held_kills) {
            if self
                .tasks
                .get(&task_id)
                .is_some_and(|task| !task.is_terminal())
            {
                self.kill_task(&task_id);
            }
        }
        self.allocation_pending = true;
        tracing::info!(hostname = %self.agents[index].hostname, "agent reconnected");
    }

    /// The agent's tasks that are not terminal, sorted.
    pub(super) fn live_tasks_of(&self, index: usize) -> Vec<String> {
        let mut ids: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, task)| task.agent == index && !task.is_terminal())
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }
}
