//! Deployments: the record of one change to apps, its steps, and when they are done.
//!
//! Convergence itself does not wait for steps (each app always moves toward its definition); a
//! deployment observes that movement and completes when every app it touches has arrived.

use super::converge::classify;
use super::instance::{Condition, Instance};
use app::model::{
    AppDefinition, DeploymentAction, DeploymentInfo, DeploymentStep, MarathonEvent, Plan, Timestamp,
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
}

/// The kind of change to one app, which decides its deployment action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Create,
    Scale,
    Restart,
    Delete,
    Nothing,
}

/// What changed between `before` and `after`, Marathon's rule (§3.1 of the semantics reference):
/// a change of `instances` alone, or to zero instances, scales; anything else restarts.
pub fn change_of(before: Option<&AppDefinition>, after: Option<&AppDefinition>) -> Change {
    match (before, after) {
        (None, Some(_)) => Change::Create,
        (Some(_), None) => Change::Delete,
        (None, None) => Change::Nothing,
        (Some(b), Some(a)) if b == a => Change::Nothing,
        (Some(b), Some(a))
            if !b.is_config_change(a)
                && b.version_info.last_config_change_at == a.version_info.last_config_change_at =>
        {
            Change::Scale
        }
        (Some(_), Some(a)) if a.instances == 0 => Change::Scale,
        _ => Change::Restart,
    }
}

fn action(name: &str, app_id: &str) -> DeploymentAction {
    DeploymentAction {
        action: name.to_string(),
        app: app_id.to_string(),
    }
}

pub fn steps_for(app_id: &str, change: Change) -> Vec<DeploymentStep> {
    let step = |name: &str| DeploymentStep {
        actions: vec![action(name, app_id)],
    };
    match change {
        // Marathon's StartApplication is a no-op placeholder kept for API compatibility.
        Change::Create => vec![step("StartApplication"), step("ScaleApplication")],
        Change::Scale => vec![step("ScaleApplication")],
        Change::Restart => vec![step("RestartApplication")],
        Change::Delete => vec![step("StopApplication")],
        Change::Nothing => vec![],
    }
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

    pub fn info(&self) -> DeploymentInfo {
        DeploymentInfo {
            id: self.id.clone(),
            version: self.version,
            affected_apps: self.affected_apps(),
            affected_pods: vec![],
            steps: self.steps.clone(),
            current_actions: self
                .steps
                .get(self.current_step)
                .map(|s| s.actions.clone())
                .unwrap_or_default(),
            current_step: (self.current_step + 1).min(self.steps.len()) as u32,
            total_steps: self.steps.len() as u32,
        }
    }
}

/// Whether one action has reached its goal given the app as it now is and its instances.
pub fn action_done(
    action: &DeploymentAction,
    app: Option<&AppDefinition>,
    instances: &[&Instance],
) -> bool {
    match action.action.as_str() {
        "StartApplication" => true,
        "StopApplication" => instances.is_empty(),
        _ => {
            let Some(app) = app else {
                // The app was deleted meanwhile: nothing is left to wait for.
                return true;
            };
            let b = classify(Some(app), instances);
            b.outdated.is_empty()
                && b.stopping.is_empty()
                && b.current.len() == app.instances.max(0) as usize
                && b.current.iter().all(|i| i.condition == Condition::Running)
        }
    }
}

/// Moves a deployment past every step that is done, with Marathon's events for each. `lookup`
/// gives an app and its instances by id.
pub fn advance<'a>(
    deployment: &Deployment,
    lookup: impl Fn(&str) -> (Option<&'a AppDefinition>, Vec<&'a Instance>),
    now: Timestamp,
) -> (Deployment, Vec<MarathonEvent>) {
    let mut next = deployment.clone();
    let mut events = Vec::new();
    while let Some(step) = next.steps.get(next.current_step) {
        let done = step.actions.iter().all(|a| {
            let (app, instances) = lookup(&a.app);
            action_done(a, app, &instances)
        });
        if !done {
            break;
        }
        events.extend(
            step.actions
                .iter()
                .filter(|a| a.action == "StopApplication")
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
    use crate::scheduler::testing::{app_with, instance};

    fn deployment(app_id: &str, change: Change) -> Deployment {
        Deployment {
            id: "d1".into(),
            version: Timestamp::from_millis(0),
            steps: steps_for(app_id, change),
            current_step: 0,
            originals: vec![],
        }
    }

    #[test]
    fn classifies_changes_like_marathon() {
        let a = app_with(1, 10);
        let mut scaled = a.clone();
        scaled.instances = 3;
        assert_eq!(change_of(None, Some(&a)), Change::Create);
        assert_eq!(change_of(Some(&a), Some(&scaled)), Change::Scale);
        assert_eq!(change_of(Some(&a), Some(&app_with(1, 20))), Change::Restart);
        assert_eq!(change_of(Some(&a), Some(&app_with(0, 20))), Change::Scale);
        assert_eq!(change_of(Some(&a), None), Change::Delete);
        assert_eq!(change_of(Some(&a), Some(&a)), Change::Nothing);
    }

    #[test]
    fn completes_when_the_target_runs() {
        let app = app_with(2, 10);
        let d = deployment("/test", Change::Create);
        let one = instance(&app, "a", Condition::Running, 1);
        let two_staging = instance(&app, "b", Condition::Staging, 1);
        let (d1, events) = advance(
            &d,
            |_| (Some(&app), vec![&one, &two_staging]),
            Timestamp::from_millis(5),
        );
        assert_eq!(d1.current_step, 1, "the no-op start step passes at once");
        assert_eq!(events.len(), 2);
        let two = instance(&app, "b", Condition::Running, 1);
        let (d2, events) = advance(
            &d1,
            |_| (Some(&app), vec![&one, &two]),
            Timestamp::from_millis(6),
        );
        assert!(d2.is_finished());
        assert!(matches!(
            events.last(),
            Some(MarathonEvent::DeploymentSuccess { .. })
        ));
    }

    #[test]
    fn stop_waits_until_no_instance_is_left() {
        let app = app_with(1, 10);
        let d = deployment("/test", Change::Delete);
        let killing = instance(&app, "a", Condition::Killing, 1);
        let (d1, _) = advance(&d, |_| (None, vec![&killing]), Timestamp::from_millis(5));
        assert!(!d1.is_finished());
        let (d2, events) = advance(&d1, |_| (None, vec![]), Timestamp::from_millis(6));
        assert!(d2.is_finished());
        assert!(matches!(
            events[0],
            MarathonEvent::AppTerminatedEvent { .. }
        ));
    }
}
