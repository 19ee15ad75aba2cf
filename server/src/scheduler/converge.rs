//! Deciding, for one app, which instances to add, stop and forget so that the actual state moves
//! toward the desired one.
//!
//! The instances are first sorted into buckets (see the scheduler docs for the words), then each
//! bucket gets its action. Pure: no clock, no randomness, no IO.

use super::instance::{Condition, Goal, Instance};
use app::model::{AppDefinition, KillSelection, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create this many new instances waiting for offers.
    Schedule { count: usize },
    /// Stop the instance for good: set its goal to Decommissioned and kill its task if it has one.
    Decommission { instance_id: String },
    /// The instance is decommissioned and has no live task: delete it.
    Expunge { instance_id: String },
}

/// The buckets one app's instances fall into.
#[derive(Debug, Default)]
pub struct Buckets<'a> {
    /// Goal Running and launched from the app's current configuration (including those waiting
    /// for a relaunch): these count toward `instances`.
    pub current: Vec<&'a Instance>,
    /// Goal Running but from an older configuration: to be replaced.
    pub outdated: Vec<&'a Instance>,
    /// Goal Decommissioned with a live task: being killed.
    pub stopping: Vec<&'a Instance>,
    /// Goal Decommissioned and nothing alive: to be forgotten.
    pub gone: Vec<&'a Instance>,
}

pub fn classify<'a>(app: Option<&AppDefinition>, instances: &[&'a Instance]) -> Buckets<'a> {
    let mut b = Buckets::default();
    for &i in instances {
        let bucket = match (i.goal, app) {
            (Goal::Decommissioned, _) if i.condition.is_active() => &mut b.stopping,
            (Goal::Decommissioned, _) => &mut b.gone,
            (Goal::Running, Some(app)) if i.config_version == app.config_version() => {
                &mut b.current
            }
            (Goal::Running, _) => &mut b.outdated,
        };
        bucket.push(i);
    }
    b
}

/// The actions that bring `instances` (all of one app) to what `app` asks for; `None` = deleted.
pub fn converge(app: Option<&AppDefinition>, instances: &[&Instance]) -> Vec<Action> {
    let buckets = classify(app, instances);
    let mut actions: Vec<Action> = buckets
        .gone
        .iter()
        .map(|i| Action::Expunge {
            instance_id: i.id.clone(),
        })
        .collect();
    actions.extend(buckets.outdated.iter().map(|i| Action::Decommission {
        instance_id: i.id.clone(),
    }));
    let target = app.map_or(0, |a| a.instances.max(0) as usize);
    let current = buckets.current.len();
    if current > target {
        let selection = app.map_or(KillSelection::YoungestFirst, |a| a.kill_selection);
        actions.extend(
            kill_order(buckets.current, selection)
                .into_iter()
                .take(current - target)
                .map(|i| Action::Decommission {
                    instance_id: i.id.clone(),
                }),
        );
    } else if current < target {
        actions.push(Action::Schedule {
            count: target - current,
        });
    }
    actions
}

/// Lower goes first. Instances without a live task cost nothing to stop, so they go before
/// anything running; then Marathon's order: unreachable, staging, starting, running.
fn condition_weight(c: Condition) -> u8 {
    match c {
        Condition::Scheduled => 0,
        c if c.is_terminal() => 0,
        Condition::Unreachable => 1,
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
    use crate::scheduler::testing::{app_with, instance};
    use proptest::prelude::*;

    #[test]
    fn scales_up_and_down_youngest_first() {
        let app = app_with(3, 10);
        assert_eq!(
            converge(Some(&app), &[]),
            vec![Action::Schedule { count: 3 }]
        );
        let old = instance(&app, "a", Condition::Running, 100);
        let young = instance(&app, "b", Condition::Running, 200);
        let app1 = app_with(1, 10);
        assert_eq!(
            converge(Some(&app1), &[&old, &young]),
            vec![Action::Decommission {
                instance_id: young.id.clone()
            }]
        );
    }

    #[test]
    fn a_config_change_replaces_every_instance() {
        let app = app_with(2, 10);
        let a = instance(&app, "a", Condition::Running, 100);
        let b = instance(&app, "b", Condition::Running, 200);
        let changed = app_with(2, 20);
        let actions = converge(Some(&changed), &[&a, &b]);
        assert!(actions.contains(&Action::Schedule { count: 2 }));
        assert_eq!(
            actions
                .iter()
                .filter(|a| matches!(a, Action::Decommission { .. }))
                .count(),
            2
        );
    }

    #[test]
    fn deleted_apps_stop_everything_and_forget_the_dead() {
        let app = app_with(2, 10);
        let running = instance(&app, "a", Condition::Running, 100);
        let mut dead = instance(&app, "b", Condition::Killed, 100);
        dead.goal = Goal::Decommissioned;
        let actions = converge(None, &[&running, &dead]);
        assert_eq!(
            actions,
            vec![
                Action::Expunge {
                    instance_id: dead.id.clone()
                },
                Action::Decommission {
                    instance_id: running.id.clone()
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
        /// After the actions, the app keeps exactly `instances` instances with goal Running of its
        /// current config, never more, and a suspended app schedules nothing.
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
            let actions = converge(Some(&app), &refs);
            let mut keep = refs.iter().filter(|i| i.goal == Goal::Running && i.config_version == app.config_version()).count();
            for a in &actions {
                match a {
                    Action::Schedule { count } => keep += count,
                    Action::Decommission { instance_id } => {
                        let i = refs.iter().find(|i| &i.id == instance_id).unwrap();
                        prop_assert_eq!(i.goal, Goal::Running);
                        if i.config_version == app.config_version() { keep -= 1; }
                    }
                    Action::Expunge { instance_id } => {
                        let i = refs.iter().find(|i| &i.id == instance_id).unwrap();
                        prop_assert!(i.goal == Goal::Decommissioned && !i.condition.is_active());
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
            let stopped: Vec<&String> = converge(Some(&app), &refs).iter().filter_map(|a| match a {
                Action::Decommission { instance_id } => Some(instance_id),
                _ => None,
            }).map(|id| &refs.iter().find(|i| &i.id == id).unwrap().id).collect();
            let running_stopped = stopped.iter().filter(|id| id.contains("instance-r")).count();
            if running_stopped > 0 { prop_assert_eq!(stopped.len() - running_stopped, n_waiting); }
        }
    }
}
