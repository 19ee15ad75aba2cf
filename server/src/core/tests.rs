//! The core driven as the service drives it: requests, offers, status updates, probes.

use super::mesos::RECONCILE_INTERVAL_MS;
use super::*;
use crate::scheduler::health::{ProbeOutcome, ProbeResult};
use crate::scheduler::instance::parse_task_id;
use crate::scheduler::placement::DockerEngine;
use crate::scheduler::status::StatusUpdate;
use crate::scheduler::testing::app_with;
use app::model::{ServiceError, TaskState};
use proto::mesos::v1::task_status::Reason;
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
        disks: vec![],
        reserved: vec![],
        docker_engine: DockerEngine::Unknown,
    }
}

fn deploy_one(
    core: &mut Core,
    app: AppDefinition,
    now: Timestamp,
) -> Result<Deployment, ServiceError> {
    core.deploy(vec![(app.id.clone(), Some(app))], false, now)
}

/// The tasks accepted by the calls of one batch.
fn accepted(calls: &[Outgoing]) -> Vec<TaskSpec> {
    calls
        .iter()
        .filter_map(|c| match c {
            Outgoing::Accept { operations, .. } => Some(
                operations
                    .iter()
                    .flat_map(|o| o.tasks().to_vec())
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

fn kills(calls: &[Outgoing]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| match c {
            Outgoing::Kill { task_id, .. } => Some(task_id.clone()),
            _ => None,
        })
        .collect()
}

/// A core with one app of one instance whose task was just accepted; the accepted tasks.
fn launched_one(now: Timestamp) -> (Core, Vec<TaskSpec>) {
    let mut core = core();
    deploy_one(&mut core, app_with(1, 1000), now).unwrap();
    core.on_offers(vec![offer(1.0)], now);
    let tasks = accepted(&core.take_changes().calls);
    assert_eq!(tasks.len(), 1);
    (core, tasks)
}

fn update(task_id: &str, state: TaskState) -> StatusUpdate {
    StatusUpdate {
        task_id: task_id.into(),
        state,
        reason: None,
        message: String::new(),
        agent_id: Some("agent-1".into()),
        healthy: None,
        unreachable_since: None,
    }
}

#[test]
fn an_app_launches_runs_and_its_deployment_completes() {
    let mut core = core();
    let now = Timestamp::from_millis(1000);
    let d = deploy_one(&mut core, app_with(2, 1000), now).unwrap();
    let changes = core.take_changes();
    assert_eq!(changes.batch.apps_put.len(), 1);
    assert_eq!(
        changes.batch.instances_put.len(),
        2,
        "the start step passed, the scale began"
    );
    assert_eq!(changes.batch.deployments_put.len(), 1);
    core.on_offers(vec![offer(1.0)], now);
    let tasks = accepted(&core.take_changes().calls);
    assert_eq!(tasks.len(), 2);
    for t in &tasks {
        core.on_status(update(&t.task_id, TaskState::Running), Some(vec![1]), now);
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
fn a_pods_instances_launch_as_task_groups_and_a_failed_container_ends_its_group() {
    let mut core = core();
    let now = Timestamp::from_millis(1000);
    let pod: app::model::PodDefinition = serde_json::from_str(
        r#"{"id": "/pod", "scaling": {"instances": 2}, "containers": [
             {"name": "web", "resources": {"cpus": 0.2, "mem": 32},
              "exec": {"command": {"shell": "sleep 100"}}, "endpoints": [{"name": "http", "hostPort": 0}]},
             {"name": "side", "resources": {"cpus": 0.2, "mem": 32},
              "exec": {"command": {"shell": "sleep 100"}}}]}"#,
    )
    .unwrap();
    let spec = pod.run_spec(app::model::VersionInfo {
        last_scaling_at: Some(now),
        last_config_change_at: Some(now),
    });
    let d = deploy_one(&mut core, spec, now).unwrap();
    core.take_changes();
    core.on_offers(vec![offer(2.0)], now);
    let calls = core.take_changes().calls;
    let groups: Vec<&TaskGroupSpec> = calls
        .iter()
        .filter_map(|c| match c {
            Outgoing::Accept { operations, .. } => Some(operations),
            _ => None,
        })
        .flatten()
        .filter_map(|o| match o {
            OfferOperation::LaunchGroup(group) => Some(group),
            _ => None,
        })
        .collect();
    assert_eq!(groups.len(), 2, "{calls:?}");
    assert!(groups.iter().all(|g| g.tasks.len() == 2));
    assert_ne!(groups[0].tasks[0].ports, groups[1].tasks[0].ports);
    for task in groups.iter().flat_map(|g| &g.tasks) {
        core.on_status(update(&task.task_id, TaskState::Running), None, now);
    }
    let changes = core.take_changes();
    assert!(changes.batch.deployments_deleted.contains(&d.id));
    let first = groups[0];
    core.on_status(
        update(&first.tasks[1].task_id, TaskState::Failed),
        None,
        now,
    );
    let changes = core.take_changes();
    assert_eq!(
        kills(&changes.calls),
        vec![first.tasks[0].task_id.clone()],
        "the group's other task is killed, the failed one is not"
    );
    let (instance_id, _) = parse_task_id(&first.tasks[0].task_id).unwrap();
    let instance = &core.snapshot().instances[instance_id];
    assert_eq!(instance.condition, Condition::Failed);
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
    core.on_subscribed("fw-1".into(), None, now);
    let explicit = vec![(tasks[0].task_id.clone(), Some("agent-1".to_owned()))];
    assert_eq!(reconciles(&mut core), vec![explicit.clone(), vec![]]);
    core.on_tick(now.plus_millis(RECONCILE_INTERVAL_MS - 1));
    assert!(reconciles(&mut core).is_empty(), "not due yet");
    let due = now.plus_millis(RECONCILE_INTERVAL_MS);
    core.on_tick(due);
    assert_eq!(reconciles(&mut core), vec![explicit, vec![]]);
    core.on_disconnected(due);
    core.on_tick(due.plus_millis(RECONCILE_INTERVAL_MS));
    assert!(
        reconciles(&mut core).is_empty(),
        "no reconciliation while disconnected"
    );
}

#[test]
fn subscriptions_and_disconnections_are_published_as_marathon_says() {
    let now = Timestamp::from_millis(1000);
    let mut core = Core::new(Default::default(), StdRng::seed_from_u64(1));
    let event_types = |core: &mut Core| -> Vec<&'static str> {
        core.take_changes()
            .events
            .iter()
            .map(MarathonEvent::event_type)
            .collect()
    };
    core.on_subscribed("fw-1".into(), Some("m1".into()), now);
    assert_eq!(event_types(&mut core), ["scheduler_registered_event"]);
    core.on_disconnected(now);
    core.on_disconnected(now);
    assert_eq!(
        event_types(&mut core),
        ["scheduler_disconnected_event"],
        "once per lost connection"
    );
    core.on_subscribed("fw-1".into(), Some("m2".into()), now);
    assert_eq!(event_types(&mut core), ["scheduler_reregistered_event"]);
    core.on_message("agent-1".into(), "ex".into(), vec![1, 2], now);
    let events = core.take_changes().events;
    assert_eq!(
        serde_json::to_value(&events[0]).unwrap()["message"],
        serde_json::json!([1, 2]),
        "bytes as an array of numbers, as Marathon writes them"
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
    assert!(core.snapshot().last_failures.contains_key("/test"));
    core.on_offers(vec![offer(1.0)], now.plus_millis(1001));
    let tasks = accepted(&core.take_changes().calls);
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
    let first = deploy_one(&mut core, app_with(1, 1000), now).unwrap();
    let again = deploy_one(&mut core, app_with(2, 2000), now);
    assert_eq!(again, Err(ServiceError::Locked(vec![first.id.clone()])));
    core.deploy(vec![("/test".into(), None)], true, now)
        .unwrap();
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
    core.deploy(vec![("/test".into(), None)], true, now)
        .unwrap();
    assert_eq!(kills(&core.take_changes().calls), vec![task.clone()]);
    let mut reconciled = update(&task, TaskState::Running);
    reconciled.reason = Some(Reason::Reconciliation);
    core.on_status(reconciled, None, now);
    assert_eq!(kills(&core.take_changes().calls), vec![task]);
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

/// An app of `n` running instances, each task RUNNING; the core and the tasks.
fn running_app(app: AppDefinition, now: Timestamp) -> (Core, Vec<String>) {
    let mut core = core();
    deploy_one(&mut core, app, now).unwrap();
    core.on_offers(vec![offer(8.0)], now);
    let tasks: Vec<String> = accepted(&core.take_changes().calls)
        .into_iter()
        .map(|t| t.task_id)
        .collect();
    for t in &tasks {
        core.on_status(update(t, TaskState::Running), None, now);
    }
    assert!(core.take_changes().batch.deployments_deleted.len() == 1);
    (core, tasks)
}

#[test]
fn a_rolling_restart_replaces_one_instance_at_a_time_with_one_extra() {
    let mut app = app_with(3, 1000);
    app.upgrade_strategy.minimum_health_capacity = 1.0;
    app.upgrade_strategy.maximum_over_capacity = 0.0;
    let now = Timestamp::from_millis(1000);
    let (mut core, old) = running_app(app.clone(), now);
    let mut changed = app.clone();
    changed.cmd = Some("sleep 200".into());
    let changed = versioned(changed, Some(&app), Versioning::Edit, now.plus_millis(10));
    deploy_one(&mut core, changed, now.plus_millis(10)).unwrap();
    let calls = core.take_changes().calls;
    assert!(
        kills(&calls).is_empty(),
        "nothing old goes before a new one is healthy"
    );
    let later = now.plus_millis(20);
    core.on_offers(vec![offer(8.0)], later);
    let first = accepted(&core.take_changes().calls);
    assert_eq!(first.len(), 1, "one extra at a time");
    core.on_status(update(&first[0].task_id, TaskState::Running), None, later);
    let calls = core.take_changes().calls;
    assert_eq!(kills(&calls).len(), 1, "the new one runs: one old one goes");
    let killed = kills(&calls)[0].clone();
    assert!(old.contains(&killed));
    core.on_offers(vec![offer(8.0)], later);
    assert!(
        accepted(&core.take_changes().calls).is_empty(),
        "not before the old one is gone"
    );
    core.on_status(update(&killed, TaskState::Killed), None, later);
    core.take_changes();
    core.on_offers(vec![offer(8.0)], later);
    assert_eq!(accepted(&core.take_changes().calls).len(), 1);
}

#[test]
fn probes_decide_health_and_a_failing_instance_is_killed_and_relaunched() {
    let mut app = app_with(1, 1000);
    let mut check: app::model::HealthCheck = serde_json::from_str("{}").unwrap();
    check.grace_period_seconds = 0;
    check.max_consecutive_failures = 1;
    app.health_checks = vec![check.normalized(true)];
    let now = Timestamp::from_millis(1000);
    let mut core = core();
    deploy_one(&mut core, app, now).unwrap();
    core.on_offers(vec![offer(8.0)], now);
    let task = accepted(&core.take_changes().calls)[0].task_id.clone();
    core.on_status(update(&task, TaskState::Running), None, now);
    assert!(
        core.take_changes().batch.deployments_deleted.is_empty(),
        "not healthy yet"
    );
    let instance_id = parse_task_id(&task).unwrap().0.to_string();
    let probe = |outcome| ProbeResult {
        instance_id: instance_id.clone(),
        task_id: task.clone(),
        check: 0,
        outcome,
    };
    core.on_probe(probe(ProbeOutcome::Healthy), now.plus_millis(100));
    assert_eq!(
        core.take_changes().batch.deployments_deleted.len(),
        1,
        "healthy: done"
    );
    for n in 0..2 {
        core.on_probe(
            probe(ProbeOutcome::Unhealthy("HTTP 500".into())),
            now.plus_millis(200 + n),
        );
    }
    let changes = core.take_changes();
    assert_eq!(kills(&changes.calls), vec![task.clone()]);
    assert!(changes
        .events
        .iter()
        .any(|e| matches!(e, MarathonEvent::UnhealthyInstanceKillEvent { .. })));
    core.on_status(update(&task, TaskState::Killed), None, now.plus_millis(300));
    core.take_changes();
    core.on_offers(vec![offer(8.0)], now.plus_millis(301));
    let relaunched = accepted(&core.take_changes().calls);
    assert!(
        relaunched[0].task_id.ends_with("._app.2"),
        "a health kill is not delayed"
    );
}

mod model {
    //! A model-based test: random sequences of API calls, offers, status updates and ticks
    //! driven through the core, checking after every batch the invariants ARCHITECTURE.md
    //! states. (Per-app counts equal a recount: `take_changes` asserts that in debug builds,
    //! which is how tests run.)
    use super::*;
    use proptest::prelude::*;

    const APPS: [&str; 3] = ["/model/a", "/model/b", "/model/c"];

    #[derive(Clone, Debug)]
    enum Op {
        Deploy {
            app: usize,
            instances: i64,
            config: i64,
            healthy_capacity: f64,
            over_capacity: f64,
            force: bool,
        },
        Delete {
            app: usize,
        },
        Offer {
            cpus: f64,
        },
        Status {
            pick: usize,
            state: TaskState,
        },
        Kill {
            pick: usize,
            scale: bool,
            wipe: bool,
        },
        Rollback {
            pick: usize,
            force: bool,
        },
        Tick {
            ms: i64,
        },
    }

    fn any_op() -> impl Strategy<Value = Op> {
        let state = prop::sample::select(vec![
            TaskState::Staging,
            TaskState::Running,
            TaskState::Running,
            TaskState::Failed,
            TaskState::Killed,
            TaskState::Finished,
            TaskState::Lost,
        ]);
        prop_oneof![
            3 => (0..APPS.len(), 0i64..5, 0i64..3, prop::sample::select(vec![0.0, 0.5, 1.0]), prop::sample::select(vec![0.0, 0.5, 1.0]), any::<bool>())
                .prop_map(|(app, instances, config, healthy_capacity, over_capacity, force)| Op::Deploy { app, instances, config, healthy_capacity, over_capacity, force }),
            1 => (0..APPS.len()).prop_map(|app| Op::Delete { app }),
            4 => prop::sample::select(vec![0.0, 0.25, 1.0, 8.0]).prop_map(|cpus| Op::Offer { cpus }),
            6 => (any::<usize>(), state).prop_map(|(pick, state)| Op::Status { pick, state }),
            1 => (any::<usize>(), any::<bool>(), any::<bool>()).prop_map(|(pick, scale, wipe)| Op::Kill { pick, scale, wipe }),
            1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, force)| Op::Rollback { pick, force }),
            2 => (1i64..3000).prop_map(|ms| Op::Tick { ms }),
        ]
    }

    fn definition(op: &Op, now: Timestamp) -> Option<(String, AppDefinition)> {
        let Op::Deploy {
            app,
            instances,
            config,
            healthy_capacity,
            over_capacity,
            ..
        } = op
        else {
            return None;
        };
        let mut def = app_with(*instances, 0);
        def.id = APPS[*app].to_string();
        def.cmd = Some(format!("sleep {}", 100 + config));
        def.upgrade_strategy.minimum_health_capacity = *healthy_capacity;
        def.upgrade_strategy.maximum_over_capacity = *over_capacity;
        def.version = now;
        Some((def.id.clone(), def))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn the_core_keeps_its_invariants(ops in prop::collection::vec(any_op(), 1..60)) {
            let mut core = core();
            let mut now = Timestamp::from_millis(1_000);
            // Tasks Mesos knows of, by id: launched and not yet terminal.
            let mut tasks: Vec<String> = Vec::new();
            for op in &ops {
                now = now.plus_millis(10);
                let before = core.snapshot();
                match op {
                    Op::Deploy { force, .. } => {
                        let (id, next) = definition(op, now).unwrap();
                        let next = versioned(next, before.apps.get(&id).map(|a| a.as_ref()), Versioning::Edit, now);
                        let _ = core.deploy(vec![(id, Some(next))], *force, now);
                    }
                    Op::Delete { app } => {
                        if before.apps.contains_key(APPS[*app]) {
                            let _ = core.deploy(vec![(APPS[*app].to_string(), None)], true, now);
                        }
                    }
                    Op::Offer { cpus } => core.on_offers(vec![offer(*cpus)], now),
                    Op::Status { pick, state } => {
                        if !tasks.is_empty() {
                            let task = tasks[pick % tasks.len()].clone();
                            core.on_status(update(&task, *state), None, now);
                            if !matches!(state, TaskState::Staging | TaskState::Running) {
                                tasks.retain(|t| *t != task);
                            }
                        }
                    }
                    Op::Kill { pick, scale, wipe } => {
                        if !tasks.is_empty() {
                            let task = tasks[pick % tasks.len()].clone();
                            let _ = core.kill_tasks(&[task], *scale, *wipe, true, now);
                        }
                    }
                    Op::Rollback { pick, force } => {
                        let ids: Vec<String> = before.deployments.keys().cloned().collect();
                        if !ids.is_empty() {
                            let _ = core.delete_deployment(&ids[pick % ids.len()], *force, now);
                        }
                    }
                    Op::Tick { ms } => {
                        now = now.plus_millis(*ms);
                        core.on_tick(now);
                    }
                }
                let changes = core.take_changes();
                let state = core.snapshot();
                for task in accepted(&changes.calls) {
                    let (instance_id, _) = parse_task_id(&task.task_id).unwrap();
                    let app = state.instances.get(instance_id).map(|i| i.app_id.clone());
                    let app = app.and_then(|a| state.apps.get(&a).cloned());
                    prop_assert!(app.as_ref().is_some_and(|a| a.instances > 0), "a launch for a suspended or deleted app: {}", task.task_id);
                    tasks.push(task.task_id);
                }
                for (app_id, app) in &state.apps {
                    let gate = core.gate_of(app_id);
                    let current = state
                        .instances_of(app_id)
                        .filter(|i| i.goal == Goal::Running && i.config_version == app.config_version())
                        .count();
                    if gate != crate::scheduler::converge::Gate::Waiting {
                        prop_assert!(current as i64 <= app.instances, "{app_id}: {current} current instances for {} wanted", app.instances);
                    }
                    prop_assert!(state.deployments_of(app_id).count() <= 1, "{app_id} is in two deployments");
                }
                for instance in state.instances.values() {
                    prop_assert!(
                        state.apps.contains_key(&instance.app_id) || instance.goal == Goal::Decommissioned,
                        "{} of a deleted app is not being stopped", instance.id
                    );
                }
            }
        }
    }
}
