//! Local persistent volumes and residency (SEMANTICS.md §14): the typed view of the persistent
//! entries of `container.volumes`, the rules Marathon checks for them, and the resident app's
//! defaults.
//!
//! The rest of `container` stays JSON (the container issue types it); only what residency acts
//! on is read here.

use super::app::{AppDefinition, UnreachableStrategy, UpgradeStrategy};
use super::validate::Violation;
use serde::{Deserialize, Serialize};

/// Where a persistent volume's disk comes from (Mesos' disk source types).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskType {
    /// The agent's work directory.
    #[default]
    Root,
    /// A directory the agent operator offers as a disk resource.
    Path,
    /// A whole mounted disk, used exclusively.
    Mount,
}

/// `persistent` of an app volume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentInfo {
    #[serde(default, rename = "type")]
    pub disk_type: DiskType,
    /// MiB.
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Vec<String>>,
}

/// One persistent volume of an app: a directory that outlives its tasks, on the agent the
/// instance is pinned to, seen by the task at `container_path` in its sandbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolume {
    pub container_path: String,
    #[serde(default = "read_write")]
    pub mode: String,
    pub persistent: PersistentInfo,
}

fn read_write() -> String {
    "RW".into()
}

/// Marathon's deprecated `residency` object: emitted for resident apps, acted on by nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Residency {
    #[serde(default = "escalation_timeout")]
    pub relaunch_escalation_timeout_seconds: i64,
    #[serde(default = "wait_forever")]
    pub task_lost_behavior: String,
}

fn escalation_timeout() -> i64 {
    3600
}

fn wait_forever() -> String {
    "WAIT_FOREVER".into()
}

impl Default for Residency {
    fn default() -> Self {
        Residency {
            relaunch_escalation_timeout_seconds: escalation_timeout(),
            task_lost_behavior: wait_forever(),
        }
    }
}

/// Marathon's upgrade strategy for apps with persistent volumes: never more instances than
/// reservations, half of them may be down.
pub const RESIDENT_UPGRADE_STRATEGY: UpgradeStrategy = UpgradeStrategy {
    minimum_health_capacity: 0.5,
    maximum_over_capacity: 0.0,
    deployment_timeout_seconds: None,
    auto_rollback: None,
};

impl AppDefinition {
    /// The persistent entries of `container.volumes` with their index in that list; entries that
    /// are not persistent volumes (host, external, secret) are left out, as are malformed ones
    /// (validation reports those).
    pub fn persistent_volumes(&self) -> Vec<(usize, PersistentVolume)> {
        let Some(volumes) = self
            .container
            .as_ref()
            .and_then(|c| c.get("volumes"))
            .and_then(|v| v.as_array())
        else {
            return Vec::new();
        };
        volumes
            .iter()
            .enumerate()
            .filter(|(_, v)| v.get("persistent").is_some())
            .filter_map(|(i, v)| Some((i, serde_json::from_value(v.clone()).ok()?)))
            .collect()
    }

    /// Has persistent volumes: its instances reserve resources and stay on their agent.
    pub fn is_resident(&self) -> bool {
        self.container
            .as_ref()
            .and_then(|c| c.get("volumes"))
            .and_then(|v| v.as_array())
            .is_some_and(|volumes| volumes.iter().any(|v| v.get("persistent").is_some()))
    }
}

/// Violations of Marathon's rules for persistent volumes and resident apps.
pub fn residency_violations(app: &AppDefinition) -> Vec<Violation> {
    let mut out: Vec<Violation> = Vec::new();
    let mut add = |path: String, error: &str| match out.iter_mut().find(|v| v.path == path) {
        Some(v) => v.errors.push(error.to_string()),
        None => out.push(Violation {
            path,
            errors: vec![error.to_string()],
        }),
    };
    if !app.is_resident() {
        return out;
    }
    let volumes = app
        .container
        .as_ref()
        .and_then(|c| c.get("volumes"))
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    for (i, raw) in volumes.iter().enumerate() {
        if raw.get("persistent").is_none() {
            continue;
        }
        let at = |field: &str| format!("/container/volumes({i}){field}");
        let Ok(volume) = serde_json::from_value::<PersistentVolume>(raw.clone()) else {
            add(at("/persistent"), "is not a valid persistent volume");
            continue;
        };
        let path = volume.container_path.as_str();
        if path.is_empty() {
            add(at("/containerPath"), "must not be empty");
        } else if path.contains('/') {
            add(at("/containerPath"), "value must not contain \"/\"");
        } else if path == "." || path == ".." {
            add(at("/containerPath"), "value must not be \".\" or \"..\"");
        }
        if volume.mode != "RW" {
            add(at("/mode"), "must be RW");
        }
        let persistent = &volume.persistent;
        if persistent.size <= 0 {
            add(
                at("/persistent/size"),
                &format!("got {}, expected 1 or more", persistent.size),
            );
        }
        match persistent.max_size {
            Some(_) if persistent.disk_type != DiskType::Mount => {
                add(at("/persistent"), "Only mount volumes can have maxSize")
            }
            Some(max) if max <= persistent.size => {
                add(at("/persistent"), "Max size must be larger than size")
            }
            _ => {}
        }
        if persistent.disk_type == DiskType::Root && !persistent.constraints.is_empty() {
            add(
                at("/persistent"),
                "Constraints on root volumes are not supported",
            );
        }
        for (k, c) in persistent.constraints.iter().enumerate() {
            if let Some(error) = volume_constraint_error(c) {
                add(at(&format!("/persistent/constraints({k})")), &error);
            }
        }
    }
    if app.role == "*" {
        add("/role".into(), "Resident apps cannot have the role *");
    }
    if app.unreachable_strategy != UnreachableStrategy::Disabled {
        add(
            "/unreachableStrategy".into(),
            "unreachableStrategy must be disabled for resident tasks",
        );
    }
    if app.upgrade_strategy.maximum_over_capacity != 0.0 {
        add(
            "/upgradeStrategy/maximumOverCapacity".into(),
            "must be 0 for apps with persistent volumes (an instance cannot run beside its own reservation)",
        );
    }
    out
}

/// Marathon's rule for a `persistent.constraints` entry: `["path", "LIKE"|"UNLIKE", regex]`,
/// operators spelled as Marathon's enum (case matters).
fn volume_constraint_error(c: &[String]) -> Option<String> {
    const OPERATORS: [&str; 7] = [
        "UNIQUE", "LIKE", "CLUSTER", "GROUP_BY", "UNLIKE", "MAX_PER", "IS",
    ];
    match (c.first(), c.get(1), c.get(2)) {
        (None, None, _) => Some("Missing field and operator".into()),
        (Some(field), Some(op), Some(value)) if field == "path" => match op.as_str() {
            "LIKE" | "UNLIKE" => regex::Regex::new(value)
                .is_err()
                .then(|| "Invalid regular expression".into()),
            known if OPERATORS.contains(&known) => {
                Some("Operator must be one of LIKE, UNLIKE".into())
            }
            unknown => Some(format!("unknown constraint operator {unknown}")),
        },
        _ => Some(format!("Unsupported constraint {}", c.join(","))),
    }
}

/// What a running resident app may not change (its reservations would no longer fit): Marathon's
/// messages, on the update `next` of `previous`. Its role changes only with `force`: the
/// reservations keep the role they were made for, so existing instances stay on it.
pub fn resident_change_violations(
    previous: &AppDefinition,
    next: &AppDefinition,
    force: bool,
) -> Vec<Violation> {
    if !previous.is_resident() {
        return Vec::new();
    }
    let mut out = Vec::new();
    if previous.role != next.role && !force {
        out.push(Violation {
            path: "/role".into(),
            errors: vec![format!(
                "It is not possible to change the role for existing reservations. If you proceed with this change, all existing instances will continue to run under the previous role, {}. Only new instances will be allocated with the new role, {}. In order to continue, retry your request with ?force=true",
                previous.role, next.role
            )],
        });
    }
    // A port 0 in the update keeps the port the app was given (see the service ports).
    let same_ports = previous.port_definitions.len() == next.port_definitions.len()
        && previous
            .port_definitions
            .iter()
            .zip(&next.port_definitions)
            .all(|(before, after)| after.port == 0 || after.port == before.port);
    let resources_changed = previous.cpus != next.cpus
        || previous.mem != next.mem
        || previous.disk != next.disk
        || previous.gpus != next.gpus
        || previous.require_ports != next.require_ports
        || !same_ports;
    if resources_changed {
        out.push(Violation {
            path: "/".into(),
            errors: vec!["Services with persistent volumes configured may not change resource requirements. Please create a new app instead.".into()],
        });
    }
    let volumes = |app: &AppDefinition| -> Vec<PersistentVolume> {
        app.persistent_volumes()
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    };
    if volumes(previous) != volumes(next) {
        out.push(Violation {
            path: "/container/volumes".into(),
            errors: vec!["Persistent volumes can not be changed!".into()],
        });
    }
    out
}

/// Marathon's defaults for a new resident app, for the fields its body did not set.
pub fn apply_resident_defaults(
    app: &mut AppDefinition,
    sets_upgrade_strategy: bool,
    sets_unreachable_strategy: bool,
) {
    if !app.is_resident() {
        return;
    }
    if !sets_upgrade_strategy {
        app.upgrade_strategy = RESIDENT_UPGRADE_STRATEGY;
    }
    if !sets_unreachable_strategy {
        app.unreachable_strategy = UnreachableStrategy::Disabled;
    }
    if app.residency.is_none() {
        app.residency = Some(Residency::default());
    }
}
