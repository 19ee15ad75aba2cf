//! Translation between the Mesos v1 messages and the scheduler core's own terms.

use crate::core::{OfferOperation, Outgoing};
use crate::scheduler::disks::{DiskSource, OfferedDisk, SourceKind};
use crate::scheduler::placement::{DockerEngine, OfferView, OfferedReservation, OfferedVolume};
use crate::scheduler::residency::{ReservationSpec, FRAMEWORK_LABEL, INSTANCE_LABEL};
use crate::scheduler::status::StatusUpdate;
use crate::scheduler::taskbuild::{TaskCheck, TaskCheckKind, TaskSpec};
use crate::scheduler::taskgroup::TaskGroupSpec;
use app::model::{NetworkMode, TaskState, Timestamp};
use proto::mesos::v1 as mesos;
use proto::mesos::v1::scheduler::{self, call};

/// The offer's fault domain as the attributes `@region` and `@zone`, the names constraints use
/// for it (SEMANTICS.md §7): so the domain is matched, counted and remembered with an
/// instance's placement like any attribute.
fn fault_domain_of(offer: &mesos::Offer) -> Vec<(String, String)> {
    let Some(domain) = offer.domain.as_ref().and_then(|d| d.fault_domain.as_ref()) else {
        return Vec::new();
    };
    vec![
        (REGION.to_string(), domain.region.name.clone()),
        (ZONE.to_string(), domain.zone.name.clone()),
    ]
}

/// The constraint fields of an agent's fault domain.
const REGION: &str = "@region";
const ZONE: &str = "@zone";

pub fn offer_view(offer: &mesos::Offer) -> OfferView {
    let mut view = OfferView {
        offer_id: offer.id.value.clone(),
        agent_id: offer.agent_id.value.clone(),
        hostname: offer.hostname.clone(),
        role: offer
            .allocation_info
            .as_ref()
            .and_then(|a| a.role.clone())
            .unwrap_or_else(|| "*".into()),
        attributes: offer
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.canonical_text()))
            .chain(fault_domain_of(offer))
            .collect(),
        cpus: 0.0,
        mem: 0.0,
        disk: 0.0,
        ports: Vec::new(),
        disks: Vec::new(),
        reserved: Vec::new(),
        docker_engine: DockerEngine::Unknown,
    };
    for r in &offer.resources {
        let scalar = r.scalar.as_ref().map_or(0.0, |s| s.value);
        let ports = || {
            r.ranges
                .iter()
                .flat_map(|rs| rs.range.iter())
                .map(|range| (range.begin as u32, range.end as u32))
        };
        if let Some((role, labels)) = r.dynamic_reservation() {
            let held = reserved_entry(&mut view.reserved, role, &labels);
            match r.name.as_str() {
                "cpus" => held.cpus += scalar,
                "mem" => held.mem += scalar,
                "disk" => match volume_of(r) {
                    Some(volume) => {
                        if volume.source.is_none() {
                            held.disk += scalar;
                        }
                        held.volumes.push(volume);
                    }
                    // Reserved PATH or MOUNT disk without a volume: Stride reserves such disk
                    // only with a volume on it, in one ACCEPT, so this is not Stride's.
                    None if r.disk_source().is_some() => {}
                    None => held.disk += scalar,
                },
                "ports" => held.ports.extend(ports()),
                _ => {}
            }
            continue;
        }
        match r.name.as_str() {
            "cpus" => view.cpus += scalar,
            "mem" => view.mem += scalar,
            // A PATH or MOUNT disk is not the agent's root disk: only volumes go on one.
            "disk" => match r.disk_source() {
                None => view.disk += scalar,
                Some(source) => view
                    .disks
                    .extend(source_of(source).map(|source| OfferedDisk {
                        source,
                        size_mib: scalar,
                    })),
            },
            "ports" => view.ports.extend(ports()),
            _ => {}
        }
    }
    view.ports.sort();
    for held in &mut view.reserved {
        held.ports.sort();
    }
    view
}

/// The offer's entry for the reservation of `role` with `labels`.
fn reserved_entry<'a>(
    reserved: &'a mut Vec<OfferedReservation>,
    role: String,
    labels: &[(String, String)],
) -> &'a mut OfferedReservation {
    let label = |key: &str| {
        labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value.clone())
    };
    let framework_id = label(FRAMEWORK_LABEL);
    let instance_id = label(INSTANCE_LABEL);
    let index = reserved
        .iter()
        .position(|h| {
            h.role == role && h.framework_id == framework_id && h.instance_id == instance_id
        })
        .unwrap_or_else(|| {
            reserved.push(OfferedReservation {
                framework_id,
                instance_id,
                role,
                cpus: 0.0,
                mem: 0.0,
                disk: 0.0,
                ports: Vec::new(),
                volumes: Vec::new(),
            });
            reserved.len() - 1
        });
    &mut reserved[index]
}

fn volume_of(r: &mesos::Resource) -> Option<OfferedVolume> {
    let (persistence_id, container_path) = r.persistence()?;
    Some(OfferedVolume {
        persistence_id,
        container_path,
        size_mib: r.scalar.as_ref().map_or(0.0, |s| s.value),
        source: r.disk_source().and_then(source_of),
    })
}

/// A PATH or MOUNT disk source in Stride's terms; BLOCK and RAW disks hold no volumes.
fn source_of(source: &mesos::resource::disk_info::Source) -> Option<DiskSource> {
    use mesos::resource::disk_info::source::Type;
    let kind = match source.r#type() {
        Type::Path => SourceKind::Path,
        Type::Mount => SourceKind::Mount,
        Type::Unknown | Type::Block | Type::Raw => return None,
    };
    Some(DiskSource {
        kind,
        root: source.root().to_string(),
        profile: source.profile.clone(),
    })
}

fn mesos_source(source: &DiskSource) -> mesos::resource::disk_info::Source {
    use mesos::resource::disk_info::source::Type;
    let kind = match source.kind {
        SourceKind::Path => Type::Path,
        SourceKind::Mount => Type::Mount,
    };
    mesos::resource::disk_info::Source::at_root(kind, &source.root, source.profile.as_deref())
}

/// `resource` reserved for `spec`'s role with its labels.
fn reserved(resource: mesos::Resource, spec: &ReservationSpec) -> mesos::Resource {
    resource.reserved_for(&spec.role, &spec.labels)
}

/// The volumes of `spec`, as CREATE, DESTROY and a launch name them.
fn volumes_of(spec: &ReservationSpec) -> Vec<mesos::Resource> {
    spec.volumes
        .iter()
        .map(|v| {
            let volume = mesos::Resource::persistent_volume(
                v.size_mib,
                &spec.role,
                &spec.labels,
                &v.persistence_id,
                &v.container_path,
            );
            match &v.source {
                Some(source) => volume.on_disk_source(mesos_source(source)),
                None => volume,
            }
        })
        .collect()
}

/// All of `spec`'s resources, the volumes' disk as plain reserved disk on the disk each is on
/// (what RESERVE and UNRESERVE name).
fn reserved_resources(spec: &ReservationSpec) -> Vec<mesos::Resource> {
    let mut resources = vec![
        reserved(mesos::Resource::scalar("cpus", spec.cpus, &spec.role), spec),
        reserved(mesos::Resource::scalar("mem", spec.mem, &spec.role), spec),
    ];
    if spec.root_disk() > 0.0 {
        resources.push(reserved(
            mesos::Resource::scalar("disk", spec.root_disk(), &spec.role),
            spec,
        ));
    }
    for volume in &spec.volumes {
        if let Some(source) = &volume.source {
            resources.push(reserved(
                mesos::Resource::scalar("disk", volume.size_mib, &spec.role)
                    .on_disk_source(mesos_source(source)),
                spec,
            ));
        }
    }
    if !spec.ports.is_empty() {
        resources.push(reserved(
            mesos::Resource::ranges(
                "ports",
                spec.ports.iter().map(|&p| (p as u64, p as u64)),
                &spec.role,
            ),
            spec,
        ));
    }
    resources
}

pub fn status_update(status: &mesos::TaskStatus) -> StatusUpdate {
    use mesos::TaskState as S;
    let state = match status.state() {
        S::TaskStaging => TaskState::Staging,
        S::TaskStarting => TaskState::Starting,
        S::TaskRunning => TaskState::Running,
        S::TaskKilling => TaskState::Killing,
        S::TaskFinished => TaskState::Finished,
        S::TaskFailed => TaskState::Failed,
        S::TaskKilled => TaskState::Killed,
        S::TaskError => TaskState::Error,
        S::TaskLost => TaskState::Lost,
        S::TaskDropped => TaskState::Dropped,
        S::TaskUnreachable => TaskState::Unreachable,
        S::TaskGone => TaskState::Gone,
        S::TaskGoneByOperator => TaskState::GoneByOperator,
        S::TaskUnknown => TaskState::Unknown,
    };
    StatusUpdate {
        task_id: status.task_id.value.clone(),
        state,
        reason: status.reason.map(|_| status.reason()),
        message: status.message.clone().unwrap_or_default(),
        agent_id: status.agent_id.as_ref().map(|a| a.value.clone()),
        healthy: status.healthy,
        unreachable_since: status
            .unreachable_time
            .as_ref()
            .map(|t| Timestamp::from_millis(t.nanoseconds / 1_000_000)),
    }
}

fn container_info(container: &serde_json::Value, spec: &TaskSpec) -> Option<mesos::ContainerInfo> {
    let kind = container
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("DOCKER");
    let mut info = mesos::ContainerInfo::default();
    match kind {
        "MESOS" => {
            info.set_type(mesos::container_info::Type::Mesos);
            if let Some(name) = image_name(Some(container)) {
                let docker = &container["docker"];
                let credential = docker.get("credential").map(|c| mesos::Credential {
                    principal: c["principal"].as_str().unwrap_or_default().to_string(),
                    secret: c["secret"].as_str().map(str::to_string),
                });
                let mut image = mesos::Image {
                    docker: Some(mesos::image::Docker {
                        name: name.to_string(),
                        credential,
                        ..Default::default()
                    }),
                    cached: Some(!docker["forcePullImage"].as_bool().unwrap_or(false)),
                    ..Default::default()
                };
                image.set_type(mesos::image::Type::Docker);
                info.mesos = Some(mesos::container_info::MesosInfo { image: Some(image) });
            }
        }
        _ => {
            info.set_type(mesos::container_info::Type::Docker);
            info.docker = Some(docker_info(&container["docker"], spec));
        }
    }
    info.volumes = host_volumes(container);
    Some(info)
}

/// Marathon's `container.docker` as Mesos' Docker containerizer reads it, with the task's
/// host ports in its port mappings.
fn docker_info(docker: &serde_json::Value, spec: &TaskSpec) -> mesos::container_info::DockerInfo {
    use mesos::container_info::docker_info::{Network, PortMapping};
    let mut info = mesos::container_info::DockerInfo {
        image: docker["image"].as_str().unwrap_or_default().to_string(),
        privileged: docker["privileged"].as_bool(),
        force_pull_image: docker["forcePullImage"].as_bool(),
        parameters: docker["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some(mesos::Parameter {
                    key: p["key"].as_str()?.to_string(),
                    value: p["value"].as_str().unwrap_or_default().to_string(),
                })
            })
            .collect(),
        port_mappings: spec
            .port_mappings
            .iter()
            .map(|mapping| PortMapping {
                host_port: mapping.host_port,
                container_port: mapping.container_port,
                protocol: Some(mapping.protocol.clone()),
            })
            .collect(),
        ..Default::default()
    };
    info.set_network(match spec.network {
        NetworkMode::Host => Network::Host,
        NetworkMode::Bridge => Network::Bridge,
        NetworkMode::Container => Network::User,
    });
    info
}

/// The container's host path volumes (`{"containerPath", "hostPath", "mode"}`); persistent
/// volumes go with the task's resources instead.
fn host_volumes(container: &serde_json::Value) -> Vec<mesos::Volume> {
    container["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|volume| {
            let mut out = mesos::Volume {
                container_path: volume["containerPath"].as_str()?.to_string(),
                host_path: Some(volume["hostPath"].as_str()?.to_string()),
                ..Default::default()
            };
            out.set_mode(match volume["mode"].as_str() {
                Some("RO") => mesos::volume::Mode::Ro,
                _ => mesos::volume::Mode::Rw,
            });
            Some(out)
        })
        .collect()
}

/// The Docker image an app's container names, if any.
fn image_name(container: Option<&serde_json::Value>) -> Option<&str> {
    container?
        .pointer("/docker/image")
        .and_then(|image| image.as_str())
        .filter(|image| !image.is_empty())
}

/// A resident task's resources: its share of the reservation, and its volumes.
fn resources_on_reservation(
    spec: &TaskSpec,
    reservation: &ReservationSpec,
) -> Vec<mesos::Resource> {
    let mut resources = vec![
        reserved(
            mesos::Resource::scalar("cpus", spec.cpus, &reservation.role),
            reservation,
        ),
        reserved(
            mesos::Resource::scalar("mem", spec.mem, &reservation.role),
            reservation,
        ),
    ];
    if spec.disk > 0.0 {
        resources.push(reserved(
            mesos::Resource::scalar("disk", spec.disk, &reservation.role),
            reservation,
        ));
    }
    if !spec.ports.is_empty() {
        resources.push(reserved(
            mesos::Resource::ranges(
                "ports",
                spec.ports.iter().map(|&p| (p as u64, p as u64)),
                &reservation.role,
            ),
            reservation,
        ));
    }
    resources.extend(volumes_of(reservation));
    resources
}

pub fn task_info(spec: &TaskSpec) -> mesos::TaskInfo {
    if let Some(reservation) = &spec.reservation {
        return mesos::TaskInfo {
            resources: resources_on_reservation(spec, reservation),
            ..task_info(&TaskSpec {
                reservation: None,
                ..spec.clone()
            })
        };
    }
    let mut resources = vec![
        mesos::Resource::scalar("cpus", spec.cpus, &spec.role),
        mesos::Resource::scalar("mem", spec.mem, &spec.role),
    ];
    if spec.disk > 0.0 {
        resources.push(mesos::Resource::scalar("disk", spec.disk, &spec.role));
    }
    if !spec.ports.is_empty() {
        resources.push(mesos::Resource::ranges(
            "ports",
            spec.ports.iter().map(|&p| (p as u64, p as u64)),
            &spec.role,
        ));
    }
    let environment = mesos::Environment {
        variables: spec
            .env
            .iter()
            .map(|(name, value)| mesos::environment::Variable {
                name: name.clone(),
                value: Some(value.clone()),
                ..Default::default()
            })
            .collect(),
    };
    let uris = spec
        .fetch
        .iter()
        .map(|fetch| mesos::command_info::Uri {
            value: fetch.uri.clone(),
            executable: Some(fetch.executable),
            extract: Some(fetch.extract),
            cache: Some(fetch.cache),
            output_file: fetch.output_file.clone(),
        })
        .collect();
    let command = match &spec.shell_command {
        Some(cmd) => mesos::CommandInfo {
            value: Some(cmd.clone()),
            shell: Some(true),
            environment: Some(environment),
            uris,
            ..Default::default()
        },
        // With an image, `args` go to its entrypoint, so no executable is named (as Marathon).
        None => mesos::CommandInfo {
            value: spec
                .args
                .first()
                .filter(|_| image_name(spec.container.as_ref()).is_none())
                .cloned(),
            shell: Some(false),
            arguments: spec.args.clone(),
            environment: Some(environment),
            uris,
            ..Default::default()
        },
    };
    // As Marathon describes a task for service discovery: its name and named ports.
    let discovery = mesos::DiscoveryInfo {
        name: Some(spec.name.clone()),
        ports: Some(mesos::Ports {
            ports: spec
                .ports
                .iter()
                .zip(&spec.port_names)
                .map(|(&number, (name, protocol))| mesos::Port {
                    number,
                    name: name.clone(),
                    protocol: Some(protocol.clone()),
                    ..Default::default()
                })
                .collect(),
        }),
        ..Default::default()
    };
    mesos::TaskInfo {
        name: spec.name.clone(),
        task_id: mesos::TaskId {
            value: spec.task_id.clone(),
        },
        agent_id: mesos::AgentId {
            value: spec.agent_id.clone(),
        },
        resources,
        command: Some(command),
        container: spec
            .container
            .as_ref()
            .and_then(|container| container_info(container, spec)),
        discovery: Some(discovery),
        labels: (!spec.labels.is_empty()).then(|| mesos::Labels {
            labels: spec
                .labels
                .iter()
                .map(|(k, v)| mesos::Label {
                    key: k.clone(),
                    value: Some(v.clone()),
                })
                .collect(),
        }),
        kill_policy: spec.kill_grace.map(|grace| mesos::KillPolicy {
            grace_period: Some(mesos::DurationInfo {
                nanoseconds: grace.as_nanos() as i64,
            }),
        }),
        health_check: spec.health_check.as_ref().map(health_check),
        ..Default::default()
    }
}

fn health_check(check: &TaskCheck) -> mesos::HealthCheck {
    let mut info = mesos::HealthCheck {
        delay_seconds: Some(check.delay.as_secs_f64()),
        interval_seconds: Some(check.interval.as_secs_f64()),
        timeout_seconds: Some(check.timeout.as_secs_f64()),
        consecutive_failures: Some(check.consecutive_failures),
        grace_period_seconds: Some(check.grace.as_secs_f64()),
        ..Default::default()
    };
    match &check.kind {
        TaskCheckKind::Command(command) => {
            info.set_type(mesos::health_check::Type::Command);
            info.command = Some(mesos::CommandInfo {
                value: Some(command.clone()),
                shell: Some(true),
                ..Default::default()
            });
        }
        TaskCheckKind::Http { port, path, https } => {
            info.set_type(mesos::health_check::Type::Http);
            info.http = Some(mesos::health_check::HttpCheckInfo {
                port: *port,
                path: Some(path.clone()),
                scheme: Some(if *https { "https" } else { "http" }.to_string()),
                ..Default::default()
            });
        }
        TaskCheckKind::Tcp { port } => {
            info.set_type(mesos::health_check::Type::Tcp);
            info.tcp = Some(mesos::health_check::TcpCheckInfo {
                port: *port,
                ..Default::default()
            });
        }
    }
    info
}

/// Mesos' default executor for a pod instance's task group, with the executor's own resources.
fn executor_info(group: &TaskGroupSpec, framework_id: &str) -> mesos::ExecutorInfo {
    let mut resources = vec![
        mesos::Resource::scalar("cpus", group.executor_cpus, &group.role),
        mesos::Resource::scalar("mem", group.executor_mem, &group.role),
    ];
    if group.executor_disk > 0.0 {
        resources.push(mesos::Resource::scalar(
            "disk",
            group.executor_disk,
            &group.role,
        ));
    }
    let mut executor = mesos::ExecutorInfo {
        executor_id: mesos::ExecutorId {
            value: group.executor_id.clone(),
        },
        framework_id: Some(mesos::FrameworkId {
            value: framework_id.to_string(),
        }),
        resources,
        ..Default::default()
    };
    executor.set_type(mesos::executor_info::Type::Default);
    executor
}

fn filters(refuse: std::time::Duration) -> Option<mesos::Filters> {
    Some(mesos::Filters {
        refuse_seconds: Some(refuse.as_secs_f64()),
    })
}

fn offer_operation(operation: &OfferOperation, framework_id: &str) -> mesos::offer::Operation {
    use mesos::offer::operation::{self as op, Type};
    let mut out = mesos::offer::Operation::default();
    match operation {
        OfferOperation::Reserve(spec) => {
            out.set_type(Type::Reserve);
            out.reserve = Some(op::Reserve {
                resources: reserved_resources(spec),
                ..Default::default()
            });
        }
        OfferOperation::Create(spec) => {
            out.set_type(Type::Create);
            out.create = Some(op::Create {
                volumes: volumes_of(spec),
            });
        }
        OfferOperation::Launch(tasks) => {
            out.set_type(Type::Launch);
            out.launch = Some(op::Launch {
                task_infos: tasks.iter().map(task_info).collect(),
            });
        }
        OfferOperation::LaunchGroup(group) => {
            out.set_type(Type::LaunchGroup);
            out.launch_group = Some(op::LaunchGroup {
                executor: executor_info(group, framework_id),
                task_group: mesos::TaskGroupInfo {
                    tasks: group.tasks.iter().map(task_info).collect(),
                },
            });
        }
        OfferOperation::Destroy(spec) => {
            out.set_type(Type::Destroy);
            out.destroy = Some(op::Destroy {
                volumes: volumes_of(spec),
            });
        }
        OfferOperation::Unreserve(spec) => {
            out.set_type(Type::Unreserve);
            out.unreserve = Some(op::Unreserve {
                resources: reserved_resources(spec),
            });
        }
    }
    out
}

/// Who the driver's calls are made for: the framework's id and, when it has one, its
/// principal, in whose name reservations and volumes are made (as Marathon does).
pub struct Caller<'a> {
    pub framework_id: &'a str,
    pub principal: Option<&'a str>,
}

/// Every reserved resource and volume of an ACCEPT's operations (those named by launched
/// tasks too, which must match the reservation exactly) made in the name of `principal`.
fn sign_reservations(operations: &mut [mesos::offer::Operation], principal: &str) {
    let sign = |resources: &mut Vec<mesos::Resource>| {
        for resource in resources.iter_mut() {
            if resource.dynamic_reservation().is_some() {
                *resource = std::mem::take(resource).signed_by(principal);
            }
        }
    };
    for operation in operations {
        if let Some(reserve) = operation.reserve.as_mut() {
            sign(&mut reserve.resources);
        }
        if let Some(unreserve) = operation.unreserve.as_mut() {
            sign(&mut unreserve.resources);
        }
        if let Some(create) = operation.create.as_mut() {
            sign(&mut create.volumes);
        }
        if let Some(destroy) = operation.destroy.as_mut() {
            sign(&mut destroy.volumes);
        }
        if let Some(launch) = operation.launch.as_mut() {
            for task in &mut launch.task_infos {
                sign(&mut task.resources);
            }
        }
    }
}

/// The call for an outgoing request of the core, on behalf of `caller`.
pub fn call_of(outgoing: Outgoing, caller: &Caller) -> scheduler::Call {
    let framework_id = caller.framework_id;
    let mut c = scheduler::Call {
        framework_id: Some(mesos::FrameworkId {
            value: framework_id.to_string(),
        }),
        ..Default::default()
    };
    match outgoing {
        Outgoing::Accept {
            offer_id,
            operations,
            refuse,
        } => {
            c.set_type(call::Type::Accept);
            let mut operations: Vec<_> = operations
                .iter()
                .map(|operation| offer_operation(operation, framework_id))
                .collect();
            if let Some(principal) = caller.principal {
                sign_reservations(&mut operations, principal);
            }
            c.accept = Some(call::Accept {
                offer_ids: vec![mesos::OfferId { value: offer_id }],
                operations,
                filters: filters(refuse),
            });
        }
        Outgoing::Decline {
            offer_id, refuse, ..
        } => {
            c.set_type(call::Type::Decline);
            c.decline = Some(call::Decline {
                offer_ids: vec![mesos::OfferId { value: offer_id }],
                filters: filters(refuse),
            });
        }
        Outgoing::Kill {
            task_id,
            agent_id,
            grace,
        } => {
            c.set_type(call::Type::Kill);
            c.kill = Some(call::Kill {
                task_id: mesos::TaskId { value: task_id },
                agent_id: agent_id.map(|value| mesos::AgentId { value }),
                kill_policy: grace.map(|g| mesos::KillPolicy {
                    grace_period: Some(mesos::DurationInfo {
                        nanoseconds: g.as_nanos() as i64,
                    }),
                }),
            });
        }
        Outgoing::Acknowledge {
            agent_id,
            task_id,
            uuid,
        } => {
            c.set_type(call::Type::Acknowledge);
            c.acknowledge = Some(call::Acknowledge {
                agent_id: mesos::AgentId { value: agent_id },
                task_id: mesos::TaskId { value: task_id },
                uuid,
            });
        }
        Outgoing::Reconcile(tasks) => {
            c.set_type(call::Type::Reconcile);
            c.reconcile = Some(call::Reconcile {
                tasks: tasks
                    .into_iter()
                    .map(|(task_id, agent_id)| call::reconcile::Task {
                        task_id: mesos::TaskId { value: task_id },
                        agent_id: agent_id.map(|value| mesos::AgentId { value }),
                    })
                    .collect(),
            });
        }
        Outgoing::Revive => {
            c.set_type(call::Type::Revive);
            c.revive = Some(call::Revive::default());
        }
        Outgoing::Suppress => {
            c.set_type(call::Type::Suppress);
            c.suppress = Some(call::Suppress::default());
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task with ports, fetch URIs and a health check, on `reservation` if given.
    fn web_task(reservation: Option<ReservationSpec>) -> TaskSpec {
        TaskSpec {
            task_id: "t".into(),
            name: "web".into(),
            agent_id: "a".into(),
            cpus: 0.5,
            mem: 64.0,
            disk: 0.0,
            ports: vec![31000, 31001],
            role: "*".into(),
            shell_command: None,
            args: vec!["sleep".into(), "5".into()],
            env: vec![("A".into(), "1".into())],
            labels: vec![],
            kill_grace: Some(std::time::Duration::from_secs(2)),
            container: None,
            fetch: vec![crate::scheduler::taskbuild::FetchUri {
                uri: "http://example.org/app.tgz".into(),
                executable: false,
                extract: true,
                cache: false,
                output_file: None,
            }],
            port_names: vec![(Some("http".into()), "tcp".into()), (None, "udp".into())],
            network: NetworkMode::Host,
            port_mappings: vec![],
            health_check: Some(TaskCheck {
                kind: TaskCheckKind::Command("test -f ok".into()),
                delay: std::time::Duration::from_secs(15),
                interval: std::time::Duration::from_secs(10),
                timeout: std::time::Duration::from_secs(20),
                grace: std::time::Duration::from_secs(300),
                consecutive_failures: 3,
            }),
            reservation,
        }
    }

    #[test]
    fn args_tasks_exec_directly_and_shell_tasks_use_sh() {
        let spec = web_task(None);
        let info = task_info(&spec);
        let check = info.health_check.clone().unwrap();
        assert_eq!(check.r#type(), mesos::health_check::Type::Command);
        assert_eq!(
            check.command.as_ref().unwrap().value.as_deref(),
            Some("test -f ok")
        );
        assert_eq!(
            (check.consecutive_failures(), check.grace_period_seconds()),
            (3, 300.0)
        );
        let command = info.command.unwrap();
        assert!(!command.shell());
        assert_eq!(command.arguments, vec!["sleep", "5"]);
        assert_eq!(command.uris[0].value, "http://example.org/app.tgz");
        assert!(command.uris[0].extract());
        assert_eq!(info.resources.len(), 3);
        assert_eq!(
            info.kill_policy.unwrap().grace_period.unwrap().nanoseconds,
            2_000_000_000
        );
        let discovery = info.discovery.unwrap();
        assert_eq!(discovery.name.as_deref(), Some("web"));
        let ports = discovery.ports.unwrap().ports;
        assert_eq!(
            ports
                .iter()
                .map(|p| (p.number, p.name.clone(), p.protocol.clone().unwrap()))
                .collect::<Vec<_>>(),
            [
                (31000, Some("http".into()), "tcp".into()),
                (31001, None, "udp".into())
            ]
        );
    }

    /// A DOCKER container goes to Mesos' Docker containerizer with its network, the task's host
    /// ports mapped to the container's, its parameters and its host volumes.
    #[test]
    fn docker_containers_carry_their_network_ports_parameters_and_volumes() {
        use mesos::container_info::docker_info::Network;
        let spec = TaskSpec {
            container: Some(serde_json::json!({
                "type": "DOCKER",
                "docker": {"image": "nginx:1", "privileged": true, "forcePullImage": true,
                           "parameters": [{"key": "label", "value": "team=web"}]},
                "volumes": [{"containerPath": "/data", "hostPath": "/srv/data", "mode": "RO"}]
            })),
            network: NetworkMode::Bridge,
            port_mappings: vec![crate::scheduler::taskbuild::PortMapping {
                host_port: 31000,
                container_port: 80,
                protocol: "tcp".into(),
            }],
            ..web_task(None)
        };
        let container = task_info(&spec).container.unwrap();
        assert_eq!(container.r#type(), mesos::container_info::Type::Docker);
        let docker = container.docker.unwrap();
        assert_eq!(docker.image, "nginx:1");
        assert_eq!(docker.network(), Network::Bridge);
        assert_eq!(
            (
                docker.port_mappings[0].host_port,
                docker.port_mappings[0].container_port
            ),
            (31000, 80)
        );
        assert_eq!(docker.privileged, Some(true));
        assert_eq!(docker.force_pull_image, Some(true));
        assert_eq!(docker.parameters[0].key, "label");
        assert_eq!(container.volumes[0].host_path.as_deref(), Some("/srv/data"));
        assert_eq!(container.volumes[0].mode(), mesos::volume::Mode::Ro);
    }

    /// A MESOS container with a Docker image goes to Mesos as Marathon sends it: the image
    /// under `mesos.image` (not cached when `forcePullImage`), with its credential, and `args`
    /// without an executable so that they follow the image's entrypoint.
    #[test]
    fn mesos_containers_name_their_image_as_marathon_does() {
        let spec = TaskSpec {
            container: Some(serde_json::json!({
                "type": "MESOS",
                "docker": {"image": "registry:5000/team/app:1", "forcePullImage": true,
                           "credential": {"principal": "ops", "secret": "s3cret"}}
            })),
            ..web_task(None)
        };
        let info = task_info(&spec);
        let container = info.container.unwrap();
        assert_eq!(container.r#type(), mesos::container_info::Type::Mesos);
        let image = container.mesos.unwrap().image.unwrap();
        assert_eq!(image.r#type(), mesos::image::Type::Docker);
        assert!(!image.cached());
        let docker = image.docker.unwrap();
        assert_eq!(docker.name, "registry:5000/team/app:1");
        let credential = docker.credential.unwrap();
        assert_eq!(
            (credential.principal.as_str(), credential.secret.as_deref()),
            ("ops", Some("s3cret"))
        );
        let command = info.command.unwrap();
        assert_eq!(
            (command.value, command.arguments),
            (None, vec!["sleep".into(), "5".into()])
        );

        let without_image = TaskSpec {
            container: Some(serde_json::json!({"type": "MESOS"})),
            ..web_task(None)
        };
        let info = task_info(&without_image);
        assert!(info.container.unwrap().mesos.is_none());
        assert_eq!(info.command.unwrap().value.as_deref(), Some("sleep"));
    }

    /// Only the root disk counts as the offer's disk; PATH and MOUNT disks are listed beside it
    /// with their roots, and BLOCK disks are left out.
    #[test]
    fn disks_with_a_source_are_offered_beside_the_root_disk() {
        use mesos::resource::disk_info::{source::Type, Source};
        let on = |kind, root: &str, size| {
            mesos::Resource::scalar("disk", size, "*")
                .on_disk_source(Source::at_root(kind, root, None))
        };
        let offer = mesos::Offer {
            resources: vec![
                mesos::Resource::scalar("disk", 64.0, "*"),
                on(Type::Mount, "/mnt/d1", 1000.0),
                on(Type::Path, "/srv/p", 500.0),
                on(Type::Block, "/dev/sdb", 900.0),
            ],
            ..Default::default()
        };
        let view = offer_view(&offer);
        assert_eq!(view.disk, 64.0);
        let disks: Vec<(SourceKind, &str, f64)> = view
            .disks
            .iter()
            .map(|d| (d.source.kind, d.source.root.as_str(), d.size_mib))
            .collect();
        assert_eq!(
            disks,
            [
                (SourceKind::Mount, "/mnt/d1", 1000.0),
                (SourceKind::Path, "/srv/p", 500.0)
            ]
        );
    }

    /// A mount volume is reserved and created on its disk; the root disk keeps only the rest.
    #[test]
    fn volumes_are_reserved_and_created_on_their_disk() {
        let spec = ReservationSpec {
            role: "data".into(),
            labels: vec![(FRAMEWORK_LABEL.into(), "f".into())],
            cpus: 0.5,
            mem: 64.0,
            disk: 10.0,
            ports: vec![],
            volumes: vec![crate::scheduler::instance::ReservedVolume {
                persistence_id: "db#data#1".into(),
                container_path: "data".into(),
                size_mib: 2000.0,
                source: Some(DiskSource {
                    kind: SourceKind::Mount,
                    root: "/mnt/d1".into(),
                    profile: None,
                }),
            }],
        };
        let disks: Vec<(f64, Option<String>)> = reserved_resources(&spec)
            .iter()
            .filter(|r| r.name == "disk")
            .map(|r| {
                let root = r.disk_source().map(|s| s.root().to_string());
                (r.scalar.unwrap().value, root)
            })
            .collect();
        assert_eq!(disks, [(10.0, None), (2000.0, Some("/mnt/d1".into()))]);
        let volume = &volumes_of(&spec)[0];
        assert_eq!(volume.disk_source().map(|s| s.root()), Some("/mnt/d1"));
        assert!(volume.persistence().is_some());
        // Offered back, the volume keeps its disk and the root disk only its own.
        let offer = mesos::Offer {
            resources: reserved_resources(&spec)
                .into_iter()
                .filter(|r| r.disk_source().is_none())
                .chain(volumes_of(&spec))
                .collect(),
            ..Default::default()
        };
        let held = &offer_view(&offer).reserved[0];
        assert_eq!(held.disk, 10.0);
        assert_eq!(held.volumes[0].source, spec.volumes[0].source);
    }

    #[test]
    fn a_pod_instance_is_launched_as_a_group_under_the_default_executor() {
        let group = TaskGroupSpec {
            executor_id: "instance-shop_cart.u1".into(),
            agent_id: "a".into(),
            role: "*".into(),
            executor_cpus: 0.1,
            executor_mem: 32.0,
            executor_disk: 10.0,
            tasks: vec![web_task(None), web_task(None)],
        };
        let call = call_of(
            Outgoing::Accept {
                offer_id: "o".into(),
                operations: vec![OfferOperation::LaunchGroup(group)],
                refuse: std::time::Duration::from_secs(5),
            },
            &Caller {
                framework_id: "f",
                principal: None,
            },
        );
        let operation = &call.accept.unwrap().operations[0];
        assert_eq!(
            operation.r#type(),
            mesos::offer::operation::Type::LaunchGroup
        );
        let launch = operation.launch_group.as_ref().unwrap();
        let executor = &launch.executor;
        assert_eq!(executor.executor_id.value, "instance-shop_cart.u1");
        assert_eq!(executor.r#type(), mesos::executor_info::Type::Default);
        assert_eq!(executor.framework_id.as_ref().unwrap().value, "f");
        let names: Vec<&str> = executor.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["cpus", "mem", "disk"]);
        assert_eq!(launch.task_group.tasks.len(), 2);
        assert!(launch.task_group.tasks[0].command.is_some());
    }

    /// With a principal, everything reserved and every volume of an ACCEPT (the launched
    /// task's resources too) is made in its name; without one, nothing names a principal.
    #[test]
    fn reservations_and_volumes_are_made_in_the_principals_name() {
        let spec = ReservationSpec {
            role: "data".into(),
            labels: vec![(FRAMEWORK_LABEL.into(), "f".into())],
            cpus: 0.5,
            mem: 64.0,
            disk: 0.0,
            ports: vec![31000],
            volumes: vec![crate::scheduler::instance::ReservedVolume {
                persistence_id: "db#data#1".into(),
                container_path: "data".into(),
                size_mib: 16.0,
                source: None,
            }],
        };
        let accept = || Outgoing::Accept {
            offer_id: "o".into(),
            operations: vec![
                OfferOperation::Reserve(spec.clone()),
                OfferOperation::Create(spec.clone()),
                OfferOperation::Launch(vec![web_task(Some(spec.clone()))]),
            ],
            refuse: std::time::Duration::from_secs(5),
        };
        let principals = |principal: Option<&str>| {
            let caller = Caller {
                framework_id: "f",
                principal,
            };
            let call = call_of(accept(), &caller);
            let mut seen = Vec::new();
            for operation in call.accept.unwrap().operations {
                let resources = [
                    operation.reserve.map(|r| r.resources),
                    operation.create.map(|c| c.volumes),
                    operation
                        .launch
                        .map(|l| l.task_infos.into_iter().flat_map(|t| t.resources).collect()),
                ];
                for resource in resources.into_iter().flatten().flatten() {
                    let reserved = resource.reservation.as_ref().unwrap();
                    seen.push(reserved.principal.clone());
                    if let Some(persistence) = resource.disk.and_then(|d| d.persistence) {
                        seen.push(persistence.principal);
                    }
                }
            }
            seen
        };
        let signed = principals(Some("ops"));
        // RESERVE: cpus, mem, disk, ports; CREATE: the volume and its persistence; the task:
        // cpus, mem, ports, the volume and its persistence.
        assert_eq!(signed.len(), 4 + 2 + 5, "{signed:?}");
        assert!(
            signed.iter().all(|p| p.as_deref() == Some("ops")),
            "{signed:?}"
        );
        let unsigned = principals(None);
        assert!(unsigned.iter().all(Option::is_none), "{unsigned:?}");
    }
}
