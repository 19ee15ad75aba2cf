//! The built-in L4 load balancer: Stride listens on every app's service ports and forwards
//! connections to the app's tasks that run, pass their health checks and are ready.
//!
//! - [`routes`]: the pure part: which tasks are behind which service port, and each one's
//!   place in the rotation (in, draining, out because unhealthy or not ready).
//! - [`proxy`]: the sockets: listeners per port, least-connections forwarding, a failed
//!   backend skipped for the next, route changes applied without touching open connections.
//! - `udp`: UDP service ports, relayed per client session.
//! - [`vips`]: `VIP_<n>` labels, and the addresses named VIPs get from `--vip-range`.
//!
//! In the leader the table follows the scheduler's own state ([`follow_scheduler`]): every
//! commit that changes a task's health or state changes the table at once. `stride lb` follows
//! a leader's REST API and event stream instead ([`follow`]).

pub mod follow;
pub mod proxy;
pub mod routes;
mod udp;
pub mod vips;

use crate::core::Snapshot;
use crate::scheduler::health::{health_of, Health};
use crate::scheduler::instance::{Condition, Goal};
use app::model::AppDefinition;
use proxy::{Balancer, Reach};
use routes::{route_table, ServiceApp, TaskEndpoint, TaskPhase};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::watch;
use vips::VipRange;

/// The apps with service ports, and their tasks, as the scheduler holds them.
pub fn service_apps(snapshot: &Snapshot) -> Vec<ServiceApp> {
    snapshot
        .apps
        .values()
        .filter_map(|app| service_app(snapshot, app))
        .collect()
}

/// `app` with its service ports and tasks, if it has service ports.
pub fn service_app(snapshot: &Snapshot, app: &AppDefinition) -> Option<ServiceApp> {
    let service_ports = app.service_ports();
    if service_ports.is_empty() {
        return None;
    }
    let tasks = snapshot
        .instances_of(&app.id)
        .filter_map(|instance| {
            let placement = instance.placement.as_ref()?;
            let phase = match (instance.condition, instance.goal) {
                (Condition::Running, Goal::Running) => TaskPhase::Running,
                (Condition::Running | Condition::Killing, _) => TaskPhase::Killing,
                (Condition::Provisioned | Condition::Staging | Condition::Starting, _) => {
                    TaskPhase::Starting
                }
                _ => TaskPhase::Gone,
            };
            let definition = snapshot.definition_of(instance).map_or(app, |d| d.as_ref());
            let probed = snapshot.health.get(&instance.id).map(|h| h.as_ref());
            let healthy = match health_of(definition, instance, probed) {
                Health::Healthy => Some(true),
                Health::Unhealthy => Some(false),
                Health::Unknown => None,
            };
            let task_id = instance.task_id();
            let ready = snapshot.readiness.get(&task_id).is_none_or(|r| r.ready);
            Some(TaskEndpoint {
                task_id,
                host: placement.hostname.clone(),
                ports: placement.ports.clone(),
                phase,
                healthy,
                ready,
            })
        })
        .collect();
    Some(ServiceApp {
        id: app.id.clone(),
        has_health_checks: app.has_health_checks(),
        service_ports,
        tasks,
    })
}

/// Balances on `address` (and the VIPs' addresses) for as long as the scheduler publishes
/// snapshots (its leadership).
pub async fn follow_scheduler(
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    address: IpAddr,
    reach: Reach,
    vip_range: VipRange,
) {
    let mut balancer = Balancer::new(address, reach);
    loop {
        let table = route_table(&service_apps(&snapshots.borrow_and_update()), vip_range);
        balancer.apply(&table).await;
        if snapshots.changed().await.is_err() {
            return;
        }
    }
}
