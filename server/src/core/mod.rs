//! The scheduler's state in memory and the operations that change it.
//!
//! [`Core`] is owned by one task (see [`crate::service`]). Every operation mutates the state and
//! records what it touched; [`Core::take_changes`] then turns that into one store transaction,
//! the events to publish and the Mesos calls to make, all of which happen only after the commit.
//! If a commit fails, the owner reloads the core from the store, so memory never runs ahead of
//! what is durable. Decisions come from the pure functions in [`crate::scheduler`]; every change
//! to an instance goes through [`crate::scheduler::lifecycle::update`] in [`Core::change`].
//!
//! # Layout
//! - this module: the state ([`Snapshot`]), change tracking, and the one place instances change.
//! - [`requests`]: what the API asks for: deployments of app changes (with the one versioning
//!   rule), rollbacks, kills, delay resets.
//! - [`engine`]: convergence of apps as far as their deployments allow, deployment progress,
//!   timeouts, health and readiness results.
//! - [`mesos`]: what the master says and is told: subscription, offers, status updates,
//!   reconciliation, offer interest.

mod engine;
mod mesos;
mod requests;

pub use crate::scheduler::versioning::{versioned, Versioning};
pub use requests::KillOutcome;

use crate::scheduler::backoff::{self, Backoff, Policy};
use crate::scheduler::constraint::RegexCache;
use crate::scheduler::converge::Judgement;
use crate::scheduler::deployment::Deployment;
use crate::scheduler::groups::Tree;
use crate::scheduler::health::{health_of, InstanceHealth};
use crate::scheduler::instance::{Condition, Goal, Instance};
use crate::scheduler::lifecycle::{self, Next, Operation};
use crate::scheduler::placement::{OfferView, Outcome, Veto};
use crate::scheduler::residency::ReservationSpec;
use crate::scheduler::service_ports::PortRange;
use crate::scheduler::taskbuild::TaskSpec;
use crate::scheduler::taskgroup::TaskGroupSpec;
use crate::store::{Batch, Loaded, RootVersion};
use app::model::{
    path, AppDefinition, GroupDefinition, MarathonEvent, ReadinessResult, TaskFailure, Timestamp,
};
use imbl::OrdMap;
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// How long declined offers stay away when something is waiting (so freed resources come back
/// soon) and when nothing is (Marathon's `--decline_offer_duration`).
pub const REFUSE_WHILE_WAITING: Duration = Duration::from_secs(5);
pub const REFUSE_WHEN_IDLE: Duration = Duration::from_secs(120);

/// A Mesos call the core wants made, in the core's terms; the driver translates it.
#[derive(Clone, Debug, PartialEq)]
pub enum Outgoing {
    /// Carry out `operations`, in order, on the offer.
    Accept {
        offer_id: String,
        operations: Vec<OfferOperation>,
        refuse: Duration,
    },
    Decline {
        offer_id: String,
        refuse: Duration,
        /// Why (for the metrics): the first reason an app that wanted it gave, or none.
        vetoed: Option<Veto>,
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

/// One operation of an ACCEPT, Mesos' offer operations in the core's terms.
#[derive(Clone, Debug, PartialEq)]
pub enum OfferOperation {
    /// Reserve the resources (cpus, mem, all the disk, ports) for one instance.
    Reserve(ReservationSpec),
    /// Create the volumes on reserved disk.
    Create(ReservationSpec),
    Launch(Vec<TaskSpec>),
    /// Launch a pod instance's tasks together under Mesos' default executor.
    LaunchGroup(TaskGroupSpec),
    /// Destroy the volumes (their data is gone).
    Destroy(ReservationSpec),
    /// Give the reserved resources back.
    Unreserve(ReservationSpec),
}

impl OfferOperation {
    /// The tasks it launches.
    pub fn tasks(&self) -> &[TaskSpec] {
        match self {
            OfferOperation::Launch(tasks) => tasks,
            OfferOperation::LaunchGroup(group) => &group.tasks,
            _ => &[],
        }
    }
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

/// What the last offer of one agent meant to an app.
#[derive(Clone, Debug, PartialEq)]
pub struct LastOffer {
    pub offer: OfferView,
    pub outcome: Outcome,
    pub at: Timestamp,
}

/// How offers went for an app while it has instances waiting (Marathon's launch stats): kept
/// from the moment it starts waiting until nothing waits any more.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OfferStats {
    pub processed: u64,
    pub unused: u64,
    pub last_used_at: Option<Timestamp>,
    pub last_unused_at: Option<Timestamp>,
    /// Offers that reached each checker and those it refused, since the app started waiting.
    pub since_waiting: BTreeMap<Veto, (u64, u64)>,
    /// The latest offer of each agent, which `rejectSummaryLastOffers` summarises.
    pub last_by_agent: OrdMap<String, LastOffer>,
}

impl OfferStats {
    fn record(&mut self, offer: &OfferView, outcome: Outcome, now: Timestamp) {
        self.processed += 1;
        match outcome {
            Outcome::Used => self.last_used_at = Some(now),
            Outcome::Vetoed(_) | Outcome::Unfulfilled(_) => {
                self.unused += 1;
                self.last_unused_at = Some(now);
            }
        }
        for (stage, processed, declined) in funnel([outcome].into_iter()) {
            let entry = self.since_waiting.entry(stage).or_default();
            entry.0 += processed;
            entry.1 += declined;
        }
        self.last_by_agent.insert(
            offer.agent_id.clone(),
            LastOffer {
                offer: offer.clone(),
                outcome,
                at: now,
            },
        );
    }

    /// `rejectSummaryLastOffers`: per checker, of each agent's latest offer, how many reached it
    /// and how many it refused.
    pub fn last_offers(&self) -> Vec<(Veto, u64, u64)> {
        funnel(self.last_by_agent.values().map(|l| l.outcome))
    }

    /// `rejectSummaryLaunchAttempt`: the same over every offer since the app started waiting.
    pub fn launch_attempt(&self) -> Vec<(Veto, u64, u64)> {
        Veto::FUNNEL
            .iter()
            .map(|v| {
                let (processed, declined) = self.since_waiting.get(v).copied().unwrap_or_default();
                (*v, processed, declined)
            })
            .collect()
    }
}

/// For each checker in funnel order: how many of `outcomes` reached it, how many it refused.
fn funnel(outcomes: impl Iterator<Item = Outcome>) -> Vec<(Veto, u64, u64)> {
    let mut counts: Vec<(Veto, u64, u64)> = Veto::FUNNEL.iter().map(|v| (*v, 0, 0)).collect();
    for outcome in outcomes {
        for (veto, processed, declined) in counts.iter_mut() {
            *processed += 1;
            if outcome.veto() == Some(*veto) {
                *declined += 1;
                break;
            }
        }
    }
    counts
}

/// What readers see: a consistent, cheaply cloned copy of the state after a commit.
#[derive(Clone, Default)]
pub struct Snapshot {
    pub apps: OrdMap<String, Arc<AppDefinition>>,
    pub instances: OrdMap<String, Arc<Instance>>,
    pub deployments: OrdMap<String, Arc<Deployment>>,
    /// Every group but the root, which always exists.
    pub groups: OrdMap<String, Arc<GroupDefinition>>,
    /// When the tree last changed: the root group's version.
    pub tree_version: Timestamp,
    /// Older definitions of apps that instances still run, by (app id, version).
    pub versions: OrdMap<(String, Timestamp), Arc<AppDefinition>>,
    pub backoffs: BTreeMap<(String, Timestamp), Backoff>,
    pub offer_stats: OrdMap<String, Arc<OfferStats>>,
    pub last_failures: BTreeMap<String, TaskFailure>,
    /// Probed health of instances' current tasks, by instance id (memory only).
    pub health: OrdMap<String, Arc<InstanceHealth>>,
    /// Readiness of tasks started by deployments, by task id (memory only).
    pub readiness: OrdMap<String, ReadinessResult>,
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

    /// The definition an instance runs: its own version's, else the app's current one.
    pub fn definition_of(&self, instance: &Instance) -> Option<&Arc<AppDefinition>> {
        let current = self.apps.get(&instance.app_id);
        if current.is_some_and(|a| a.version == instance.app_version) {
            return current;
        }
        self.versions
            .get(&(instance.app_id.clone(), instance.app_version))
            .or(current)
    }

    /// How an instance is doing, for deployments: healthy by its version's checks, and ready
    /// when its app has no readiness check, when it was running before `deployment` began (only
    /// the tasks a deployment starts are checked), or when its check passed.
    pub fn judge(&self, instance: &Instance, deployment: Option<&Deployment>) -> Judgement {
        let Some(app) = self.definition_of(instance) else {
            return Judgement {
                health: crate::scheduler::health::Health::Unknown,
                ready: false,
            };
        };
        let health = health_of(
            app,
            instance,
            self.health.get(&instance.id).map(|h| h.as_ref()),
        );
        let started_before = |d: &Deployment| instance.staged_at.is_some_and(|at| at < d.version);
        let ready = app.readiness_checks.is_empty()
            || deployment.is_none_or(started_before)
            || self
                .readiness
                .get(&instance.task_id())
                .is_some_and(|r| r.ready);
        Judgement { health, ready }
    }

    /// The apps and groups as a tree, for group requests.
    pub fn tree(&self) -> Tree {
        Tree {
            apps: self
                .apps
                .iter()
                .map(|(id, a)| (id.clone(), (**a).clone()))
                .collect(),
            groups: self
                .groups
                .iter()
                .map(|(id, g)| (id.clone(), (**g).clone()))
                .collect(),
        }
    }

    /// The deployment that holds `app_id`, if any.
    pub fn deployment_of(&self, app_id: &str) -> Option<&Arc<Deployment>> {
        self.deployments.values().find(|d| d.touches(app_id))
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
    apps_created: BTreeSet<String>,
    groups: BTreeSet<String>,
    /// The tree changed: a version of it is stored.
    tree: bool,
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
    /// LIKE/UNLIKE patterns of constraints, compiled once.
    regexes: RegexCache,
    /// Whether offers are suppressed at the master right now.
    suppressed: bool,
    /// Agents holding a reservation of an instance that is gone: offers are wanted until each
    /// has offered it and it has been given back.
    releasing: BTreeSet<String>,
    /// When a launch delay that made us decline offers ends: then offers are revived, so the
    /// relaunch does not wait for the decline filter to expire.
    revive_at: Option<Timestamp>,
    /// When the next periodic reconciliation is due (set at each SUBSCRIBED).
    reconcile_at: Option<Timestamp>,
    /// Whether this process has been subscribed before: a later SUBSCRIBED is a
    /// re-registration (after a lost connection or a master failover).
    registered: bool,
    /// Apps whose instances changed since they were last looked at, with the latest change's
    /// time and whether convergence can have something to do even outside a rolling restart.
    /// Converging an app or checking its deployment walks all its instances, so it happens
    /// once per batch of inputs ([`settle`](Core::settle)), not once per update.
    unsettled: BTreeMap<String, (Timestamp, bool)>,
    /// Instances of each app that want a launch: whether offers are needed is known without
    /// walking the instances.
    waiting: PerAppCount,
    /// Instances of each app that run and should: until there are as many as the app asks
    /// for, its deployment cannot be done, which spares walking its instances to check.
    running: PerAppCount,
    /// Instances of each app whose agent cannot be reached: the apps the periodic unreachable
    /// check walks.
    unreachable: PerAppCount,
    /// Instances killed for their health that have not recovered yet, by instance id, with
    /// their app (see [`crate::scheduler::health`]).
    recovering: BTreeMap<String, String>,
    /// Where service ports 0 get their port from (`--local-port-min`/`max`).
    service_port_range: PortRange,
}

impl Core {
    /// The core handing out service ports from `range` rather than Marathon's default
    /// 10000–20000.
    pub fn with_service_port_range(self, range: PortRange) -> Core {
        Core {
            service_port_range: range,
            ..self
        }
    }

    pub fn new(loaded: Loaded, rng: StdRng) -> Core {
        let mut state = Snapshot {
            framework_id: loaded.framework_id,
            ..Snapshot::default()
        };
        for app in loaded.apps {
            state.apps.insert(app.id.clone(), Arc::new(app));
        }
        for app in loaded.versions {
            state
                .versions
                .insert((app.id.clone(), app.version), Arc::new(app));
        }
        for instance in loaded.instances {
            state
                .instances
                .insert(instance.id.clone(), Arc::new(instance));
        }
        for d in loaded.deployments {
            state.deployments.insert(d.id.clone(), Arc::new(d));
        }
        for g in loaded.groups {
            state.groups.insert(g.id.clone(), Arc::new(g));
        }
        state.tree_version = state
            .apps
            .values()
            .map(|a| a.version)
            .chain(state.groups.values().map(|g| g.version))
            .max()
            .unwrap_or(Timestamp::from_millis(0));
        let waiting = PerAppCount::of(&state.instances, Instance::wants_launch);
        let running = PerAppCount::of(&state.instances, is_running);
        let unreachable = PerAppCount::of(&state.instances, is_unreachable);
        // Deployments resume where they were: their apps are looked at in the first batch.
        let unsettled = state
            .deployments
            .values()
            .flat_map(|d| d.affected_apps())
            .map(|app| (app, (Timestamp::from_millis(0), true)))
            .collect();
        Core {
            state,
            dirty: Dirty::default(),
            rng,
            regexes: RegexCache::default(),
            service_port_range: PortRange::default(),
            suppressed: false,
            releasing: BTreeSet::new(),
            registered: false,
            revive_at: None,
            reconcile_at: None,
            unsettled,
            waiting,
            running,
            unreachable,
            recovering: BTreeMap::new(),
        }
    }

    /// The app `id` as the core holds it (with the service ports it was given).
    pub fn deployed_app(&self, id: &str) -> Option<AppDefinition> {
        self.state.apps.get(id).map(|app| (**app).clone())
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

    /// The one place an instance changes: applies `operation` to the instance `id` (`None`
    /// to schedule a new one) and carries out the effect.
    fn change(&mut self, id: Option<&str>, operation: Operation<'_>, now: Timestamp) {
        let current = id.and_then(|id| self.state.instances.get(id).cloned());
        let effect = lifecycle::update(current.as_deref(), operation, now);
        if effect.kill {
            // The tasks still alive after the operation: a pod instance's task that just
            // ended is not killed again.
            let alive_after = match &effect.next {
                Next::Put(next) | Next::Expunge(next)
                    if current
                        .as_ref()
                        .is_some_and(|c| c.incarnation == next.incarnation) =>
                {
                    Some(next)
                }
                _ => current.as_deref(),
            };
            if let Some(instance) = alive_after {
                self.kill_task(instance);
            }
        }
        // The app and configuration whose launch delay the effect changes.
        let subject = match &effect.next {
            Next::Put(i) | Next::Expunge(i) => Some(i),
            Next::Keep => current.as_deref(),
        };
        let backoff_key = subject.map(|i| (i.app_id.clone(), i.config_version));
        match effect.next {
            Next::Keep => {}
            Next::Put(next) => {
                if let Some(before) = current.as_ref().filter(|b| b.task_id() != next.task_id()) {
                    self.forget_task(&before.id, &before.task_id());
                }
                self.put_instance(next);
            }
            Next::Expunge(gone) => {
                if let Some(reservation) = &gone.reservation {
                    self.releasing.insert(reservation.agent_id.clone());
                }
                self.forget_task(&gone.id, &gone.task_id());
                self.remove_instance(&gone.id);
            }
        }
        self.dirty.events.extend(effect.events);
        if let Some(key) = backoff_key {
            self.change_backoff(key, effect.backoff, now);
        }
    }

    /// Carries out an effect's change of an app's launch delay.
    fn change_backoff(
        &mut self,
        key: (String, Timestamp),
        change: lifecycle::Backoff,
        now: Timestamp,
    ) {
        match change {
            lifecycle::Backoff::Unchanged => {}
            lifecycle::Backoff::Failed(failure) => {
                self.state.last_failures.insert(key.0.clone(), failure);
                if let Some(policy) = self.state.apps.get(&key.0).map(|a| Policy::of(a)) {
                    let previous = self.state.backoffs.get(&key).copied();
                    self.state
                        .backoffs
                        .insert(key, backoff::after_failure(previous, policy, now));
                }
            }
            lifecycle::Backoff::Progressed => {
                if let Some(b) = self.state.backoffs.get(&key).copied() {
                    self.state
                        .backoffs
                        .insert(key, backoff::after_progress(b, now));
                }
            }
        }
    }

    /// Drops what was known about a task that is gone or replaced by a new incarnation.
    fn forget_task(&mut self, instance_id: &str, task_id: &str) {
        self.state.readiness.remove(task_id);
        if self
            .state
            .health
            .get(instance_id)
            .is_some_and(|h| h.task_id == task_id)
        {
            self.state.health.remove(instance_id);
        }
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
        self.recovering.remove(id);
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
        self.unreachable.change(
            &app_id,
            holds(before, is_unreachable),
            holds(after, is_unreachable),
        );
    }

    fn kill_task(&mut self, instance: &Instance) {
        let grace = self
            .state
            .definition_of(instance)
            .and_then(|a| a.task_kill_grace_period_seconds)
            .map(|s| Duration::from_secs(s.max(0) as u64));
        for task_id in instance.live_task_ids() {
            self.call(Outgoing::Kill {
                task_id,
                agent_id: instance.placement.as_ref().map(|p| p.agent_id.clone()),
                grace,
            });
        }
    }

    fn put_deployment(&mut self, d: Deployment) {
        self.dirty.deployments.insert(d.id.clone());
        self.state.deployments.insert(d.id.clone(), Arc::new(d));
    }

    fn remove_deployment(&mut self, id: &str) {
        self.dirty.deployments.insert(id.to_string());
        self.state.deployments.remove(id);
    }

    fn put_app(&mut self, app_id: &str, next: Option<AppDefinition>) {
        let before = self.state.apps.get(app_id).cloned();
        if before.is_none() {
            self.dirty.apps_created.insert(app_id.to_string());
        }
        self.dirty.tree = true;
        // Instances keep running the definition they were launched with until they are
        // replaced: keep it while any of them does.
        if let Some(before) = before {
            if instances_of(&self.state.instances, app_id).any(|i| i.app_version == before.version)
            {
                self.state
                    .versions
                    .insert((app_id.to_string(), before.version), before);
            }
        }
        match next {
            Some(app) => self.state.apps.insert(app_id.to_string(), Arc::new(app)),
            None => self.state.apps.remove(app_id),
        };
        self.dirty.apps.insert(app_id.to_string());
    }

    fn put_group(&mut self, group_id: &str, next: Option<GroupDefinition>) {
        match next {
            Some(group) => self
                .state
                .groups
                .insert(group_id.to_string(), Arc::new(group)),
            None => self.state.groups.remove(group_id),
        };
        self.dirty.groups.insert(group_id.to_string());
        self.dirty.tree = true;
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

    /// Marks an app to be looked at in this batch's [`settle`](Core::settle).
    fn unsettle(&mut self, app_id: &str, now: Timestamp, converge: bool) {
        let entry = self
            .unsettled
            .entry(app_id.to_string())
            .or_insert((now, false));
        *entry = (entry.0.max(now), entry.1 || converge);
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
        batch.apps_created = dirty
            .apps_created
            .into_iter()
            .filter(|id| self.state.apps.contains_key(id))
            .collect();
        for id in dirty.groups {
            match self.state.groups.get(&id) {
                Some(g) => batch.groups_put.push((**g).clone()),
                None => batch.groups_deleted.push(id),
            }
        }
        if dirty.tree {
            batch.root_version = Some(RootVersion {
                version: self.state.tree_version,
                groups: self.state.groups.values().map(|g| (**g).clone()).collect(),
                apps: self
                    .state
                    .apps
                    .values()
                    .map(|a| (a.id.clone(), a.version))
                    .collect(),
            });
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
}

fn is_running(instance: &Instance) -> bool {
    instance.goal == Goal::Running && instance.condition == Condition::Running
}

fn is_unreachable(instance: &Instance) -> bool {
    instance.condition.is_unreachable()
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

#[cfg(test)]
mod tests;
