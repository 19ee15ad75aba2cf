//! `stride lb --leader URL`: the balancer on a node of its own, holding no state: like
//! marathon-lb, it reads the apps and their tasks from the leader's REST API
//! (`GET /v2/apps?embed=apps.tasks`), again whenever the leader's event stream (`/v2/events`)
//! says a task or an app changed, and every few seconds anyway; when the leader goes away it
//! keeps the last routes and reconnects.

use super::proxy::{Balancer, Reach};
use super::routes::{route_table, ServiceApp, TaskEndpoint, TaskPhase};
use super::vips::VipRange;
use app::model::{AppInfo, TaskState};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use std::net::IpAddr;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often the apps are read even when no event said so.
const REFRESH: Duration = Duration::from_secs(5);
/// How long a lost event stream waits before it connects again.
const RECONNECT: Duration = Duration::from_secs(1);

/// The events after which the routes may be different.
const ROUTING_EVENTS: [&str; 8] = [
    "status_update_event",
    "health_status_changed_event",
    "instance_health_changed_event",
    "api_post_event",
    "app_terminated_event",
    "deployment_success",
    "deployment_info",
    "group_change_success",
];

/// What `stride lb` is told.
#[derive(Clone, Debug)]
pub struct Following {
    /// The leader's base URL (any Stride: standbys proxy to the leader).
    pub leader: String,
    /// Where to listen.
    pub address: IpAddr,
    pub reach: Reach,
    /// Where named VIPs get their addresses (the leader's `--vip-range`).
    pub vip_range: VipRange,
}

/// The apps with service ports, and their tasks, as the REST API shows them.
pub fn service_apps_of(apps: &[AppInfo]) -> Vec<ServiceApp> {
    apps.iter()
        .filter_map(|info| {
            let app = &info.app;
            let service_ports = app.service_ports();
            if service_ports.is_empty() {
                return None;
            }
            let probed = app
                .health_checks
                .iter()
                .filter(|check| check.protocol.is_probed_by_scheduler())
                .count();
            let tasks = info
                .tasks
                .iter()
                .flatten()
                .map(|task| {
                    let phase = match task.state {
                        TaskState::Running => TaskPhase::Running,
                        TaskState::Killing => TaskPhase::Killing,
                        TaskState::Staging | TaskState::Starting => TaskPhase::Starting,
                        _ => TaskPhase::Gone,
                    };
                    // The task JSON has results of the checks the scheduler runs only; with
                    // none of those (only checks Mesos runs) there is nothing to go by.
                    let results = &task.health_check_results;
                    let healthy = if probed == 0 {
                        Some(true)
                    } else {
                        (results.len() >= probed).then(|| results.iter().all(|r| r.alive))
                    };
                    TaskEndpoint {
                        task_id: task.id.clone(),
                        host: task.host.clone(),
                        ports: task.ports.clone(),
                        phase,
                        healthy,
                        ready: true,
                    }
                })
                .collect();
            Some(ServiceApp {
                id: app.id.clone(),
                has_health_checks: app.has_health_checks(),
                service_ports,
                tasks,
            })
        })
        .collect()
}

/// Balances as the leader's apps say, until the process is stopped.
pub async fn follow_leader(following: Following) {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client");
    let (changed, mut changes) = mpsc::channel::<()>(1);
    tokio::spawn(watch_events(
        http.clone(),
        following.leader.clone(),
        changed,
    ));
    let mut balancer = Balancer::new(following.address, following.reach);
    loop {
        match read_apps(&http, &following.leader).await {
            Ok(apps) => {
                let table = route_table(&service_apps_of(&apps), following.vip_range);
                balancer.apply(&table).await
            }
            Err(e) => tracing::warn!(
                "cannot read the apps from {}: {e}; keeping the routes as they are",
                following.leader
            ),
        }
        let _ = tokio::time::timeout(REFRESH, changes.recv()).await;
    }
}

async fn read_apps(http: &reqwest::Client, leader: &str) -> reqwest::Result<Vec<AppInfo>> {
    #[derive(serde::Deserialize)]
    struct Apps {
        apps: Vec<AppInfo>,
    }
    let apps: Apps = http
        .get(format!("{leader}/v2/apps?embed=apps.tasks"))
        .timeout(Duration::from_secs(10))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(apps.apps)
}

/// Signals `changed` whenever the leader's event stream carries an event that can change a
/// route; reconnects whenever the stream ends.
async fn watch_events(http: reqwest::Client, leader: String, changed: mpsc::Sender<()>) {
    let filter: String = ROUTING_EVENTS
        .iter()
        .map(|e| format!("event_type={e}"))
        .collect::<Vec<_>>()
        .join("&");
    let url = format!("{leader}/v2/events?{filter}");
    loop {
        match http
            .get(&url)
            .header("accept", "text/event-stream")
            .send()
            .await
        {
            Ok(response) => {
                let mut events = response.bytes_stream().eventsource();
                // Reconnected: something may have changed meanwhile.
                let _ = changed.try_send(());
                while let Some(event) = events.next().await {
                    match event {
                        Ok(_) => {
                            let _ = changed.try_send(());
                        }
                        Err(e) => {
                            tracing::debug!("the event stream of {leader} broke: {e}");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::debug!("cannot reach the event stream of {leader}: {e}"),
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The REST API's tasks become endpoints as the scheduler's own do: state to phase, the
    /// scheduler's check results to health (Mesos-run checks give nothing to go by).
    #[test]
    fn the_api_s_tasks_become_endpoints() {
        let app = |checks: serde_json::Value| -> AppInfo {
            let mut json = serde_json::to_value(crate::scheduler::testing::app_with(2, 0)).unwrap();
            json["healthChecks"] = checks;
            json["portDefinitions"] = serde_json::json!([{"port": 10000, "protocol": "tcp"}]);
            json["tasks"] = serde_json::json!([
                {"id": "web.a", "appId": "/test", "host": "n1", "state": "TASK_RUNNING",
                 "ports": [31000], "role": "*", "healthCheckResults": [{"alive": false,
                 "consecutiveFailures": 1, "firstSuccess": null, "lastFailure": null,
                 "lastSuccess": null, "lastFailureCause": null, "instanceId": "web.a"}]},
                {"id": "web.b", "appId": "/test", "host": "n2", "state": "TASK_KILLING",
                 "ports": [31001], "role": "*"}
            ]);
            serde_json::from_value(json).expect("an app as the API writes it")
        };
        let probed =
            service_apps_of(&[app(serde_json::json!([{"protocol": "HTTP", "path": "/"}]))]);
        let tasks = &probed[0].tasks;
        assert_eq!(tasks[0].phase, TaskPhase::Running);
        assert_eq!(tasks[0].healthy, Some(false));
        assert_eq!(tasks[1].phase, TaskPhase::Killing);
        assert_eq!(tasks[1].healthy, None, "no result yet");
        let by_mesos = service_apps_of(&[app(
            serde_json::json!([{"protocol": "COMMAND", "command": {"value": "true"}}]),
        )]);
        assert_eq!(by_mesos[0].tasks[1].healthy, Some(true));
    }
}
