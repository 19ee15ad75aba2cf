//! What the API asks of the core: deploying app changes, cancelling and rolling back
//! deployments, killing tasks, resetting a launch delay. Each either changes everything it
//! must or, refused, changes nothing.

use super::Core;
use crate::scheduler::deployment::Deployment;
use crate::scheduler::groups::{Diff, Tree};
use crate::scheduler::instance::{parse_task_id, Goal, Instance};
use crate::scheduler::lifecycle::Operation;
use crate::scheduler::plan::{self, dependency_depths, kind_of, Change, Kind};
use crate::scheduler::service_ports;
use crate::scheduler::versioning::{versioned, Versioning};
use app::model::{
    path, AppDefinition, DeploymentStep, GroupDefinition, MarathonEvent, ServiceError, Timestamp,
    Violation,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A change checked and planned, ready to be carried out.
struct Prepared {
    /// Deployments it cancels (it is forced).
    conflicts: Vec<String>,
    /// Apps whose configuration changes: their launch delay goes.
    restarted: Vec<String>,
    /// The deployment, still without an id.
    deployment: Deployment,
    /// The changes, with the groups new apps and groups need.
    changes: Diff,
}

/// The outcome of a kill request.
pub enum KillOutcome {
    /// The instances acted on.
    Killed(Vec<Instance>),
    /// With `scale`: the deployment that lowered the instance counts.
    Scaled(Deployment),
}

fn cyclic() -> ServiceError {
    ServiceError::Invalid(vec![Violation {
        path: "/".into(),
        errors: vec!["Dependency graph has cyclic dependencies.".into()],
    }])
}

/// The group a set of changes is rooted at, for `group_change_success`: the deepest group
/// that contains every changed app.
fn common_group(ids: &[&str]) -> String {
    let mut group = match ids.first() {
        Some(first) => path::parent(first),
        None => return "/".into(),
    };
    while group != "/"
        && !ids
            .iter()
            .all(|id| *id == group || path::is_within(id, &group))
    {
        group = path::parent(&group);
    }
    group
}

impl Core {
    /// Replaces (or with `None` deletes) each app of `changes` and records one deployment for
    /// them all. The definitions have already been validated and versioned by the caller.
    pub fn deploy(
        &mut self,
        changes: Vec<(String, Option<AppDefinition>)>,
        force: bool,
        now: Timestamp,
    ) -> Result<Deployment, ServiceError> {
        self.deploy_changes(
            Diff {
                apps: changes,
                groups: Vec::new(),
            },
            force,
            now,
        )
    }

    /// Applies app and group changes as one deployment, or, refused, changes nothing and
    /// publishes `group_change_failed`.
    pub fn deploy_changes(
        &mut self,
        changes: Diff,
        force: bool,
        now: Timestamp,
    ) -> Result<Deployment, ServiceError> {
        let ids: Vec<&str> = changes
            .apps
            .iter()
            .map(|(id, _)| id.as_str())
            .chain(changes.groups.iter().map(|(id, _)| id.as_str()))
            .collect();
        let group_id = common_group(&ids);
        match self.prepare(changes, force, now) {
            Ok(prepared) => Ok(self.carry_out(prepared, group_id, now)),
            Err(refusal) => {
                self.emit(MarathonEvent::GroupChangeFailed {
                    group_id,
                    version: now,
                    reason: refusal.to_string(),
                    timestamp: now,
                });
                Err(refusal)
            }
        }
    }

    /// The steps `changes` would take, without taking them (`dryRun`).
    pub fn plan_of(
        &self,
        changes: Diff,
        now: Timestamp,
    ) -> Result<Vec<DeploymentStep>, ServiceError> {
        Ok(self.prepare(changes, true, now)?.deployment.steps)
    }

    /// Checks a change and works out its deployment, changing nothing.
    fn prepare(
        &self,
        changes: Diff,
        force: bool,
        now: Timestamp,
    ) -> Result<Prepared, ServiceError> {
        let Diff {
            apps: mut app_changes,
            groups: mut group_changes,
        } = changes;
        self.assign_service_ports(&mut app_changes, now)?;
        let mut conflicts: Vec<String> = Vec::new();
        for (id, _) in &app_changes {
            for d in self.state.deployments_of(id) {
                if !conflicts.contains(&d.id) {
                    conflicts.push(d.id.clone());
                }
            }
        }
        if !conflicts.is_empty() && !force {
            return Err(ServiceError::Locked(conflicts));
        }
        // The tree after the change, with the groups new apps and groups need.
        let mut tree = Tree {
            apps: BTreeMap::new(),
            groups: self
                .state
                .groups
                .iter()
                .map(|(id, g)| (id.clone(), (**g).clone()))
                .collect(),
        };
        for (id, group) in &group_changes {
            match group {
                Some(g) => tree.groups.insert(id.clone(), g.clone()),
                None => tree.groups.remove(id),
            };
        }
        let new_ids: Vec<String> = app_changes
            .iter()
            .filter(|(_, next)| next.is_some())
            .map(|(id, _)| id.clone())
            .chain(
                group_changes
                    .iter()
                    .filter(|(_, g)| g.is_some())
                    .map(|(id, _)| id.clone()),
            )
            .collect();
        let known: BTreeSet<String> = tree.groups.keys().cloned().collect();
        for id in &new_ids {
            tree.ensure_parents(id, now);
        }
        for (id, group) in &tree.groups {
            if !known.contains(id) {
                group_changes.push((id.clone(), Some(group.clone())));
            }
        }
        let befores: Vec<Option<Arc<AppDefinition>>> = app_changes
            .iter()
            .map(|(id, _)| self.state.apps.get(id).cloned())
            .collect();
        let mut target: BTreeMap<&str, &AppDefinition> = self
            .state
            .apps
            .iter()
            .map(|(id, app)| (id.as_str(), app.as_ref()))
            .collect();
        for (id, next) in &app_changes {
            match next {
                Some(app) => target.insert(id.as_str(), app),
                None => target.remove(id.as_str()),
            };
        }
        if target.keys().any(|id| tree.groups.contains_key(*id)) {
            return Err(ServiceError::Invalid(vec![Violation {
                path: "/".into(),
                errors: vec!["Groups and Applications may not have the same identifier.".into()],
            }]));
        }
        let depths = dependency_depths(target.values().copied(), &tree.group_dependencies())
            .map_err(|_| cyclic())?;
        let plan_changes: Vec<Change<'_>> = app_changes
            .iter()
            .zip(&befores)
            .map(|((id, next), before)| Change::new(id, before.as_deref(), next.as_ref()))
            .collect();
        let steps = plan::steps(&plan_changes, &|id| depths.get(id).copied().unwrap_or(1));
        let restarted: Vec<String> = plan_changes
            .iter()
            .filter(|c| kind_of(c.before, c.after) == Kind::Restart)
            .map(|c| c.id.to_string())
            .collect();
        let timeout = app_changes
            .iter()
            .filter_map(|(_, next)| next.as_ref()?.upgrade_strategy.deployment_timeout_seconds)
            .min();
        let auto_rollback = app_changes.iter().any(|(_, next)| {
            next.as_ref()
                .is_some_and(|a| a.upgrade_strategy.auto_rollback == Some(true))
        });
        let originals: Vec<(String, Option<AppDefinition>)> = app_changes
            .iter()
            .zip(&befores)
            .map(|((id, _), before)| (id.clone(), before.as_deref().cloned()))
            .collect();
        let group_originals: Vec<(String, Option<GroupDefinition>)> = group_changes
            .iter()
            .map(|(id, _)| (id.clone(), self.state.groups.get(id).map(|g| (**g).clone())))
            .collect();
        let version = match app_changes.as_slice() {
            [(_, Some(app))] if group_changes.is_empty() => app.version,
            _ => now,
        };
        Ok(Prepared {
            conflicts,
            restarted,
            deployment: Deployment {
                id: String::new(),
                version,
                steps,
                current_step: 0,
                originals,
                group_originals,
                deadline: timeout.map(|t| now.plus_millis(t.saturating_mul(1000) as i64)),
                auto_rollback,
            },
            changes: Diff {
                apps: app_changes,
                groups: group_changes,
            },
        })
    }

    /// Gives the changed apps' service ports 0 a port each (see [`service_ports`]), the apps
    /// that are not changing and the changed apps' own ports being held; an app that gets its
    /// old ports back is then no config change.
    fn assign_service_ports(
        &self,
        changes: &mut [(String, Option<AppDefinition>)],
        now: Timestamp,
    ) -> Result<(), ServiceError> {
        let mut held = service_ports::held_by(
            self.state
                .apps
                .values()
                .map(|a| a.as_ref())
                .chain(changes.iter().filter_map(|(_, next)| next.as_ref())),
        );
        for (id, next) in changes.iter_mut() {
            let Some(app) = next else { continue };
            let before = self.state.apps.get(id.as_str()).map(|a| a.as_ref());
            let filled = service_ports::assign(app, before, &mut held, self.service_port_range)
                .map_err(|exhausted| ServiceError::Unprocessable(exhausted.to_string()))?;
            if filled {
                *app = versioned(app.clone(), before, Versioning::Edit, now);
            }
        }
        Ok(())
    }

    /// Carries out a prepared change: nothing here can fail, the request is accepted.
    /// `group_id` is where the change is rooted, for its events.
    fn carry_out(&mut self, prepared: Prepared, group_id: String, now: Timestamp) -> Deployment {
        let Prepared {
            conflicts,
            restarted,
            mut deployment,
            changes:
                Diff {
                    apps: app_changes,
                    groups: group_changes,
                },
        } = prepared;
        let version = deployment.version;
        for id in conflicts {
            self.cancel_deployment(&id, "canceled by a forced deployment", now);
        }
        let touched: Vec<String> = app_changes.iter().map(|(id, _)| id.clone()).collect();
        for (id, next) in app_changes {
            self.announce_health_checks(&id, next.as_ref(), now);
            self.put_app(&id, next);
        }
        for (id, group) in group_changes {
            let group = group.map(|mut g| {
                g.version = now;
                g
            });
            self.put_group(&id, group);
        }
        self.state.tree_version = now;
        for app_id in &restarted {
            // A new configuration starts without the old one's launch delay.
            self.state.backoffs.retain(|(id, _), _| id != app_id);
        }
        deployment.id = self.uuid();
        self.emit(MarathonEvent::GroupChangeSuccess {
            group_id,
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
        if deployment.steps.is_empty() {
            // Nothing to do: finished as soon as it exists.
            self.emit(MarathonEvent::DeploymentSuccess {
                id: deployment.id.clone(),
                plan: deployment.plan(),
                timestamp: now,
            });
            return deployment;
        }
        self.put_deployment(deployment.clone());
        for id in &touched {
            self.unsettle(id, now, true);
        }
        deployment
    }

    /// Marathon's `add_health_check_event` for each check of a new or changed definition, and
    /// `remove_health_check_event` when an app with checks goes.
    fn announce_health_checks(
        &mut self,
        app_id: &str,
        next: Option<&AppDefinition>,
        now: Timestamp,
    ) {
        let before = self.state.apps.get(app_id).cloned();
        let checks_before = before.as_ref().map(|a| &a.health_checks);
        match next {
            Some(app) if Some(&app.health_checks) != checks_before => {
                for check in &app.health_checks {
                    self.emit(MarathonEvent::AddHealthCheckEvent {
                        app_id: app_id.to_string(),
                        health_check: check.clone(),
                        timestamp: now,
                        version: app.version,
                    });
                }
            }
            None if checks_before.is_some_and(|c| !c.is_empty()) => {
                self.emit(MarathonEvent::RemoveHealthCheckEvent {
                    app_id: app_id.to_string(),
                    timestamp: now,
                });
            }
            _ => {}
        }
    }

    /// Stops tracking a deployment, with Marathon's failure events.
    pub(super) fn cancel_deployment(&mut self, id: &str, reason: &str, now: Timestamp) {
        let Some(d) = self.state.deployments.get(id).cloned() else {
            return;
        };
        self.remove_deployment(id);
        if let Some(step) = d.current() {
            self.emit(MarathonEvent::DeploymentStepFailure {
                plan: d.plan(),
                current_step: step.clone(),
                timestamp: now,
            });
        }
        self.emit(MarathonEvent::DeploymentFailed {
            id: d.id.clone(),
            plan: d.plan(),
            timestamp: now,
            reason: Some(reason.to_string()),
        });
        // Its apps are free now: they keep what they have.
        for app in d.affected_apps() {
            self.unsettle(&app, now, true);
        }
    }

    /// `DELETE /v2/deployments/{id}`: with `force`, just stop tracking it; otherwise deploy the
    /// apps it touched back to how they were, cancelling it.
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
        self.roll_back(&d, now).map(Some)
    }

    /// A new forced deployment that reverts what `d` changed (SEMANTICS.md §4): apps it
    /// changed or removed get their original definition back, apps it added go.
    ///
    /// Unlike Marathon, a restored app keeps its original `lastConfigChangeAt`: the instances
    /// still running the original configuration are current again and keep running, and only
    /// what the reverted deployment started is replaced.
    pub(super) fn roll_back(
        &mut self,
        d: &Deployment,
        now: Timestamp,
    ) -> Result<Deployment, ServiceError> {
        let changes = d
            .originals
            .iter()
            .map(|(app_id, original)| {
                let restored = original.clone().map(|mut app| {
                    app.version = now;
                    app.version_info.last_scaling_at = Some(now);
                    app
                });
                (app_id.clone(), restored)
            })
            .collect();
        self.deploy(changes, true, now)
    }

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
            return self.kill_and_scale(&found, force, now);
        }
        for i in &found {
            if wipe {
                self.change(Some(&i.id), Operation::Decommission, now);
                self.unsettle(&i.app_id, now, true);
            } else {
                self.change(Some(&i.id), Operation::KillTask, now);
            }
        }
        Ok(KillOutcome::Killed(
            found.iter().map(|i| (**i).clone()).collect(),
        ))
    }

    fn kill_and_scale(
        &mut self,
        found: &[Arc<Instance>],
        force: bool,
        now: Timestamp,
    ) -> Result<KillOutcome, ServiceError> {
        let mut per_app: BTreeMap<String, i64> = BTreeMap::new();
        for i in found.iter().filter(|i| i.goal == Goal::Running) {
            *per_app.entry(i.app_id.clone()).or_default() += 1;
        }
        // Every lock is checked before anything changes, so a refusal writes nothing.
        let locked: Vec<String> = per_app
            .keys()
            .flat_map(|app_id| self.state.deployments_of(app_id).map(|d| d.id.clone()))
            .collect();
        if !locked.is_empty() && !force {
            return Err(ServiceError::Locked(locked));
        }
        let mut changes = Vec::new();
        for (app_id, n) in &per_app {
            let Some(app) = self.state.apps.get(app_id).cloned() else {
                continue;
            };
            let mut scaled = (*app).clone();
            scaled.instances = (scaled.instances - n).max(0);
            changes.push((
                app_id.clone(),
                Some(versioned(scaled, Some(&app), Versioning::Edit, now)),
            ));
        }
        for i in found.iter().filter(|i| per_app.contains_key(&i.app_id)) {
            self.change(Some(&i.id), Operation::Decommission, now);
        }
        self.deploy(changes, force, now).map(KillOutcome::Scaled)
    }

    /// `DELETE /v2/queue/{id}/delay`: launches of the app wait no longer. `false` when the app
    /// has nothing waiting to launch.
    pub fn reset_delay(&mut self, app_id: &str, now: Timestamp) -> bool {
        if self.waiting.get(app_id) == 0 {
            return false;
        }
        self.state.backoffs.retain(|(id, _), _| id != app_id);
        self.unsettle(app_id, now, false);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_rooted_at_their_common_group() {
        assert_eq!(common_group(&["/prod/web"]), "/prod");
        assert_eq!(common_group(&["/prod/a/web", "/prod/b/db"]), "/prod");
        assert_eq!(common_group(&["/a", "/b/c"]), "/");
        assert_eq!(common_group(&["/jam/big", "/jam"]), "/jam");
        assert_eq!(common_group(&[]), "/");
    }
}
