//! Counting what goes through the scheduler: Mesos inputs, calls to the master, the events a
//! batch produced, probe results and store commits.

use super::{component, registry, Name, Unit};
use crate::core::{OfferOperation, Outgoing};
use crate::mesos::MesosInput;
use crate::scheduler::health::ProbeOutcome;
use crate::service::ProbeInput;
use app::model::MarathonEvent;
use std::time::Duration;

fn count(path: &str, n: u64) {
    registry().counter(Name::new(path)).add(n);
}

pub fn input(input: &MesosInput) {
    match input {
        MesosInput::Offers(offers) => count("mesos.offers.incoming", offers.len() as u64),
        MesosInput::Status { update, .. } => count(
            &format!("mesos.task-updates.{}", component(update.state.name())),
            1,
        ),
        MesosInput::Subscribed { .. } => count("mesos.subscriptions", 1),
        MesosInput::Disconnected => count("mesos.disconnections", 1),
        MesosInput::Rescind(_) => count("mesos.offers.rescinded", 1),
        MesosInput::Message { .. } => count("mesos.framework-messages", 1),
    }
}

pub fn call(call: &Outgoing) {
    match call {
        Outgoing::Accept { operations, .. } => {
            count("mesos.offers.used", 1);
            for operation in operations {
                let kind = match operation {
                    OfferOperation::Reserve(_) => "reserve",
                    OfferOperation::Create(_) => "create",
                    OfferOperation::Launch(tasks) => {
                        count("tasks.launched", tasks.len() as u64);
                        "launch"
                    }
                    OfferOperation::LaunchGroup(group) => {
                        count("tasks.launched", group.tasks.len() as u64);
                        "launch-group"
                    }
                    OfferOperation::Destroy(_) => "destroy",
                    OfferOperation::Unreserve(_) => "unreserve",
                };
                count(&format!("mesos.offer-operations.{kind}"), 1);
            }
        }
        Outgoing::Decline { vetoed, .. } => {
            count("mesos.offers.declined", 1);
            let reason = vetoed.map_or("nothing-to-launch".to_string(), |v| component(v.name()));
            count(&format!("mesos.offers.declined.{reason}"), 1);
        }
        Outgoing::Kill { .. } => count("mesos.calls.kill", 1),
        Outgoing::Acknowledge { .. } => count("mesos.calls.acknowledge", 1),
        Outgoing::Reconcile(_) => count("mesos.calls.reconcile", 1),
        Outgoing::Revive => count("mesos.calls.revive", 1),
        Outgoing::Suppress => count("mesos.calls.suppress", 1),
    }
}

pub fn events(events: &[MarathonEvent]) {
    for event in events {
        match event {
            MarathonEvent::GroupChangeSuccess { .. } => count("deployments", 1),
            MarathonEvent::DeploymentSuccess { .. } => count("deployments.succeeded", 1),
            MarathonEvent::DeploymentFailed { .. } => count("deployments.failed", 1),
            MarathonEvent::UnhealthyInstanceKillEvent { .. } => count("health-checks.kills", 1),
            _ => {}
        }
    }
}

pub fn probe(probe: &ProbeInput) {
    match probe {
        ProbeInput::Health(result) => match result.outcome {
            ProbeOutcome::Healthy => count("health-checks.results.healthy", 1),
            ProbeOutcome::Unhealthy(_) => count("health-checks.results.unhealthy", 1),
            ProbeOutcome::Ignored => count("health-checks.results.ignored", 1),
        },
        ProbeInput::Readiness(result) => count(
            if result.ready {
                "readiness-checks.results.ready"
            } else {
                "readiness-checks.results.not-ready"
            },
            1,
        ),
    }
}

pub fn commit(took: Duration, ok: bool) {
    registry()
        .timer(Name::in_unit("store.commit.duration", Unit::Seconds))
        .record(took);
    if !ok {
        count("store.commit.failures", 1);
    }
}
