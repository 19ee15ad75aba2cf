//! Deciding, for one app, which instances to add, stop and forget so that the actual state moves
//! toward the desired one, as far as the app's deployment lets it ([`Gate`]).
//!
//! The instances are first sorted into buckets (see the scheduler docs for the words), then each
//! bucket gets its action. Pure: no clock, no randomness, no IO.

use super::constraint::{group_by_fields, Field};
use super::health::Health;
use super::instance::{Condition, Goal, Instance};
use super::upgrade;
use app::model::{AppDefinition, KillSelection, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create this many new instances waiting for offers.
    Schedule { count: usize },
    /// Stop the instance for good: set its goal to Decommissioned and kill its task if it has one.
    Decommission { instance_id: String },
    /// The instance is decommissioned and has no live task: delete it.
    Expunge { instance_id: String },
    /// A resident instance is not needed now: kill its task, keep its reservation and volumes.
    Stop { instance_id: String },
    /// A stopped resident instance is needed again: launch it on its reservation.
    Resume { instance_id: String },
}

/// How far an app may move now, given the deployment that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// No deployment holds the app: keep `instances` of it alive (relaunching failed ones is
    /// the launch queue's job), whatever their configuration.
    Free,
    /// A deployment will change the app in a later step (its dependencies go first): change
    /// nothing yet.
    Waiting,
    /// The app's ScaleApplication step runs: as [`Gate::Free`].
    Scale,
    /// The app's RestartApplication step runs: replace the old instances by new ones as its
    /// `upgradeStrategy` allows (see [`upgrade`]).
    Restart,
    /// The app is deleted: stop everything.
    Stop,
}

/// What deployments need to know of an instance: its health, and whether it is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub health: Health,
    /// Its readiness check passed (or it has none, or it needs none: see the core).
    pub ready: bool,
}

impl Judgement {
    pub fn healthy_and_ready(self) -> bool {
        self.health == Health::Healthy && self.ready
    }
}

/// The buckets one app's instances fall into.
#[derive(Debug, Default)]
pub struct Buckets<'a> {
    /// Goal Running and launched from the app's current configuration (including those waiting
    /// for a relaunch): these count toward `instances`.
    pub current: Vec<&'a Instance>,
    /// Goal Running but from an older configuration: to be replaced.
    pub outdated: Vec<&'a Instance>,
    /// Goal Decommissioned (or Stopped) with a live task: being killed.
    pub stopping: Vec<&'a Instance>,
    /// Goal Stopped and nothing alive: resident instances kept for a later scale-up or
    /// upgrade, which resumes them before it creates new ones.
    pub stopped: Vec<&'a Instance>,
    /// Goal Decommissioned and nothing alive: to be forgotten.
    pub gone: Vec<&'a Instance>,
    /// Goal Running but unreachable for longer than the app allows (UnreachableInactive): they
    /// do not count, and are replaced; one that comes back counts again, and the surplus goes.
    pub inactive: Vec<&'a Instance>,
}

pub fn classify<'a>(app: Option<&AppDefinition>, instances: &[&'a Instance]) -> Buckets<'a> {
    let mut b = Buckets::default();
    for &i in instances {
        let bucket = match (i.goal, app) {
            (Goal::Decommissioned | Goal::Stopped, _) if i.condition.is_active() => &mut b.stopping,
            (Goal::Decommissioned, _) => &mut b.gone,
            (Goal::Stopped, _) => &mut b.stopped,
            (Goal::Running, _) if i.condition == Condition::UnreachableInactive => &mut b.inactive,
            (Goal::Running, Some(app)) if i.config_version == app.config_version() => {
                &mut b.current
            }
            (Goal::Running, _) => &mut b.outdated,
        };
        bucket.push(i);
    }
    b
}

/// The actions that bring `instances` (all of one app) toward what `app` asks for (`None`:
/// deleted), as far as `gate` allows. `judge` tells deployments how an instance is doing.
pub fn converge(
    app: Option<&AppDefinition>,
    instances: &[&Instance],
    gate: Gate,
    judge: &dyn Fn(&Instance) -> Judgement,
) -> Vec<Action> {
    let buckets = classify(app, instances);
    let mut actions: Vec<Action> = buckets
        .gone
        .iter()
        .map(|i| Action::Expunge {
            instance_id: i.id.clone(),
        })
        .collect();
    let decommission = |i: &&Instance| Action::Decommission {
        instance_id: i.id.clone(),
    };
    match (app, gate) {
        (_, Gate::Waiting) => {}
        (None, _) | (_, Gate::Stop) => {
            actions.extend(buckets.current.iter().map(decommission));
            actions.extend(buckets.outdated.iter().map(decommission));
            actions.extend(buckets.inactive.iter().map(decommission));
            actions.extend(buckets.stopped.iter().map(decommission));
            // A stopping resident instance is killed already; it goes for good now.
            actions.extend(
                buckets
                    .stopping
                    .iter()
                    .filter(|i| i.goal == Goal::Stopped)
                    .map(decommission),
            );
        }
        (Some(app), Gate::Restart) => {
            let restart = upgrade::restart(app, &buckets, judge);
            actions.extend(keep_reservations(app, restart, &buckets.stopped));
        }
        (Some(app), Gate::Free | Gate::Scale) => {
            let target = app.instances.max(0) as usize;
            let kept = buckets.current.len() + buckets.outdated.len();
            if kept > target {
                // Instances of an older configuration (left by a cancelled upgrade) go first.
                let mut order = kill_order(buckets.outdated, app.kill_selection);
                order.extend(scale_down_order(
                    buckets.current,
                    app.kill_selection,
                    &group_by_fields(&app.constraints),
                ));
                let scale_down = order.iter().take(kept - target).map(decommission).collect();
                actions.extend(keep_reservations(app, scale_down, &buckets.stopped));
            } else if kept < target {
                let scale_up = vec![Action::Schedule {
                    count: target - kept,
                }];
                actions.extend(keep_reservations(app, scale_up, &buckets.stopped));
            }
        }
    }
    actions
}

/// For a resident app, what a scale or an upgrade asks for, done the way that keeps reservations
/// (SEMANTICS.md §14): an instance it no longer needs is stopped rather than decommissioned, and
/// new instances come from the stopped ones first.
fn keep_reservations(
    app: &AppDefinition,
    actions: Vec<Action>,
    stopped: &[&Instance],
) -> Vec<Action> {
    if !app.is_resident() {
        return actions;
    }
    let mut resumable = stopped.iter();
    let mut out = Vec::with_capacity(actions.len());
    for action in actions {
        match action {
            Action::Decommission { instance_id } => out.push(Action::Stop { instance_id }),
            Action::Schedule { count } => {
                let resumed: Vec<Action> = resumable
                    .by_ref()
                    .take(count)
                    .map(|i| Action::Resume {
                        instance_id: i.id.clone(),
                    })
                    .collect();
                let new = count - resumed.len();
                out.extend(resumed);
                if new > 0 {
                    out.push(Action::Schedule { count: new });
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Lower goes first. Instances without a live task cost nothing to stop, so they go before
/// anything running; then Marathon's order: unreachable, staging, starting, running.
fn condition_weight(c: Condition) -> u8 {
    match c {
        Condition::Scheduled => 0,
        c if c.is_terminal() => 0,
        Condition::Unreachable | Condition::UnreachableInactive => 1,
        Condition::Provisioned | Condition::Staging => 2,
        Condition::Starting => 3,
        Condition::Running => 4,
        _ => 5,
    }
}

/// The time an instance is judged by within its condition (Marathon: staging → stagedAt,
/// starting → since, otherwise startedAt).
fn age_key(i: &Instance) -> Option<Timestamp> {
    match i.condition {
        Condition::Staging | Condition::Provisioned => i.staged_at,
        Condition::Starting => Some(i.since),
        _ => i.started_at,
    }
}

/// The order a scale-down stops instances in: those without a live task first, then, while the
/// app has GROUP_BY constraints, always one of the largest group of the field whose groups are
/// most uneven (so the spread stays even, as Marathon's kill selection keeps it), each time the
/// first such instance in [`kill_order`].
pub fn scale_down_order<'a>(
    instances: Vec<&'a Instance>,
    selection: KillSelection,
    group_by: &[Field],
) -> Vec<&'a Instance> {
    let ordered = kill_order(instances, selection);
    if group_by.is_empty() {
        return ordered;
    }
    let (mut out, mut live): (Vec<&Instance>, Vec<&Instance>) = ordered
        .into_iter()
        .partition(|i| condition_weight(i.condition) == 0 || i.placement.is_none());
    let value_of = |field: &Field, i: &'a Instance| -> Option<&'a str> {
        let p = i.placement.as_ref()?;
        field.value_on(&p.hostname, &p.attributes)
    };
    while !live.is_empty() {
        let mut chosen: Option<(usize, usize)> = None;
        for field in group_by {
            let mut sizes: std::collections::HashMap<Option<&str>, usize> = Default::default();
            for &i in &live {
                *sizes.entry(value_of(field, i)).or_default() += 1;
            }
            let largest = sizes.values().copied().max().unwrap_or(0);
            let smallest = sizes.values().copied().min().unwrap_or(0);
            let spread = largest - smallest;
            let first = live
                .iter()
                .position(|&i| sizes[&value_of(field, i)] == largest)
                .unwrap_or(0);
            if chosen.is_none_or(|(best, _)| spread > best) {
                chosen = Some((spread, first));
            }
        }
        let (_, index) = chosen.unwrap_or((0, 0));
        out.push(live.remove(index));
    }
    out
}

/// The instances in the order they should be stopped when scaling down.
pub fn kill_order(mut instances: Vec<&Instance>, selection: KillSelection) -> Vec<&Instance> {
    instances.sort_by(|a, b| {
        let by_condition = condition_weight(a.condition).cmp(&condition_weight(b.condition));
        // `None` (no time known) sorts first in both selections, as in Marathon.
        let by_age = match (age_key(a), age_key(b)) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Less,
            (Some(_), None) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => match selection {
                KillSelection::YoungestFirst => y.cmp(&x),
                KillSelection::OldestFirst => x.cmp(&y),
            },
        };
        by_condition.then(by_age).then_with(|| a.id.cmp(&b.id))
    });
    instances
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::lifecycle;
    use crate::scheduler::status::StatusUpdate;
    use crate::scheduler::testing::{app_with, instance};
    use app::model::{TaskState, UnreachableStrategy};
    use proptest::prelude::*;

    fn running(_: &Instance) -> Judgement {
        Judgement {
            health: Health::Healthy,
            ready: true,
        }
    }

    #[test]
    fn scales_up_and_down_youngest_first() {
        let app = app_with(3, 10);
        assert_eq!(
            converge(Some(&app), &[], Gate::Free, &running),
            vec![Action::Schedule { count: 3 }]
        );
        let old = instance(&app, "a", Condition::Running, 100);
        let young = instance(&app, "b", Condition::Running, 200);
        let app1 = app_with(1, 10);
        assert_eq!(
            converge(Some(&app1), &[&old, &young], Gate::Scale, &running),
            vec![Action::Decommission {
                instance_id: young.id.clone()
            }]
        );
    }

    #[test]
    fn a_waiting_app_is_left_alone_and_a_deleted_one_stopped() {
        let app = app_with(2, 10);
        let running_one = instance(&app, "a", Condition::Running, 100);
        assert!(converge(
            Some(&app_with(5, 20)),
            &[&running_one],
            Gate::Waiting,
            &running
        )
        .is_empty());
        let mut dead = instance(&app, "b", Condition::Killed, 100);
        dead.goal = Goal::Decommissioned;
        assert_eq!(
            converge(None, &[&running_one, &dead], Gate::Stop, &running),
            vec![
                Action::Expunge {
                    instance_id: dead.id.clone()
                },
                Action::Decommission {
                    instance_id: running_one.id.clone()
                }
            ]
        );
    }

    fn any_condition() -> impl Strategy<Value = Condition> {
        prop::sample::select(vec![
            Condition::Scheduled,
            Condition::Provisioned,
            Condition::Staging,
            Condition::Starting,
            Condition::Running,
            Condition::Killing,
            Condition::Failed,
            Condition::Finished,
            Condition::Killed,
            Condition::Unreachable,
        ])
    }

    proptest! {
        /// After the actions, a free app keeps exactly `instances` instances with goal Running,
        /// never more, and a suspended app schedules nothing.
        #[test]
        fn converges_to_exactly_the_target(
            target in 0i64..20,
            existing in prop::collection::vec((any_condition(), any::<bool>(), any::<bool>(), 0i64..1000), 0..30),
        ) {
            let app = app_with(target, 50);
            let instances: Vec<Instance> = existing.iter().enumerate().map(|(n, (c, current, running_goal, t))| {
                let source = if *current { app.clone() } else { app_with(target, 10) };
                let mut i = instance(&source, &n.to_string(), *c, *t);
                if !running_goal { i.goal = Goal::Decommissioned; }
                i
            }).collect();
            let refs: Vec<&Instance> = instances.iter().collect();
            let actions = converge(Some(&app), &refs, Gate::Free, &running);
            let mut keep = refs.iter().filter(|i| i.goal == Goal::Running).count();
            for a in &actions {
                match a {
                    Action::Schedule { count } => keep += count,
                    Action::Decommission { instance_id } => {
                        let i = refs.iter().find(|i| &i.id == instance_id).unwrap();
                        prop_assert_eq!(i.goal, Goal::Running);
                        keep -= 1;
                    }
                    Action::Expunge { instance_id } => {
                        let i = refs.iter().find(|i| &i.id == instance_id).unwrap();
                        prop_assert!(i.goal == Goal::Decommissioned && !i.condition.is_active());
                    }
                    Action::Stop { .. } | Action::Resume { .. } => {
                        prop_assert!(false, "an app without volumes keeps no reservations");
                    }
                }
            }
            prop_assert_eq!(keep as i64, target);
            if target == 0 {
                let schedules = actions.iter().any(|a| matches!(a, Action::Schedule { .. }));
                prop_assert!(!schedules, "a suspended app schedules nothing");
            }
        }

        /// Scaling down never stops a running instance while one without a live task is left.
        #[test]
        fn idle_instances_go_before_running_ones(n_running in 1usize..5, n_waiting in 1usize..5, target in 0usize..5) {
            let app = app_with(target as i64, 10);
            let mut instances = Vec::new();
            for n in 0..n_running { instances.push(instance(&app, &format!("r{n}"), Condition::Running, n as i64)); }
            for n in 0..n_waiting { instances.push(instance(&app, &format!("w{n}"), Condition::Scheduled, n as i64)); }
            let refs: Vec<&Instance> = instances.iter().collect();
            let stopped: Vec<&String> = converge(Some(&app), &refs, Gate::Scale, &running).iter().filter_map(|a| match a {
                Action::Decommission { instance_id } => Some(instance_id),
                _ => None,
            }).map(|id| &refs.iter().find(|i| &i.id == id).unwrap().id).collect();
            let running_stopped = stopped.iter().filter(|id| id.contains("instance-r")).count();
            if running_stopped > 0 { prop_assert_eq!(stopped.len() - running_stopped, n_waiting); }
        }

        /// Scaling down an app spread over racks by GROUP_BY leaves the racks as even as they
        /// were (at most one apart when they started so).
        #[test]
        fn scale_down_keeps_group_by_balanced(
            per_rack in prop::collection::vec(0usize..6, 1..5),
            target in 0usize..20,
            ages in prop::collection::vec(0i64..1000, 30),
        ) {
            let mut app = app_with(target as i64, 0);
            app.constraints = vec![vec!["rack".into(), "GROUP_BY".into()]];
            let mut instances = Vec::new();
            for (rack, count) in per_rack.iter().enumerate() {
                for n in 0..*count {
                    let mut i = instance(&app, &format!("{rack}-{n}"), Condition::Running, ages[instances.len() % ages.len()]);
                    if let Some(p) = i.placement.as_mut() {
                        p.attributes = vec![("rack".into(), format!("r{rack}"))];
                        p.hostname = format!("host-{rack}");
                    }
                    instances.push(i);
                }
            }
            let refs: Vec<&Instance> = instances.iter().collect();
            let stopped: Vec<String> = converge(Some(&app), &refs, Gate::Scale, &running)
                .into_iter()
                .filter_map(|a| match a { Action::Decommission { instance_id } => Some(instance_id), _ => None })
                .collect();
            let spread = |left: &[&Instance]| {
                let mut sizes = vec![0usize; per_rack.len()];
                for i in left {
                    let rack: usize = i.placement.as_ref().unwrap().attributes[0].1[1..].parse().unwrap();
                    sizes[rack] += 1;
                }
                let used: Vec<usize> = sizes.into_iter().filter(|n| *n > 0).collect();
                used.iter().max().copied().unwrap_or(0) - used.iter().min().copied().unwrap_or(0)
            };
            let left: Vec<&Instance> = refs.iter().copied().filter(|i| !stopped.contains(&i.id)).collect();
            prop_assert_eq!(left.len(), refs.len().min(target));
            let before = spread(&refs);
            prop_assert!(spread(&left) <= before.max(1), "spread {} → {}", before, spread(&left));
        }

        /// Agents cut off and brought back at random, with time passing: once everything is
        /// reachable again and the app has converged, exactly `instances` instances run.
        #[test]
        fn unreachable_handling_settles_at_exactly_the_target(
            target in 1usize..5,
            inactive_after in 0i64..30,
            extra in 0i64..30,
            script in prop::collection::vec((0u8..3, 0usize..8, 0i64..40), 0..30),
        ) {
            let mut app = app_with(target as i64, 0);
            app.unreachable_strategy = UnreachableStrategy::Enabled {
                inactive_after_seconds: inactive_after,
                expunge_after_seconds: inactive_after + extra,
            };
            let mut sim = Simulation { app, instances: Vec::new(), now: 1_000, next: 0 };
            sim.converge();
            for (step, pick, seconds) in script {
                match step {
                    0 => sim.report(pick, TaskState::Unreachable),
                    1 => sim.report(pick, TaskState::Running),
                    _ => sim.now += seconds * 1000,
                }
                sim.time_out_unreachable();
                sim.converge();
            }
            for pick in 0..sim.instances.len() {
                sim.report(pick, TaskState::Running);
            }
            sim.converge();
            let running = sim.instances.iter()
                .filter(|i| i.goal == Goal::Running && i.condition == Condition::Running)
                .count();
            prop_assert_eq!(running, target);
            prop_assert!(sim.instances.iter().all(|i| i.goal == Goal::Running));
        }
    }

    proptest! {
        /// A resident app scaled up and down at random: after each change it runs exactly its
        /// target, and it holds exactly as many reservations as the most instances it was ever
        /// asked for, since scaling down stops instances (keeping their reservations) and scaling
        /// up resumes stopped ones before it reserves anything new.
        #[test]
        fn resident_scaling_reuses_reservations(targets in prop::collection::vec(0i64..7, 1..25)) {
            let mut app = app_with(0, 0);
            app.container = Some(serde_json::json!({"type": "MESOS", "volumes": [
                {"containerPath": "data", "mode": "RW", "persistent": {"size": 16}}]}));
            let mut sim = Simulation { app, instances: Vec::new(), now: 1_000, next: 0 };
            let mut most = 0;
            for target in targets {
                sim.app.instances = target;
                most = most.max(target as usize);
                sim.converge();
                let running = sim.instances.iter()
                    .filter(|i| i.goal == Goal::Running && i.condition == Condition::Running)
                    .count();
                prop_assert_eq!(running, target as usize);
                prop_assert_eq!(sim.instances.len(), most, "one reservation per instance ever needed");
                let stopped = sim.instances.iter().filter(|i| i.goal == Goal::Stopped).count();
                prop_assert_eq!(stopped, most - target as usize);
            }
        }
    }

    /// One app's instances driven through [`lifecycle::update`] and [`converge`], with launches
    /// and kills taking effect at once (a resumed resident instance relaunches on its
    /// reservation at once).
    struct Simulation {
        app: AppDefinition,
        instances: Vec<Instance>,
        now: i64,
        next: usize,
    }

    impl Simulation {
        fn apply(&mut self, index: usize, operation: lifecycle::Operation<'_>) {
            let effect = lifecycle::update(
                Some(&self.instances[index]),
                operation,
                Timestamp::from_millis(self.now),
            );
            match effect.next {
                lifecycle::Next::Keep => {}
                lifecycle::Next::Put(next) => self.instances[index] = next,
                lifecycle::Next::Expunge(_) => {
                    self.instances.remove(index);
                }
            }
        }

        /// The task of instance `pick` (modulo the count) reports `state`; a killed one is gone.
        fn report(&mut self, pick: usize, state: TaskState) {
            if self.instances.is_empty() {
                return;
            }
            let index = pick % self.instances.len();
            let update = StatusUpdate {
                task_id: self.instances[index].task_id(),
                state,
                reason: None,
                message: String::new(),
                agent_id: Some("agent-1".into()),
                healthy: None,
                unreachable_since: None,
            };
            self.apply(index, lifecycle::Operation::Status(&update));
        }

        fn time_out_unreachable(&mut self) {
            for index in (0..self.instances.len()).rev() {
                self.apply(
                    index,
                    lifecycle::Operation::UnreachableTimeout(self.app.unreachable_strategy),
                );
            }
        }

        fn converge(&mut self) {
            for _ in 0..4 {
                let refs: Vec<&Instance> = self.instances.iter().collect();
                let actions = converge(Some(&self.app), &refs, Gate::Free, &running);
                if actions.is_empty() {
                    return;
                }
                for action in actions {
                    match action {
                        Action::Schedule { count } => {
                            for _ in 0..count {
                                self.next += 1;
                                let mut i = instance(
                                    &self.app,
                                    &format!("n{}", self.next),
                                    Condition::Running,
                                    self.now,
                                );
                                i.since = Timestamp::from_millis(self.now);
                                self.instances.push(i);
                            }
                        }
                        Action::Decommission { instance_id } | Action::Expunge { instance_id } => {
                            let Some(index) =
                                self.instances.iter().position(|i| i.id == instance_id)
                            else {
                                continue;
                            };
                            self.apply(index, lifecycle::Operation::Decommission);
                            if let Some(index) =
                                self.instances.iter().position(|i| i.id == instance_id)
                            {
                                self.report(index, TaskState::Killed);
                            }
                        }
                        Action::Stop { instance_id } => {
                            let Some(index) =
                                self.instances.iter().position(|i| i.id == instance_id)
                            else {
                                continue;
                            };
                            self.apply(index, lifecycle::Operation::Stop);
                            self.report(index, TaskState::Killed);
                        }
                        Action::Resume { instance_id } => {
                            let Some(index) =
                                self.instances.iter().position(|i| i.id == instance_id)
                            else {
                                continue;
                            };
                            let app = self.app.clone();
                            self.apply(index, lifecycle::Operation::Resume { app: &app });
                            self.report(index, TaskState::Running);
                        }
                    }
                }
            }
        }
    }
}
