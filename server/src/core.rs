//! The scheduler's state in memory and the operations that change it.
//!
//! [`Core`] is owned by one task (see [`crate::service`]). Every operation mutates the state and
//! records what it touched; [`Core::take_changes`] then turns that into one store transaction,
//! the events to publish and the Mesos calls to make, all of which happen only after the commit.
//! If a commit fails, the owner reloads the core from the store, so memory never runs ahead of
//! what is durable. Decisions come from the pure functions in [`crate::scheduler`].

use crate::scheduler::backoff::{self, Backoff, Policy};
use crate::scheduler::converge::{converge, Action};
use crate::scheduler::deployment::{advance, change_of, steps_for, Change, Deployment};
use crate::scheduler::instance::{parse_task_id, Condition, Goal, Instance, Placement};
use crate::scheduler::placement::{match_offer, OfferView, Pending, Placed, Veto};
use crate::scheduler::status::{apply_status, instance_changed, Effect, StatusUpdate};
use crate::scheduler::taskbuild::{build_task, TaskSpec};
use crate::store::{Batch, Loaded};
use app::model::{path, AppDefinition, MarathonEvent, ServiceError, TaskFailure, Timestamp};
use imbl::OrdMap;
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// How long declined offers stay away when something is waiting (so freed resources come back
/// soon) and when nothing is (Marathon's `--decline_offer_duration`).
pub const REFUSE_WHILE_WAITING: Duration = Duration::from_secs(5);
pub const REFUSE_WHEN_IDLE: Duration = Duration::from_secs(120);

/// A Mesos call the core wants made, in the core's terms; the driver translates it.
#[derive(Clone, Debug, PartialEq)]
pub enum Outgoing {
    Accept {
        offer_id: String,
        tasks: Vec<TaskSpec>,
        refuse: Duration,
    },
    Decline {
        offer_id: String,
        refuse: Duration,
    },
    Kill {
        task_id: String,
        agent_id: Option<String>,
        grace: Option<Duration>,
    },
    Acknowledge {
        agent_id: String,
        task_id: String,
        uuid: Vec<u8>,
    },
    /// Explicit reconciliation of these (task id, agent id) pairs; empty = implicit.
    Reconcile(Vec<(String, Option<String>)>),
    Revive,
    Suppress,
}

/// An agent as last seen in an offer.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentView {
    pub hostname: String,
    pub attributes: Vec<(String, String)>,
    /// Resources offered the last time, i.e. free at that moment.
    pub offered_cpus: f64,
    pub offered_mem: f64,
}

/// What readers see: a consistent, cheaply cloned copy of the state after a commit.
#[derive(Clone, Default)]
pub struct Snapshot {
    pub apps: OrdMap<String, Arc<AppDefinition>>,
    pub instances: OrdMap<String, Arc<Instance>>,
    pub deployments: OrdMap<String, Arc<Deployment>>,
    pub backoffs: BTreeMap<(String, Timestamp), Backoff>,
    pub vetoes: BTreeMap<String, Vec<Veto>>,
    pub last_failures: BTreeMap<String, TaskFailure>,
    /// Persistent like the big maps: a cluster has thousands of agents, and the snapshot is
    /// cloned after every commit.
    pub agents: OrdMap<String, AgentView>,
    pub framework_id: Option<String>,
    pub connected: bool,
}

impl Snapshot {
    /// The instances of one app. Instance ids start with the app's safe path, so this is a
    /// range scan; the id check guards against an app whose name extends another's.
    pub fn instances_of<'a>(
        &'a self,
        app_id: &str,
    ) -> impl Iterator<Item = &'a Arc<Instance>> + 'a {
        instances_of(&self.instances, app_id)
    }

    pub fn deployments_of<'a>(
        &'a self,
        app_id: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Deployment>> + 'a {
        self.deployments.values().filter(move |d| d.touches(app_id))
    }
}

fn instances_of<'a>(
    instances: &'a OrdMap<String, Arc<Instance>>,
    app_id: &str,
) -> impl Iterator<Item = &'a Arc<Instance>> + 'a {
    let prefix = format!("{}.instance-", path::safe_path(app_id));
    let app_id = app_id.to_string();
    instances
        .range(prefix.clone()..)
        .take_while(move |(id, _)| id.starts_with(&prefix))
        .map(|(_, i)| i)
        .filter(move |i| i.app_id == app_id)
}

/// What one batch of operations produced, to be committed and then carried out.
#[derive(Debug, Default)]
pub struct Changes {
    pub batch: Batch,
    pub events: Vec<MarathonEvent>,
    pub calls: Vec<Outgoing>,
}

#[derive(Default)]
struct Dirty {
    apps: BTreeSet<String>,
    instances: BTreeSet<String>,
    deployments: BTreeSet<String>,
    framework: bool,
    events: Vec<MarathonEvent>,
    calls: Vec<Outgoing>,
}

pub struct Core {
    state: Snapshot,
    dirty: Dirty,
    rng: StdRng,
    /// Whether offers are suppressed at the master right now.
    suppressed: bool,
    /// When a launch delay that made us decline offers ends: then offers are revived, so the
    /// relaunch does not wait for the decline filter to expire.
    revive_at: Option<Timestamp>,
    /// When the next periodic reconciliation is due (set at each SUBSCRIBED).
    reconcile_at: Option<Timestamp>,
    /// Apps whose instances changed by status updates since they were last looked at, with
    /// the latest update's time and whether convergence can have something to do. Converging
    /// an app or checking its deployment walks all its instances, so it happens once per batch
    /// of inputs ([`settle`](Core::settle)), not once per update.
    unsettled: BTreeMap<String, (Timestamp, bool)>,
    /// Instances of each app that want a launch: whether offers are needed is known without
    /// walking the instances.
    waiting: PerAppCount,
    /// Instances of each app that run and should: until there are as many as the app asks
    /// for, its deployment cannot be done, which spares walking its instances to check.
    running: PerAppCount,
}

/// Reconciliation after each SUBSCRIBED catches what happened while disconnected; this
/// interval catches status updates the master sent once and that were lost (they carry no uuid
/// and are never retried).
const RECONCILE_INTERVAL_MS: i64 = 15 * 60 * 1000;

/// The outcome of a kill request.
pub enum KillOutcome {
    /// The instances acted on.
    Killed(Vec<Instance>),
    /// With `scale`: the deployment that lowered the instance count.
    Scaled(Deployment),
}

impl Core {
    pub fn new(loaded: Loaded, rng: StdRng) -> Core {
        let mut state = Snapshot {
            framework_id: loaded.framework_id,
            ..Snapshot::default()
        };
        for app in loaded.apps {
            state.apps.insert(app.id.clone(), Arc::new(app));
        }
        for instance in loaded.instances {
            state
                .instances
                .insert(instance.id.clone(), Arc::new(instance));
        }
        for d in loaded.deployments {
            state.deployments.insert(d.id.clone(), Arc::new(d));
        }
        let waiting = PerAppCount::of(&state.instances, Instance::wants_launch);
        let running = PerAppCount::of(&state.instances, is_running);
        Core {
            state,
            dirty: Dirty::default(),
            rng,
            suppressed: false,
            revive_at: None,
            reconcile_at: None,
            unsettled: BTreeMap::new(),
            waiting,
            running,
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.state.clone()
    }

    pub fn framework_id(&self) -> Option<&str> {
        self.state.framework_id.as_deref()
    }

    fn uuid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.gen())
            .into_uuid()
            .to_string()
    }

    fn put_instance(&mut self, instance: Instance) {
        self.dirty.instances.insert(instance.id.clone());
        let before = self.state.instances.get(&instance.id).cloned();
        self.counts_change(before.as_deref(), Some(&instance));
        self.state
            .instances
            .insert(instance.id.clone(), Arc::new(instance));
    }

    fn remove_instance(&mut self, id: &str) {
        self.dirty.instances.insert(id.to_string());
        if let Some(removed) = self.state.instances.remove(id) {
            self.counts_change(Some(&removed), None);
        }
    }

    fn counts_change(&mut self, before: Option<&Instance>, after: Option<&Instance>) {
        let Some(app_id) = before.or(after).map(|i| i.app_id.clone()) else {
            return;
        };
        let holds =
            |i: Option<&Instance>, predicate: fn(&Instance) -> bool| i.is_some_and(predicate);
        self.waiting.change(
            &app_id,
            holds(before, Instance::wants_launch),
            holds(after, Instance::wants_launch),
        );
        self.running
            .change(&app_id, holds(before, is_running), holds(after, is_running));
    }

    fn put_deployment(&mut self, d: Deployment) {
        self.dirty.deployments.insert(d.id.clone());
        self.state.deployments.insert(d.id.clone(), Arc::new(d));
    }

    fn remove_deployment(&mut self, id: &str) {
        self.dirty.deployments.insert(id.to_string());
        self.state.deployments.remove(id);
    }

    /// Publishes `event` with this batch's changes (e.g. an API request's own event).
    pub fn record(&mut self, event: MarathonEvent) {
        self.emit(event);
    }

    fn emit(&mut self, event: MarathonEvent) {
        self.dirty.events.push(event);
    }

    fn call(&mut self, call: Outgoing) {
        self.dirty.calls.push(call);
    }

    /// Everything changed since the last call, as a store batch plus what to do after committing.
    pub fn take_changes(&mut self) -> Changes {
        self.settle();
        debug_assert_eq!(
            self.waiting,
            PerAppCount::of(&self.state.instances, Instance::wants_launch),
            "the count of waiting instances drifted"
        );
        debug_assert_eq!(
            self.running,
            PerAppCount::of(&self.state.instances, is_running),
            "the count of running instances drifted"
        );
        let dirty = std::mem::take(&mut self.dirty);
        let mut batch = Batch::default();
        for id in dirty.apps {
            match self.state.apps.get(&id) {
                Some(app) => batch.apps_put.push((**app).clone()),
                None => batch.apps_deleted.push(id),
            }
        }
        for id in dirty.instances {
            match self.state.instances.get(&id) {
                Some(i) => batch.instances_put.push((**i).clone()),
                None => batch.instances_deleted.push(id),
            }
        }
        for id in dirty.deployments {
            match self.state.deployments.get(&id) {
                Some(d) => batch.deployments_put.push((**d).clone()),
                None => batch.deployments_deleted.push(id),
            }
        }
        if dirty.framework {
            batch.framework_id = self.state.framework_id.clone();
        }
        Changes {
            batch,
            events: dirty.events,
            calls: dirty.calls,
        }
    }

    // ---------------------------------------------------------------- deployments from the API

    /// Replaces (or with `None` deletes) the app `app_id` and records a deployment for the change.
    /// `next` has already been validated and versioned by the caller.
    pub fn deploy(
        &mut self,
        app_id: &str,
        next: Option<AppDefinition>,
        force: bool,
        now: Timestamp,
    ) -> Result<Deployment, ServiceError> {
        let before = self.state.apps.get(app_id).map(|a| (**a).clone());
        let conflicts: Vec<String> = self
            .state
            .deployments_of(app_id)
            .map(|d| d.id.clone())
            .collect();
        if !conflicts.is_empty() && !force {
            return Err(ServiceError::Locked(conflicts));
        }
        for id in conflicts {
            self.cancel_deployment(&id, "canceled by a forced deployment", now);
        }
        let change = change_of(before.as_ref(), next.as_ref());
        let version = next.as_ref().map_or(now, |a| a.version);
        match next {
            Some(app) => {
                self.state.apps.insert(app_id.to_string(), Arc::new(app));
            }
            None => {
                self.state.apps.remove(app_id);
            }
        }
        self.dirty.apps.insert(app_id.to_string());
        if change == Change::Restart {
            // A new configuration starts without the old one's launch delay.
            self.state.backoffs.retain(|(id, _), _| id != app_id);
        }
        let deployment = Deployment {
            id: self.uuid(),
            version,
            steps: steps_for(app_id, change),
            current_step: 0,
            originals: vec![(app_id.to_string(), before)],
        };
        self.emit(MarathonEvent::GroupChangeSuccess {
            group_id: path::parent(app_id),
            version,
            timestamp: now,
        });
        if let Some(first) = deployment.steps.first() {
            self.emit(MarathonEvent::DeploymentInfo {
                plan: deployment.plan(),
                current_step: first.clone(),
                timestamp: now,
            });
        }
        self.put_deployment(deployment.clone());
        self.converge_app(app_id, now);
        self.advance_deployments(now);
        Ok(deployment)
    }

    fn cancel_deployment(&mut self, id: &str, reason: &str, now: Timestamp) {
        if let Some(d) = self.state.deployments.get(id).cloned() {
            self.remove_deployment(id);
            self.emit(MarathonEvent::DeploymentFailed {
                id: d.id.clone(),
                plan: d.plan(),
                timestamp: now,
                reason: Some(reason.to_string()),
            });
        }
    }

    /// `DELETE /v2/deployments/{id}`: with `force`, just stop tracking it; otherwise deploy the
    /// apps it touched back to how they were.
    pub fn delete_deployment(
        &mut self,
        id: &str,
        force: bool,
        now: Timestamp,
    ) -> Result<Option<Deployment>, ServiceError> {
        let Some(d) = self.state.deployments.get(id).cloned() else {
            return Err(ServiceError::NotFound(format!(
                "DeploymentPlan {id} does not exist"
            )));
        };
        if force {
            self.cancel_deployment(id, "canceled by the user", now);
            return Ok(None);
        }
        let mut rollback = None;
        for (app_id, original) in &d.originals {
            let restored = original.clone().map(|mut app| {
                app.version = now;
                app
            });
            rollback = Some(self.deploy(app_id, restored, true, now)?);
        }
        Ok(rollback)
    }

    fn advance_deployments(&mut self, now: Timestamp) {
        let deployments: Vec<Arc<Deployment>> = self.state.deployments.values().cloned().collect();
        self.advance(deployments, now);
    }

    fn advance(&mut self, deployments: Vec<Arc<Deployment>>, now: Timestamp) {
        for d in deployments {
            let state = &self.state;
            let (next, events) = advance(
                &d,
                |app_id| {
                    (
                        state.apps.get(app_id).map(|a| a.as_ref()),
                        instances_of(&state.instances, app_id)
                            .map(|i| i.as_ref())
                            .collect(),
                    )
                },
                now,
            );
            self.dirty.events.extend(events);
            if next.is_finished() {
                self.remove_deployment(&next.id);
            } else if next != *d {
                self.put_deployment(next);
            }
        }
    }

    // ---------------------------------------------------------------- convergence

    /// Brings one app's instances toward its definition: schedule, decommission, expunge.
    fn converge_app(&mut self, app_id: &str, now: Timestamp) {
        let app = self.state.apps.get(app_id).cloned();
        let instances: Vec<Arc<Instance>> = instances_of(&self.state.instances, app_id)
            .cloned()
            .collect();
        let refs: Vec<&Instance> = instances.iter().map(|i| i.as_ref()).collect();
        for action in converge(app.as_deref(), &refs) {
            match action {
                Action::Schedule { count } => {
                    let Some(app) = &app else { continue };
                    for _ in 0..count {
                        let uuid = self.uuid();
                        let instance = Instance::scheduled(
                            app_id,
                            &uuid,
                            app.version,
                            app.config_version(),
                            now,
                        );
                        self.emit(instance_changed(&instance, now));
                        self.put_instance(instance);
                    }
                }
                Action::Decommission { instance_id } => self.decommission(&instance_id, now),
                Action::Expunge { instance_id } => self.remove_instance(&instance_id),
            }
        }
    }

    fn decommission(&mut self, instance_id: &str, now: Timestamp) {
        let Some(instance) = self.state.instances.get(instance_id).cloned() else {
            return;
        };
        if instance.condition.is_active() {
            let mut next = (*instance).clone();
            next.goal = Goal::Decommissioned;
            self.kill_task(&next);
            self.put_instance(next);
        } else {
            // Nothing runs: there is nothing to wait for.
            self.remove_instance(instance_id);
            let mut gone = (*instance).clone();
            gone.goal = Goal::Decommissioned;
            self.emit(instance_changed(&gone, now));
        }
    }

    fn kill_task(&mut self, instance: &Instance) {
        let grace = self
            .state
            .apps
            .get(&instance.app_id)
            .and_then(|a| a.task_kill_grace_period_seconds)
            .map(|s| Duration::from_secs(s.max(0) as u64));
        self.call(Outgoing::Kill {
            task_id: instance.task_id(),
            agent_id: instance.placement.as_ref().map(|p| p.agent_id.clone()),
            grace,
        });
    }

    // ---------------------------------------------------------------- kills from the API

    /// Kills the instances owning `task_ids` (unknown ids are skipped). `wipe` forgets them
    /// (new instances take their place); `scale` lowers their apps' instance counts instead.
    pub fn kill_tasks(
        &mut self,
        task_ids: &[String],
        scale: bool,
        wipe: bool,
        force: bool,
        now: Timestamp,
    ) -> Result<KillOutcome, ServiceError> {
        if scale && wipe {
            return Err(ServiceError::BadRequest {
                message: "You cannot use scale and wipe at the same time.".into(),
                details: None,
            });
        }
        let found: Vec<Arc<Instance>> = task_ids
            .iter()
            .filter_map(|t| parse_task_id(t).map(|(instance, _)| instance))
            .filter_map(|id| self.state.instances.get(id).cloned())
            .collect();
        if scale {
            let mut per_app: Vec<(String, i64)> = Vec::new();
            for i in found.iter().filter(|i| i.goal == Goal::Running) {
                match per_app.iter_mut().find(|(a, _)| a == &i.app_id) {
                    Some((_, n)) => *n += 1,
                    None => per_app.push((i.app_id.clone(), 1)),
                }
            }
            // Every lock is checked before anything changes, so a refusal writes nothing.
            let locked: Vec<String> = per_app
                .iter()
                .flat_map(|(app_id, _)| self.state.deployments_of(app_id).map(|d| d.id.clone()))
                .collect();
            if !locked.is_empty() && !force {
                return Err(ServiceError::Locked(locked));
            }
            let mut last = None;
            for (app_id, n) in per_app {
                let Some(app) = self.state.apps.get(&app_id).cloned() else {
                    continue;
                };
                for i in found.iter().filter(|i| i.app_id == app_id) {
                    self.decommission(&i.id, now);
                }
                let mut scaled = (*app).clone();
                scaled.instances = (scaled.instances - n).max(0);
                scaled.version = now;
                scaled.version_info.last_scaling_at = Some(now);
                last = Some(self.deploy(&app_id, Some(scaled), force, now)?);
            }
            return match last {
                Some(d) => Ok(KillOutcome::Scaled(d)),
                None => {
                    let d = Deployment {
                        id: self.uuid(),
                        version: now,
                        steps: vec![],
                        current_step: 0,
                        originals: vec![],
                    };
                    Ok(KillOutcome::Scaled(d))
                }
            };
        }
        for i in &found {
            if wipe {
                self.decommission(&i.id, now);
                self.converge_app(&i.app_id, now);
            } else if i.condition.is_active() {
                self.kill_task(i);
            }
        }
        Ok(KillOutcome::Killed(
            found.iter().map(|i| (**i).clone()).collect(),
        ))
    }

    // ---------------------------------------------------------------- Mesos events

    pub fn on_subscribed(&mut self, framework_id: String, now: Timestamp) {
        if self.state.framework_id.as_deref() != Some(&framework_id) {
            self.state.framework_id = Some(framework_id.clone());
            self.dirty.framework = true;
        }
        self.state.connected = true;
        self.suppressed = false;
        self.emit(MarathonEvent::SchedulerRegisteredEvent {
            framework_id,
            master: "local".into(),
            timestamp: now,
        });
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
            .map(|i| {
                (
                    i.task_id(),
                    i.placement.as_ref().map(|p| p.agent_id.clone()),
                )
            })
            .collect();
        if !known.is_empty() {
            self.call(Outgoing::Reconcile(known));
        }
        self.call(Outgoing::Reconcile(Vec::new()));
    }

    pub fn on_disconnected(&mut self) {
        self.state.connected = false;
        self.reconcile_at = None;
    }

    pub fn on_rescind(&mut self, _offer_id: &str) {
        // Offers are used or declined as soon as they arrive, so none is held to cancel.
    }

    /// A status update; `ack` is set when the update must be acknowledged (it carried a uuid).
    pub fn on_status(&mut self, update: StatusUpdate, ack: Option<Vec<u8>>, now: Timestamp) {
        let agent_id = update.agent_id.clone();
        let instance = parse_task_id(&update.task_id)
            .and_then(|(id, _)| self.state.instances.get(id).cloned());
        match instance {
            None => {
                let terminal = crate::scheduler::status::condition_of(&update).is_terminal();
                if !terminal {
                    // A task we do not know about holds resources: Marathon kills it.
                    self.call(Outgoing::Kill {
                        task_id: update.task_id.clone(),
                        agent_id: agent_id.clone(),
                        grace: None,
                    });
                }
            }
            Some(instance) => self.apply_update(&instance, &update, now),
        }
        if let (Some(uuid), Some(agent_id)) = (ack, agent_id) {
            self.call(Outgoing::Acknowledge {
                agent_id,
                task_id: update.task_id,
                uuid,
            });
        }
    }

    fn apply_update(&mut self, instance: &Instance, update: &StatusUpdate, now: Timestamp) {
        let app_id = instance.app_id.clone();
        // A kill can get lost (a master restart, a dropped connection); reconciliation showing a
        // decommissioned task alive is the cue to kill it again.
        if instance.goal == Goal::Decommissioned
            && update.task_id == instance.task_id()
            && crate::scheduler::status::condition_of(update).is_active()
            && update.reason.as_deref() == Some("REASON_RECONCILIATION")
        {
            self.kill_task(instance);
        }
        let (next, events) = match apply_status(instance, update, now) {
            Effect::Noop => return,
            Effect::Update { instance, events } => (Some(instance), events),
            Effect::Expunge { instance, events } => {
                self.remove_instance(&instance.id);
                (None, events)
            }
        };
        self.dirty.events.extend(events);
        let expunged = next.is_none();
        if let Some(next) = next {
            let condition = next.condition;
            if let Some(app) = self.state.apps.get(&app_id).cloned() {
                let key = (app_id.clone(), next.config_version);
                let previous = self.state.backoffs.get(&key).copied();
                if condition.is_failure() && next.goal == Goal::Running {
                    let b = backoff::after_failure(previous, Policy::of(&app), now);
                    self.state.backoffs.insert(key, b);
                    self.state.last_failures.insert(
                        app_id.clone(),
                        TaskFailure {
                            app_id: app_id.clone(),
                            host: next
                                .placement
                                .as_ref()
                                .map_or_else(String::new, |p| p.hostname.clone()),
                            message: update.message.clone(),
                            state: update.state.name().to_string(),
                            task_id: update.task_id.clone(),
                            timestamp: now,
                            version: next.app_version,
                            slave_id: update.agent_id.clone(),
                        },
                    );
                } else if let (Some(b), true) = (
                    previous,
                    matches!(
                        condition,
                        Condition::Staging | Condition::Starting | Condition::Running
                    ),
                ) {
                    self.state
                        .backoffs
                        .insert(key, backoff::after_progress(b, now));
                }
            }
            self.put_instance(next);
        }
        // A status changes which bucket an instance is in only for a decommissioned one (it
        // stops, then is expunged) or one that is gone for good: for the others convergence
        // has nothing to do.
        let converge = expunged || instance.goal == Goal::Decommissioned;
        let entry = self.unsettled.entry(app_id).or_insert((now, false));
        *entry = (entry.0.max(now), entry.1 || converge);
    }

    /// Converges the apps that status updates changed, and advances their deployments.
    fn settle(&mut self) {
        let unsettled = std::mem::take(&mut self.unsettled);
        let Some(now) = unsettled.values().map(|(at, _)| *at).max() else {
            return;
        };
        for (app_id, (at, converge)) in &unsettled {
            if *converge {
                self.converge_app(app_id, *at);
            }
        }
        // A deployment is done only when its apps have all their instances running.
        let state = &self.state;
        let may_be_done = |app_id: &String| {
            unsettled.contains_key(app_id)
                && state
                    .apps
                    .get(app_id)
                    .is_none_or(|app| self.running.get(app_id) >= app.instances.max(0) as usize)
        };
        let deployments: Vec<Arc<Deployment>> = self
            .state
            .deployments
            .values()
            .filter(|d| {
                d.steps
                    .iter()
                    .flat_map(|step| &step.actions)
                    .any(|action| may_be_done(&action.app))
            })
            .cloned()
            .collect();
        self.advance(deployments, now);
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
        let apps = self.state.apps.clone();
        let instances = self.state.instances.clone();
        let mut queue = launch_queue(&apps, &instances, &self.state.backoffs, now);
        self.revive_at = next_delay_end(&apps, &instances, &self.state.backoffs, now);
        let mut vetoes: BTreeMap<String, Vec<Veto>> = BTreeMap::new();
        let anything_waiting = queue.iter().any(|p| !p.waiting.is_empty());
        for offer in offers {
            let matched = match_offer(&offer, &mut queue);
            for (app_id, veto) in matched.vetoes {
                let entry = vetoes.entry(app_id).or_default();
                if !entry.contains(&veto) {
                    entry.push(veto);
                }
            }
            if matched.allocations.is_empty() {
                let refuse = if anything_waiting {
                    REFUSE_WHILE_WAITING
                } else {
                    REFUSE_WHEN_IDLE
                };
                self.call(Outgoing::Decline {
                    offer_id: offer.offer_id.clone(),
                    refuse,
                });
                continue;
            }
            let mut tasks = Vec::new();
            for allocation in matched.allocations {
                let (Some(instance), Some(app)) = (
                    instances.get(&allocation.instance_id),
                    apps.get(&allocation.app_id),
                ) else {
                    continue;
                };
                let mut next = (**instance).clone();
                if next.condition != Condition::Scheduled {
                    next.incarnation += 1;
                }
                next.condition = Condition::Provisioned;
                next.since = now;
                next.staged_at = Some(now);
                next.started_at = None;
                next.message = None;
                next.app_version = app.version;
                next.config_version = app.config_version();
                next.placement = Some(Placement {
                    agent_id: offer.agent_id.clone(),
                    hostname: offer.hostname.clone(),
                    ports: allocation.ports.clone(),
                    attributes: offer.attributes.clone(),
                });
                tasks.push(build_task(
                    app,
                    next.task_id(),
                    &allocation,
                    &offer.agent_id,
                    &offer.hostname,
                ));
                self.emit(instance_changed(&next, now));
                self.put_instance(next);
            }
            self.call(Outgoing::Accept {
                offer_id: offer.offer_id.clone(),
                tasks,
                refuse: REFUSE_WHILE_WAITING,
            });
        }
        // Vetoes describe the latest round; an app no longer vetoed has its reasons cleared.
        self.state.vetoes = vetoes;
        self.update_offer_interest(now);
    }

    /// Periodic housekeeping: forget stale backoffs, revive offers for launches whose delay
    /// has passed.
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
        self.update_offer_interest(now);
    }

    /// SUPPRESS when nothing can launch, REVIVE when something can and offers are suppressed.
    fn update_offer_interest(&mut self, now: Timestamp) {
        let state = &self.state;
        let wants_offers = self.waiting.apps().any(|app_id| {
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

    /// Called after each batch of inputs: settles what status updates changed, and asks for
    /// offers at once when instances wait.
    pub fn after_change(&mut self, now: Timestamp) {
        self.settle();
        self.update_offer_interest(now);
    }
}

fn is_running(instance: &Instance) -> bool {
    instance.goal == Goal::Running && instance.condition == Condition::Running
}

/// How many instances of each app satisfy a predicate, kept up to date as instances change
/// (apps with none are left out).
#[derive(Debug, Default, PartialEq)]
struct PerAppCount(BTreeMap<String, usize>);

impl PerAppCount {
    fn of(instances: &OrdMap<String, Arc<Instance>>, predicate: fn(&Instance) -> bool) -> Self {
        let mut counts = BTreeMap::new();
        for instance in instances.values().filter(|i| predicate(i)) {
            *counts.entry(instance.app_id.clone()).or_default() += 1;
        }
        PerAppCount(counts)
    }

    /// An instance of `app_id` that satisfied the predicate (`was`) and now does (`is`).
    fn change(&mut self, app_id: &str, was: bool, is: bool) {
        match (was, is) {
            (false, true) => *self.0.entry(app_id.to_owned()).or_default() += 1,
            (true, false) => {
                if let Some(count) = self.0.get_mut(app_id) {
                    *count -= 1;
                    if *count == 0 {
                        self.0.remove(app_id);
                    }
                }
            }
            _ => {}
        }
    }

    fn get(&self, app_id: &str) -> usize {
        self.0.get(app_id).copied().unwrap_or(0)
    }

    fn apps(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }
}

/// The instances waiting to launch, per app, skipping apps held back by their backoff.
fn launch_queue<'a>(
    apps: &'a OrdMap<String, Arc<AppDefinition>>,
    instances: &'a OrdMap<String, Arc<Instance>>,
    backoffs: &BTreeMap<(String, Timestamp), Backoff>,
    now: Timestamp,
) -> Vec<Pending<'a>> {
    let mut queue = Vec::new();
    for (app_id, app) in apps {
        let delayed = backoff::blocks_launch(
            backoffs
                .get(&(app_id.clone(), app.config_version()))
                .copied(),
            now,
        );
        let mut waiting = VecDeque::new();
        let mut placed = Vec::new();
        for i in instances_of(instances, app_id) {
            if i.wants_launch() {
                if !delayed {
                    waiting.push_back(i.id.clone());
                }
            } else if !app.constraints.is_empty()
                && i.goal == Goal::Running
                && i.config_version == app.config_version()
            {
                // Where the app's instances run matters only to its constraints.
                if let Some(p) = &i.placement {
                    placed.push(Placed {
                        hostname: p.hostname.clone(),
                        attributes: p.attributes.clone(),
                    });
                }
            }
        }
        if !waiting.is_empty() {
            queue.push(Pending {
                app,
                placed,
                waiting,
            });
        }
    }
    queue
}

/// The earliest end of a launch delay that holds back a waiting instance, if any.
fn next_delay_end(
    apps: &OrdMap<String, Arc<AppDefinition>>,
    instances: &OrdMap<String, Arc<Instance>>,
    backoffs: &BTreeMap<(String, Timestamp), Backoff>,
    now: Timestamp,
) -> Option<Timestamp> {
    apps.iter()
        .filter_map(|(app_id, app)| {
            let b = backoffs.get(&(app_id.clone(), app.config_version()))?;
            let waiting = instances_of(instances, app_id).any(|i| i.wants_launch());
            (waiting && backoff::blocks_launch(Some(*b), now)).then_some(b.deadline)
        })
        .min()
}

/// Why an app's instances wait, in words, for the API and the dashboard.
pub fn waiting_reasons(snapshot: &Snapshot, app: &AppDefinition, now: Timestamp) -> Vec<String> {
    let waiting = snapshot
        .instances_of(&app.id)
        .filter(|i| i.wants_launch())
        .count();
    if waiting == 0 {
        return Vec::new();
    }
    let mut reasons = Vec::new();
    if let Some(b) = snapshot
        .backoffs
        .get(&(app.id.clone(), app.config_version()))
        .filter(|b| backoff::blocks_launch(Some(**b), now))
    {
        let left = (b.deadline.millis() - now.millis()).max(0) as f64 / 1000.0;
        reasons.push(format!(
            "Delayed after a failed task: next launch in {left:.1} s (backoff {:.1} s)",
            b.delay_ms as f64 / 1000.0
        ));
    }
    if let Some(vetoes) = snapshot.vetoes.get(&app.id) {
        reasons.extend(
            vetoes
                .iter()
                .map(|v| format!("Waiting for resources: {} ({})", v.explain(), v.name())),
        );
    }
    if !snapshot.connected {
        reasons.push("Waiting for the Mesos master: not subscribed".into());
    }
    if reasons.is_empty() {
        // No offer has been weighed for it yet: say so rather than nothing.
        reasons.push("Waiting for an offer from the Mesos master".into());
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::status::TaskState;
    use crate::scheduler::testing::app_with;
    use rand::SeedableRng;

    fn core() -> Core {
        Core::new(Loaded::default(), StdRng::seed_from_u64(7))
    }

    fn offer(cpus: f64) -> OfferView {
        OfferView {
            offer_id: "o1".into(),
            agent_id: "agent-1".into(),
            hostname: "host-1".into(),
            role: "*".into(),
            attributes: vec![],
            cpus,
            mem: 4096.0,
            disk: 1000.0,
            ports: vec![(31000, 31100)],
        }
    }

    /// A core with one app of one instance whose task was just accepted; the accepted tasks.
    fn launched_one(now: Timestamp) -> (Core, Vec<TaskSpec>) {
        let mut core = core();
        core.deploy("/test", Some(app_with(1, 1000)), false, now)
            .unwrap();
        core.on_offers(vec![offer(1.0)], now);
        match core.take_changes().calls.into_iter().next() {
            Some(Outgoing::Accept { tasks, .. }) => (core, tasks),
            other => panic!("expected an accept, got {other:?}"),
        }
    }

    fn update(task_id: &str, state: TaskState) -> StatusUpdate {
        StatusUpdate {
            task_id: task_id.into(),
            state,
            reason: None,
            message: String::new(),
            agent_id: Some("agent-1".into()),
        }
    }

    #[test]
    fn an_app_launches_runs_and_its_deployment_completes() {
        let mut core = core();
        let now = Timestamp::from_millis(1000);
        let app = app_with(2, 1000);
        let d = core.deploy("/test", Some(app), false, now).unwrap();
        let changes = core.take_changes();
        assert_eq!(changes.batch.apps_put.len(), 1);
        assert_eq!(changes.batch.instances_put.len(), 2);
        assert_eq!(changes.batch.deployments_put.len(), 1);
        core.on_offers(vec![offer(1.0)], now);
        let changes = core.take_changes();
        let Some(Outgoing::Accept { tasks, .. }) = changes.calls.first() else {
            panic!("expected an accept, got {:?}", changes.calls)
        };
        assert_eq!(tasks.len(), 2);
        let task_ids: Vec<String> = tasks.iter().map(|t| t.task_id.clone()).collect();
        for t in &task_ids {
            core.on_status(update(t, TaskState::Running), Some(vec![1]), now);
        }
        let changes = core.take_changes();
        assert!(changes.batch.deployments_deleted.contains(&d.id));
        assert!(changes
            .events
            .iter()
            .any(|e| matches!(e, MarathonEvent::DeploymentSuccess { .. })));
        assert_eq!(
            changes
                .calls
                .iter()
                .filter(|c| matches!(c, Outgoing::Acknowledge { .. }))
                .count(),
            2
        );
    }

    #[test]
    fn reconciliation_follows_each_subscription_and_repeats_periodically() {
        let now = Timestamp::from_millis(1000);
        let (mut core, tasks) = launched_one(now);
        let reconciles = |core: &mut Core| -> Vec<Vec<(String, Option<String>)>> {
            core.take_changes()
                .calls
                .into_iter()
                .filter_map(|call| match call {
                    Outgoing::Reconcile(tasks) => Some(tasks),
                    _ => None,
                })
                .collect()
        };
        core.on_subscribed("fw-1".into(), now);
        let explicit = vec![(tasks[0].task_id.clone(), Some("agent-1".to_owned()))];
        assert_eq!(reconciles(&mut core), vec![explicit.clone(), vec![]]);
        core.on_tick(now.plus_millis(RECONCILE_INTERVAL_MS - 1));
        assert!(reconciles(&mut core).is_empty(), "not due yet");
        let due = now.plus_millis(RECONCILE_INTERVAL_MS);
        core.on_tick(due);
        assert_eq!(reconciles(&mut core), vec![explicit, vec![]]);
        core.on_disconnected();
        core.on_tick(due.plus_millis(RECONCILE_INTERVAL_MS));
        assert!(
            reconciles(&mut core).is_empty(),
            "no reconciliation while disconnected"
        );
    }

    #[test]
    fn a_failed_task_is_relaunched_after_its_backoff() {
        let now = Timestamp::from_millis(1000);
        let (mut core, tasks) = launched_one(now);
        let task = tasks[0].task_id.clone();
        core.on_status(update(&task, TaskState::Running), None, now);
        core.on_status(update(&task, TaskState::Failed), None, now);
        core.take_changes();
        core.on_offers(vec![offer(1.0)], now.plus_millis(10));
        let calls = core.take_changes().calls;
        assert!(
            matches!(calls.first(), Some(Outgoing::Decline { .. })),
            "held back by the backoff: {calls:?}"
        );
        let reasons = waiting_reasons(&core.snapshot(), &app_with(1, 1000), now.plus_millis(10));
        assert!(reasons[0].starts_with("Delayed"), "{reasons:?}");
        core.on_offers(vec![offer(1.0)], now.plus_millis(1001));
        let calls = core.take_changes().calls;
        let Some(Outgoing::Accept { tasks, .. }) = calls.first() else {
            panic!("expected a relaunch: {calls:?}")
        };
        assert!(
            tasks[0].task_id.ends_with("._app.2"),
            "{}",
            tasks[0].task_id
        );
    }

    #[test]
    fn locked_apps_need_force_and_deletion_stops_everything() {
        let mut core = core();
        let now = Timestamp::from_millis(1000);
        let first = core
            .deploy("/test", Some(app_with(1, 1000)), false, now)
            .unwrap();
        let again = core.deploy("/test", Some(app_with(2, 2000)), false, now);
        assert_eq!(again, Err(ServiceError::Locked(vec![first.id.clone()])));
        core.deploy("/test", None, true, now).unwrap();
        let changes = core.take_changes();
        assert!(changes.batch.apps_deleted.contains(&"/test".to_string()));
        assert!(changes
            .events
            .iter()
            .any(|e| matches!(e, MarathonEvent::DeploymentFailed { .. })));
        assert!(
            core.snapshot().instances.is_empty(),
            "unlaunched instances are forgotten at once"
        );
    }

    #[test]
    fn a_lost_kill_is_repeated_when_reconciliation_shows_the_task_alive() {
        let now = Timestamp::from_millis(1000);
        let (mut core, tasks) = launched_one(now);
        let task = tasks[0].task_id.clone();
        core.on_status(update(&task, TaskState::Running), None, now);
        core.deploy("/test", None, true, now).unwrap();
        assert!(core
            .take_changes()
            .calls
            .iter()
            .any(|c| matches!(c, Outgoing::Kill { .. })));
        let mut reconciled = update(&task, TaskState::Running);
        reconciled.reason = Some("REASON_RECONCILIATION".into());
        core.on_status(reconciled, None, now);
        let calls = core.take_changes().calls;
        assert!(
            calls
                .iter()
                .any(|c| matches!(c, Outgoing::Kill { task_id, .. } if *task_id == task)),
            "{calls:?}"
        );
    }

    #[test]
    fn offers_are_revived_when_a_launch_delay_ends() {
        let now = Timestamp::from_millis(1000);
        let (mut core, tasks) = launched_one(now);
        core.on_status(update(&tasks[0].task_id, TaskState::Failed), None, now);
        core.on_offers(vec![offer(1.0)], now.plus_millis(10));
        core.take_changes();
        core.on_tick(now.plus_millis(500));
        assert!(
            !core.take_changes().calls.contains(&Outgoing::Revive),
            "still delayed"
        );
        core.on_tick(now.plus_millis(1001));
        assert!(core.take_changes().calls.contains(&Outgoing::Revive));
    }
}
