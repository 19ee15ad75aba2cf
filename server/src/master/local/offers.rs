//! Offers: allocation of each agent's free resources, ACCEPT (launching tasks), DECLINE
//! filters and offers taken back.

use super::resources::{attribute_of, domain_of, Resources};
use super::tasks::{launch_of, unsupported_container};
use super::{event_of, Offer, Runner, State, Task, DEFAULT_REFUSE};
use proto::mesos::v1 as mesos;
use proto::mesos::v1::scheduler::{self, event};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

impl State {
    /// Takes back an outstanding offer: its resources are free again.
    pub(super) fn return_offer(&mut self, offer_id: &str) -> Option<Offer> {
        let offer = self.offers.remove(offer_id)?;
        self.release(offer.agent, &offer.resources);
        Some(offer)
    }

    /// Ids of the outstanding offers that `select` picks.
    fn offers_where(&self, select: impl Fn(&Offer) -> bool) -> Vec<String> {
        self.offers
            .iter()
            .filter(|(_, offer)| select(offer))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Takes back the agent's outstanding offer, telling its framework.
    pub(super) fn return_offers_of_agent(&mut self, agent: usize) {
        for offer_id in self.offers_where(|offer| offer.agent == agent) {
            if let Some(offer) = self.return_offer(&offer_id) {
                let mut rescind = event_of(event::Type::Rescind);
                rescind.rescind = Some(event::Rescind {
                    offer_id: mesos::OfferId { value: offer_id },
                });
                self.send(&offer.framework_id, rescind);
            }
        }
    }

    pub(super) fn return_offers_of(&mut self, framework_id: &str) {
        for id in self.offers_where(|offer| offer.framework_id == framework_id) {
            self.return_offer(&id);
        }
    }

    /// Holds `agent`'s resources back from the framework for the filter's `refuse_seconds`.
    pub(super) fn refuse(
        &mut self,
        framework_id: &str,
        agent: usize,
        filters: Option<&mesos::Filters>,
        now: Instant,
    ) {
        let seconds = filters.map_or(DEFAULT_REFUSE.as_secs_f64(), |f| f.refuse_seconds());
        let seconds = if seconds < 0.0 {
            DEFAULT_REFUSE.as_secs_f64()
        } else {
            seconds.min(31_536_000.0)
        };
        if let Some(f) = self.frameworks.get_mut(framework_id) {
            f.refused
                .insert(agent, now + Duration::from_secs_f64(seconds));
        }
    }

    pub(super) async fn accept(
        &mut self,
        framework_id: &str,
        accept: scheduler::call::Accept,
        now: Instant,
    ) {
        // Offers are used at most once, by their framework, all of one agent.
        let mut offered = Resources::default();
        let mut agent = None;
        let mut valid = !accept.offer_ids.is_empty();
        for id in &accept.offer_ids {
            let usable = self.offers.get(&id.value).is_some_and(|offer| {
                offer.framework_id == framework_id && agent.is_none_or(|a| a == offer.agent)
            });
            if !usable {
                valid = false;
                continue;
            }
            let offer = self.offers.remove(&id.value).expect("checked above");
            agent = Some(offer.agent);
            offered = offered.plus(&offer.resources);
        }
        let agent = match agent {
            Some(agent) if valid => agent,
            _ => {
                // Nothing happens to the offers' resources: they are free again.
                if let Some(agent) = agent {
                    self.release(agent, &offered);
                }
                valid = false;
                usize::MAX
            }
        };
        let mut remaining = offered;
        for operation in accept.operations {
            let Some(launch) = operation.launch else {
                continue;
            };
            for task in launch.task_infos {
                let task_id = task.task_id.value.clone();
                let requested = Resources::of_proto(&task.resources);
                let failure = if !valid {
                    Some((
                        mesos::TaskState::TaskDropped,
                        mesos::task_status::Reason::InvalidOffers,
                        "Task launched with invalid offers".to_string(),
                    ))
                } else if self.tasks.get(&task_id).is_some_and(|t| !t.is_terminal()) {
                    Some((
                        mesos::TaskState::TaskError,
                        mesos::task_status::Reason::TaskInvalid,
                        format!("Task {task_id} is already running"),
                    ))
                } else if !requested.fits_in(&remaining) {
                    Some((
                        mesos::TaskState::TaskError,
                        mesos::task_status::Reason::TaskInvalid,
                        "Task uses more resources than the offer has".to_string(),
                    ))
                } else {
                    unsupported_container(&task).map(|message| {
                        (
                            mesos::TaskState::TaskFailed,
                            mesos::task_status::Reason::ContainerLaunchFailed,
                            message,
                        )
                    })
                };
                let on_agent = valid.then_some(agent);
                let status = match &failure {
                    Some((state, reason, message)) => {
                        self.status(on_agent, &task_id, *state, message, Some(*reason))
                    }
                    None => {
                        self.status(on_agent, &task_id, mesos::TaskState::TaskStaging, "", None)
                    }
                };
                if failure
                    .as_ref()
                    .is_some_and(|(state, _, _)| *state != mesos::TaskState::TaskFailed)
                {
                    // The master's own verdicts on a launch are sent once, without a uuid, and
                    // the task is not kept, as in Mesos.
                    let mut status = status;
                    status.set_source(mesos::task_status::Source::Master);
                    let mut update = event_of(event::Type::Update);
                    update.update = Some(event::Update { status });
                    self.send(framework_id, update);
                    continue;
                }
                let resources = if failure.is_none() {
                    requested.clone()
                } else {
                    Resources::default()
                };
                remaining = remaining.minus(&resources);
                self.tasks.insert(
                    task_id.clone(),
                    Task::new(framework_id.to_string(), agent, resources, status.clone()),
                );
                if failure.is_some() {
                    self.queue_update(&task_id, status);
                    continue;
                }
                match &self.agents[agent].runner {
                    Runner::Processes(processes) => {
                        processes
                            .launch(launch_of(framework_id, &task, requested))
                            .await
                    }
                    Runner::Simulated => {
                        let running = self.status(
                            Some(agent),
                            &task_id,
                            mesos::TaskState::TaskRunning,
                            "",
                            None,
                        );
                        self.queue_update(&task_id, running);
                    }
                }
            }
        }
        if valid {
            self.release(agent, &remaining);
            self.refuse(framework_id, agent, accept.filters.as_ref(), now);
        }
    }

    /// The rest of `agent`'s outstanding offer, free again.
    pub(super) fn release(&mut self, agent: usize, resources: &Resources) {
        self.agents[agent].offered = false;
        self.free(agent, resources);
    }

    /// Resources of `agent` that are neither used nor offered any more.
    pub(super) fn free(&mut self, agent: usize, resources: &Resources) {
        let agent = &mut self.agents[agent];
        agent.free = agent.free.plus(resources);
        self.allocation_pending = true;
    }

    /// Offers each agent's free resources (one outstanding offer per agent) to the frameworks
    /// that want offers, taking turns, skipping a framework whose filter holds the agent back.
    /// Each framework gets its offers in one OFFERS event.
    pub(super) fn allocate(&mut self, now: Instant) {
        self.allocation_pending = false;
        let candidates: Vec<String> = self
            .frameworks
            .iter()
            .filter(|(_, f)| f.events.is_some() && !f.suppressed)
            .map(|(id, _)| id.clone())
            .collect();
        if candidates.is_empty() {
            return;
        }
        let mut batches: BTreeMap<String, Vec<mesos::Offer>> = BTreeMap::new();
        for index in 0..self.agents.len() {
            let agent = &self.agents[index];
            if agent.offered || !agent.free.is_useful() || !agent.offers_resources() {
                continue;
            }
            let turn = self.next_offer as usize;
            let chosen = (0..candidates.len())
                .map(|k| &candidates[(turn + k) % candidates.len()])
                .find(|id| {
                    self.frameworks[*id]
                        .refused
                        .get(&index)
                        .is_none_or(|until| *until <= now)
                })
                .cloned();
            let Some(framework_id) = chosen else {
                continue;
            };
            let offer_id = format!("{}-O{}", self.master_id, self.next_offer);
            self.next_offer += 1;
            let agent = &mut self.agents[index];
            let resources = std::mem::take(&mut agent.free);
            agent.offered = true;
            let offer = mesos::Offer {
                id: mesos::OfferId {
                    value: offer_id.clone(),
                },
                framework_id: mesos::FrameworkId {
                    value: framework_id.clone(),
                },
                agent_id: mesos::AgentId {
                    value: agent.id.clone(),
                },
                hostname: agent.hostname.clone(),
                resources: resources.to_proto(),
                attributes: agent.attributes.iter().map(attribute_of).collect(),
                domain: agent.domain.as_ref().map(domain_of),
                ..Default::default()
            };
            self.offers.insert(
                offer_id,
                Offer {
                    framework_id: framework_id.clone(),
                    agent: index,
                    resources,
                    made_at: now,
                },
            );
            batches.entry(framework_id).or_default().push(offer);
        }
        for (framework_id, offers) in batches {
            let mut event = event_of(event::Type::Offers);
            event.offers = Some(event::Offers { offers });
            self.send(&framework_id, event);
        }
    }
}
