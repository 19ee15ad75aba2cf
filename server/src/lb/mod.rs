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
use app::model::{AppDefinition, Protocol, Rotation, ServicePortView};
use proxy::{Balancer, Reach};
use routes::{route_table, ServiceApp, TaskEndpoint, TaskPhase};
use std::collections::BTreeMap;
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

/// The shortest time between two route tables in the leader.
const REBUILD_AT_MOST_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// How long the leader holds back the kill of a task the balancer routes to: long enough for
/// the balancer to have put it in draining. A task killed at once stops listening while new
/// connections may still be handed to it, and those the kernel had queued for it are reset.
pub const DRAIN_BEFORE_KILL: std::time::Duration = std::time::Duration::from_millis(250);

/// Where the apps can be reached besides their tasks' host ports, for the dashboard.
#[derive(Clone, Debug)]
pub struct Discovery {
    /// Where the built-in load balancer listens, if it runs.
    pub balancer: Option<IpAddr>,
    pub vip_range: VipRange,
    /// The framework whose Mesos-DNS names the DNS server answers, if it runs.
    pub dns_framework: Option<String>,
}

/// An app's service ports, VIPs and DNS name, and each task's place in the rotation.
pub struct Reachable {
    pub service_ports: Vec<ServicePortView>,
    pub rotations: BTreeMap<String, Rotation>,
    pub dns_name: Option<String>,
}

/// How `app` is reached, as `discovery` says.
pub fn reachable(snapshot: &Snapshot, app: &AppDefinition, discovery: &Discovery) -> Reachable {
    let service = service_app(snapshot, app);
    let services = service.as_slice();
    let table = route_table(services, discovery.vip_range);
    let vips = routes::vips(services, discovery.vip_range);
    // Every port of an app has the same tasks in the same places: the first route says it.
    let rotations = match (discovery.balancer, table.into_values().next()) {
        (Some(_), Some(route)) => route
            .backends
            .into_iter()
            .map(|b| (b.task_id, b.rotation))
            .collect(),
        _ => BTreeMap::new(),
    };
    let service_ports = app
        .service_ports()
        .into_iter()
        .map(|p| {
            let protocol = p
                .protocols
                .iter()
                .map(|protocol| match protocol {
                    Protocol::Tcp => "tcp",
                    Protocol::Udp => "udp",
                })
                .collect::<Vec<_>>()
                .join(",");
            let port_vips = vips::vips_of(&p.labels);
            ServicePortView {
                port: p.port,
                protocol,
                name: p.name,
                address: discovery
                    .balancer
                    .map(|ip| std::net::SocketAddr::new(ip, p.port as u16).to_string()),
                vips: vips
                    .iter()
                    .filter(|vip| discovery.balancer.is_some() && port_vips.contains(&vip.label))
                    .map(|vip| vip.address.to_string())
                    .collect(),
            }
        })
        .collect();
    Reachable {
        service_ports,
        rotations,
        dns_name: discovery.dns_framework.as_ref().map(|framework| {
            format!(
                "{}.{framework}.mesos",
                crate::dns::names::app_label(&app.id)
            )
        }),
    }
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
        // The table walks every task: a burst of commits is taken as one change.
        tokio::time::sleep(REBUILD_AT_MOST_EVERY).await;
        if snapshots.changed().await.is_err() {
            return;
        }
    }
}
