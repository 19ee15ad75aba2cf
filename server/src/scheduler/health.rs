//! Health: the results of the checks Stride probes itself (HTTP, HTTPS, TCP), what they mean
//! for an instance, when an unhealthy instance is killed, and how fast.
//!
//! # Words
//! - **probe**: one attempt of one check against one task; its [`ProbeOutcome`].
//! - **alive** (per check): its last success is later than its last failure (Marathon's rule).
//! - **healthy** (per instance, [`Health`]): it runs and every check of its app passes, probed
//!   by Stride or reported by Mesos for the checks Mesos runs. An app without checks counts
//!   every running instance as healthy.
//! - **recovering**: an instance killed for its health whose next task has not yet turned
//!   healthy nor used up its grace period; while an app is below its minimum health capacity,
//!   it may have at most one (see [`may_kill`]).
//!
//! Health lives in memory only, as in Marathon: after a restart every instance is probed again.

use super::instance::{Condition, Instance};
use app::model::{AppDefinition, HealthCheck, HealthResult, MarathonEvent, Timestamp};

/// One check's record for one task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckState {
    pub first_success: Option<Timestamp>,
    pub last_success: Option<Timestamp>,
    pub last_failure: Option<Timestamp>,
    pub last_failure_cause: Option<String>,
    pub consecutive_failures: u32,
}

impl CheckState {
    pub fn alive(&self) -> bool {
        self.last_success
            .is_some_and(|s| self.last_failure.is_none_or(|f| s > f))
    }

    fn has_result(&self) -> bool {
        self.last_success.is_some() || self.last_failure.is_some()
    }
}

/// The probed checks of one instance's current task, one entry per entry of the app's
/// `healthChecks` (entries of checks Mesos runs stay empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceHealth {
    pub task_id: String,
    /// Persistent, so that recording one probe's result copies nothing of the others.
    pub checks: imbl::Vector<CheckState>,
}

impl InstanceHealth {
    /// `healthCheckResults` for the task's JSON.
    pub fn results(&self, app: &AppDefinition, instance_id: &str) -> Vec<HealthResult> {
        self.checks
            .iter()
            .zip(&app.health_checks)
            .filter(|(_, check)| check.protocol.is_probed_by_scheduler())
            .map(|(state, _)| HealthResult {
                alive: state.alive(),
                consecutive_failures: state.consecutive_failures,
                first_success: state.first_success,
                last_failure: state.last_failure,
                last_success: state.last_success,
                last_failure_cause: state.last_failure_cause.clone(),
                instance_id: instance_id.to_string(),
            })
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    Healthy,
    /// Failed, with the cause in words (status code, refused connection, timeout).
    Unhealthy(String),
    /// An HTTP 1xx answer of a check with `ignoreHttp1xx`: changes nothing.
    Ignored,
}

/// One probe's result as the prober reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    pub instance_id: String,
    pub task_id: String,
    /// Index into the app's `healthChecks`.
    pub check: usize,
    pub outcome: ProbeOutcome,
}

/// What a probe result changes.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub state: InstanceHealth,
    pub events: Vec<MarathonEvent>,
    /// The instance failed too often: kill its task, for this reason (Marathon's rule; the
    /// caller still applies the rate bound).
    pub kill: Option<String>,
}

/// How an instance is doing, for deployments and the rate bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// A check fails (or Mesos says so).
    Unhealthy,
    /// Not running, or not every check has a result yet.
    Unknown,
}

/// The instance's health given its app (the definition of the instance's version) and its
/// probed checks.
pub fn health_of(
    app: &AppDefinition,
    instance: &Instance,
    probed: Option<&InstanceHealth>,
) -> Health {
    if instance.condition != Condition::Running {
        return Health::Unknown;
    }
    let probed = probed.filter(|p| p.task_id == instance.task_id());
    let mut health = Health::Healthy;
    for (index, check) in app.health_checks.iter().enumerate() {
        let this = if check.protocol.is_probed_by_scheduler() {
            match probed.and_then(|p| p.checks.get(index)) {
                Some(state) if state.alive() => Health::Healthy,
                Some(state) if state.has_result() => Health::Unhealthy,
                _ => Health::Unknown,
            }
        } else {
            match instance.healthy {
                Some(true) => Health::Healthy,
                Some(false) => Health::Unhealthy,
                None => Health::Unknown,
            }
        };
        health = match (health, this) {
            (Health::Unhealthy, _) | (_, Health::Unhealthy) => Health::Unhealthy,
            (Health::Unknown, _) | (_, Health::Unknown) => Health::Unknown,
            _ => Health::Healthy,
        };
    }
    health
}

/// The instance-level health Marathon publishes (`instance_health_changed_event`): all probed
/// checks alive → true; any without a result → unknown; otherwise false.
fn combined(app: &AppDefinition, state: &InstanceHealth) -> Option<bool> {
    let probed: Vec<&CheckState> = state
        .checks
        .iter()
        .zip(&app.health_checks)
        .filter(|(_, c)| c.protocol.is_probed_by_scheduler())
        .map(|(s, _)| s)
        .collect();
    if probed.iter().all(|s| s.alive()) {
        Some(true)
    } else if probed.iter().any(|s| !s.has_result()) {
        None
    } else {
        Some(false)
    }
}

/// Applies one probe result (SEMANTICS.md §9.2). `app` is the definition of the instance's
/// version; `None` when the result no longer applies (another task, a check that is gone, an
/// instance that does not run).
pub fn apply_probe(
    current: Option<&InstanceHealth>,
    instance: &Instance,
    app: &AppDefinition,
    result: &ProbeResult,
    now: Timestamp,
) -> Option<Verdict> {
    let check = app.health_checks.get(result.check)?;
    if result.task_id != instance.task_id() || instance.condition != Condition::Running {
        return None;
    }
    let mut state = current
        .filter(|h| h.task_id == result.task_id)
        .cloned()
        .unwrap_or_else(|| InstanceHealth {
            task_id: result.task_id.clone(),
            checks: imbl::Vector::new(),
        });
    while state.checks.len() < app.health_checks.len() {
        state.checks.push_back(CheckState::default());
    }
    let before = state.clone();
    let mut events = Vec::new();
    let mut kill = None;
    let entry = state.checks.get_mut(result.check)?;
    match &result.outcome {
        ProbeOutcome::Ignored => return None,
        ProbeOutcome::Healthy => {
            entry.consecutive_failures = 0;
            entry.last_success = Some(now);
            entry.first_success.get_or_insert(now);
        }
        ProbeOutcome::Unhealthy(cause) => {
            let in_grace = entry.first_success.is_none()
                && instance
                    .since
                    .plus_millis(check.grace_period_seconds * 1000)
                    > now;
            if in_grace {
                return None;
            }
            events.push(MarathonEvent::FailedHealthCheckEvent {
                app_id: instance.app_id.clone(),
                health_check: check.clone(),
                task_id: instance.id.clone(),
                timestamp: now,
            });
            if should_kill(check, entry.consecutive_failures, instance) {
                kill = Some(cause.clone());
                events.push(MarathonEvent::UnhealthyInstanceKillEvent {
                    app_id: instance.app_id.clone(),
                    task_id: result.task_id.clone(),
                    instance_id: instance.id.clone(),
                    version: instance.app_version,
                    reason: cause.clone(),
                    host: instance
                        .placement
                        .as_ref()
                        .map_or_else(String::new, |p| p.hostname.clone()),
                    slave_id: instance.placement.as_ref().map(|p| p.agent_id.clone()),
                    timestamp: now,
                });
            }
            entry.consecutive_failures += 1;
            entry.last_failure = Some(now);
            entry.last_failure_cause = Some(cause.clone());
        }
    }
    let alive_before = before.checks[result.check].alive();
    let alive_now = state.checks[result.check].alive();
    if alive_before != alive_now {
        events.push(MarathonEvent::HealthStatusChangedEvent {
            app_id: instance.app_id.clone(),
            instance_id: instance.id.clone(),
            version: instance.app_version,
            alive: alive_now,
            timestamp: now,
        });
    }
    let (was, is) = (combined(app, &before), combined(app, &state));
    if was != is {
        events.push(MarathonEvent::InstanceHealthChangedEvent {
            instance_id: instance.id.clone(),
            run_spec_id: instance.app_id.clone(),
            healthy: is,
            run_spec_version: instance.app_version,
            timestamp: now,
        });
    }
    Some(Verdict {
        state,
        events,
        kill,
    })
}

/// Marathon's kill rule: with the failure count before this failure, at least
/// `maxConsecutiveFailures` (and that is not 0); never an unreachable instance.
fn should_kill(check: &HealthCheck, failures_before: u32, instance: &Instance) -> bool {
    check.max_consecutive_failures > 0
        && i64::from(failures_before) >= check.max_consecutive_failures
        && !instance.condition.is_unreachable()
}

/// The longest grace period of the app's checks, in milliseconds.
pub fn grace_ms(app: &AppDefinition) -> i64 {
    app.health_checks
        .iter()
        .map(|c| c.grace_period_seconds.max(0) * 1000)
        .max()
        .unwrap_or(0)
}

/// Whether a recovering instance (killed for its health at some point) is done recovering:
/// healthy again, or its task has run for a whole grace period without turning healthy.
pub fn recovered(app: &AppDefinition, instance: &Instance, health: Health, now: Timestamp) -> bool {
    health == Health::Healthy
        || (instance.condition == Condition::Running
            && instance.since.plus_millis(grace_ms(app)) <= now)
}

/// The rate bound on health kills: while fewer than `ceil(instances × minimumHealthCapacity)`
/// of the app's instances are healthy, kill only when no instance of the app is recovering.
/// Above that, Marathon's rule alone decides.
pub fn may_kill(app: &AppDefinition, healthy: usize, recovering: usize) -> bool {
    healthy >= minimum_healthy(app) || recovering == 0
}

/// `ceil(instances × minimumHealthCapacity)`.
pub fn minimum_healthy(app: &AppDefinition) -> usize {
    (app.instances.max(0) as f64 * app.upgrade_strategy.minimum_health_capacity - 1e-9)
        .ceil()
        .max(0.0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::{app_with, instance};

    fn checked_app(max_failures: i64, grace: i64) -> AppDefinition {
        let mut app = app_with(2, 0);
        let mut check: HealthCheck = serde_json::from_str("{}").unwrap();
        check.max_consecutive_failures = max_failures;
        check.grace_period_seconds = grace;
        app.health_checks = vec![check.normalized(true)];
        app
    }

    fn probe(i: &Instance, outcome: ProbeOutcome) -> ProbeResult {
        ProbeResult {
            instance_id: i.id.clone(),
            task_id: i.task_id(),
            check: 0,
            outcome,
        }
    }

    fn fail(i: &Instance) -> ProbeResult {
        probe(i, ProbeOutcome::Unhealthy("HTTP 503".into()))
    }

    #[test]
    fn the_kill_comes_with_the_failure_after_max_consecutive_ones() {
        let app = checked_app(3, 0);
        let i = instance(&app, "a", Condition::Running, 0);
        let mut state: Option<InstanceHealth> = None;
        let mut kills = Vec::new();
        for n in 1..=4 {
            let v = apply_probe(
                state.as_ref(),
                &i,
                &app,
                &fail(&i),
                Timestamp::from_millis(n * 1000),
            )
            .unwrap();
            kills.push(v.kill.is_some());
            state = Some(v.state);
        }
        assert_eq!(
            kills,
            vec![false, false, false, true],
            "the 4th counted failure kills"
        );
        let healthy = apply_probe(
            state.as_ref(),
            &i,
            &app,
            &probe(&i, ProbeOutcome::Healthy),
            Timestamp::from_millis(5000),
        )
        .unwrap();
        assert_eq!(healthy.state.checks[0].consecutive_failures, 0);
        assert_eq!(health_of(&app, &i, Some(&healthy.state)), Health::Healthy);
    }

    #[test]
    fn failures_in_the_grace_period_before_a_first_success_do_not_count() {
        let app = checked_app(1, 10);
        let i = instance(&app, "a", Condition::Running, 0);
        assert_eq!(
            apply_probe(None, &i, &app, &fail(&i), Timestamp::from_millis(9_000)),
            None
        );
        let ok = apply_probe(
            None,
            &i,
            &app,
            &probe(&i, ProbeOutcome::Healthy),
            Timestamp::from_millis(9_500),
        )
        .unwrap();
        let after_success = apply_probe(
            Some(&ok.state),
            &i,
            &app,
            &fail(&i),
            Timestamp::from_millis(9_800),
        )
        .unwrap();
        assert_eq!(
            after_success.state.checks[0].consecutive_failures, 1,
            "a success ends the grace"
        );
        assert!(after_success.events.iter().any(|e| matches!(
            e,
            MarathonEvent::HealthStatusChangedEvent { alive: false, .. }
        )));
    }

    #[test]
    fn never_kill_with_zero_max_failures_nor_an_unreachable_instance() {
        let app = checked_app(0, 0);
        let i = instance(&app, "a", Condition::Running, 0);
        let mut state = None;
        for n in 1..10 {
            let v = apply_probe(
                state.as_ref(),
                &i,
                &app,
                &fail(&i),
                Timestamp::from_millis(n),
            )
            .unwrap();
            assert!(v.kill.is_none());
            state = Some(v.state);
        }
        let check = &checked_app(1, 0).health_checks[0];
        let unreachable = instance(&app, "b", Condition::Unreachable, 0);
        assert!(!should_kill(check, 5, &unreachable));
    }

    #[test]
    fn an_app_below_its_minimum_kills_one_at_a_time() {
        let app = checked_app(3, 0); // 2 instances, minimumHealthCapacity 1
        assert_eq!(minimum_healthy(&app), 2);
        assert!(
            may_kill(&app, 2, 3),
            "at capacity Marathon's rule alone decides"
        );
        assert!(may_kill(&app, 0, 0));
        assert!(
            !may_kill(&app, 1, 1),
            "one recovering holds the next kill back"
        );
    }

    #[test]
    fn results_of_another_task_do_not_apply() {
        let app = checked_app(3, 0);
        let i = instance(&app, "a", Condition::Running, 0);
        let mut old = fail(&i);
        old.task_id = format!("{}._app.9", i.id);
        assert_eq!(
            apply_probe(None, &i, &app, &old, Timestamp::from_millis(1)),
            None
        );
        assert_eq!(health_of(&app, &i, None), Health::Unknown);
    }
}
