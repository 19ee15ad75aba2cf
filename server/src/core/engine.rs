//! The deployment engine: every app converges as far as its deployment lets it ([`Gate`]),
//! deployments move on when their steps are done or fail when they time out, and the results of
//! health and readiness probes come in here.

use super::{instances_of, Core};
use crate::scheduler::converge::{converge, Action, Gate};
use crate::scheduler::deployment::{advance, AppState, Deployment};
use crate::scheduler::health::{self, apply_probe, health_of, Health, ProbeResult};
use crate::scheduler::instance::{Condition, Goal, Instance};
use crate::scheduler::lifecycle::Operation;
use app::model::{ActionKind, DeploymentAction, MarathonEvent, ReadinessResult, Timestamp};
use std::sync::Arc;

/// Rounds of [`Core::settle`] in one batch: a deployment step finishing starts the next one,
/// whose apps then converge; more rounds than steps in any sane plan.
const SETTLE_ROUNDS: usize = 32;

impl Core {
    /// How far `app_id` may move now.
    pub(super) fn gate_of(&self, app_id: &str) -> Gate {
        self.state
            .deployment_of(app_id)
            .and_then(|d| d.gate(app_id))
            .unwrap_or(Gate::Free)
    }

    /// Brings one app's instances toward its definition as far as its gate allows.
    fn converge_app(&mut self, app_id: &str, now: Timestamp) {
        let app = self.state.apps.get(app_id).cloned();
        let gate = self.gate_of(app_id);
        let deployment = self.state.deployment_of(app_id).cloned();
        let instances: Vec<Arc<Instance>> = instances_of(&self.state.instances, app_id)
            .cloned()
            .collect();
        let refs: Vec<&Instance> = instances.iter().map(|i| i.as_ref()).collect();
        let state = &self.state;
        let judge = |i: &Instance| state.judge(i, deployment.as_deref());
        let actions = converge(app.as_deref(), &refs, gate, &judge);
        for action in actions {
            match action {
                Action::Schedule { count } => {
                    let Some(app) = &app else { continue };
                    for _ in 0..count {
                        let uuid = self.uuid();
                        self.change(None, Operation::Schedule { app, uuid: &uuid }, now);
                    }
                }
                Action::Decommission { instance_id } => {
                    self.change(Some(&instance_id), Operation::Decommission, now)
                }
                Action::Expunge { instance_id } => {
                    self.change(Some(&instance_id), Operation::Expunge, now)
                }
                Action::Stop { instance_id } => {
                    self.change(Some(&instance_id), Operation::Stop, now)
                }
                Action::Resume { instance_id } => {
                    let Some(app) = &app else { continue };
                    self.change(Some(&instance_id), Operation::Resume { app }, now)
                }
            }
        }
    }

    /// Converges the apps that changed in this batch (those in a rolling restart or being
    /// stopped always, the others when a change can matter to them) and advances their
    /// deployments, until nothing moves any more.
    pub(super) fn settle(&mut self) {
        for _ in 0..SETTLE_ROUNDS {
            let unsettled = std::mem::take(&mut self.unsettled);
            let Some(now) = unsettled.values().map(|(at, _)| *at).max() else {
                return;
            };
            for (app_id, (at, converge)) in &unsettled {
                if *converge || matches!(self.gate_of(app_id), Gate::Restart | Gate::Stop) {
                    self.converge_app(app_id, *at);
                }
            }
            // A scale or restart is done only when its app has all its instances running, which
            // the count tells without walking them.
            let state = &self.state;
            let may_be_done = |action: &DeploymentAction| {
                unsettled.contains_key(&action.app)
                    && (!matches!(
                        action.action,
                        ActionKind::ScaleApplication | ActionKind::RestartApplication
                    ) || state.apps.get(&action.app).is_none_or(|app| {
                        self.running.get(&action.app) >= app.instances.max(0) as usize
                    }))
            };
            let deployments: Vec<Arc<Deployment>> = self
                .state
                .deployments
                .values()
                .filter(|d| {
                    d.current()
                        .is_some_and(|s| s.actions.iter().any(may_be_done))
                })
                .cloned()
                .collect();
            self.advance(deployments, now);
        }
        tracing::warn!(
            "deployments still moving after {SETTLE_ROUNDS} rounds; going on next batch"
        );
    }

    fn advance(&mut self, deployments: Vec<Arc<Deployment>>, now: Timestamp) {
        for d in deployments {
            let state = &self.state;
            let (next, events) = advance(
                &d,
                |app_id| AppState {
                    app: state.apps.get(app_id).map(|a| a.as_ref()),
                    instances: instances_of(&state.instances, app_id)
                        .map(|i| i.as_ref())
                        .collect(),
                    judge: Box::new(|i: &Instance| state.judge(i, Some(&d))),
                },
                now,
            );
            self.dirty.events.extend(events);
            if next.current_step == d.current_step {
                continue;
            }
            // The apps of the steps that just began (or, when done, all of them) move on now.
            let moving: Vec<String> = if next.is_finished() {
                next.affected_apps()
            } else {
                next.steps[next.current_step]
                    .actions
                    .iter()
                    .map(|a| a.app.clone())
                    .collect()
            };
            if next.is_finished() {
                self.remove_deployment(&next.id);
            } else {
                self.put_deployment(next);
            }
            for app in moving {
                self.unsettle(&app, now, true);
            }
        }
    }

    /// Fails deployments past their deadline (`upgradeStrategy.deploymentTimeoutSeconds`) and
    /// rolls back those that ask for it.
    /// Applies each app's `unreachableStrategy` to its unreachable instances: those unreachable
    /// long enough stop counting (and are replaced) or are forgotten.
    pub(super) fn check_unreachable(&mut self, now: Timestamp) {
        let apps: Vec<String> = self.unreachable.apps().cloned().collect();
        for app_id in apps {
            let ids: Vec<String> = instances_of(&self.state.instances, &app_id)
                .filter(|i| i.condition.is_unreachable())
                .map(|i| i.id.clone())
                .collect();
            for id in ids {
                self.check_unreachable_instance(&id, now);
            }
        }
    }

    /// [`check_unreachable`](Self::check_unreachable) for one instance.
    pub(super) fn check_unreachable_instance(&mut self, id: &str, now: Timestamp) {
        let Some(instance) = self.state.instances.get(id).cloned() else {
            return;
        };
        if !instance.condition.is_unreachable() {
            return;
        }
        // An app deleted meanwhile: its instances are being stopped anyway.
        let Some(strategy) = self
            .state
            .apps
            .get(&instance.app_id)
            .map(|app| app.unreachable_strategy)
        else {
            return;
        };
        self.change(Some(id), Operation::UnreachableTimeout(strategy), now);
        let after = self.state.instances.get(id).map(|i| i.condition);
        if after != Some(instance.condition) {
            self.unsettle(&instance.app_id, now, true);
        }
    }

    pub(super) fn check_deadlines(&mut self, now: Timestamp) {
        let expired: Vec<Arc<Deployment>> = self
            .state
            .deployments
            .values()
            .filter(|d| d.deadline.is_some_and(|at| at <= now))
            .cloned()
            .collect();
        for d in expired {
            let reason =
                "The deployment did not finish within upgradeStrategy.deploymentTimeoutSeconds";
            tracing::warn!(deployment = %d.id, apps = ?d.affected_apps(), "{reason}");
            self.cancel_deployment(&d.id, reason, now);
            if d.auto_rollback {
                match self.roll_back(&d, now) {
                    Ok(rollback) => {
                        // A rollback that fails in turn stays failed rather than swinging back.
                        if let Some(stored) = self.state.deployments.get(&rollback.id) {
                            let mut stored = (**stored).clone();
                            stored.auto_rollback = false;
                            self.put_deployment(stored);
                        }
                    }
                    Err(e) => {
                        tracing::error!(deployment = %d.id, error = %e, "rolling back a timed-out deployment failed")
                    }
                }
            }
        }
    }

    /// One health probe's result (SEMANTICS.md §9.2), with Stride's rate bound on kills.
    pub fn on_probe(&mut self, result: ProbeResult, now: Timestamp) {
        let Some(instance) = self.state.instances.get(&result.instance_id).cloned() else {
            return;
        };
        let Some(app) = self.state.definition_of(&instance).cloned() else {
            return;
        };
        let current = self.state.health.get(&instance.id).cloned();
        let Some(mut verdict) = apply_probe(current.as_deref(), &instance, &app, &result, now)
        else {
            return;
        };
        self.state
            .health
            .insert(instance.id.clone(), Arc::new(verdict.state));
        if verdict.kill.is_some() {
            if self.may_kill_for_health(&instance.app_id, now) {
                self.recovering
                    .insert(instance.id.clone(), instance.app_id.clone());
                self.change(Some(&instance.id), Operation::KillTask, now);
            } else {
                tracing::info!(
                    instance = %instance.id,
                    "unhealthy, but another instance of the app is recovering from a health kill: not killed yet"
                );
                verdict
                    .events
                    .retain(|e| !matches!(e, MarathonEvent::UnhealthyInstanceKillEvent { .. }));
            }
        }
        self.dirty.events.extend(verdict.events);
        self.unsettle(&instance.app_id, now, false);
    }

    /// The rate bound of health kills (see [`health::may_kill`]), after forgetting instances
    /// that have recovered.
    fn may_kill_for_health(&mut self, app_id: &str, now: Timestamp) -> bool {
        self.forget_recovered(now);
        let Some(app) = self.state.apps.get(app_id).cloned() else {
            return true;
        };
        let state = &self.state;
        let healthy = instances_of(&state.instances, app_id)
            .filter(|i| i.goal == Goal::Running)
            .filter(|i| {
                state.definition_of(i).is_some_and(|def| {
                    health_of(def, i, state.health.get(&i.id).map(|h| h.as_ref()))
                        == Health::Healthy
                })
            })
            .count();
        let recovering = self.recovering.values().filter(|a| *a == app_id).count();
        health::may_kill(&app, healthy, recovering)
    }

    /// Instances killed for their health stop recovering once healthy again, or once their new
    /// task used up its grace period.
    pub(super) fn forget_recovered(&mut self, now: Timestamp) {
        let state = &self.state;
        self.recovering.retain(|instance_id, _| {
            let Some(instance) = state.instances.get(instance_id) else {
                return false;
            };
            let Some(app) = state.definition_of(instance) else {
                return false;
            };
            let health = health_of(
                app,
                instance,
                state.health.get(instance_id).map(|h| h.as_ref()),
            );
            !health::recovered(app, instance, health, now)
        });
    }

    /// A readiness probe's result for a task a deployment started.
    pub fn on_readiness(&mut self, result: ReadinessResult, now: Timestamp) {
        let Some((instance_id, _)) = crate::scheduler::instance::parse_task_id(&result.task_id)
        else {
            return;
        };
        let Some(instance) = self.state.instances.get(instance_id).cloned() else {
            return;
        };
        if instance.task_id() != result.task_id || instance.condition != Condition::Running {
            return;
        }
        if self.state.readiness.get(&result.task_id) == Some(&result) {
            return;
        }
        self.state.readiness.insert(result.task_id.clone(), result);
        self.unsettle(&instance.app_id, now, false);
    }

    /// Forgets older definitions no instance runs any more.
    pub(super) fn forget_unused_versions(&mut self) {
        let state = &self.state;
        let unused: Vec<(String, Timestamp)> = state
            .versions
            .keys()
            .filter(|(app_id, version)| {
                !instances_of(&state.instances, app_id).any(|i| i.app_version == *version)
            })
            .cloned()
            .collect();
        for key in unused {
            self.state.versions.remove(&key);
        }
    }
}
