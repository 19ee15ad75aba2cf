//! Offers: allocation of each agent's free resources, ACCEPT (launching tasks), DECLINE
//! filters and offers taken back.

use super::reservations::{task_resources, TaskResources};
use super::resources::{attribute_of, domain_of, Resources};
use super::tasks::{launch_of, unsupported_container};
use super::{event_of, Offer, Runner, State, Task, DEFAULT_REFUSE};
use crate::master::agent::LaunchReservation;
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
        agent_and_role: (usize, String),
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
                .insert(agent_and_role, now + Duration::from_secs_f64(seconds));
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
        let mut role = String::new();
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
            role = offer.role;
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
        let roles = self
            .frameworks
            .get(framework_id)
            .map(|f| roles_of(&f.info))
            .unwrap_or_default();
        let mut remaining = offered;
        use mesos::offer::operation::Type;
        for operation in accept.operations {
            // Mesos drops an invalid operation and goes on with the next; a launch that needed
            // what it would have made then fails on its own.
            let done = match operation.r#type() {
                _ if !valid => Ok(()),
                Type::Reserve => {
                    let resources = operation.reserve.map(|r| r.resources).unwrap_or_default();
                    self.reserve(agent, &roles, &resources, &mut remaining)
                }
                Type::Create => {
                    let volumes = operation.create.map(|c| c.volumes).unwrap_or_default();
                    self.create_volumes(agent, &volumes).await
                }
                Type::Destroy => {
                    let volumes = operation.destroy.map(|d| d.volumes).unwrap_or_default();
                    self.destroy_volumes(agent, &volumes).await
                }
                Type::Unreserve => {
                    let resources = operation.unreserve.map(|u| u.resources).unwrap_or_default();
                    self.unreserve(agent, &resources, &mut remaining)
                }
                _ => Ok(()),
            };
            if let Err(message) = done {
                tracing::warn!("dropping an operation of framework {framework_id}: {message}");
            }
            let Some(launch) = operation.launch else {
                continue;
            };
            for task in launch.task_infos {
                self.launch(framework_id, valid.then_some(agent), task, &mut remaining)
                    .await;
            }
        }
        if valid {
            self.release(agent, &remaining);
            self.refuse(framework_id, (agent, role), accept.filters.as_ref(), now);
        }
    }

    /// Launches one task of an ACCEPT on `agent` (`None`: the offers were invalid), out of the
    /// offer's `remaining` unreserved resources or its reservation.
    async fn launch(
        &mut self,
        framework_id: &str,
        agent: Option<usize>,
        task: mesos::TaskInfo,
        remaining: &mut Resources,
    ) {
        let task_id = task.task_id.value.clone();
        let invalid = |message: String| {
            Some((
                mesos::TaskState::TaskError,
                mesos::task_status::Reason::TaskInvalid,
                message,
            ))
        };
        let sorted = task_resources(&task.resources);
        let mut failure = match (&sorted, agent) {
            (_, None) => Some((
                mesos::TaskState::TaskDropped,
                mesos::task_status::Reason::InvalidOffers,
                "Task launched with invalid offers".to_string(),
            )),
            _ if self.tasks.get(&task_id).is_some_and(|t| !t.is_terminal()) => {
                invalid(format!("Task {task_id} is already running"))
            }
            (Err(message), _) => invalid(message.clone()),
            (Ok(TaskResources::Unreserved(requested)), _) if !requested.fits_in(remaining) => {
                invalid("Task uses more resources than the offer has".to_string())
            }
            _ => None,
        };
        let agent_index = agent.unwrap_or(usize::MAX);
        let mut mounts = Vec::new();
        let mut reserved = None;
        if failure.is_none() {
            if let Ok(TaskResources::Reserved(share)) = &sorted {
                match self.take_reserved(agent_index, share) {
                    Ok(linked) => {
                        mounts = linked;
                        reserved = Some(share.clone());
                    }
                    Err(message) => failure = invalid(message),
                }
            }
        }
        if failure.is_none() {
            failure = unsupported_container(&task).map(|message| {
                (
                    mesos::TaskState::TaskFailed,
                    mesos::task_status::Reason::ContainerLaunchFailed,
                    message,
                )
            });
        }
        let status = match &failure {
            Some((state, reason, message)) => {
                self.status(agent, &task_id, *state, message, Some(*reason))
            }
            None => self.status(agent, &task_id, mesos::TaskState::TaskStaging, "", None),
        };
        if failure
            .as_ref()
            .is_some_and(|(state, _, _)| *state != mesos::TaskState::TaskFailed)
        {
            // The master's own verdicts on a launch are sent once, without a uuid, and the
            // task is not kept, as in Mesos.
            let mut status = status;
            status.set_source(mesos::task_status::Source::Master);
            let mut update = event_of(event::Type::Update);
            update.update = Some(event::Update { status });
            self.send(framework_id, update);
            return;
        }
        let (unreserved, requested) = match (&sorted, &reserved) {
            (_, Some(share)) => (Resources::default(), share.resources.clone()),
            (Ok(TaskResources::Unreserved(requested)), None) => {
                (requested.clone(), requested.clone())
            }
            _ => (Resources::default(), Resources::default()),
        };
        let unreserved = if failure.is_none() {
            unreserved
        } else {
            Resources::default()
        };
        *remaining = remaining.minus(&unreserved);
        let mut record = Task::new(
            framework_id.to_string(),
            agent_index,
            unreserved,
            status.clone(),
        );
        record.reserved = reserved.clone();
        self.tasks.insert(task_id.clone(), record);
        if failure.is_some() {
            if let Some(share) = &reserved {
                // Nothing runs on it.
                self.return_reserved(agent_index, share);
                if let Some(task) = self.tasks.get_mut(&task_id) {
                    task.reserved = None;
                }
            }
            self.queue_update(&task_id, status);
            return;
        }
        match &self.agents[agent_index].runner {
            Runner::Processes(processes) => {
                let reservation = reserved.map(|share| LaunchReservation {
                    role: share.role,
                    labels: share.labels,
                    volumes: share.volumes,
                });
                processes
                    .launch(launch_of(
                        framework_id,
                        &task,
                        requested,
                        mounts,
                        reservation,
                    ))
                    .await
            }
            Runner::Simulated => {
                let running = self.status(agent, &task_id, mesos::TaskState::TaskRunning, "", None);
                self.queue_update(&task_id, running);
            }
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
            let has_free = agent.free.is_useful()
                || agent
                    .reservations
                    .iter()
                    .any(|r| r.free.is_useful() || r.volumes.iter().any(|v| !v.in_use));
            if agent.offered || !has_free || !agent.offers_resources() {
                continue;
            }
            let turn = self.next_offer as usize;
            // Each framework in turn, each of its roles in turn, skipping what it refused.
            let chosen = (0..candidates.len())
                .map(|k| &candidates[(turn + k) % candidates.len()])
                .find_map(|id| {
                    let roles = roles_of(&self.frameworks[id].info);
                    (0..roles.len())
                        .map(|k| roles[(agent.next_role + k) % roles.len()].clone())
                        .find(|role| {
                            self.frameworks[id]
                                .refused
                                .get(&(index, role.clone()))
                                .is_none_or(|until| *until <= now)
                        })
                        .map(|role| (id.clone(), role))
                });
            let Some((framework_id, role)) = chosen else {
                continue;
            };
            let offer_id = format!("{}-O{}", self.master_id, self.next_offer);
            self.next_offer += 1;
            let reserved = self.offered_reservations(index, &role);
            let agent = &mut self.agents[index];
            agent.next_role += 1;
            let resources = std::mem::take(&mut agent.free);
            agent.offered = true;
            let allocation = Some(mesos::resource::AllocationInfo {
                role: Some(role.clone()),
            });
            let mut offered = resources.to_proto();
            offered.extend(reserved);
            for resource in &mut offered {
                resource.allocation_info = allocation.clone();
            }
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
                resources: offered,
                attributes: agent.attributes.iter().map(attribute_of).collect(),
                domain: agent.domain.as_ref().map(domain_of),
                allocation_info: allocation,
                ..Default::default()
            };
            self.offers.insert(
                offer_id,
                Offer {
                    framework_id: framework_id.clone(),
                    agent: index,
                    role,
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

/// The roles a framework takes offers for: MULTI_ROLE's `roles`, else the old single `role`.
fn roles_of(info: &mesos::FrameworkInfo) -> Vec<String> {
    if !info.roles.is_empty() {
        return info.roles.clone();
    }
    vec![info.role.clone().unwrap_or_else(|| "*".into())]
}
