//! Resident instances' reservations (SEMANTICS.md §14): what a first launch reserves, what an
//! ACCEPT says to reserve, create, destroy and unreserve, and which reservations in an offer
//! are Stride's to launch on or to give back.
//!
//! A reservation is labelled with the framework and instance it belongs to, so that it can be
//! told apart in offers after any restart: the instance's own (launch on it when the instance
//! wants to run), or left over (the instance is gone: destroy its volumes and unreserve).

use super::instance::{Goal, Instance, Reservation, ReservedVolume};
use super::placement::{Allocation, OfferView, OfferedReservation};
use app::model::{path, AppDefinition};

/// Reservation labels: whose it is.
pub const FRAMEWORK_LABEL: &str = "stride_framework_id";
pub const INSTANCE_LABEL: &str = "stride_instance_id";

/// Resources of one role labelled for one instance, with its volumes: what an ACCEPT's
/// RESERVE/CREATE/DESTROY/UNRESERVE and a launch on reserved resources name.
#[derive(Clone, Debug, PartialEq)]
pub struct ReservationSpec {
    pub role: String,
    pub labels: Vec<(String, String)>,
    pub cpus: f64,
    pub mem: f64,
    /// Disk beside the volumes'.
    pub disk: f64,
    pub ports: Vec<u32>,
    pub volumes: Vec<ReservedVolume>,
}

impl ReservationSpec {
    /// The root disk reserved: the task's own and the root volumes'.
    pub fn root_disk(&self) -> f64 {
        self.disk
            + self
                .volumes
                .iter()
                .filter(|v| v.source.is_none())
                .map(|v| v.size_mib)
                .sum::<f64>()
    }
}

fn labels(framework_id: &str, instance_id: &str) -> Vec<(String, String)> {
    vec![
        (FRAMEWORK_LABEL.to_string(), framework_id.to_string()),
        (INSTANCE_LABEL.to_string(), instance_id.to_string()),
    ]
}

/// What a resident instance's first launch on `offer` holds from then on; `uuid` makes its
/// volumes' persistence ids unique. Its path and mount volumes are on the disks the allocation
/// chose, a mount volume as big as its disk.
pub fn new_reservation(
    app: &AppDefinition,
    allocation: &Allocation,
    offer: &OfferView,
    uuid: &str,
) -> Reservation {
    Reservation {
        agent_id: offer.agent_id.clone(),
        hostname: offer.hostname.clone(),
        attributes: offer.attributes.clone(),
        role: app.role.clone(),
        cpus: allocation.cpus,
        mem: allocation.mem,
        disk: allocation.disk,
        ports: allocation.ports.clone(),
        volumes: app
            .persistent_volumes()
            .into_iter()
            .enumerate()
            .map(|(index, (_, v))| {
                let placed = allocation.volumes.iter().find(|p| p.index == index);
                ReservedVolume {
                    persistence_id: format!(
                        "{}#{}#{uuid}",
                        path::safe_path(&app.id),
                        v.container_path
                    ),
                    container_path: v.container_path,
                    size_mib: placed.map_or(v.persistent.size as f64, |p| p.size_mib),
                    source: placed.map(|p| p.source.clone()),
                }
            })
            .collect(),
    }
}

/// The ACCEPT's terms for `instance_id`'s `reservation`.
pub fn spec_of(
    reservation: &Reservation,
    framework_id: &str,
    instance_id: &str,
) -> ReservationSpec {
    ReservationSpec {
        role: reservation.role.clone(),
        labels: labels(framework_id, instance_id),
        cpus: reservation.cpus,
        mem: reservation.mem,
        disk: reservation.disk,
        ports: reservation.ports.clone(),
        volumes: reservation.volumes.clone(),
    }
}

/// What to do with one reservation an offer holds.
#[derive(Clone, Debug, PartialEq)]
pub enum ReservedUse<'a> {
    /// The instance it belongs to wants to run: launch it there.
    Launch(&'a Instance),
    /// Its instance is stopped or already running: leave it be.
    Keep,
    /// Stride's, but no instance holds it any more: destroy its volumes and unreserve it.
    Release(ReservationSpec),
    /// Another framework's, or not labelled as anybody's.
    NotOurs,
}

/// What `offered` (in an offer of `agent_id`) is for, given the instances and Stride's id.
pub fn use_of<'a>(
    offered: &OfferedReservation,
    agent_id: &str,
    framework_id: &str,
    instance: impl FnOnce(&str) -> Option<&'a Instance>,
) -> ReservedUse<'a> {
    if offered.framework_id.as_deref() != Some(framework_id) {
        return ReservedUse::NotOurs;
    }
    let Some(instance_id) = offered.instance_id.as_deref() else {
        return ReservedUse::NotOurs;
    };
    let holder = instance(instance_id).filter(|i| {
        i.goal != Goal::Decommissioned
            && i.reservation
                .as_ref()
                .is_some_and(|r| r.agent_id == agent_id)
    });
    match holder {
        Some(i) if i.wants_launch() => ReservedUse::Launch(i),
        Some(_) => ReservedUse::Keep,
        None => ReservedUse::Release(ReservationSpec {
            role: offered.role.clone(),
            labels: labels(framework_id, instance_id),
            cpus: offered.cpus,
            mem: offered.mem,
            disk: offered.disk
                - offered
                    .volumes
                    .iter()
                    .filter(|v| v.source.is_none())
                    .map(|v| v.size_mib)
                    .sum::<f64>(),
            ports: offered.ports.iter().flat_map(|&(b, e)| b..=e).collect(),
            volumes: offered
                .volumes
                .iter()
                .map(|v| ReservedVolume {
                    persistence_id: v.persistence_id.clone(),
                    container_path: v.container_path.clone(),
                    size_mib: v.size_mib,
                    source: v.source.clone(),
                })
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::instance::Condition;
    use crate::scheduler::testing::{app_with, instance};

    fn offered(instance_id: &str) -> OfferedReservation {
        OfferedReservation {
            framework_id: Some("fw".into()),
            instance_id: Some(instance_id.into()),
            role: "data".into(),
            cpus: 0.1,
            mem: 32.0,
            disk: 110.0,
            ports: vec![(31000, 31000)],
            volumes: vec![crate::scheduler::placement::OfferedVolume {
                persistence_id: "p".into(),
                container_path: "data".into(),
                size_mib: 100.0,
                source: None,
            }],
        }
    }

    fn reserved(condition: Condition, goal: Goal) -> Instance {
        let mut i = instance(&app_with(1, 0), "a", condition, 0);
        i.goal = goal;
        i.reservation = Some(Reservation {
            agent_id: "agent-1".into(),
            hostname: "h".into(),
            attributes: vec![],
            role: "data".into(),
            cpus: 0.1,
            mem: 32.0,
            disk: 10.0,
            ports: vec![31000],
            volumes: vec![],
        });
        i
    }

    #[test]
    fn a_reservation_goes_to_its_instance_or_back_to_the_agent() {
        let waiting = reserved(Condition::Killed, Goal::Running);
        let o = offered(&waiting.id);
        assert_eq!(
            use_of(&o, "agent-1", "fw", |_| Some(&waiting)),
            ReservedUse::Launch(&waiting)
        );
        let running = reserved(Condition::Running, Goal::Running);
        assert_eq!(
            use_of(&o, "agent-1", "fw", |_| Some(&running)),
            ReservedUse::Keep
        );
        let stopped = reserved(Condition::Killed, Goal::Stopped);
        assert_eq!(
            use_of(&o, "agent-1", "fw", |_| Some(&stopped)),
            ReservedUse::Keep
        );
        assert_eq!(
            use_of(&o, "agent-1", "other", |_| None),
            ReservedUse::NotOurs
        );
        let ReservedUse::Release(spec) = use_of(&o, "agent-1", "fw", |_| None) else {
            panic!("a reservation without an instance is released");
        };
        assert_eq!((spec.disk, spec.root_disk()), (10.0, 110.0));
        assert_eq!(spec.ports, vec![31000]);
        // On another agent than the instance's, or decommissioned: not the instance's any more.
        assert!(matches!(
            use_of(&o, "agent-2", "fw", |_| Some(&waiting)),
            ReservedUse::Release(_)
        ));
        let gone = reserved(Condition::Killed, Goal::Decommissioned);
        assert!(matches!(
            use_of(&o, "agent-1", "fw", |_| Some(&gone)),
            ReservedUse::Release(_)
        ));
    }
}
