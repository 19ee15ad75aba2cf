//! What the Mesos master says and is told: subscription, offers and launches, status updates,
//! reconciliation, and whether Stride wants offers at all.

use super::{
    instances_of, AgentView, Core, OfferOperation, OfferStats, Outgoing, REFUSE_WHEN_IDLE,
    REFUSE_WHILE_WAITING,
};
use crate::scheduler::backoff::{self, Backoff, Policy};
use crate::scheduler::constraint::RegexCache;
use crate::scheduler::instance::{
    parse_task_id, Condition, Goal, Instance, Placement, Reservation,
};
use crate::scheduler::lifecycle::Operation;
use crate::scheduler::placement::{match_offer, Allocation, OfferView, Pending};
use crate::scheduler::residency::{new_reservation, spec_of, use_of, ReservedUse};
use crate::scheduler::status::{condition_of, StatusUpdate};
use crate::scheduler::taskbuild::{build_task, TaskSpec};
use crate::scheduler::taskgroup::{build_task_group, TaskGroupSpec};
use app::model::{AppDefinition, MarathonEvent, Timestamp};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Reconciliation after each SUBSCRIBED catches what happened while disconnected; this
/// interval catches status updates the master sent once and that were lost (they carry no uuid
/// and are never retried).
pub(super) const RECONCILE_INTERVAL_MS: i64 = 15 * 60 * 1000;

impl Core {
    /// `master` is the master's hostname, when it said.
    pub fn on_subscribed(&mut self, framework_id: String, master: Option<String>, now: Timestamp) {
        if self.state.framework_id.as_deref() != Some(&framework_id) {
            self.state.framework_id = Some(framework_id.clone());
            self.dirty.framework = true;
        }
        self.state.connected = true;
        self.suppressed = false;
        let master = master.unwrap_or_else(|| "local".into());
        self.emit(if self.registered {
            MarathonEvent::SchedulerReregisteredEvent {
                master,
                timestamp: now,
            }
        } else {
            MarathonEvent::SchedulerRegisteredEvent {
                framework_id,
                master,
                timestamp: now,
            }
        });
        self.registered = true;
        self.reconcile(now);
    }

    /// Explicitly for every instance we believe has a live task, then implicitly for the rest.
    fn reconcile(&mut self, now: Timestamp) {
        self.reconcile_at = Some(now.plus_millis(RECONCILE_INTERVAL_MS));
        let known: Vec<(String, Option<String>)> = self
            .state
            .instances
            .values()
            .filter(|i| i.condition.is_active())
            .flat_map(|i| {
                let agent_id = i.placement.as_ref().map(|p| p.agent_id.clone());
                i.task_ids()
                    .into_iter()
                    .map(move |task_id| (task_id, agent_id.clone()))
            })
            .collect();
        if !known.is_empty() {
            self.call(Outgoing::Reconcile(known));
        }
        self.call(Outgoing::Reconcile(Vec::new()));
    }

    pub fn on_disconnected(&mut self, now: Timestamp) {
        if self.state.connected {
            self.emit(MarathonEvent::SchedulerDisconnectedEvent { timestamp: now });
        }
        self.state.connected = false;
        self.reconcile_at = None;
    }

    /// A message an executor sent the framework: only published (Stride runs no executor of
    /// its own that would talk to it).
    pub fn on_message(
        &mut self,
        agent_id: String,
        executor_id: String,
        data: Vec<u8>,
        now: Timestamp,
    ) {
        self.emit(MarathonEvent::FrameworkMessageEvent {
            executor_id,
            slave_id: agent_id,
            message: data,
            timestamp: now,
        });
    }

    pub fn on_rescind(&mut self, _offer_id: &str) {
        // Offers are used or declined as soon as they arrive, so none is held to cancel.
    }

    /// A status update; `ack` is set when the update must be acknowledged (it carried a uuid).
    pub fn on_status(&mut self, update: StatusUpdate, ack: Option<Vec<u8>>, now: Timestamp) {
        let agent_id = update.agent_id.clone();
        let known = parse_task_id(&update.task_id).and_then(|(id, _)| {
            self.state
                .instances
                .get(id)
                .map(|i| (id.to_string(), i.app_id.clone(), i.goal))
        });
        match known {
            None => {
                let condition = condition_of(&update);
                if !condition.is_terminal() {
                    // A task we do not know about holds resources: Marathon kills it.
                    self.call(Outgoing::Kill {
                        task_id: update.task_id.clone(),
                        agent_id: agent_id.clone(),
                        grace: None,
                    });
                } else if let Some((instance_id, _)) = parse_task_id(&update.task_id) {
                    self.emit(MarathonEvent::UnknownInstanceTerminatedEvent {
                        instance_id: instance_id.to_string(),
                        run_spec_id: run_spec_of(instance_id),
                        condition: condition.name().to_string(),
                        timestamp: now,
                    });
                }
            }
            Some((instance_id, app_id, goal)) => {
                let inactive = |core: &Self| {
                    core.state
                        .instances
                        .get(&instance_id)
                        .is_some_and(|i| i.condition == Condition::UnreachableInactive)
                };
                let was_inactive = inactive(self);
                self.change(Some(&instance_id), Operation::Status(&update), now);
                self.check_unreachable_instance(&instance_id, now);
                // Outside a rolling restart, a status changes what convergence does only for a
                // decommissioned instance (it stops, then is expunged), one gone for good, and
                // one that starts or stops counting because its agent is lost or back.
                let expunged = !self.state.instances.contains_key(&instance_id);
                let recount = was_inactive != inactive(self);
                self.unsettle(&app_id, now, expunged || recount || goal != Goal::Running);
            }
        }
        if let (Some(uuid), Some(agent_id)) = (ack, agent_id) {
            self.call(Outgoing::Acknowledge {
                agent_id,
                task_id: update.task_id,
                uuid,
            });
        }
    }

    /// Offers arrived: place waiting instances, decline the rest.
    pub fn on_offers(&mut self, offers: Vec<OfferView>, now: Timestamp) {
        self.settle();
        for offer in &offers {
            self.state.agents.insert(
                offer.agent_id.clone(),
                AgentView {
                    hostname: offer.hostname.clone(),
                    attributes: offer.attributes.clone(),
                    offered_cpus: offer.cpus,
                    offered_mem: offer.mem,
                },
            );
        }
        let snapshot = self.state.clone();
        let mut queue = launch_queue(&snapshot, &mut self.regexes, now);
        self.revive_at = next_delay_end(&snapshot, now);
        let anything_waiting = queue.iter().any(|p| !p.waiting.is_empty());
        for offer in offers {
            // Reserved resources first: resident instances relaunch on their own, and what no
            // instance holds any more goes back to the agent.
            let (mut operations, mut tasks) = self.use_reservations(&snapshot, &offer, now);
            let matched = match_offer(&offer, &mut queue);
            for (app_id, outcome) in &matched.outcomes {
                let stats = self
                    .state
                    .offer_stats
                    .entry(app_id.clone())
                    .or_insert_with(|| Arc::new(OfferStats::default()));
                Arc::make_mut(stats).record(&offer, *outcome, now);
            }
            if matched.allocations.is_empty() && operations.is_empty() && tasks.is_empty() {
                let refuse = if anything_waiting {
                    REFUSE_WHILE_WAITING
                } else {
                    REFUSE_WHEN_IDLE
                };
                let vetoed = matched
                    .outcomes
                    .iter()
                    .find_map(|(_, outcome)| outcome.veto());
                self.call(Outgoing::Decline {
                    offer_id: offer.offer_id.clone(),
                    refuse,
                    vetoed,
                });
                continue;
            }
            for allocation in matched.allocations {
                let Some(instance) = snapshot.instances.get(&allocation.instance_id) else {
                    continue;
                };
                let Some(app) = snapshot.definition_of(instance) else {
                    continue;
                };
                if app.pod.is_some() {
                    operations.extend(
                        self.provision_group(app, &allocation, &offer, now)
                            .map(OfferOperation::LaunchGroup),
                    );
                    continue;
                }
                // A resident instance's first launch reserves what it needs and creates its
                // volumes, in the same ACCEPT.
                let reservation = app
                    .is_resident()
                    .then(|| new_reservation(app, &allocation, &offer, &self.uuid()));
                let reserves = reservation.is_some();
                if let Some(task) = self.provision(app, &allocation, &offer, reservation, now) {
                    if let Some(spec) = task.reservation.clone().filter(|_| reserves) {
                        operations.push(OfferOperation::Reserve(spec.clone()));
                        if !spec.volumes.is_empty() {
                            operations.push(OfferOperation::Create(spec));
                        }
                    }
                    tasks.push(task);
                }
            }
            if !tasks.is_empty() {
                operations.push(OfferOperation::Launch(tasks));
            }
            self.call(Outgoing::Accept {
                offer_id: offer.offer_id.clone(),
                operations,
                refuse: REFUSE_WHILE_WAITING,
            });
        }
        self.forget_stats_of_apps_not_waiting();
        self.update_offer_interest(now);
    }

    /// Provisions the allocation's instance on the offer (with the reservation a resident
    /// instance's first launch makes) and builds its task, on its reservation if it has one.
    fn provision(
        &mut self,
        app: &AppDefinition,
        allocation: &Allocation,
        offer: &OfferView,
        reservation: Option<Reservation>,
        now: Timestamp,
    ) -> Option<TaskSpec> {
        let provisioned = self.provisioned(app, allocation, offer, reservation, now)?;
        let mut task = build_task(
            app,
            provisioned.task_id(),
            allocation,
            &offer.agent_id,
            &offer.hostname,
        );
        let framework_id = self.state.framework_id.as_deref().unwrap_or_default();
        task.reservation = provisioned
            .reservation
            .as_ref()
            .map(|r| spec_of(r, framework_id, &provisioned.id));
        Some(task)
    }

    /// The allocation's instance, provisioned on the offer (the one place a launch changes
    /// an instance).
    fn provisioned(
        &mut self,
        app: &AppDefinition,
        allocation: &Allocation,
        offer: &OfferView,
        reservation: Option<Reservation>,
        now: Timestamp,
    ) -> Option<Arc<Instance>> {
        let placement = Placement {
            agent_id: offer.agent_id.clone(),
            hostname: offer.hostname.clone(),
            ports: allocation.ports.clone(),
            attributes: offer.attributes.clone(),
        };
        self.change(
            Some(&allocation.instance_id),
            Operation::Provision {
                app,
                placement,
                reservation: reservation.map(Box::new),
            },
            now,
        );
        self.state.instances.get(&allocation.instance_id).cloned()
    }

    /// Provisions the allocation's pod instance on the offer and builds its task group.
    fn provision_group(
        &mut self,
        app: &AppDefinition,
        allocation: &Allocation,
        offer: &OfferView,
        now: Timestamp,
    ) -> Option<TaskGroupSpec> {
        let pod = app.pod.as_deref()?;
        let provisioned = self.provisioned(app, allocation, offer, None, now)?;
        Some(build_task_group(
            pod,
            &provisioned.id,
            provisioned.incarnation,
            allocation,
            &offer.agent_id,
        ))
    }

    /// What the offer's reserved resources are for: the operations that give back left-over
    /// reservations, and the tasks of resident instances that relaunch on theirs.
    fn use_reservations(
        &mut self,
        snapshot: &super::Snapshot,
        offer: &OfferView,
        now: Timestamp,
    ) -> (Vec<OfferOperation>, Vec<TaskSpec>) {
        let mut operations = Vec::new();
        let mut tasks = Vec::new();
        let framework_id = self.state.framework_id.clone().unwrap_or_default();
        for offered in &offer.reserved {
            let used = use_of(offered, &offer.agent_id, &framework_id, |id| {
                snapshot.instances.get(id).map(|i| i.as_ref())
            });
            match used {
                ReservedUse::Launch(instance) => {
                    let (Some(app), Some(reservation)) =
                        (snapshot.definition_of(instance), &instance.reservation)
                    else {
                        continue;
                    };
                    if backoff::blocks_launch(delay_of(&snapshot.backoffs, app), now) {
                        continue;
                    }
                    let allocation = Allocation {
                        instance_id: instance.id.clone(),
                        app_id: app.id.clone(),
                        cpus: reservation.cpus,
                        mem: reservation.mem,
                        disk: reservation.disk,
                        ports: reservation.ports.clone(),
                        volumes: Vec::new(),
                    };
                    tasks.extend(self.provision(app, &allocation, offer, None, now));
                }
                ReservedUse::Release(spec) => {
                    self.releasing.remove(&offer.agent_id);
                    if !spec.volumes.is_empty() {
                        operations.push(OfferOperation::Destroy(spec.clone()));
                    }
                    operations.push(OfferOperation::Unreserve(spec));
                }
                ReservedUse::Keep | ReservedUse::NotOurs => {}
            }
        }
        (operations, tasks)
    }

    /// Offer statistics describe a wait: an app with nothing waiting has none.
    fn forget_stats_of_apps_not_waiting(&mut self) {
        let waiting = &self.waiting;
        let stale: Vec<String> = self
            .state
            .offer_stats
            .keys()
            .filter(|app| waiting.get(app) == 0)
            .cloned()
            .collect();
        for app in stale {
            self.state.offer_stats.remove(&app);
        }
    }

    /// Periodic housekeeping: reconciliation when due, offers revived when a launch delay ends,
    /// stale backoffs forgotten, timed-out deployments failed, memory of gone things dropped.
    pub fn on_tick(&mut self, now: Timestamp) {
        self.settle();
        if self.reconcile_at.is_some_and(|at| at <= now) {
            self.reconcile(now);
        }
        if self.revive_at.is_some_and(|at| at <= now) {
            self.revive_at = None;
            self.suppressed = false;
            self.call(Outgoing::Revive);
        }
        let apps = self.state.apps.clone();
        self.state.backoffs.retain(|(app_id, _), b| {
            apps.get(app_id)
                .is_some_and(|app| !backoff::is_stale(*b, Policy::of(app), now))
        });
        self.check_deadlines(now);
        self.check_unreachable(now);
        self.forget_recovered(now);
        self.forget_unused_versions();
        self.forget_stats_of_apps_not_waiting();
        self.update_offer_interest(now);
    }

    /// SUPPRESS when nothing can launch, REVIVE when something can and offers are suppressed.
    fn update_offer_interest(&mut self, now: Timestamp) {
        let state = &self.state;
        // An agent that holds a reservation no instance needs any more has to offer it once,
        // so that it can be given back.
        let wants_offers = !self.releasing.is_empty()
            || self.waiting.apps().any(|app_id| {
                state.apps.get(app_id).is_some_and(|app| {
                    let delay = state.backoffs.get(&(app_id.clone(), app.config_version()));
                    !backoff::blocks_launch(delay.copied(), now)
                })
            });
        if wants_offers && self.suppressed {
            self.suppressed = false;
            self.call(Outgoing::Revive);
        } else if !wants_offers && !self.suppressed {
            self.suppressed = true;
            self.call(Outgoing::Suppress);
        }
    }

    /// Called after each batch of inputs: settles what changed, and asks for offers at once
    /// when instances wait.
    pub fn after_change(&mut self, now: Timestamp) {
        self.settle();
        self.update_offer_interest(now);
    }
}

/// The app an instance id belongs to, as well as the id tells (`prod_web.instance-…` →
/// `/prod/web`; underscores inside segments cannot be told apart, ids never have them).
fn run_spec_of(instance_id: &str) -> String {
    let safe = instance_id
        .split(".instance-")
        .next()
        .unwrap_or(instance_id);
    format!("/{}", safe.replace('_', "/"))
}

/// The delay that holds back launches of instances of `app`'s configuration, if any.
fn delay_of(
    backoffs: &BTreeMap<(String, Timestamp), Backoff>,
    app: &AppDefinition,
) -> Option<Backoff> {
    backoffs
        .get(&(app.id.clone(), app.config_version()))
        .copied()
}

/// The instances waiting to launch, per app definition (an instance of an older version is
/// launched with its own), skipping those held back by their backoff.
fn launch_queue<'a>(
    state: &'a super::Snapshot,
    regexes: &mut RegexCache,
    now: Timestamp,
) -> Vec<Pending<'a>> {
    let mut queue = Vec::new();
    for app_id in state.apps.keys() {
        let mut waiting: BTreeMap<Timestamp, (&'a AppDefinition, VecDeque<String>)> =
            BTreeMap::new();
        let mut placed: Vec<&'a Instance> = Vec::new();
        for i in instances_of(&state.instances, app_id) {
            if i.wants_launch() && i.reservation.is_some() {
                // It relaunches on its reservation, nowhere else (see `use_reservations`).
                continue;
            }
            if i.wants_launch() {
                let Some(def) = state.definition_of(i) else {
                    continue;
                };
                if backoff::blocks_launch(delay_of(&state.backoffs, def), now) {
                    continue;
                }
                waiting
                    .entry(def.version)
                    .or_insert_with(|| (def, VecDeque::new()))
                    .1
                    .push_back(i.id.clone());
            } else if i.goal == Goal::Running
                && i.placement.is_some()
                && !i.condition.is_unreachable()
            {
                // Lost instances do not count for constraints (SEMANTICS.md §7).
                placed.push(i);
            }
        }
        for (_, (def, ids)) in waiting {
            let counted = placed
                .iter()
                .filter(|i| i.config_version == def.config_version())
                .filter_map(|i| i.placement.as_ref())
                .map(|p| (p.hostname.as_str(), p.attributes.as_slice()));
            queue.push(Pending::new(def, regexes, counted, ids));
        }
    }
    queue
}

/// The earliest end of a launch delay that holds back a waiting instance, if any.
fn next_delay_end(state: &super::Snapshot, now: Timestamp) -> Option<Timestamp> {
    state
        .apps
        .iter()
        .filter_map(|(app_id, app)| {
            let b = delay_of(&state.backoffs, app)?;
            let waiting = instances_of(&state.instances, app_id).any(|i| i.wants_launch());
            (waiting && backoff::blocks_launch(Some(b), now)).then_some(b.deadline)
        })
        .min()
}
