//! Deployments: the record of one change to apps, its steps, how far each app may move while
//! it runs ([`gate`]), and when a step is done.
//!
//! A deployment does not move instances itself: every app always converges as far as its gate
//! allows (see [`super::converge`]); the deployment observes that and moves to its next step
//! once every action of the current one is done.

use super::converge::{classify, Gate, Judgement};
use super::instance::Instance;
use super::upgrade::restart_done;
use app::model::{
    ActionKind, AppDefinition, DeploymentAction, DeploymentStep, GroupDefinition, MarathonEvent,
    Plan, Timestamp,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    pub version: Timestamp,
    pub steps: Vec<DeploymentStep>,
    /// Index of the step in progress; equal to `steps.len()` when all are done.
    pub current_step: usize,
    /// Each affected app as it was before (`None`: it did not exist), for rolling back.
    pub originals: Vec<(String, Option<AppDefinition>)>,
    /// Each group it changed as it was before, likewise.
    #[serde(default)]
    pub group_originals: Vec<(String, Option<GroupDefinition>)>,
    /// Past this moment the deployment fails (`upgradeStrategy.deploymentTimeoutSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
    /// Roll back by itself when it fails (`upgradeStrategy.autoRollback`).
    #[serde(default)]
    pub auto_rollback: bool,
}

impl Deployment {
    pub fn affected_apps(&self) -> Vec<String> {
        let mut apps: Vec<String> = self
            .steps
            .iter()
            .flat_map(|s| s.actions.iter().map(|a| a.app.clone()))
            .collect();
        apps.sort();
        apps.dedup();
        apps
    }

    pub fn touches(&self, app_id: &str) -> bool {
        self.steps
            .iter()
            .any(|s| s.actions.iter().any(|a| a.app == app_id))
    }

    pub fn plan(&self) -> Plan {
        Plan {
            id: self.id.clone(),
            steps: self.steps.clone(),
            version: self.version,
        }
    }

    pub fn is_finished(&self) -> bool {
        self.current_step >= self.steps.len()
    }

    pub fn current(&self) -> Option<&DeploymentStep> {
        self.steps.get(self.current_step)
    }

    /// How far `app_id` may move: the kind of its first action not yet done, if that is in the
    /// current step; [`Gate::Waiting`] if it comes later; `None` once all are done.
    pub fn gate(&self, app_id: &str) -> Option<Gate> {
        let (index, action) = self
            .steps
            .iter()
            .enumerate()
            .skip(self.current_step)
            .find_map(|(n, s)| s.actions.iter().find(|a| a.app == app_id).map(|a| (n, a)))?;
        if index > self.current_step {
            return Some(Gate::Waiting);
        }
        Some(match action.action {
            ActionKind::StartApplication => Gate::Waiting,
            ActionKind::ScaleApplication => Gate::Scale,
            ActionKind::RestartApplication => Gate::Restart,
            ActionKind::StopApplication => Gate::Stop,
        })
    }
}

/// Whether one action has reached its goal, given the app as it now is and its instances.
pub fn action_done(
    action: &DeploymentAction,
    app: Option<&AppDefinition>,
    instances: &[&Instance],
    judge: &dyn Fn(&Instance) -> Judgement,
) -> bool {
    if action.action == ActionKind::StartApplication {
        return true;
    }
    if action.action == ActionKind::StopApplication {
        return instances.is_empty();
    }
    let Some(app) = app else {
        // The app was deleted meanwhile: nothing is left to wait for.
        return true;
    };
    let b = classify(Some(app), instances);
    match action.action {
        ActionKind::RestartApplication => restart_done(app, &b, judge),
        // A scale keeps instances of an older configuration (left by a cancelled upgrade):
        // they count as long as they are healthy.
        _ => {
            b.stopping.is_empty()
                && b.current.len() + b.outdated.len() == app.instances.max(0) as usize
                && b.current
                    .iter()
                    .chain(&b.outdated)
                    .all(|i| judge(i).healthy_and_ready())
        }
    }
}

/// What a lookup tells [`advance`] about one app: its definition and instances, and how each
/// instance is doing.
pub struct AppState<'a> {
    pub app: Option<&'a AppDefinition>,
    pub instances: Vec<&'a Instance>,
    pub judge: Box<dyn Fn(&Instance) -> Judgement + 'a>,
}

/// Moves a deployment past every step that is done, with Marathon's events for each.
pub fn advance<'a>(
    deployment: &Deployment,
    lookup: impl Fn(&str) -> AppState<'a>,
    now: Timestamp,
) -> (Deployment, Vec<MarathonEvent>) {
    let mut next = deployment.clone();
    let mut events = Vec::new();
    while let Some(step) = next.steps.get(next.current_step) {
        let done = step.actions.iter().all(|a| {
            let state = lookup(&a.app);
            action_done(a, state.app, &state.instances, &state.judge)
        });
        if !done {
            break;
        }
        events.extend(
            step.actions
                .iter()
                .filter(|a| a.action == ActionKind::StopApplication)
                .map(|a| MarathonEvent::AppTerminatedEvent {
                    app_id: a.app.clone(),
                    timestamp: now,
                }),
        );
        events.push(MarathonEvent::DeploymentStepSuccess {
            plan: next.plan(),
            current_step: step.clone(),
            timestamp: now,
        });
        next.current_step += 1;
        if let Some(following) = next.steps.get(next.current_step) {
            events.push(MarathonEvent::DeploymentInfo {
                plan: next.plan(),
                current_step: following.clone(),
                timestamp: now,
            });
        }
    }
    if next.is_finished() && !deployment.is_finished() || next.steps.is_empty() {
        events.push(MarathonEvent::DeploymentSuccess {
            id: next.id.clone(),
            plan: next.plan(),
            timestamp: now,
        });
    }
    (next, events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::health::Health;
    use crate::scheduler::instance::Condition;
    use crate::scheduler::plan::{steps, Change};
    use crate::scheduler::testing::{app_with, instance};

    fn deployment(steps: Vec<DeploymentStep>) -> Deployment {
        Deployment {
            id: "d1".into(),
            version: Timestamp::from_millis(0),
            steps,
            current_step: 0,
            originals: vec![],
            group_originals: vec![],
            deadline: None,
            auto_rollback: false,
        }
    }

    fn running_judge(i: &Instance) -> Judgement {
        Judgement {
            health: if i.condition == Condition::Running {
                Health::Healthy
            } else {
                Health::Unknown
            },
            ready: true,
        }
    }

    fn state<'a>(app: Option<&'a AppDefinition>, instances: Vec<&'a Instance>) -> AppState<'a> {
        AppState {
            app,
            instances,
            judge: Box::new(running_judge),
        }
    }

    fn create(app: &AppDefinition) -> Vec<DeploymentStep> {
        steps(&[Change::new(&app.id, None, Some(app))], &|_| 1)
    }

    #[test]
    fn completes_when_the_target_runs() {
        let app = app_with(2, 10);
        let d = deployment(create(&app));
        assert_eq!(
            d.gate("/test"),
            Some(Gate::Waiting),
            "the no-op start step first"
        );
        let one = instance(&app, "a", Condition::Running, 1);
        let two_staging = instance(&app, "b", Condition::Staging, 1);
        let (d1, events) = advance(
            &d,
            |_| state(Some(&app), vec![&one, &two_staging]),
            Timestamp::from_millis(5),
        );
        assert_eq!(d1.current_step, 1, "the no-op start step passes at once");
        assert_eq!(d1.gate("/test"), Some(Gate::Scale));
        assert_eq!(events.len(), 2);
        let two = instance(&app, "b", Condition::Running, 1);
        let (d2, events) = advance(
            &d1,
            |_| state(Some(&app), vec![&one, &two]),
            Timestamp::from_millis(6),
        );
        assert!(d2.is_finished());
        assert_eq!(d2.gate("/test"), None);
        assert!(matches!(
            events.last(),
            Some(MarathonEvent::DeploymentSuccess { .. })
        ));
    }

    #[test]
    fn stop_waits_until_no_instance_is_left() {
        let app = app_with(1, 10);
        let d = deployment(steps(&[Change::new("/test", Some(&app), None)], &|_| 1));
        assert_eq!(d.gate("/test"), Some(Gate::Stop));
        let killing = instance(&app, "a", Condition::Killing, 1);
        let (d1, _) = advance(
            &d,
            |_| state(None, vec![&killing]),
            Timestamp::from_millis(5),
        );
        assert!(!d1.is_finished());
        let (d2, events) = advance(&d1, |_| state(None, vec![]), Timestamp::from_millis(6));
        assert!(d2.is_finished());
        assert!(matches!(
            events[0],
            MarathonEvent::AppTerminatedEvent { .. }
        ));
    }
}
