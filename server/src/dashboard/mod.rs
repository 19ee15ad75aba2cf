//! The dashboard's [`Backend`]: the server functions' view of the [`Service`].
//!
//! - `agents`: the Agents page's rows.

mod agents;

use crate::metrics;
use crate::scheduler::instance::Condition;
use crate::service::{now, Service};
use crate::views;
use app::api::{Backend, BoxFuture, Outcome};
use app::model::{
    AgentsView, AppDetail, AppSummary, AppUpdate, ClusterSummary, DeploymentView, EventRecord,
    MetricsView, NewApp, ServiceError, TaskLog,
};

/// How much of a task's output the logs view shows.
const LOG_TAIL_BYTES: u64 = 64 * 1024;

impl Backend for Service {
    fn cluster(&self) -> ClusterSummary {
        let snapshot = self.snapshot();
        let now = now();
        let mut summary = ClusterSummary {
            apps_total: snapshot.apps.len() as u32,
            master: self.settings.master.clone(),
            connected: snapshot.connected,
            leader: self.settings.ha.then(|| self.settings.address.clone()),
            ..Default::default()
        };
        for app in snapshot.apps.values() {
            if views::app_status(&snapshot, app, now) == app::model::AppStatus::Running
                && app.instances > 0
            {
                summary.apps_running += 1;
            }
        }
        for i in snapshot
            .instances
            .values()
            .filter(|i| i.condition.is_active())
        {
            if i.condition == Condition::Running {
                summary.tasks_running += 1;
            }
            if let Some(app) = snapshot.apps.get(&i.app_id) {
                summary.cpus_used += app.cpus;
                summary.mem_used += app.mem;
            }
        }
        let offered_cpus: f64 = snapshot.agents.values().map(|a| a.offered_cpus).sum();
        let offered_mem: f64 = snapshot.agents.values().map(|a| a.offered_mem).sum();
        summary.cpus_total = (summary.cpus_used + offered_cpus).max(summary.cpus_used);
        summary.mem_total = (summary.mem_used + offered_mem).max(summary.mem_used);
        summary
    }

    fn app_summaries(&self) -> Vec<AppSummary> {
        let snapshot = self.snapshot();
        let now = now();
        snapshot
            .apps
            .values()
            .map(|a| views::app_summary(&snapshot, a, now))
            .collect()
    }

    fn app_detail(&self, id: &str) -> Option<AppDetail> {
        views::app_detail(
            &self.snapshot(),
            &app::model::path::absolute(id, "/"),
            &crate::lb::Discovery {
                balancer: self.settings.lb_address,
                vip_range: self.settings.vip_range,
                dns_framework: self
                    .settings
                    .dns_address
                    .map(|_| self.settings.framework_name.clone()),
            },
            now(),
        )
    }

    fn recent_events(&self, limit: usize) -> Vec<EventRecord> {
        self.events
            .recent(limit)
            .iter()
            .map(|e| EventRecord {
                seq: e.seq,
                event_type: e.event.event_type().to_string(),
                timestamp: serde_json::to_value(&e.event)
                    .ok()
                    .and_then(|v| {
                        v.get("timestamp")
                            .and_then(|t| t.as_str())
                            .map(str::to_string)
                    })
                    .unwrap_or_default(),
                app_id: e.event.app_id().map(str::to_string),
                json: e.json.clone(),
            })
            .collect()
    }

    fn metrics(&self) -> MetricsView {
        MetricsView {
            interval_secs: metrics::history::SAMPLE_INTERVAL.as_secs() as u32,
            samples: metrics::history::samples(),
            subscribers: self.callbacks.as_ref().map(|c| c.status()),
            event_streams: crate::api::events::open_streams(),
            ring_size: self.events.capacity() as u64,
            newest_event: self.events.newest(),
        }
    }

    fn create_app(&self, form: NewApp) -> BoxFuture<Outcome> {
        let service = self.clone();
        Box::pin(async move {
            let (container, networks) = form.container().unzip();
            // In a container the command may be left to the image.
            let cmd =
                Some(form.cmd.clone()).filter(|cmd| container.is_none() || !cmd.trim().is_empty());
            let update = AppUpdate {
                id: Some(form.id.clone()),
                cmd,
                cpus: Some(form.cpus),
                mem: Some(form.mem),
                instances: Some(form.instances),
                container,
                networks: networks.flatten(),
                ..Default::default()
            };
            service
                .create(form.id, update, false, None)
                .await
                .map(|d| d.deployment.id)
        })
    }

    fn scale_app(&self, id: String, instances: i64) -> BoxFuture<Outcome> {
        let service = self.clone();
        Box::pin(async move {
            if !service
                .snapshot()
                .apps
                .contains_key(&app::model::path::absolute(&id, "/"))
            {
                return Err(ServiceError::app_not_found(&id));
            }
            // The dashboard's scale is the operator's latest word: it supersedes a deployment in
            // progress, as Marathon's UI does with force.
            service
                .scale(&id, instances, true)
                .await
                .map(|d| d.deployment.id)
        })
    }

    fn restart_app(&self, id: String) -> BoxFuture<Outcome> {
        let service = self.clone();
        Box::pin(async move { service.restart(&id, true).await.map(|d| d.deployment.id) })
    }

    fn destroy_app(&self, id: String) -> BoxFuture<Outcome> {
        let service = self.clone();
        Box::pin(async move { service.delete_app(&id, true).await.map(|d| d.id) })
    }

    fn kill_task(&self, task_id: String) -> BoxFuture<Outcome> {
        let service = self.clone();
        Box::pin(async move {
            service
                .kill_tasks(vec![task_id.clone()], false, false, false)
                .await
                .and_then(|outcome| match outcome {
                    crate::core::KillOutcome::Killed(found) if !found.is_empty() => Ok(task_id),
                    _ => Err(ServiceError::NotFound(format!(
                        "Task '{task_id}' does not exist"
                    ))),
                })
        })
    }

    fn deployments(&self) -> Vec<DeploymentView> {
        let snapshot = self.snapshot();
        snapshot
            .deployments
            .values()
            .map(|d| views::deployment_view(&snapshot, d))
            .collect()
    }

    fn stop_deployment(&self, id: String, force: bool) -> BoxFuture<Outcome> {
        let service = self.clone();
        Box::pin(async move {
            service
                .delete_deployment(&id, force)
                .await
                .map(|rollback| rollback.map_or(id, |d| d.id))
        })
    }

    fn reset_delay(&self, app_id: String) -> BoxFuture<Outcome> {
        let service = self.clone();
        Box::pin(async move { service.reset_delay(&app_id).await.map(|()| app_id) })
    }

    fn agents(&self) -> BoxFuture<AgentsView> {
        let snapshot = self.snapshot();
        let local = self.local.clone();
        Box::pin(async move {
            let Some(master) = local else {
                return AgentsView {
                    agents: agents::from_offers(&snapshot),
                    built_in: false,
                };
            };
            let agents = match master.agents().await {
                Ok(statuses) => agents::from_master(&snapshot, statuses),
                Err(error) => {
                    tracing::warn!(%error, "the built-in master did not list its agents");
                    Vec::new()
                }
            };
            AgentsView {
                agents,
                built_in: true,
            }
        })
    }

    fn set_agent_reachable(&self, hostname: String, reachable: bool) -> BoxFuture<Outcome> {
        let local = self.local.clone();
        Box::pin(async move {
            let Some(master) = local else {
                return Err(ServiceError::BadRequest {
                    message: "Agents can be cut off only when Stride runs the built-in master"
                        .into(),
                    details: None,
                });
            };
            match master.set_reachable(&hostname, reachable).await {
                Ok(()) if reachable => Ok(format!("{hostname} is reachable again")),
                Ok(()) => Ok(format!("{hostname} is cut off")),
                Err(error) if error.status == 404 => Err(ServiceError::NotFound(error.message)),
                Err(error) => Err(ServiceError::Unavailable(error.message)),
            }
        })
    }

    fn task_log(
        &self,
        task_id: String,
        stream: String,
    ) -> BoxFuture<Result<TaskLog, ServiceError>> {
        let service = self.clone();
        Box::pin(async move { service.task_log(&task_id, &stream, LOG_TAIL_BYTES).await })
    }
}
