//! The rolling restart (Marathon's RestartApplication, SEMANTICS.md §5): replacing an app's old
//! instances by new ones without ever having fewer than `ceil(n·m)` healthy-and-ready instances
//! nor more than `floor(n·(1+o))` live ones (`m` = `minimumHealthCapacity`, `o` =
//! `maximumOverCapacity`).
//!
//! Marathon's TaskReplaceActor reacts to events (kill `killNow` at the start, one more old per
//! new healthy-and-ready instance, one more launch per old instance gone). Stride's core is
//! level-triggered, so the same algorithm is written as a function of the instances as they
//! are, evaluated whenever they change; it reproduces the worked table of §5 (tested below):
//!
//! - `healthy` = old instances that are healthy + new ones that are healthy **and** ready.
//! - When `minHealthy == maxCapacity` and `maxCapacity <= healthy` an upgrade could not start
//!   at all: `maxCapacity` gets Marathon's "one extra", except for a resident app, which has no
//!   reservation to spare and stops one more old instance instead (its new version then
//!   resumes on the freed reservation).
//! - Old instances may be stopped while `healthy >= minHealthy`: every one that is not healthy
//!   (it serves nothing), plus `healthy - minHealthy` healthy ones; unhealthy ones first, then
//!   by the app's kill selection. Right after a restart of Stride nothing is known to be healthy,
//!   so nothing old is stopped until probes say otherwise.
//! - New instances are launched while `new < n` and `live < maxCapacity`, where `live` counts
//!   every instance that holds or will hold resources (old ones being stopped included, until
//!   Mesos says they are gone).
//! - An old instance that ends on its own is not relaunched: it is forgotten.

use super::converge::{kill_order, Action, Buckets, Judgement};
use super::health::{minimum_healthy, Health};
use super::instance::Instance;
use app::model::AppDefinition;

/// `floor(instances × (1 + maximumOverCapacity))`.
pub fn maximum_capacity(app: &AppDefinition) -> usize {
    (app.instances.max(0) as f64 * (1.0 + app.upgrade_strategy.maximum_over_capacity) + 1e-9)
        .floor() as usize
}

/// Whether the strategy leaves no room to start an upgrade with `healthy` healthy-and-ready
/// instances (`minHealthy == maxCapacity <= healthy`).
fn stuck_at_capacity(app: &AppDefinition, healthy: usize) -> bool {
    let (minimum, maximum) = (minimum_healthy(app), maximum_capacity(app));
    minimum == maximum && maximum <= healthy
}

/// The capacity limit in force with `healthy` healthy-and-ready instances, "one extra" included
/// (never for a resident app).
pub fn capacity_limit(app: &AppDefinition, healthy: usize) -> usize {
    let maximum = maximum_capacity(app);
    if stuck_at_capacity(app, healthy) && !app.is_resident() {
        maximum + 1
    } else {
        maximum
    }
}

/// The next actions of a rolling restart of `app` (the new definition).
pub fn restart(
    app: &AppDefinition,
    b: &Buckets<'_>,
    judge: &dyn Fn(&Instance) -> Judgement,
) -> Vec<Action> {
    let decommission = |i: &Instance| Action::Decommission {
        instance_id: i.id.clone(),
    };
    let target = app.instances.max(0) as usize;
    let (old, ended): (Vec<&Instance>, Vec<&Instance>) =
        b.outdated.iter().partition(|i| i.condition.is_active());
    let mut actions: Vec<Action> = ended.iter().map(|i| decommission(i)).collect();

    let judged_old: Vec<(&Instance, Judgement)> = old.iter().map(|i| (*i, judge(i))).collect();
    let healthy_old = judged_old
        .iter()
        .filter(|(_, j)| j.health == Health::Healthy)
        .count();
    let healthy_new = b
        .current
        .iter()
        .filter(|i| judge(i).healthy_and_ready())
        .count();
    let healthy = healthy_old + healthy_new;
    let minimum = minimum_healthy(app);

    if healthy >= minimum {
        // A resident app goes one below minHealthy rather than one above maxCapacity.
        let one_more = usize::from(app.is_resident() && stuck_at_capacity(app, healthy));
        let spare_healthy = healthy - minimum + one_more;
        let mut unhealthy_first: Vec<&Instance> = Vec::new();
        for wanted in [Health::Unhealthy, Health::Unknown] {
            let group: Vec<&Instance> = judged_old
                .iter()
                .filter(|(_, j)| j.health == wanted)
                .map(|(i, _)| *i)
                .collect();
            unhealthy_first.extend(kill_order(group, app.kill_selection));
        }
        let healthy_ones: Vec<&Instance> = judged_old
            .iter()
            .filter(|(_, j)| j.health == Health::Healthy)
            .map(|(i, _)| *i)
            .collect();
        actions.extend(unhealthy_first.iter().map(|i| decommission(i)));
        actions.extend(
            kill_order(healthy_ones, app.kill_selection)
                .iter()
                .take(spare_healthy)
                .map(|i| decommission(i)),
        );
    }

    if b.current.len() > target {
        actions.extend(
            kill_order(b.current.clone(), app.kill_selection)
                .iter()
                .take(b.current.len() - target)
                .map(|i| decommission(i)),
        );
    }

    let live = old.len() + b.stopping.len() + b.current.len();
    let launch = target
        .saturating_sub(b.current.len())
        .min(capacity_limit(app, healthy).saturating_sub(live));
    if launch > 0 {
        actions.push(Action::Schedule { count: launch });
    }
    actions
}

/// Whether a rolling restart is done: `instances` new ones healthy and ready, no old one left,
/// nothing still being stopped.
pub fn restart_done(
    app: &AppDefinition,
    b: &Buckets<'_>,
    judge: &dyn Fn(&Instance) -> Judgement,
) -> bool {
    b.outdated.is_empty()
        && b.stopping.is_empty()
        && b.current.len() == app.instances.max(0) as usize
        && b.current.iter().all(|i| judge(i).healthy_and_ready())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::converge::classify;
    use crate::scheduler::instance::{Condition, Goal};
    use crate::scheduler::testing::{app_with, instance};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// An app of `n` instances with the given strategy, configured at `config_ms`.
    fn app(n: i64, m: f64, o: f64, config_ms: i64) -> AppDefinition {
        let mut a = app_with(n, config_ms);
        a.upgrade_strategy.minimum_health_capacity = m;
        a.upgrade_strategy.maximum_over_capacity = o;
        a
    }

    fn all_healthy(_: &Instance) -> Judgement {
        Judgement {
            health: Health::Healthy,
            ready: true,
        }
    }

    fn first_round(m: f64, o: f64) -> (usize, usize) {
        first_round_of(10, m, o, false)
    }

    /// (killed, launched) in the first round of an upgrade of `n` old instances, all healthy.
    fn first_round_of(n: i64, m: f64, o: f64, resident: bool) -> (usize, usize) {
        let configured_at = |ms: i64| {
            let mut a = app(n, m, o, ms);
            if resident {
                a.container = Some(serde_json::json!({"type": "MESOS", "volumes": [
                    {"containerPath": "data", "mode": "RW", "persistent": {"size": 16}}]}));
            }
            a
        };
        let old_app = configured_at(10);
        let old: Vec<Instance> = (0..n)
            .map(|k| instance(&old_app, &format!("o{k}"), Condition::Running, k))
            .collect();
        let refs: Vec<&Instance> = old.iter().collect();
        let new_app = configured_at(20);
        let actions = restart(&new_app, &classify(Some(&new_app), &refs), &all_healthy);
        let killed = actions
            .iter()
            .filter(|a| matches!(a, Action::Decommission { .. }))
            .count();
        let launched = actions
            .iter()
            .map(|a| match a {
                Action::Schedule { count } => *count,
                _ => 0,
            })
            .sum();
        (killed, launched)
    }

    #[test]
    fn reproduces_the_worked_table() {
        // (m, o) → (killNow, first launch), SEMANTICS.md §5 with N = 10 and 10 old running.
        assert_eq!(first_round(1.0, 1.0), (0, 10));
        assert_eq!(first_round(1.0, 0.0), (0, 1), "one extra at a time");
        assert_eq!(first_round(0.5, 0.0), (5, 0));
        assert_eq!(first_round(0.5, 0.5), (5, 5));
        assert_eq!(first_round(0.0, 0.0), (10, 0));
        assert_eq!(first_round(0.9, 0.2), (1, 2));
    }

    /// Where another app would start one extra instance, a resident one (no spare reservation)
    /// stops one old instance more, and starts nothing until it is gone.
    #[test]
    fn a_resident_app_goes_one_below_instead_of_one_above() {
        assert_eq!(first_round_of(1, 0.5, 0.0, true), (1, 0));
        assert_eq!(first_round_of(10, 1.0, 0.0, true), (1, 0));
        assert_eq!(first_round_of(10, 1.0, 0.0, false), (0, 1));
        assert_eq!(
            first_round_of(10, 0.5, 0.0, true),
            (5, 0),
            "not stuck: as usual"
        );
    }

    #[test]
    fn nothing_old_is_stopped_while_health_is_unknown() {
        let old_app = app(4, 0.5, 0.0, 10);
        let old: Vec<Instance> = (0..4)
            .map(|n| instance(&old_app, &format!("o{n}"), Condition::Running, n))
            .collect();
        let refs: Vec<&Instance> = old.iter().collect();
        let new_app = app(4, 0.5, 0.0, 20);
        let unknown = |_: &Instance| Judgement {
            health: Health::Unknown,
            ready: true,
        };
        let actions = restart(&new_app, &classify(Some(&new_app), &refs), &unknown);
        assert!(actions.is_empty(), "{actions:?}");
    }

    /// A small world for the property test: instances with a health each; the planner acts,
    /// then the world moves on (old instances die, new ones start and turn healthy or not).
    #[derive(Clone, Debug)]
    struct Sim {
        instances: Vec<(Instance, bool)>,
        next_id: usize,
    }

    impl Sim {
        fn judge(&self) -> impl Fn(&Instance) -> Judgement + '_ {
            move |i: &Instance| {
                let healthy = self
                    .instances
                    .iter()
                    .any(|(x, h)| x.id == i.id && *h && x.condition == Condition::Running);
                Judgement {
                    health: if healthy {
                        Health::Healthy
                    } else {
                        Health::Unhealthy
                    },
                    ready: true,
                }
            }
        }

        fn healthy(&self) -> usize {
            self.instances
                .iter()
                .filter(|(i, h)| *h && i.goal == Goal::Running && i.condition == Condition::Running)
                .count()
        }

        fn live(&self) -> usize {
            self.instances
                .iter()
                .filter(|(i, _)| i.goal == Goal::Running || i.condition.is_active())
                .count()
        }

        fn step(&mut self, app: &AppDefinition) -> Vec<Action> {
            let refs: Vec<&Instance> = self.instances.iter().map(|(i, _)| i).collect();
            let judge = self.judge();
            let actions = restart(app, &classify(Some(app), &refs), &judge);
            drop(judge);
            for action in &actions {
                match action {
                    Action::Schedule { count } => {
                        for _ in 0..*count {
                            self.next_id += 1;
                            let mut i = instance(
                                app,
                                &format!("n{}", self.next_id),
                                Condition::Scheduled,
                                0,
                            );
                            i.placement = None;
                            self.instances.push((i, false));
                        }
                    }
                    Action::Decommission { instance_id } => {
                        let (i, _) = self
                            .instances
                            .iter_mut()
                            .find(|(i, _)| &i.id == instance_id)
                            .unwrap();
                        i.goal = Goal::Decommissioned;
                        if !i.condition.is_active() {
                            let id = instance_id.clone();
                            self.instances.retain(|(i, _)| i.id != id);
                        }
                    }
                    Action::Expunge { instance_id } => {
                        self.instances.retain(|(i, _)| &i.id != instance_id)
                    }
                    Action::Stop { .. } | Action::Resume { .. } => {
                        unreachable!("restart() alone never keeps reservations")
                    }
                }
            }
            actions
        }

        /// One random event: `pick` chooses the instance, `good` whether a start turns healthy.
        fn event(&mut self, pick: usize, good: bool) {
            if self.instances.is_empty() {
                return;
            }
            let n = pick % self.instances.len();
            let (i, healthy) = &mut self.instances[n];
            match (i.goal, i.condition) {
                (Goal::Decommissioned | Goal::Stopped, _) => {
                    let id = i.id.clone();
                    self.instances.retain(|(i, _)| i.id != id);
                }
                (Goal::Running, Condition::Scheduled) => i.condition = Condition::Staging,
                (Goal::Running, Condition::Staging) => {
                    i.condition = Condition::Running;
                    *healthy = good;
                }
                (Goal::Running, _) => *healthy = good,
            }
        }
    }

    proptest! {
        /// Over random n, m, o and health: the planner never takes the healthy count below
        /// `ceil(n·m)` (nor further down when it already is), never has more than the capacity
        /// limit live, and finishes once every new instance turns healthy.
        #[test]
        fn a_rolling_restart_stays_within_the_strategy(
            n in 1i64..12,
            m in prop::sample::select(vec![0.0, 0.25, 0.5, 0.75, 0.9, 1.0]),
            o in prop::sample::select(vec![0.0, 0.1, 0.2, 0.5, 1.0]),
            events in prop::collection::vec((0usize..64, prop::bool::weighted(0.8)), 0..120),
        ) {
            let old_app = app(n, m, o, 10);
            let new_app = app(n, m, o, 20);
            let mut sim = Sim {
                instances: (0..n).map(|k| (instance(&old_app, &format!("o{k}"), Condition::Running, k), true)).collect(),
                next_id: 0,
            };
            let minimum = minimum_healthy(&new_app);
            let maximum = maximum_capacity(&new_app);
            let ceiling = if minimum == maximum { maximum + 1 } else { maximum };
            for (pick, good) in events {
                let before = sim.healthy();
                sim.step(&new_app);
                prop_assert!(sim.healthy() >= before.min(minimum), "healthy {} < min({before}, {minimum})", sim.healthy());
                prop_assert!(sim.live() <= ceiling.max(n as usize), "live {} > {ceiling}", sim.live());
                sim.event(pick, good);
            }
            // From here on everything goes well: the upgrade must finish.
            for round in 0..(20 * n as usize + 20) {
                sim.step(&new_app);
                let refs: Vec<&Instance> = sim.instances.iter().map(|(i, _)| i).collect();
                let judge = sim.judge();
                if restart_done(&new_app, &classify(Some(&new_app), &refs), &judge) {
                    let versions: BTreeSet<_> = refs.iter().map(|i| i.config_version).collect();
                    prop_assert_eq!(versions.len(), 1);
                    return Ok(());
                }
                drop(judge);
                sim.event(round, true);
                for k in 0..sim.instances.len() {
                    sim.event(k, true);
                }
            }
            prop_assert!(false, "the upgrade did not finish: {:?}", sim.instances);
        }
    }
}
