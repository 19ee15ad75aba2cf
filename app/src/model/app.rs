//! The app definition (Marathon's `App`), its partial-update form and how the two merge.

use super::checks::{HealthCheck, ReadinessCheck};
use super::pod::PodDefinition;
use super::residency::{apply_resident_defaults, Residency};
use super::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// An environment value: plain text or a reference to a secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EnvValue {
    Plain(String),
    Secret { secret: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortDefinition {
    #[serde(default)]
    pub port: i64,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

fn default_protocol() -> String {
    "tcp".to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStrategy {
    #[serde(default = "one")]
    pub minimum_health_capacity: f64,
    #[serde(default = "one")]
    pub maximum_over_capacity: f64,
    /// Stride's: a deployment of this app that has not finished after this many seconds fails
    /// (absent: it may take forever, as in Marathon). Written only when set, because strict
    /// Marathon clients reject fields they do not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_timeout_seconds: Option<u64>,
    /// Stride's: roll a failed (timed-out) deployment back by itself. Written only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_rollback: Option<bool>,
}

fn one() -> f64 {
    1.0
}

impl Default for UpgradeStrategy {
    fn default() -> Self {
        UpgradeStrategy {
            minimum_health_capacity: 1.0,
            maximum_over_capacity: 1.0,
            deployment_timeout_seconds: None,
            auto_rollback: None,
        }
    }
}

/// Which instances go first when an app scales down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KillSelection {
    #[default]
    YoungestFirst,
    OldestFirst,
}

/// What happens to instances on an agent that cannot be reached (SEMANTICS.md §13): written
/// `"disabled"` (wait for the agent forever) or `{inactiveAfterSeconds, expungeAfterSeconds}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnreachableStrategy {
    Disabled,
    /// After `inactive_after_seconds` unreachable, an instance no longer counts and is replaced;
    /// after `expunge_after_seconds` it is forgotten.
    Enabled {
        inactive_after_seconds: i64,
        expunge_after_seconds: i64,
    },
}

impl Default for UnreachableStrategy {
    /// Marathon's default for apps without persistent volumes.
    fn default() -> Self {
        UnreachableStrategy::Enabled {
            inactive_after_seconds: 0,
            expunge_after_seconds: 0,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UnreachableEnabled {
    #[serde(default)]
    inactive_after_seconds: i64,
    #[serde(default)]
    expunge_after_seconds: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum UnreachableJson {
    Word(String),
    Enabled(UnreachableEnabled),
}

impl Serialize for UnreachableStrategy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            UnreachableStrategy::Disabled => UnreachableJson::Word("disabled".into()),
            UnreachableStrategy::Enabled {
                inactive_after_seconds,
                expunge_after_seconds,
            } => UnreachableJson::Enabled(UnreachableEnabled {
                inactive_after_seconds,
                expunge_after_seconds,
            }),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for UnreachableStrategy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match UnreachableJson::deserialize(deserializer)? {
            UnreachableJson::Word(word) if word == "disabled" => Ok(UnreachableStrategy::Disabled),
            UnreachableJson::Word(word) => Err(serde::de::Error::custom(format!(
                "unreachableStrategy must be \"disabled\" or an object, not \"{word}\""
            ))),
            UnreachableJson::Enabled(e) => Ok(UnreachableStrategy::Enabled {
                inactive_after_seconds: e.inactive_after_seconds,
                expunge_after_seconds: e.expunge_after_seconds,
            }),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub last_scaling_at: Option<Timestamp>,
    pub last_config_change_at: Option<Timestamp>,
}

/// A complete, normalised app definition as stored and returned by the API.
///
/// Fields Stride does not act on yet (containers, health and readiness checks, networks, …) are
/// kept as JSON so that they round-trip unchanged and count as configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDefinition {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, EnvValue>,
    pub instances: i64,
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    pub gpus: i64,
    pub executor: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_resource_roles: Vec<String>,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Value>,
    pub networks: Vec<Value>,
    pub port_definitions: Vec<PortDefinition>,
    pub require_ports: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fetch: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<HealthCheck>,
    /// Mesos' informational `check`, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readiness_checks: Vec<ReadinessCheck>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    pub upgrade_strategy: UpgradeStrategy,
    pub labels: BTreeMap<String, String>,
    pub backoff_seconds: i64,
    pub backoff_factor: f64,
    pub max_launch_delay_seconds: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_kill_grace_period_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, Value>,
    pub unreachable_strategy: UnreachableStrategy,
    pub kill_selection: KillSelection,
    /// Marathon's deprecated residency settings: set for apps with persistent volumes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residency: Option<Residency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
    pub version: Timestamp,
    pub version_info: VersionInfo,
    /// Set when this is a pod's run spec ([`PodDefinition::run_spec`]): the pod it schedules.
    /// Pods are never shown as apps, so Marathon's app JSON never carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Box<PodDefinition>>,
}

/// A partial app as sent by clients: every field optional. Creation fills defaults, a partial
/// update replaces exactly the fields present (Marathon merges top-level fields, never deeper).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, EnvValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpus: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Vec<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_resource_roles: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_definitions: Option<Vec<PortDefinition>>,
    /// Deprecated input form of `portDefinitions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_ports: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetch: Option<Vec<Value>>,
    /// Deprecated input form of `fetch`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uris: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_checks: Option<Vec<HealthCheck>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness_checks: Option<Vec<ReadinessCheck>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade_strategy: Option<UpgradeStrategy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_factor: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_launch_delay_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_kill_grace_period_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets: Option<BTreeMap<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable_strategy: Option<UnreachableStrategy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill_selection: Option<KillSelection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub residency: Option<Residency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
    /// On an update: roll back to this stored version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<Timestamp>,
}

impl AppUpdate {
    /// True when the update names nothing but (optionally) the id and a version: a rollback.
    pub fn is_rollback(&self) -> bool {
        self.version.is_some()
            && AppUpdate {
                id: None,
                version: None,
                ..self.clone()
            } == AppUpdate::default()
    }
}

/// The defaults Marathon gives a new app, before the update's fields are applied.
fn defaults(id: String, version: Timestamp) -> AppDefinition {
    AppDefinition {
        id,
        cmd: None,
        args: Vec::new(),
        user: None,
        env: BTreeMap::new(),
        instances: 1,
        cpus: 1.0,
        mem: 128.0,
        disk: 0.0,
        gpus: 0,
        executor: String::new(),
        constraints: Vec::new(),
        accepted_resource_roles: Vec::new(),
        role: "*".to_string(),
        container: None,
        networks: vec![serde_json::json!({"mode": "host"})],
        port_definitions: vec![PortDefinition {
            port: 0,
            protocol: default_protocol(),
            name: Some("default".to_string()),
            labels: BTreeMap::new(),
        }],
        require_ports: false,
        fetch: Vec::new(),
        health_checks: Vec::new(),
        check: None,
        readiness_checks: Vec::new(),
        dependencies: Vec::new(),
        upgrade_strategy: UpgradeStrategy::default(),
        labels: BTreeMap::new(),
        backoff_seconds: 1,
        backoff_factor: 1.15,
        max_launch_delay_seconds: 300,
        task_kill_grace_period_seconds: None,
        secrets: BTreeMap::new(),
        unreachable_strategy: UnreachableStrategy::default(),
        kill_selection: KillSelection::YoungestFirst,
        residency: None,
        tty: None,
        version,
        version_info: VersionInfo {
            last_scaling_at: Some(version),
            last_config_change_at: Some(version),
        },
        pod: None,
    }
}

impl AppDefinition {
    /// A new app from a client's body. `id` is the already-normalised absolute id.
    pub fn create(id: String, update: AppUpdate, now: Timestamp) -> AppDefinition {
        defaults(id, now).merged(update)
    }

    /// This app with the fields present in `update` replacing its own (not yet re-versioned).
    pub fn merged(&self, update: AppUpdate) -> AppDefinition {
        let mut app = self.clone();
        let sets_cmd = update.cmd.is_some();
        let sets_args = update.args.is_some();
        let sets_upgrade_strategy = update.upgrade_strategy.is_some();
        let sets_unreachable_strategy = update.unreachable_strategy.is_some();
        macro_rules! take {
            ($($field:ident),*) => { $( if let Some(v) = update.$field { app.$field = v; } )* };
        }
        take!(
            instances,
            cpus,
            mem,
            disk,
            gpus,
            executor,
            constraints,
            accepted_resource_roles,
            role,
            networks,
            port_definitions,
            require_ports,
            fetch,
            health_checks,
            readiness_checks,
            dependencies,
            upgrade_strategy,
            labels,
            backoff_seconds,
            backoff_factor,
            max_launch_delay_seconds,
            secrets,
            unreachable_strategy,
            kill_selection,
            args,
            env
        );
        if update.cmd.is_some() {
            app.cmd = update.cmd;
        }
        if update.user.is_some() {
            app.user = update.user;
        }
        if update.container.is_some() {
            app.container = update.container;
        }
        if update.check.is_some() {
            app.check = update.check;
        }
        if update.task_kill_grace_period_seconds.is_some() {
            app.task_kill_grace_period_seconds = update.task_kill_grace_period_seconds;
        }
        if update.tty.is_some() {
            app.tty = update.tty;
        }
        if update.residency.is_some() {
            app.residency = update.residency;
        }
        if let Some(ports) = update.ports {
            app.port_definitions = ports
                .into_iter()
                .map(|port| PortDefinition {
                    port,
                    protocol: default_protocol(),
                    name: None,
                    labels: BTreeMap::new(),
                })
                .collect();
        }
        if let Some(uris) = update.uris {
            app.fetch = uris
                .into_iter()
                .map(|uri| serde_json::json!({"uri": uri, "extract": true, "executable": false, "cache": false}))
                .collect();
        }
        // The args form wins over an inherited cmd and the other way round, so that a partial
        // update switching between them does not produce an invalid app.
        if sets_args && !sets_cmd && !app.args.is_empty() {
            app.cmd = None;
        }
        if sets_cmd && !sets_args {
            app.args.clear();
        }
        let has_ports = !app.port_definitions.is_empty();
        app.health_checks = std::mem::take(&mut app.health_checks)
            .into_iter()
            .map(|check| check.normalized(has_ports))
            .collect();
        if !self.is_resident() {
            apply_resident_defaults(&mut app, sets_upgrade_strategy, sets_unreachable_strategy);
        }
        app
    }

    /// Whether the difference to `other` is more than the instance count, i.e. needs new tasks.
    pub fn is_config_change(&self, other: &AppDefinition) -> bool {
        let normalise = |app: &AppDefinition| AppDefinition {
            instances: 0,
            version: Timestamp::from_millis(0),
            version_info: VersionInfo::default(),
            pod: None,
            ..app.clone()
        };
        // A pod's run spec carries the pod, whose own version and scaling are no config.
        let pod_changed = match (&self.pod, &other.pod) {
            (Some(pod), Some(other_pod)) => pod.is_config_change(other_pod),
            (None, None) => false,
            _ => true,
        };
        normalise(self) != normalise(other) || pod_changed
    }

    /// The version of the configuration the app's tasks run: new tasks are needed when it changes.
    pub fn config_version(&self) -> Timestamp {
        self.version_info
            .last_config_change_at
            .unwrap_or(self.version)
    }

    /// The host ports a task of this app asks its agent for.
    pub fn port_count(&self) -> usize {
        self.host_ports().len()
    }

    /// Whether any health check decides this app's health (Marathon counts every instance that
    /// runs as healthy when there is none).
    pub fn has_health_checks(&self) -> bool {
        !self.health_checks.is_empty()
            || self.pod.as_ref().is_some_and(|pod| {
                pod.containers
                    .iter()
                    .any(|container| container.health_check.is_some())
            })
    }

    /// Whether its tasks run in a Docker engine: a container of type `DOCKER`, Marathon's
    /// default type.
    pub fn runs_in_docker(&self) -> bool {
        self.container.as_ref().is_some_and(|container| {
            container
                .get("type")
                .and_then(|kind| kind.as_str())
                .unwrap_or("DOCKER")
                == "DOCKER"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> AppDefinition {
        AppDefinition::create(
            "/web".into(),
            AppUpdate {
                cmd: Some("sleep 10".into()),
                ..Default::default()
            },
            Timestamp::from_millis(1000),
        )
    }

    #[test]
    fn create_fills_marathon_defaults() {
        let json = serde_json::to_value(app()).unwrap();
        assert_eq!(json["instances"], 1);
        assert_eq!(json["cpus"], 1.0);
        assert_eq!(json["mem"], 128.0);
        assert_eq!(json["backoffFactor"], 1.15);
        assert_eq!(json["maxLaunchDelaySeconds"], 300);
        assert_eq!(json["killSelection"], "YOUNGEST_FIRST");
        assert_eq!(json["portDefinitions"][0]["name"], "default");
        assert_eq!(
            json["versionInfo"]["lastConfigChangeAt"],
            "1970-01-01T00:00:01.000Z"
        );
        assert!(json.get("args").is_none());
    }

    #[test]
    fn scaling_is_not_a_config_change_but_env_is() {
        let a = app();
        let scaled = a.merged(AppUpdate {
            instances: Some(5),
            ..Default::default()
        });
        assert!(!a.is_config_change(&scaled));
        let changed = a.merged(AppUpdate {
            labels: Some([("a".to_string(), "b".to_string())].into()),
            ..Default::default()
        });
        assert!(a.is_config_change(&changed));
    }

    #[test]
    fn a_mesos_check_is_kept_as_given_and_is_configuration() {
        let check =
            serde_json::json!({"http": {"portIndex": 0, "path": "/"}, "intervalSeconds": 60});
        let with_check = app().merged(AppUpdate {
            check: Some(check.clone()),
            ..Default::default()
        });
        assert_eq!(serde_json::to_value(&with_check).unwrap()["check"], check);
        assert!(app().is_config_change(&with_check));
        assert!(serde_json::to_value(app()).unwrap().get("check").is_none());
    }

    #[test]
    fn switching_cmd_to_args_drops_cmd() {
        let a = app().merged(AppUpdate {
            args: Some(vec!["sleep".into(), "1".into()]),
            ..Default::default()
        });
        assert_eq!(a.cmd, None);
    }

    #[test]
    fn rollback_body_is_only_a_version() {
        let body: AppUpdate =
            serde_json::from_str(r#"{"id":"/x","version":"2015-09-29T15:59:51.164Z"}"#).unwrap();
        assert!(body.is_rollback());
        let body: AppUpdate =
            serde_json::from_str(r#"{"cmd":"x","version":"2015-09-29T15:59:51.164Z"}"#).unwrap();
        assert!(!body.is_rollback());
    }
}
