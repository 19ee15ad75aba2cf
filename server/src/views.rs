//! Read models: the API's and dashboard's views of a snapshot.

use crate::core::{waiting_reasons, Snapshot};
use crate::scheduler::backoff;
use crate::scheduler::instance::{Condition, Instance};
use app::model::{
    AppDefinition, AppDetail, AppInfo, AppStatus, AppSummary, Identified, Task, Timestamp,
};

/// An instance as Marathon's task JSON. Instances waiting for their first launch have no task.
pub fn task_of(instance: &Instance, app: Option<&AppDefinition>) -> Option<Task> {
    let placement = instance.placement.as_ref()?;
    let active = instance.condition.is_active();
    Some(Task {
        id: instance.task_id(),
        app_id: instance.app_id.clone(),
        host: placement.hostname.clone(),
        slave_id: Some(placement.agent_id.clone()),
        state: instance.condition.mesos_state().to_string(),
        staged_at: instance.staged_at.filter(|_| active),
        started_at: instance.started_at.filter(|_| active),
        version: Some(instance.app_version).filter(|_| active),
        ports: if active {
            placement.ports.clone()
        } else {
            vec![]
        },
        service_ports: app
            .map(|a| {
                a.port_definitions
                    .iter()
                    .filter(|p| p.port > 0)
                    .map(|p| p.port as u32)
                    .collect()
            })
            .unwrap_or_default(),
        ip_addresses: vec![],
        health_check_results: vec![],
        role: app.map_or_else(|| "*".to_string(), |a| a.role.clone()),
        message: instance.message.clone(),
    })
}

pub fn tasks_of(snapshot: &Snapshot, app_id: &str) -> Vec<Task> {
    let app = snapshot.apps.get(app_id).map(|a| a.as_ref());
    snapshot
        .instances_of(app_id)
        .filter_map(|i| task_of(i, app))
        .collect()
}

struct Counts {
    staged: u32,
    running: u32,
}

fn counts(snapshot: &Snapshot, app_id: &str) -> Counts {
    let mut c = Counts {
        staged: 0,
        running: 0,
    };
    for i in snapshot.instances_of(app_id) {
        match i.condition {
            Condition::Running => c.running += 1,
            Condition::Provisioned | Condition::Staging | Condition::Starting => c.staged += 1,
            _ => {}
        }
    }
    c
}

/// An app with counts and deployments; `with_tasks` adds its tasks and last failure.
pub fn app_info(snapshot: &Snapshot, app: &AppDefinition, with_tasks: bool) -> AppInfo {
    let c = counts(snapshot, &app.id);
    AppInfo {
        app: app.clone(),
        tasks_staged: c.staged,
        tasks_running: c.running,
        // Health checks come later: without checks Marathon reports neither healthy nor unhealthy.
        tasks_healthy: 0,
        tasks_unhealthy: 0,
        deployments: snapshot
            .deployments_of(&app.id)
            .map(|d| Identified { id: d.id.clone() })
            .collect(),
        tasks: with_tasks.then(|| tasks_of(snapshot, &app.id)),
        last_task_failure: if with_tasks {
            snapshot.last_failures.get(&app.id).cloned()
        } else {
            None
        },
    }
}

pub fn app_status(snapshot: &Snapshot, app: &AppDefinition, now: Timestamp) -> AppStatus {
    let waiting = snapshot.instances_of(&app.id).any(|i| i.wants_launch());
    let delayed = backoff::blocks_launch(
        snapshot
            .backoffs
            .get(&(app.id.clone(), app.config_version()))
            .copied(),
        now,
    );
    if waiting && delayed {
        AppStatus::Delayed
    } else if waiting && snapshot.vetoes.contains_key(&app.id) {
        AppStatus::Waiting
    } else if snapshot.deployments_of(&app.id).next().is_some() {
        AppStatus::Deploying
    } else if app.instances == 0 {
        AppStatus::Suspended
    } else {
        AppStatus::Running
    }
}

pub fn app_summary(snapshot: &Snapshot, app: &AppDefinition, now: Timestamp) -> AppSummary {
    let c = counts(snapshot, &app.id);
    AppSummary {
        id: app.id.clone(),
        status: app_status(snapshot, app, now),
        instances: app.instances,
        running: c.running,
        staged: c.staged,
        cpus: app.cpus,
        mem: app.mem,
        version: app.version,
        waiting_reasons: waiting_reasons(snapshot, app, now),
    }
}

pub fn app_detail(snapshot: &Snapshot, app_id: &str, now: Timestamp) -> Option<AppDetail> {
    let app = snapshot.apps.get(app_id)?;
    Some(AppDetail {
        summary: app_summary(snapshot, app, now),
        app: (**app).clone(),
        tasks: tasks_of(snapshot, app_id),
        last_task_failure: snapshot.last_failures.get(app_id).cloned(),
        deployments: snapshot.deployments_of(app_id).map(|d| d.info()).collect(),
    })
}
