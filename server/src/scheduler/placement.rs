//! Matching one offer against the instances waiting to launch.
//!
//! Placement is a chain of checkers run in a fixed order (Marathon's funnel: role, constraints,
//! then cpus, memory, disk, ports; Stride's Docker engine check comes after the constraints). The first checker that says no produces a typed [`Veto`];
//! every offer's outcome per app is kept, so that `/v2/queue` and the dashboard can say how
//! many offers an app saw and why it is waiting.

use super::constraint::{Constraint, RegexCache, Tally};
use super::disks::{place_volumes, root_volume_disk, volume_needs, DiskSource, OfferedDisk};
use super::disks::{PlacedVolume, VolumeNeed};
use app::model::{AppDefinition, HostPort};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The part of an offer placement looks at.
#[derive(Clone, Debug, PartialEq)]
pub struct OfferView {
    pub offer_id: String,
    pub agent_id: String,
    pub hostname: String,
    pub role: String,
    pub attributes: Vec<(String, String)>,
    pub cpus: f64,
    pub mem: f64,
    /// The root disk.
    pub disk: f64,
    pub ports: Vec<(u32, u32)>,
    /// Unreserved disks beside the root disk (PATH and MOUNT disks), for path and mount volumes.
    pub disks: Vec<OfferedDisk>,
    /// Resources reserved dynamically (for one instance each), apart from the unreserved ones
    /// above.
    pub reserved: Vec<OfferedReservation>,
    /// Whether the agent can run DOCKER containers.
    pub docker_engine: DockerEngine,
}

/// Whether an agent has a Docker engine to run DOCKER containers with.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum DockerEngine {
    /// Nobody says: Apache Mesos' offers do not tell. DOCKER tasks are launched, and fail
    /// there if the agent has no engine.
    #[default]
    Unknown,
    Reachable,
    /// The built-in agents' engine does not answer, for this reason.
    Missing(String),
}

/// Resources of an offer reserved for one instance, with the volumes created on them.
#[derive(Clone, Debug, PartialEq)]
pub struct OfferedReservation {
    /// The reservation's labels say whose it is.
    pub framework_id: Option<String>,
    pub instance_id: Option<String>,
    pub role: String,
    pub cpus: f64,
    pub mem: f64,
    /// The reserved root disk, root volumes included.
    pub disk: f64,
    pub ports: Vec<(u32, u32)>,
    pub volumes: Vec<OfferedVolume>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OfferedVolume {
    pub persistence_id: String,
    pub container_path: String,
    pub size_mib: f64,
    /// The PATH or MOUNT disk it is on; `None` on the root disk.
    pub source: Option<DiskSource>,
}

/// Why an offer was not good for an app, Marathon's reject reasons in funnel order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Veto {
    UnfulfilledRole,
    UnfulfilledConstraint,
    InsufficientCpus,
    InsufficientMemory,
    InsufficientDisk,
    InsufficientPorts,
    /// Stride's own: a DOCKER app, and the agent's Docker engine does not answer.
    NoDockerEngine,
}

impl Veto {
    /// Every reason, in the order the checkers run.
    pub const FUNNEL: [Veto; 7] = [
        Veto::UnfulfilledRole,
        Veto::UnfulfilledConstraint,
        Veto::NoDockerEngine,
        Veto::InsufficientCpus,
        Veto::InsufficientMemory,
        Veto::InsufficientDisk,
        Veto::InsufficientPorts,
    ];

    /// Marathon's name for the reason (`rejectSummary…` entries).
    pub fn name(self) -> &'static str {
        match self {
            Veto::UnfulfilledRole => "UnfulfilledRole",
            Veto::UnfulfilledConstraint => "UnfulfilledConstraint",
            Veto::InsufficientCpus => "InsufficientCpus",
            Veto::InsufficientMemory => "InsufficientMemory",
            Veto::InsufficientDisk => "InsufficientDisk",
            Veto::InsufficientPorts => "InsufficientPorts",
            Veto::NoDockerEngine => "NoDockerEngine",
        }
    }
}

/// One of an app's constraints, with how the app's counted instances spread over its field.
pub struct CountedConstraint {
    pub constraint: Constraint,
    pub placed: Tally,
}

/// One app's instances waiting for resources, with the instances it already has.
pub struct Pending<'a> {
    pub app: &'a AppDefinition,
    /// The app's constraints, parsed (see [`super::constraint`]), each with the instances that
    /// count for it (placed, of the current configuration).
    pub constraints: Vec<CountedConstraint>,
    /// Ids of instances waiting to launch, in launch order.
    pub waiting: VecDeque<String>,
    /// MiB of root disk the app's persistent volumes take beside its `disk`.
    pub root_volume_disk: f64,
    /// The app's path and mount volumes, which go on disks of their own.
    pub volume_needs: Vec<VolumeNeed>,
    /// Has persistent volumes: resources are reserved for its role.
    pub resident: bool,
    /// The host ports each instance takes from the offer.
    pub host_ports: Vec<HostPort>,
}

impl<'a> Pending<'a> {
    /// `app`'s `waiting` instances, with its constraints counting the instances on the agents
    /// `placed` names (by hostname and attributes).
    pub fn new<'p>(
        app: &'a AppDefinition,
        regexes: &mut RegexCache,
        placed: impl Iterator<Item = (&'p str, &'p [(String, String)])> + Clone,
        waiting: VecDeque<String>,
    ) -> Pending<'a> {
        let constraints = app
            .constraints
            .iter()
            .map(|raw| {
                let constraint = Constraint::parse(raw, regexes);
                let mut tally = Tally::default();
                for (hostname, attributes) in placed.clone() {
                    tally.add(constraint.field.value_on(hostname, attributes));
                }
                CountedConstraint {
                    constraint,
                    placed: tally,
                }
            })
            .collect();
        Pending {
            app,
            constraints,
            waiting,
            root_volume_disk: root_volume_disk(app),
            volume_needs: volume_needs(app, regexes),
            resident: app.is_resident(),
            host_ports: app.host_ports(),
        }
    }
}

/// Resources given to one instance out of an offer.
#[derive(Clone, Debug, PartialEq)]
pub struct Allocation {
    pub instance_id: String,
    pub app_id: String,
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    pub ports: Vec<u32>,
    /// Where the app's path and mount volumes go (a resident instance's first launch).
    pub volumes: Vec<PlacedVolume>,
}

/// What one offer meant to one waiting app: it took instances, or it was vetoed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Used,
    /// Refused by a checker other than the constraints'.
    Vetoed(Veto),
    /// Refused by the app's constraint at this position in its `constraints`.
    Unfulfilled(usize),
}

impl Outcome {
    /// The checker that refused the offer, if one did.
    pub fn veto(self) -> Option<Veto> {
        match self {
            Outcome::Used => None,
            Outcome::Vetoed(veto) => Some(veto),
            Outcome::Unfulfilled(_) => Some(Veto::UnfulfilledConstraint),
        }
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct OfferMatch {
    pub allocations: Vec<Allocation>,
    /// Every app that waited when the offer came, with what the offer meant to it.
    pub outcomes: Vec<(String, Outcome)>,
}

/// What is left of an offer while it is being divided up.
struct Remaining {
    cpus: f64,
    mem: f64,
    disk: f64,
    ports: Vec<(u32, u32)>,
    disks: Vec<OfferedDisk>,
}

impl Remaining {
    fn free_port_count(&self) -> usize {
        self.ports.iter().map(|(b, e)| (e - b + 1) as usize).sum()
    }

    fn has_port(&self, port: u32) -> bool {
        self.ports.iter().any(|&(b, e)| (b..=e).contains(&port))
    }

    fn take_port(&mut self, port: u32) {
        if let Some(idx) = self
            .ports
            .iter()
            .position(|&(b, e)| (b..=e).contains(&port))
        {
            let (b, e) = self.ports.remove(idx);
            if port < e {
                self.ports.insert(idx, (port + 1, e));
            }
            if b < port {
                self.ports.insert(idx, (b, port - 1));
            }
        }
    }

    fn take_lowest_port(&mut self) -> Option<u32> {
        let port = self.ports.first()?.0;
        self.take_port(port);
        Some(port)
    }
}

/// Tolerance for float resources, so that ten 0.1-cpu tasks fit into 1.0 cpus.
const EPSILON: f64 = 1e-9;

type Checker = fn(&Pending<'_>, &OfferView, &Remaining) -> Result<(), Veto>;

/// The checkers, in the order Marathon reports rejections: policy before quantities, so that a
/// vetoed app says "constraint" rather than "cpus" when both hold.
const CHECKERS: [Checker; 7] = [
    check_role,
    check_constraints,
    check_docker_engine,
    check_cpus,
    check_mem,
    check_disk,
    check_ports,
];

fn check_role(pending: &Pending<'_>, offer: &OfferView, _: &Remaining) -> Result<(), Veto> {
    let app = pending.app;
    let accepted = app.accepted_resource_roles.is_empty()
        || app.accepted_resource_roles.iter().any(|r| r == &offer.role);
    // Resources are reserved for the role they are offered to: a resident app needs its own.
    let allocatable = offer.role == app.role || (offer.role == "*" && !pending.resident);
    (accepted && allocatable)
        .then_some(())
        .ok_or(Veto::UnfulfilledRole)
}

fn check_constraints(pending: &Pending<'_>, offer: &OfferView, _: &Remaining) -> Result<(), Veto> {
    pending
        .constraints
        .iter()
        .all(|c| constraint_allows(c, offer))
        .then_some(())
        .ok_or(Veto::UnfulfilledConstraint)
}

/// The position of the first of the app's constraints that `offer` does not satisfy.
fn first_unfulfilled(pending: &Pending<'_>, offer: &OfferView) -> usize {
    pending
        .constraints
        .iter()
        .position(|c| !constraint_allows(c, offer))
        .unwrap_or(0)
}

fn constraint_allows(c: &CountedConstraint, offer: &OfferView) -> bool {
    let offered = c
        .constraint
        .field
        .value_on(&offer.hostname, &offer.attributes);
    c.constraint.holds(offered, &c.placed)
}

fn check_docker_engine(
    pending: &Pending<'_>,
    offer: &OfferView,
    _: &Remaining,
) -> Result<(), Veto> {
    let missing = matches!(offer.docker_engine, DockerEngine::Missing(_));
    (!(missing && pending.app.runs_in_docker()))
        .then_some(())
        .ok_or(Veto::NoDockerEngine)
}

fn check_cpus(pending: &Pending<'_>, _: &OfferView, left: &Remaining) -> Result<(), Veto> {
    (pending.app.cpus <= left.cpus + EPSILON)
        .then_some(())
        .ok_or(Veto::InsufficientCpus)
}

fn check_mem(pending: &Pending<'_>, _: &OfferView, left: &Remaining) -> Result<(), Veto> {
    (pending.app.mem <= left.mem + EPSILON)
        .then_some(())
        .ok_or(Veto::InsufficientMemory)
}

fn check_disk(pending: &Pending<'_>, _: &OfferView, left: &Remaining) -> Result<(), Veto> {
    let root_fits = pending.app.disk + pending.root_volume_disk <= left.disk + EPSILON;
    let volumes_fit = || {
        pending.volume_needs.is_empty()
            || place_volumes(&pending.volume_needs, &mut left.disks.clone()).is_some()
    };
    (root_fits && volumes_fit())
        .then_some(())
        .ok_or(Veto::InsufficientDisk)
}

fn check_ports(pending: &Pending<'_>, _: &OfferView, left: &Remaining) -> Result<(), Veto> {
    let wanted = &pending.host_ports;
    let fixed_free = wanted.iter().all(|port| match port {
        HostPort::Fixed(port) => left.has_port(*port),
        HostPort::Any => true,
    });
    (fixed_free && wanted.len() <= left.free_port_count())
        .then_some(())
        .ok_or(Veto::InsufficientPorts)
}

/// Divides `offer` among the waiting instances in `queue`, app by app in queue order, taking
/// launched instances off their app's `waiting` list. Every app that waited gets an outcome.
pub fn match_offer(offer: &OfferView, queue: &mut [Pending<'_>]) -> OfferMatch {
    let mut left = Remaining {
        cpus: offer.cpus,
        mem: offer.mem,
        disk: offer.disk,
        ports: offer.ports.clone(),
        disks: offer.disks.clone(),
    };
    let mut result = OfferMatch::default();
    for pending in queue.iter_mut() {
        if pending.waiting.is_empty() {
            continue;
        }
        let mut placed_any = false;
        let mut veto = None;
        while !pending.waiting.is_empty() {
            if let Err(v) = CHECKERS
                .iter()
                .try_for_each(|check| check(pending, offer, &left))
            {
                veto = Some(v);
                break;
            }
            let Some(instance_id) = pending.waiting.pop_front() else {
                break;
            };
            let app = pending.app;
            left.cpus -= app.cpus;
            left.mem -= app.mem;
            left.disk -= app.disk + pending.root_volume_disk;
            let volumes = place_volumes(&pending.volume_needs, &mut left.disks).unwrap_or_default();
            let mut ports = Vec::with_capacity(pending.host_ports.len());
            for port in &pending.host_ports {
                ports.extend(match *port {
                    HostPort::Fixed(port) => {
                        left.take_port(port);
                        Some(port)
                    }
                    HostPort::Any => left.take_lowest_port(),
                });
            }
            for c in &mut pending.constraints {
                c.placed.add(
                    c.constraint
                        .field
                        .value_on(&offer.hostname, &offer.attributes),
                );
            }
            placed_any = true;
            result.allocations.push(Allocation {
                instance_id,
                app_id: app.id.clone(),
                cpus: app.cpus,
                mem: app.mem,
                disk: app.disk,
                ports,
                volumes,
            });
        }
        let outcome = match (placed_any, veto) {
            (false, Some(Veto::UnfulfilledConstraint)) => {
                Outcome::Unfulfilled(first_unfulfilled(pending, offer))
            }
            (false, Some(v)) => Outcome::Vetoed(v),
            _ => Outcome::Used,
        };
        result.outcomes.push((pending.app.id.clone(), outcome));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::app_with;
    use proptest::prelude::*;

    fn offer(cpus: f64, mem: f64, ports: Vec<(u32, u32)>) -> OfferView {
        OfferView {
            offer_id: "o1".into(),
            agent_id: "a1".into(),
            hostname: "host-1".into(),
            role: "*".into(),
            attributes: vec![("rack".into(), "r1".into())],
            cpus,
            mem,
            disk: 1000.0,
            ports,
            disks: vec![],
            reserved: vec![],
            docker_engine: DockerEngine::Unknown,
        }
    }

    fn pending(app: &AppDefinition, n: usize) -> Pending<'_> {
        Pending::new(
            app,
            &mut RegexCache::default(),
            std::iter::empty(),
            (0..n).map(|i| format!("i{i}")).collect(),
        )
    }

    /// A resident app's mount volume needs a MOUNT disk in an offer of its role, and takes it
    /// whole; two instances need two disks.
    #[test]
    fn mount_volumes_need_a_mount_disk_each() {
        use crate::scheduler::disks::SourceKind;
        let mut app = app_with(2, 0);
        app.role = "data".into();
        app.container = Some(serde_json::json!({"type": "MESOS", "volumes": [
            {"containerPath": "db", "mode": "RW", "persistent": {"type": "mount", "size": 100}}
        ]}));
        let mut with_disk = offer(1.0, 1000.0, vec![(31000, 31010)]);
        with_disk.role = "data".into();
        with_disk.disks = vec![OfferedDisk {
            source: DiskSource {
                kind: SourceKind::Mount,
                root: "/mnt/a".into(),
                profile: None,
            },
            size_mib: 150.0,
        }];
        let mut queue = [pending(&app, 2)];
        let m = match_offer(&with_disk, &mut queue);
        assert_eq!(m.allocations.len(), 1, "one disk, one instance");
        assert_eq!(
            m.allocations[0].volumes,
            vec![PlacedVolume {
                index: 0,
                source: with_disk.disks[0].source.clone(),
                size_mib: 150.0
            }]
        );
        let mut without = with_disk.clone();
        without.disks.clear();
        let mut queue = [pending(&app, 1)];
        let m = match_offer(&without, &mut queue);
        assert_eq!(
            m.outcomes[0].1,
            Outcome::Vetoed(Veto::InsufficientDisk),
            "the root disk is no mount disk"
        );
    }

    /// An agent whose engine does not answer gets no DOCKER task; commands and MESOS containers
    /// go there still, and so do DOCKER tasks where nobody says (Apache Mesos).
    #[test]
    fn docker_apps_need_an_agent_whose_engine_answers() {
        let mut docker = app_with(1, 0);
        docker.container = Some(serde_json::json!({"type": "DOCKER", "docker": {"image": "x"}}));
        let mut default_type = docker.clone();
        default_type.container = Some(serde_json::json!({"docker": {"image": "x"}}));
        let mut mesos = docker.clone();
        mesos.container = Some(serde_json::json!({"type": "MESOS", "docker": {"image": "x"}}));
        let command = app_with(1, 0);
        let outcome = |app: &AppDefinition, engine: DockerEngine| {
            let mut with = offer(1.0, 1000.0, vec![(31000, 31010)]);
            with.docker_engine = engine;
            match_offer(&with, &mut [pending(app, 1)]).outcomes[0].1
        };
        let missing = DockerEngine::Missing("nothing answers".into());
        assert_eq!(
            outcome(&docker, missing.clone()),
            Outcome::Vetoed(Veto::NoDockerEngine)
        );
        assert_eq!(
            outcome(&default_type, missing.clone()),
            Outcome::Vetoed(Veto::NoDockerEngine),
            "DOCKER is Marathon's default container type"
        );
        assert_eq!(outcome(&mesos, missing.clone()), Outcome::Used);
        assert_eq!(outcome(&command, missing), Outcome::Used);
        assert_eq!(outcome(&docker, DockerEngine::Reachable), Outcome::Used);
        assert_eq!(outcome(&docker, DockerEngine::Unknown), Outcome::Used);
    }

    #[test]
    fn fills_an_offer_and_reports_what_ran_out() {
        let app = app_with(5, 0); // 0.1 cpus, 32 mem, one port
        let mut queue = [pending(&app, 5)];
        let m = match_offer(&offer(0.3, 1000.0, vec![(31000, 31010)]), &mut queue);
        assert_eq!(m.allocations.len(), 3);
        assert_eq!(m.allocations[0].ports, vec![31000]);
        assert_eq!(m.allocations[2].ports, vec![31002]);
        assert_eq!(m.outcomes, vec![("/test".to_string(), Outcome::Used)]);
        assert_eq!(queue[0].waiting.len(), 2);
        let m = match_offer(&offer(0.05, 1000.0, vec![(31000, 31010)]), &mut queue);
        assert_eq!(
            m.outcomes,
            vec![("/test".to_string(), Outcome::Vetoed(Veto::InsufficientCpus))]
        );
    }

    #[test]
    fn unique_hostname_places_one_per_agent() {
        let mut app = app_with(3, 0);
        app.constraints = vec![vec!["hostname".into(), "UNIQUE".into()]];
        let mut queue = [pending(&app, 3)];
        let m = match_offer(&offer(4.0, 4000.0, vec![(31000, 32000)]), &mut queue);
        assert_eq!(m.allocations.len(), 1);
        let m = match_offer(&offer(4.0, 4000.0, vec![(31000, 32000)]), &mut queue);
        assert_eq!(m.outcomes[0].1, Outcome::Unfulfilled(0));
    }

    #[test]
    fn accepted_roles_are_honoured() {
        let mut app = app_with(1, 0);
        app.accepted_resource_roles = vec!["prod".into()];
        let m = match_offer(&offer(1.0, 1000.0, vec![(1, 10)]), &mut [pending(&app, 1)]);
        assert_eq!(m.outcomes[0].1, Outcome::Vetoed(Veto::UnfulfilledRole));
    }

    /// Whether one more instance on an agent with `value` keeps `raw` (a constraint) true after
    /// the instances on `placed`, recounted from scratch: an oracle written apart from
    /// [`Constraint::holds`] and its tallies.
    fn allowed_by_recount(raw: &[&str], value: Option<&str>, placed: &[Option<&str>]) -> bool {
        let full = |p: &str| regex::Regex::new(&format!("^(?:{p})$")).unwrap();
        let count = |v: Option<&str>| placed.iter().filter(|p| **p == v).count();
        match (raw[1], raw.get(2)) {
            ("UNIQUE", _) => value.is_some() && count(value) == 0,
            ("CLUSTER", Some(v)) => value == Some(*v),
            ("CLUSTER", None) => value.is_some() && placed.first().is_none_or(|f| *f == value),
            ("GROUP_BY", minimum) => {
                let minimum: usize = minimum.map_or(0, |m| m.parse().unwrap());
                let mut groups: Vec<Option<&str>> = placed.to_vec();
                groups.sort();
                groups.dedup();
                let smallest = groups.iter().map(|g| count(*g)).min().unwrap_or(0);
                value.is_some()
                    && (count(value) == 0 || (groups.len() >= minimum && count(value) == smallest))
            }
            ("LIKE", Some(p)) => value.is_some_and(|v| full(p).is_match(v)),
            ("UNLIKE", Some(p)) => value.is_none_or(|v| !full(p).is_match(v)),
            ("MAX_PER", Some(n)) => value.is_some() && count(value) < n.parse().unwrap(),
            ("IS", Some(v)) => value == Some(*v),
            other => panic!("no oracle for {other:?}"),
        }
    }

    const CONSTRAINTS: &[&[&str]] = &[
        &["hostname", "UNIQUE"],
        &["rack", "UNIQUE"],
        &["rack", "CLUSTER", "r1"],
        &["rack", "CLUSTER"],
        &["rack", "GROUP_BY"],
        &["rack", "GROUP_BY", "3"],
        &["rack", "LIKE", "r[01]"],
        &["rack", "UNLIKE", "r0"],
        &["hostname", "MAX_PER", "2"],
        &["rack", "IS", "r2"],
        &["hostname", "LIKE", "h[0-2]"],
    ];

    proptest! {
        #[test]
        fn never_gives_out_more_than_the_offer_has(
            cpus in 0.0f64..8.0, mem in 0.0f64..4096.0, port_count in 0u32..20,
            apps in prop::collection::vec((0.01f64..2.0, 1.0f64..512.0, 0usize..3, 0usize..6), 1..4),
        ) {
            let defs: Vec<AppDefinition> = apps.iter().enumerate().map(|(n, (c, m, p, _))| {
                let mut a = app_with(1, 0);
                a.id = format!("/app{n}");
                a.cpus = *c;
                a.mem = *m;
                a.port_definitions = (0..*p).map(|_| app::model::PortDefinition {
                    port: 0, protocol: "tcp".into(), name: None, labels: Default::default() }).collect();
                a
            }).collect();
            let mut queue: Vec<Pending> = defs.iter().zip(&apps).map(|(a, (_, _, _, n))| pending(a, *n)).collect();
            let waiting_before: usize = queue.iter().map(|p| p.waiting.len()).sum();
            let ports = if port_count == 0 { vec![] } else { vec![(31000, 31000 + port_count - 1)] };
            let o = offer(cpus, mem, ports);
            let m = match_offer(&o, &mut queue);
            let used_cpus: f64 = m.allocations.iter().map(|a| a.cpus).sum();
            let used_mem: f64 = m.allocations.iter().map(|a| a.mem).sum();
            prop_assert!(used_cpus <= cpus + 1e-6);
            prop_assert!(used_mem <= mem + 1e-6);
            let mut all_ports: Vec<u32> = m.allocations.iter().flat_map(|a| a.ports.clone()).collect();
            let n_ports = all_ports.len();
            all_ports.sort();
            all_ports.dedup();
            prop_assert_eq!(all_ports.len(), n_ports);
            prop_assert!(all_ports.iter().all(|p| *p >= 31000 && *p < 31000 + port_count));
            let waiting_after: usize = queue.iter().map(|p| p.waiting.len()).sum();
            prop_assert_eq!(waiting_before - waiting_after, m.allocations.len());
            let waited = apps.iter().filter(|(_, _, _, n)| *n > 0).count();
            prop_assert_eq!(m.outcomes.len(), waited, "every waiting app gets an outcome");
        }
    }

    proptest! {
        #[test]
        fn no_placement_ever_violates_a_constraint(
            picked in prop::collection::vec(0..CONSTRAINTS.len(), 1..3),
            agents in prop::collection::vec((0usize..5, prop::option::of(0usize..3)), 1..30),
            instances in 1usize..12,
        ) {
            let raws: Vec<&[&str]> = picked.iter().map(|n| CONSTRAINTS[*n]).collect();
            let mut app = app_with(instances as i64, 0);
            app.constraints = raws.iter().map(|r| r.iter().map(|p| p.to_string()).collect()).collect();
            let mut queue = [pending(&app, instances)];
            let mut placed: Vec<(String, Option<String>)> = Vec::new();
            for (host, rack) in &agents {
                let mut o = offer(4.0, 4000.0, vec![(31000, 32000)]);
                o.hostname = format!("h{host}");
                o.attributes = rack.iter().map(|r| ("rack".to_string(), format!("r{r}"))).collect();
                for _ in match_offer(&o, &mut queue).allocations {
                    for raw in &raws {
                        let value_of = |(h, r): &(String, Option<String>)| if raw[0] == "hostname" { Some(h.clone()) } else { r.clone() };
                        let values: Vec<Option<String>> = placed.iter().map(value_of).collect();
                        let values: Vec<Option<&str>> = values.iter().map(Option::as_deref).collect();
                        let offered = value_of(&(o.hostname.clone(), rack.map(|r| format!("r{r}"))));
                        prop_assert!(allowed_by_recount(raw, offered.as_deref(), &values),
                            "{raw:?} broken by a placement on {} (rack {rack:?}) after {placed:?}", o.hostname);
                    }
                    placed.push((o.hostname.clone(), rack.map(|r| format!("r{r}"))));
                }
            }
        }
    }
}
