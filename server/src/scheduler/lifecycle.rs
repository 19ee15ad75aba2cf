//! Every change to an instance, as one pure function: an [`Operation`] applied to the
//! instance's current state gives an [`Effect`] (Marathon's InstanceUpdateOperation →
//! InstanceUpdateEffect).
//!
//! The core never edits an instance's fields itself: it calls [`update`] and carries out the
//! effect (store or forget the instance, publish the events, change the app's launch backoff,
//! kill the task). So every lifecycle rule lives here and can be tested without the core.

use super::instance::{
    combined_condition, combined_health, task_id_parts, Condition, ContainerTask, Goal, Instance,
    Placement, Reservation,
};
use super::status::{condition_of, StatusUpdate};
use app::model::{
    AppDefinition, MarathonEvent, TaskFailure, TaskState, Timestamp, UnreachableStrategy,
};

/// What happens to an instance.
#[derive(Clone, Debug)]
pub enum Operation<'a> {
    /// A new instance of `app` that waits for its first offer (`current` is `None`).
    Schedule {
        app: &'a AppDefinition,
        uuid: &'a str,
    },
    /// An offer was accepted for the instance: its next task is on the way to `placement`,
    /// running `app` (the definition of the instance's version).
    Provision {
        app: &'a AppDefinition,
        placement: Placement,
        /// A resident instance's first launch reserves resources and creates its volumes: this
        /// is what it holds from now on.
        reservation: Option<Box<Reservation>>,
    },
    /// Mesos reported on one of the instance's tasks.
    Status(&'a StatusUpdate),
    /// Stop it for good: kill its task if it has one, forget it once nothing runs.
    Decommission,
    /// Kill its current task but keep the goal, so that it is launched again (a kill from the
    /// API without `wipe`, or a health check's verdict).
    KillTask,
    /// Forget a decommissioned instance whose task is gone.
    Expunge,
    /// A resident instance is not needed now (scale-down, the old side of an upgrade): kill its
    /// task, keep its reservation and volumes.
    Stop,
    /// A stopped resident instance is needed again, as an instance of `app`: it relaunches on
    /// its reservation with `app`'s definition.
    Resume { app: &'a AppDefinition },
    /// Time passed for an unreachable instance: as the app's strategy says, it stops counting
    /// (UnreachableInactive) or is forgotten (SEMANTICS.md §13).
    UnreachableTimeout(UnreachableStrategy),
}

/// What becomes of the instance itself.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// Unchanged.
    Keep,
    /// Store this new state.
    Put(Instance),
    /// Forget the instance (this is its last state, for the events' sake).
    Expunge(Instance),
}

/// How the app's launch backoff changes (SEMANTICS.md §8).
#[derive(Clone, Debug, PartialEq)]
pub enum Backoff {
    Unchanged,
    /// A task of an instance that should run failed: the next launch waits longer.
    Failed(TaskFailure),
    /// A task made progress (staging, starting, running): the delay holds nothing back.
    Progressed,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Effect {
    pub next: Next,
    pub events: Vec<MarathonEvent>,
    pub backoff: Backoff,
    /// Kill the instance's current task (the one of its state before this operation).
    pub kill: bool,
}

impl Effect {
    fn noop() -> Effect {
        Effect {
            next: Next::Keep,
            events: Vec::new(),
            backoff: Backoff::Unchanged,
            kill: false,
        }
    }

    fn put(instance: Instance, now: Timestamp) -> Effect {
        Effect {
            events: vec![instance_changed(&instance, now)],
            next: Next::Put(instance),
            backoff: Backoff::Unchanged,
            kill: false,
        }
    }
}

/// Applies `operation` to `current` (`None` only for [`Operation::Schedule`]).
pub fn update(current: Option<&Instance>, operation: Operation<'_>, now: Timestamp) -> Effect {
    match (current, operation) {
        (None, Operation::Schedule { app, uuid }) => Effect::put(
            Instance::scheduled(&app.id, uuid, app.version, app.config_version(), now),
            now,
        ),
        (
            Some(instance),
            Operation::Provision {
                app,
                placement,
                reservation,
            },
        ) => {
            let mut next = instance.clone();
            if let Some(reservation) = reservation {
                next.reservation = Some(*reservation);
            }
            if next.condition != Condition::Scheduled {
                next.incarnation += 1;
            }
            next.condition = Condition::Provisioned;
            next.since = now;
            next.staged_at = Some(now);
            next.started_at = None;
            next.message = None;
            next.healthy = None;
            next.app_version = app.version;
            next.config_version = app.config_version();
            next.placement = Some(placement);
            next.containers = app
                .pod
                .iter()
                .flat_map(|pod| &pod.containers)
                .map(|container| ContainerTask {
                    name: container.name.clone(),
                    condition: Condition::Provisioned,
                    since: now,
                    healthy: None,
                    message: None,
                })
                .collect();
            Effect::put(next, now)
        }
        (Some(instance), Operation::Status(update)) => status(instance, update, now),
        (Some(instance), Operation::Decommission) => {
            let mut next = instance.clone();
            next.goal = Goal::Decommissioned;
            if instance.condition.is_unreachable() {
                // Nothing can confirm a kill on an agent that cannot be reached: the instance is
                // forgotten now (as Marathon does), and the kill reaches the task if its agent
                // comes back (where an unknown task is killed anyway).
                Effect {
                    events: vec![instance_changed(&next, now)],
                    next: Next::Expunge(next),
                    backoff: Backoff::Unchanged,
                    kill: true,
                }
            } else if instance.condition.is_active() {
                let mut effect = Effect::put(next, now);
                effect.kill = true;
                effect
            } else {
                // Nothing runs: there is nothing to wait for.
                Effect {
                    events: vec![instance_changed(&next, now)],
                    next: Next::Expunge(next),
                    backoff: Backoff::Unchanged,
                    kill: false,
                }
            }
        }
        (Some(instance), Operation::Stop) if instance.goal == Goal::Running => {
            let mut next = instance.clone();
            next.goal = Goal::Stopped;
            let mut effect = Effect::put(next, now);
            effect.kill = instance.condition.is_active();
            effect
        }
        (Some(instance), Operation::Resume { app }) if instance.goal == Goal::Stopped => {
            let mut next = instance.clone();
            next.goal = Goal::Running;
            next.app_version = app.version;
            next.config_version = app.config_version();
            Effect::put(next, now)
        }
        (Some(instance), Operation::KillTask) => Effect {
            kill: instance.condition.is_active(),
            ..Effect::noop()
        },
        (Some(instance), Operation::Expunge)
            if instance.goal == Goal::Decommissioned && !instance.condition.is_active() =>
        {
            Effect {
                next: Next::Expunge(instance.clone()),
                ..Effect::noop()
            }
        }
        (Some(instance), Operation::UnreachableTimeout(strategy)) => {
            unreachable_timeout(instance, strategy, now)
        }
        // A new instance is only ever scheduled, only an existing one changes, and one that
        // may still run is never forgotten.
        (
            Some(_),
            Operation::Schedule { .. }
            | Operation::Expunge
            | Operation::Stop
            | Operation::Resume { .. },
        )
        | (None, _) => Effect::noop(),
    }
}

/// When an unreachable instance stops counting and when it is forgotten, measured from when it
/// became unreachable.
fn unreachable_timeout(
    instance: &Instance,
    strategy: UnreachableStrategy,
    now: Timestamp,
) -> Effect {
    let UnreachableStrategy::Enabled {
        inactive_after_seconds,
        expunge_after_seconds,
    } = strategy
    else {
        return Effect::noop();
    };
    if !instance.condition.is_unreachable() {
        return Effect::noop();
    }
    let unreachable_ms = now.millis() - instance.since.millis();
    if unreachable_ms >= expunge_after_seconds.saturating_mul(1000) {
        return Effect {
            next: Next::Expunge(instance.clone()),
            kill: true,
            ..Effect::noop()
        };
    }
    if instance.condition == Condition::Unreachable
        && unreachable_ms >= inactive_after_seconds.saturating_mul(1000)
    {
        let mut next = instance.clone();
        next.condition = Condition::UnreachableInactive;
        return Effect::put(next, now);
    }
    Effect::noop()
}

/// What a status update says of the task it is about: its condition, message and health, kept
/// across updates that leave them out as [`status`] keeps an instance's.
struct Reported {
    condition: Condition,
    message: Option<String>,
    healthy: Option<bool>,
}

fn reported(update: &StatusUpdate, before: Condition, healthy_before: Option<bool>) -> Reported {
    let condition = match condition_of(update) {
        // Still unreachable (a reconciliation, a retried update): it stays inactive.
        Condition::Unreachable if before == Condition::UnreachableInactive => {
            Condition::UnreachableInactive
        }
        condition => condition,
    };
    Reported {
        condition,
        message: (!update.message.is_empty()).then(|| update.message.clone()),
        healthy: update
            .healthy
            .or(healthy_before.filter(|_| condition == before)),
    }
}

/// A pod instance's news of one of its tasks: that container's task changes, and the
/// instance is in their combined condition and health. `None` for another incarnation's task
/// or a container the instance does not have.
fn container_status(
    instance: &Instance,
    update: &StatusUpdate,
    now: Timestamp,
) -> Option<(Vec<ContainerTask>, Reported, bool)> {
    let parts = task_id_parts(&update.task_id)?;
    if parts.incarnation != instance.incarnation {
        return None;
    }
    let mut containers = instance.containers.clone();
    let task = containers.iter_mut().find(|c| c.name == parts.container)?;
    let said = reported(update, task.condition, task.healthy);
    let task_changed = said.condition != task.condition || said.message != task.message;
    if said.condition != task.condition {
        task.since = now;
    }
    task.condition = said.condition;
    task.healthy = said.healthy;
    task.message = said.message.clone();
    let combined = Reported {
        condition: combined_condition(&containers),
        message: said.message.or_else(|| instance.message.clone()),
        healthy: combined_health(&containers),
    };
    Some((containers, combined, task_changed))
}

fn status(instance: &Instance, update: &StatusUpdate, now: Timestamp) -> Effect {
    let (containers, said, task_changed) = if instance.containers.is_empty() {
        if update.task_id != instance.task_id() {
            // An older incarnation's news.
            return Effect::noop();
        }
        let said = reported(update, instance.condition, instance.healthy);
        let changed = said.condition != instance.condition || said.message != instance.message;
        (Vec::new(), said, changed)
    } else {
        match container_status(instance, update, now) {
            Some(news) => news,
            None => return Effect::noop(),
        }
    };
    let Reported {
        condition,
        message,
        healthy,
    } = said;
    // A kill can get lost (a master restart, a dropped connection); reconciliation showing a
    // decommissioned task alive is the cue to kill it again.
    let lost_kill =
        instance.goal != Goal::Running && condition.is_active() && update.is_reconciliation();
    // A pod instance whose task ended badly has ended as a whole: the tasks of its other
    // containers are killed, as Mesos' default executor does.
    let group_ended =
        condition.is_terminal() && containers.iter().any(|c| !c.condition.is_terminal());
    let kill = lost_kill || group_ended;
    if condition == instance.condition
        && message == instance.message
        && healthy == instance.healthy
        && containers == instance.containers
    {
        return Effect {
            kill,
            ..Effect::noop()
        };
    }
    let mut next = instance.clone();
    next.containers = containers;
    if condition != instance.condition {
        next.since = match condition {
            // Unreachable since the master says (Stride may hear of it late, as after its own
            // failover), never in the future.
            Condition::Unreachable => update
                .unreachable_since
                .filter(|since| since.millis() <= now.millis())
                .unwrap_or(now),
            _ => now,
        };
    }
    next.condition = condition;
    next.message = message.clone();
    next.healthy = healthy;
    if update.state == TaskState::GoneByOperator {
        // The operator took the agent away with its disks: the reservation is gone, and the
        // instance starts afresh elsewhere (SEMANTICS.md §14).
        next.reservation = None;
    }
    if condition == Condition::Running && next.started_at.is_none() {
        next.started_at = Some(now);
    }
    let placement = next.placement.as_ref();
    let mut events = Vec::new();
    if task_changed {
        events.push(MarathonEvent::StatusUpdateEvent {
            slave_id: placement.map(|p| p.agent_id.clone()).unwrap_or_default(),
            task_id: update.task_id.clone(),
            task_status: update.state,
            message: update.message.clone(),
            app_id: next.app_id.clone(),
            host: placement.map_or_else(|| "unknown".to_string(), |p| p.hostname.clone()),
            ip_addresses: vec![],
            ports: placement.map(|p| p.ports.clone()).unwrap_or_default(),
            version: next.app_version,
            timestamp: now,
        });
    }
    if condition != instance.condition || message != instance.message {
        events.push(instance_changed(&next, now));
    }
    if healthy != instance.healthy {
        events.push(MarathonEvent::InstanceHealthChangedEvent {
            instance_id: next.id.clone(),
            run_spec_id: next.app_id.clone(),
            healthy,
            run_spec_version: next.app_version,
            timestamp: now,
        });
    }
    let backoff = if next.goal != Goal::Running || condition == instance.condition {
        Backoff::Unchanged
    } else if condition.is_failure() {
        Backoff::Failed(TaskFailure {
            app_id: next.app_id.clone(),
            host: placement.map_or_else(String::new, |p| p.hostname.clone()),
            message: update.message.clone(),
            state: update.state,
            task_id: update.task_id.clone(),
            timestamp: now,
            version: next.app_version,
            slave_id: update.agent_id.clone(),
        })
    } else if matches!(
        condition,
        Condition::Staging | Condition::Starting | Condition::Running
    ) {
        Backoff::Progressed
    } else {
        Backoff::Unchanged
    };
    let next = if next.goal == Goal::Decommissioned && condition.is_terminal() {
        Next::Expunge(next)
    } else {
        Next::Put(next)
    };
    Effect {
        next,
        events,
        backoff,
        kill,
    }
}

/// Marathon's `instance_changed_event` for the instance's current condition.
pub fn instance_changed(instance: &Instance, now: Timestamp) -> MarathonEvent {
    MarathonEvent::InstanceChangedEvent {
        instance_id: instance.id.clone(),
        condition: instance.condition.name().to_string(),
        run_spec_id: instance.app_id.clone(),
        agent_id: instance.placement.as_ref().map(|p| p.agent_id.clone()),
        host: instance.placement.as_ref().map(|p| p.hostname.clone()),
        run_spec_version: instance.app_version,
        timestamp: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::{app_with, instance};
    use app::model::TaskState;
    use proto::mesos::v1::task_status::Reason;

    fn update_of(i: &Instance, state: TaskState) -> StatusUpdate {
        StatusUpdate {
            task_id: i.task_id(),
            state,
            reason: None,
            message: String::new(),
            agent_id: Some("agent-1".into()),
            healthy: None,
            unreachable_since: None,
        }
    }

    fn put(effect: &Effect) -> &Instance {
        match &effect.next {
            Next::Put(i) => i,
            other => panic!("expected a new state, got {other:?}"),
        }
    }

    #[test]
    fn running_sets_started_at_emits_both_events_and_releases_the_backoff() {
        let app = app_with(1, 0);
        let mut i = instance(&app, "a", Condition::Staging, 5);
        i.started_at = None;
        let now = Timestamp::from_millis(50);
        let effect = update(
            Some(&i),
            Operation::Status(&update_of(&i, TaskState::Running)),
            now,
        );
        let running = put(&effect);
        assert_eq!(running.condition, Condition::Running);
        assert_eq!(running.started_at, Some(now));
        assert_eq!(effect.events.len(), 2);
        assert_eq!(effect.backoff, Backoff::Progressed);
        let again = update(
            Some(running),
            Operation::Status(&update_of(&i, TaskState::Running)),
            now,
        );
        assert_eq!(again.next, Next::Keep, "a repeated update changes nothing");
    }

    #[test]
    fn a_failure_of_a_running_instance_counts_for_the_backoff_but_a_kill_does_not() {
        let app = app_with(1, 0);
        let i = instance(&app, "a", Condition::Running, 5);
        let now = Timestamp::from_millis(50);
        let failed = update(
            Some(&i),
            Operation::Status(&update_of(&i, TaskState::Failed)),
            now,
        );
        assert!(matches!(failed.backoff, Backoff::Failed(ref f) if f.state == TaskState::Failed));
        let killed = update(
            Some(&i),
            Operation::Status(&update_of(&i, TaskState::Killed)),
            now,
        );
        assert_eq!(killed.backoff, Backoff::Unchanged);
        assert!(put(&killed).wants_launch(), "goal Running: launched again");
    }

    #[test]
    fn stale_incarnations_are_ignored_and_decommissioned_instances_expunged() {
        let app = app_with(1, 0);
        let i = instance(&app, "a", Condition::Running, 5);
        let mut stale = update_of(&i, TaskState::Failed);
        stale.task_id = format!("{}._app.7", i.id);
        let now = Timestamp::from_millis(9);
        assert_eq!(
            update(Some(&i), Operation::Status(&stale), now).next,
            Next::Keep
        );
        let stopping = update(Some(&i), Operation::Decommission, now);
        assert!(stopping.kill, "a running task is killed");
        let stopping = put(&stopping).clone();
        assert_eq!(stopping.goal, Goal::Decommissioned);
        let gone = update(
            Some(&stopping),
            Operation::Status(&update_of(&i, TaskState::Killed)),
            now,
        );
        assert!(matches!(gone.next, Next::Expunge(_)));
        assert_eq!(gone.backoff, Backoff::Unchanged);
    }

    #[test]
    fn a_pod_instance_follows_each_containers_task_and_ends_with_the_first_failure() {
        let pod: app::model::PodDefinition = serde_json::from_str(
            r#"{"id": "/pod", "containers": [
                 {"name": "web", "exec": {"command": {"shell": "sleep 100"}}},
                 {"name": "side", "exec": {"command": {"shell": "sleep 100"}}}]}"#,
        )
        .unwrap();
        let spec = pod.run_spec(app::model::VersionInfo::default());
        let waiting = instance(&spec, "a", Condition::Scheduled, 1);
        let placement = instance(&spec, "b", Condition::Running, 1)
            .placement
            .unwrap();
        let at = Timestamp::from_millis;
        let provisioned = update(
            Some(&waiting),
            Operation::Provision {
                app: &spec,
                placement,
                reservation: None,
            },
            at(2),
        );
        let mut i = put(&provisioned).clone();
        assert_eq!(i.task_ids().len(), 2);
        let report = |i: &Instance, container: &str, state: TaskState| StatusUpdate {
            task_id: crate::scheduler::instance::container_task_id(&i.id, container, i.incarnation),
            ..update_of(i, state)
        };
        let effect = update(
            Some(&i),
            Operation::Status(&report(&i, "web", TaskState::Running)),
            at(3),
        );
        i = put(&effect).clone();
        assert_eq!(i.condition, Condition::Provisioned, "side has not started");
        assert!(effect
            .events
            .iter()
            .any(|e| matches!(e, MarathonEvent::StatusUpdateEvent { .. })));
        let effect = update(
            Some(&i),
            Operation::Status(&report(&i, "side", TaskState::Running)),
            at(4),
        );
        i = put(&effect).clone();
        assert_eq!(i.condition, Condition::Running);
        assert_eq!(i.started_at, Some(at(4)));
        let mut older = report(&i, "side", TaskState::Failed);
        older.task_id = crate::scheduler::instance::container_task_id(&i.id, "side", 0);
        assert_eq!(
            update(Some(&i), Operation::Status(&older), at(5)).next,
            Next::Keep
        );
        let effect = update(
            Some(&i),
            Operation::Status(&report(&i, "side", TaskState::Failed)),
            at(5),
        );
        let failed = put(&effect);
        assert_eq!(failed.condition, Condition::Failed);
        assert!(
            effect.kill,
            "the web container's task is killed with its group"
        );
        assert!(matches!(effect.backoff, Backoff::Failed(_)));
        assert_eq!(failed.live_task_ids(), vec![format!("{}.web.1", i.id)]);
    }

    #[test]
    fn a_decommissioned_task_seen_alive_by_reconciliation_is_killed_again() {
        let app = app_with(1, 0);
        let mut i = instance(&app, "a", Condition::Running, 5);
        i.goal = Goal::Decommissioned;
        let mut seen = update_of(&i, TaskState::Running);
        seen.reason = Some(Reason::Reconciliation);
        let effect = update(
            Some(&i),
            Operation::Status(&seen),
            Timestamp::from_millis(9),
        );
        assert!(effect.kill);
        assert_eq!(effect.next, Next::Keep);
    }

    #[test]
    fn a_relaunch_is_a_new_incarnation_and_mesos_health_is_tracked() {
        let app = app_with(1, 0);
        let mut i = instance(&app, "a", Condition::Failed, 5);
        i.healthy = Some(false);
        let placement = i.placement.clone().unwrap();
        let provisioned = update(
            Some(&i),
            Operation::Provision {
                app: &app,
                placement,
                reservation: None,
            },
            Timestamp::from_millis(9),
        );
        let next = put(&provisioned);
        assert_eq!(next.incarnation, 2);
        assert_eq!(next.healthy, None);
        let mut healthy = update_of(next, TaskState::Running);
        healthy.healthy = Some(true);
        let effect = update(
            Some(next),
            Operation::Status(&healthy),
            Timestamp::from_millis(10),
        );
        assert_eq!(put(&effect).healthy, Some(true));
        assert!(effect.events.iter().any(|e| matches!(
            e,
            MarathonEvent::InstanceHealthChangedEvent {
                healthy: Some(true),
                ..
            }
        )));
    }

    #[test]
    fn unreachable_instances_stop_counting_then_are_forgotten_as_the_strategy_says() {
        let app = app_with(1, 0);
        let i = instance(&app, "a", Condition::Running, 5);
        let lost = update(
            Some(&i),
            Operation::Status(&update_of(&i, TaskState::Unreachable)),
            Timestamp::from_millis(1_000),
        );
        let lost = put(&lost).clone();
        assert_eq!(lost.condition, Condition::Unreachable);
        let strategy = UnreachableStrategy::Enabled {
            inactive_after_seconds: 10,
            expunge_after_seconds: 60,
        };
        let at = |s: i64| Timestamp::from_millis(1_000 + s * 1000);
        let early = update(Some(&lost), Operation::UnreachableTimeout(strategy), at(9));
        assert_eq!(early.next, Next::Keep);
        let inactive = update(Some(&lost), Operation::UnreachableTimeout(strategy), at(10));
        let inactive = put(&inactive).clone();
        assert_eq!(inactive.condition, Condition::UnreachableInactive);
        assert_eq!(
            inactive.since, lost.since,
            "measured from when it became unreachable"
        );
        let again = update(
            Some(&inactive),
            Operation::Status(&update_of(&i, TaskState::Unreachable)),
            at(20),
        );
        assert_eq!(again.next, Next::Keep, "reconciliation keeps it inactive");
        let expunged = update(
            Some(&inactive),
            Operation::UnreachableTimeout(strategy),
            at(60),
        );
        assert!(matches!(expunged.next, Next::Expunge(_)));
        assert!(
            expunged.kill,
            "the kill reaches the task if its agent comes back"
        );
        let disabled = update(
            Some(&inactive),
            Operation::UnreachableTimeout(UnreachableStrategy::Disabled),
            at(10_000),
        );
        assert_eq!(disabled.next, Next::Keep, "disabled: waited for forever");
        let back = update(
            Some(&inactive),
            Operation::Status(&update_of(&i, TaskState::Running)),
            at(30),
        );
        assert_eq!(put(&back).condition, Condition::Running);
        let stopped = update(Some(&inactive), Operation::Decommission, at(30));
        assert!(matches!(stopped.next, Next::Expunge(_)) && stopped.kill);
    }

    /// News of an agent lost 30 s ago (Stride was away): the instance is unreachable since
    /// then, so with `inactiveAfterSeconds` 10 it is replaced at once. A time in the future
    /// (clocks apart) counts from now.
    #[test]
    fn unreachable_is_counted_from_when_the_master_lost_the_agent() {
        let app = app_with(1, 0);
        let i = instance(&app, "a", Condition::Running, 5);
        let strategy = UnreachableStrategy::Enabled {
            inactive_after_seconds: 10,
            expunge_after_seconds: 60,
        };
        let now = Timestamp::from_millis(100_000);
        let mut news = update_of(&i, TaskState::Unreachable);
        news.unreachable_since = Some(Timestamp::from_millis(70_000));
        let lost = put(&update(Some(&i), Operation::Status(&news), now)).clone();
        assert_eq!(lost.since, Timestamp::from_millis(70_000));
        let inactive = update(Some(&lost), Operation::UnreachableTimeout(strategy), now);
        assert_eq!(put(&inactive).condition, Condition::UnreachableInactive);

        news.unreachable_since = Some(Timestamp::from_millis(160_000));
        let lost = put(&update(Some(&i), Operation::Status(&news), now)).clone();
        assert_eq!(lost.since, now);
    }
}
