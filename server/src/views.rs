//! Read models: the API's and the dashboard's views of a snapshot, including the words the
//! dashboard uses for why an app waits.

use crate::core::{OfferStats, Snapshot};
use crate::scheduler::backoff;
use crate::scheduler::health::{health_of, Health};
use crate::scheduler::instance::{Condition, Instance};
use crate::scheduler::placement::{DockerEngine, Outcome, Veto};
use app::model::{
    AppDefinition, AppDetail, AppInfo, AppStatus, AppSummary, Identified, LifeTime,
    ReadinessResult, Stats, Task, TaskCounts, TaskRow, TaskStats, TaskStatsByVersion, Timestamp,
};
use std::collections::BTreeMap;

/// An instance as Marathon's task JSON. Instances waiting for their first launch have no task.
pub fn task_of(snapshot: &Snapshot, instance: &Instance) -> Option<Task> {
    let placement = instance.placement.as_ref()?;
    let app = snapshot.definition_of(instance);
    let active = instance.condition.is_active();
    let health_check_results = match (app, snapshot.health.get(&instance.id)) {
        (Some(app), Some(health)) if health.task_id == instance.task_id() => {
            health.results(app, &instance.id)
        }
        _ => Vec::new(),
    };
    Some(Task {
        id: instance.task_id(),
        app_id: instance.app_id.clone(),
        host: placement.hostname.clone(),
        slave_id: Some(placement.agent_id.clone()),
        state: instance.condition.task_state(),
        staged_at: instance.staged_at.filter(|_| active),
        started_at: instance.started_at.filter(|_| active),
        version: Some(instance.app_version).filter(|_| active),
        ports: if active {
            placement.ports.clone()
        } else {
            vec![]
        },
        service_ports: app
            .map(|a| a.service_ports().iter().map(|p| p.port).collect())
            .unwrap_or_default(),
        ip_addresses: vec![],
        health_check_results,
        role: app.map_or_else(|| "*".to_string(), |a| a.role.clone()),
    })
}

pub fn tasks_of(snapshot: &Snapshot, app_id: &str) -> Vec<Task> {
    snapshot
        .instances_of(app_id)
        .filter_map(|i| task_of(snapshot, i))
        .collect()
}

/// Marathon's per-task health for counts: every result alive → healthy, any not → unhealthy,
/// no results (or no checks) → neither.
fn counted_health(snapshot: &Snapshot, instance: &Instance) -> Option<bool> {
    let app = snapshot.definition_of(instance)?;
    if !app.has_health_checks() || instance.condition != Condition::Running {
        return None;
    }
    match health_of(
        app,
        instance,
        snapshot.health.get(&instance.id).map(|h| h.as_ref()),
    ) {
        Health::Healthy => Some(true),
        Health::Unhealthy => Some(false),
        Health::Unknown => None,
    }
}

fn counts<'a>(snapshot: &Snapshot, instances: impl Iterator<Item = &'a Instance>) -> TaskCounts {
    let mut c = TaskCounts::default();
    for i in instances {
        match i.condition {
            Condition::Running => c.running += 1,
            Condition::Provisioned | Condition::Staging | Condition::Starting => c.staged += 1,
            _ => {}
        }
        match counted_health(snapshot, i) {
            Some(true) => c.healthy += 1,
            Some(false) => c.unhealthy += 1,
            None => {}
        }
    }
    c
}

/// What a request embeds into an app (`embed=` of `/v2/apps`, `/v2/groups`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Embed {
    pub counts: bool,
    pub deployments: bool,
    pub readiness: bool,
    pub tasks: bool,
    pub last_task_failure: bool,
    pub task_stats: bool,
}

impl Embed {
    /// `GET /v2/apps/{id}`: counts, tasks, the last failure and deployments are always there.
    pub const APP: Embed = Embed {
        counts: true,
        deployments: true,
        readiness: false,
        tasks: true,
        last_task_failure: true,
        task_stats: false,
    };

    /// Reads Marathon's `embed` values (`apps.tasks`, `app.counts`, `group.apps.readiness`, bare
    /// `tasks`…; `failures` = tasks, last failure and deployments). Unknown values are ignored.
    pub fn parse<'a>(values: impl Iterator<Item = &'a str>, base: Embed) -> Embed {
        let mut embed = base;
        for value in values {
            let bare = ["group.apps.", "apps.", "app."]
                .iter()
                .find_map(|p| value.strip_prefix(p))
                .unwrap_or(value);
            match bare {
                "counts" => embed.counts = true,
                "deployments" => embed.deployments = true,
                "readiness" => embed.readiness = true,
                "tasks" => {
                    embed.tasks = true;
                    embed.deployments = true;
                }
                "lastTaskFailure" => embed.last_task_failure = true,
                "taskStats" => embed.task_stats = true,
                "failures" => {
                    embed.tasks = true;
                    embed.last_task_failure = true;
                    embed.deployments = true;
                }
                _ => {}
            }
        }
        embed
    }
}

/// An app with what `embed` asks for.
pub fn app_info(snapshot: &Snapshot, app: &AppDefinition, embed: Embed) -> AppInfo {
    let c = embed
        .counts
        .then(|| counts(snapshot, snapshot.instances_of(&app.id).map(|i| i.as_ref())));
    AppInfo {
        app: app.clone(),
        tasks_staged: c.map(|c| c.staged),
        tasks_running: c.map(|c| c.running),
        tasks_healthy: c.map(|c| c.healthy),
        tasks_unhealthy: c.map(|c| c.unhealthy),
        deployments: embed.deployments.then(|| {
            snapshot
                .deployments_of(&app.id)
                .map(|d| Identified { id: d.id.clone() })
                .collect()
        }),
        readiness_check_results: embed.readiness.then(|| readiness_of(snapshot, &app.id)),
        tasks: embed.tasks.then(|| tasks_of(snapshot, &app.id)),
        last_task_failure: if embed.last_task_failure {
            snapshot.last_failures.get(&app.id).cloned()
        } else {
            None
        },
        task_stats: embed.task_stats.then(|| task_stats(snapshot, app)),
    }
}

/// The readiness results of an app's current tasks.
pub fn readiness_of(snapshot: &Snapshot, app_id: &str) -> Vec<ReadinessResult> {
    snapshot
        .instances_of(app_id)
        .filter_map(|i| snapshot.readiness.get(&i.task_id()).cloned())
        .collect()
}

/// The `taskStats` embed: running and staged tasks by how they relate to the app's versions,
/// with life times of the running ones.
fn task_stats(snapshot: &Snapshot, app: &AppDefinition) -> TaskStatsByVersion {
    let now = crate::service::now();
    let active: Vec<&Instance> = snapshot
        .instances_of(&app.id)
        .map(|i| i.as_ref())
        .filter(|i| i.condition.is_active())
        .collect();
    let stats_of = |instances: Vec<&Instance>| -> Option<TaskStats> {
        if instances.is_empty() {
            return None;
        }
        let mut lives: Vec<f64> = instances
            .iter()
            .filter_map(|i| i.started_at)
            .map(|t| (now.millis() - t.millis()).max(0) as f64 / 1000.0)
            .collect();
        lives.sort_by(f64::total_cmp);
        let life_time = (!lives.is_empty()).then(|| LifeTime {
            average_seconds: lives.iter().sum::<f64>() / lives.len() as f64,
            median_seconds: if lives.len() % 2 == 1 {
                lives[lives.len() / 2]
            } else {
                (lives[lives.len() / 2 - 1] + lives[lives.len() / 2]) / 2.0
            },
        });
        Some(TaskStats {
            stats: Stats {
                counts: counts(snapshot, instances.into_iter()),
                life_time,
            },
        })
    };
    let scaled_at = app.version_info.last_scaling_at.unwrap_or(app.version);
    let config = app.config_version();
    TaskStatsByVersion {
        started_after_last_scaling: stats_of(
            active
                .iter()
                .copied()
                .filter(|i| i.staged_at.is_some_and(|t| t >= scaled_at))
                .collect(),
        ),
        with_latest_config: stats_of(
            active
                .iter()
                .copied()
                .filter(|i| i.config_version == config)
                .collect(),
        ),
        with_outdated_config: stats_of(
            active
                .iter()
                .copied()
                .filter(|i| i.config_version != config)
                .collect(),
        ),
        total_summary: stats_of(active),
    }
}

fn delay_left_ms(snapshot: &Snapshot, app: &AppDefinition, now: Timestamp) -> Option<i64> {
    snapshot
        .backoffs
        .get(&(app.id.clone(), app.config_version()))
        .filter(|b| backoff::blocks_launch(Some(**b), now))
        .map(|b| (b.deadline.millis() - now.millis()).max(0))
}

/// What a checker's refusal means, in words.
fn lacked(veto: Veto) -> &'static str {
    match veto {
        Veto::UnfulfilledRole => "had no resources of a role the app accepts",
        Veto::UnfulfilledConstraint => "did not satisfy the placement constraints",
        Veto::InsufficientCpus => "lacked CPUs",
        Veto::InsufficientMemory => "lacked memory",
        Veto::InsufficientDisk => "lacked disk",
        Veto::InsufficientPorts => "lacked ports",
        Veto::NoDockerEngine => "came from agents without a Docker engine",
    }
}

/// Why an app's instances wait, in words, from its launch delay and what the latest offer of
/// each agent said: "Waiting: 3 of 4 offers lacked memory".
pub fn waiting_reasons(snapshot: &Snapshot, app: &AppDefinition, now: Timestamp) -> Vec<String> {
    let waiting = snapshot
        .instances_of(&app.id)
        .filter(|i| i.wants_launch())
        .count();
    if waiting == 0 {
        return Vec::new();
    }
    let mut reasons = Vec::new();
    if let Some(left) = delay_left_ms(snapshot, app, now) {
        let delay = snapshot
            .backoffs
            .get(&(app.id.clone(), app.config_version()))
            .map_or(0, |b| b.delay_ms);
        reasons.push(format!(
            "Delayed after a failed task: next launch in {:.1} s (backoff {:.1} s)",
            left as f64 / 1000.0,
            delay as f64 / 1000.0
        ));
    }
    if let Some(stats) = snapshot.offer_stats.get(&app.id) {
        reasons.extend(offer_reasons(stats, app));
    }
    if !snapshot.connected {
        reasons.push("Waiting for the Mesos master: not subscribed".into());
    }
    if reasons.is_empty() {
        // No offer has been weighed for it yet: say so rather than nothing.
        reasons.push("Waiting for an offer from the Mesos master".into());
    }
    reasons
}

/// One line per checker that refused some agent's latest offer; constraints are named, one
/// line per constraint that refused ("… did not satisfy the constraint hostname:UNIQUE").
fn offer_reasons(stats: &OfferStats, app: &AppDefinition) -> Vec<String> {
    let offers = stats.last_by_agent.len() as u64;
    let noun = if offers == 1 { "offer" } else { "offers" };
    let mut reasons = Vec::new();
    for (veto, _, declined) in stats.last_offers() {
        if declined == 0 {
            continue;
        }
        if veto == Veto::NoDockerEngine {
            reasons.extend(without_engines(stats));
            continue;
        }
        if veto != Veto::UnfulfilledConstraint {
            reasons.push(format!(
                "Waiting: {declined} of {offers} {noun} {}",
                lacked(veto)
            ));
            continue;
        }
        let mut by_constraint: BTreeMap<usize, u64> = BTreeMap::new();
        for last in stats.last_by_agent.values() {
            if let Outcome::Unfulfilled(n) = last.outcome {
                *by_constraint.entry(n).or_default() += 1;
            }
        }
        for (n, declined) in by_constraint {
            let what = app.constraints.get(n).map_or_else(
                || "the placement constraints".to_string(),
                |c| format!("the constraint {}", c.join(":")),
            );
            reasons.push(format!(
                "Waiting: {declined} of {offers} {noun} did not satisfy {what}"
            ));
        }
    }
    reasons
}

/// "Waiting: no Docker engine on agent X (why)" for each agent whose latest offer came without
/// an engine.
fn without_engines(stats: &OfferStats) -> impl Iterator<Item = String> + '_ {
    stats
        .last_by_agent
        .values()
        .filter(|last| last.outcome.veto() == Some(Veto::NoDockerEngine))
        .filter_map(|last| match &last.offer.docker_engine {
            DockerEngine::Missing(why) => Some(format!(
                "Waiting: no Docker engine on agent {} ({why})",
                last.offer.hostname
            )),
            DockerEngine::Unknown | DockerEngine::Reachable => None,
        })
}

pub fn app_status(snapshot: &Snapshot, app: &AppDefinition, now: Timestamp) -> AppStatus {
    let waiting = snapshot.instances_of(&app.id).any(|i| i.wants_launch());
    let vetoed = snapshot
        .offer_stats
        .get(&app.id)
        .is_some_and(|s| s.last_offers().iter().any(|(_, _, declined)| *declined > 0));
    if waiting && delay_left_ms(snapshot, app, now).is_some() {
        AppStatus::Delayed
    } else if waiting && vetoed {
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
    let c = counts(snapshot, snapshot.instances_of(&app.id).map(|i| i.as_ref()));
    AppSummary {
        id: app.id.clone(),
        status: app_status(snapshot, app, now),
        instances: app.instances,
        running: c.running,
        staged: c.staged,
        healthy: c.healthy,
        unhealthy: c.unhealthy,
        has_health_checks: app.has_health_checks(),
        cpus: app.cpus,
        mem: app.mem,
        version: app.version,
        waiting_reasons: waiting_reasons(snapshot, app, now),
    }
}

/// Everything the app page shows of `app_id`, with where `discovery` makes it reachable.
pub fn app_detail(
    snapshot: &Snapshot,
    app_id: &str,
    discovery: &crate::lb::Discovery,
    now: Timestamp,
) -> Option<AppDetail> {
    let app = snapshot.apps.get(app_id)?;
    let reachable = crate::lb::reachable(snapshot, app, discovery);
    let tasks = snapshot
        .instances_of(app_id)
        .filter_map(|i| {
            let task = task_of(snapshot, i)?;
            Some(TaskRow {
                rotation: reachable.rotations.get(&task.id).copied(),
                task,
                message: i.message.clone(),
                healthy: counted_health(snapshot, i),
                outdated: i.config_version != app.config_version(),
            })
        })
        .collect();
    Some(AppDetail {
        summary: app_summary(snapshot, app, now),
        app: (**app).clone(),
        tasks,
        last_task_failure: snapshot.last_failures.get(app_id).cloned(),
        deployments: snapshot
            .deployments_of(app_id)
            .map(|d| deployment_view(snapshot, d))
            .collect(),
        volumes: snapshot
            .instances_of(app_id)
            .flat_map(|i| volume_rows(i))
            .collect(),
        service_ports: reachable.service_ports,
        dns_name: reachable.dns_name,
    })
}

/// The volumes an instance holds on its reservation.
fn volume_rows(instance: &crate::scheduler::instance::Instance) -> Vec<app::model::VolumeRow> {
    let Some(reservation) = &instance.reservation else {
        return Vec::new();
    };
    reservation
        .volumes
        .iter()
        .map(|v| app::model::VolumeRow {
            persistence_id: v.persistence_id.clone(),
            container_path: v.container_path.clone(),
            size_mib: v.size_mib,
            disk: match &v.source {
                None => "root".into(),
                Some(source) => {
                    let kind = match source.kind {
                        crate::scheduler::disks::SourceKind::Path => "path",
                        crate::scheduler::disks::SourceKind::Mount => "mount",
                    };
                    format!("{kind} {}", source.root)
                }
            },
            host: reservation.hostname.clone(),
            instance_id: instance.id.clone(),
            attached: instance.condition.is_active(),
        })
        .collect()
}

/// A deployment with how far each of its apps is, for the dashboard.
pub fn deployment_view(
    snapshot: &Snapshot,
    d: &crate::scheduler::deployment::Deployment,
) -> app::model::DeploymentView {
    let progress = d
        .steps
        .iter()
        .enumerate()
        .flat_map(|(n, step)| step.actions.iter().map(move |a| (n, a)))
        .map(|(n, action)| {
            let app = snapshot.apps.get(&action.app);
            let config = app.map(|a| a.config_version());
            let mut p = app::model::ActionProgress {
                app: action.app.clone(),
                action: action.action,
                current: n == d.current_step,
                target: app.map_or(0, |a| a.instances),
                new_total: 0,
                new_running: 0,
                new_ready: 0,
                old_left: 0,
            };
            for i in snapshot.instances_of(&action.app) {
                if Some(i.config_version) == config
                    && i.goal == crate::scheduler::instance::Goal::Running
                {
                    p.new_total += 1;
                    p.new_running += u32::from(i.condition == Condition::Running);
                    p.new_ready += u32::from(snapshot.judge(i, Some(d)).healthy_and_ready());
                } else if i.condition.is_active() {
                    p.old_left += 1;
                }
            }
            p
        })
        .collect();
    app::model::DeploymentView {
        info: deployment_info(snapshot, d),
        progress,
        deadline: d.deadline,
        auto_rollback: d.auto_rollback,
    }
}

/// A deployment as `GET /v2/deployments` lists it, with the readiness of the current actions'
/// tasks.
pub fn deployment_info(
    snapshot: &Snapshot,
    d: &crate::scheduler::deployment::Deployment,
) -> app::model::DeploymentInfo {
    app::model::DeploymentInfo {
        id: d.id.clone(),
        version: d.version,
        affected_apps: d.affected_apps(),
        affected_pods: vec![],
        steps: d.steps.clone(),
        current_actions: d
            .current()
            .map(|s| {
                s.actions
                    .iter()
                    .map(|a| app::model::CurrentAction {
                        action: a.action,
                        app: a.app.clone(),
                        readiness_check_results: readiness_of(snapshot, &a.app),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        current_step: (d.current_step + 1).min(d.steps.len()) as u32,
        total_steps: d.steps.len() as u32,
    }
}

/// What a group request embeds (`embed=group.groups`, `group.apps`, `group.pods`, and app
/// embeds as `group.apps.tasks`…). Without any, groups, apps and pods are in, apps bare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupEmbed {
    pub groups: bool,
    pub apps: bool,
    pub pods: bool,
    pub app: Embed,
}

impl GroupEmbed {
    pub fn parse<'a>(values: impl Iterator<Item = &'a str> + Clone) -> GroupEmbed {
        if values.clone().next().is_none() {
            return GroupEmbed {
                groups: true,
                apps: true,
                pods: true,
                app: Embed::default(),
            };
        }
        let has = |name: &str| values.clone().any(|v| v == name);
        GroupEmbed {
            groups: has("group.groups"),
            apps: has("group.apps"),
            pods: has("group.pods"),
            app: Embed::parse(
                values.clone().filter(|v| v.starts_with("group.apps.")),
                Embed::default(),
            ),
        }
    }
}

/// A tree to render groups from: the current one, or one stored in a version.
pub struct TreeView<'a> {
    pub groups: BTreeMap<&'a str, &'a app::model::GroupDefinition>,
    pub apps: BTreeMap<&'a str, &'a AppDefinition>,
    /// The root group's version.
    pub version: Timestamp,
}

impl<'a> TreeView<'a> {
    pub fn of_snapshot(snapshot: &'a Snapshot) -> TreeView<'a> {
        TreeView {
            groups: snapshot
                .groups
                .iter()
                .map(|(id, g)| (id.as_str(), g.as_ref()))
                .collect(),
            apps: snapshot
                .apps
                .iter()
                .map(|(id, a)| (id.as_str(), a.as_ref()))
                .collect(),
            version: snapshot.tree_version,
        }
    }

    pub fn exists(&self, group: &str) -> bool {
        group == "/" || self.groups.contains_key(group)
    }

    /// The entries of `map` whose ids lie below `group`: one range of the sorted map.
    fn below<'b, T>(
        map: &'b std::collections::BTreeMap<&'a str, T>,
        group: &str,
    ) -> Vec<(&'a str, &'b T)> {
        let prefix = if group == "/" {
            "/".to_string()
        } else {
            format!("{group}/")
        };
        use std::ops::Bound;
        map.range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .take_while(|(id, _)| id.starts_with(&prefix))
            .map(|(id, v)| (*id, v))
            .collect()
    }

    /// The apps anywhere below `group`.
    pub fn apps_within(&self, group: &str) -> Vec<&'a AppDefinition> {
        Self::below(&self.apps, group)
            .into_iter()
            .map(|(_, a)| *a)
            .collect()
    }
}

/// A group as the API shows it; `app_info` renders its apps.
pub fn group_info(
    tree: &TreeView<'_>,
    group: &str,
    embed: GroupEmbed,
    app_info: &dyn Fn(&AppDefinition) -> AppInfo,
) -> app::model::GroupInfo {
    let definition = tree.groups.get(group);
    let direct = |id: &str| app::model::path::parent(id) == group && id != group;
    app::model::GroupInfo {
        id: group.to_string(),
        apps: embed.apps.then(|| {
            TreeView::below(&tree.apps, group)
                .into_iter()
                .filter(|(id, _)| direct(id))
                .map(|(_, a)| app_info(a))
                .collect()
        }),
        pods: embed.pods.then(Vec::new),
        groups: embed.groups.then(|| {
            TreeView::below(&tree.groups, group)
                .into_iter()
                .filter(|(id, _)| direct(id))
                .map(|(id, _)| group_info(tree, id, embed, app_info))
                .collect()
        }),
        dependencies: definition
            .map(|g| g.dependencies.clone())
            .unwrap_or_default(),
        version: definition.map_or(tree.version, |g| g.version),
        enforce_role: definition.is_some_and(|g| g.enforce_role),
    }
}
