//! Turning client JSON into app definitions, with Marathon's error bodies.
//!
//! Two kinds of failure, as in Marathon: JSON of the wrong shape ("Invalid JSON", with play-json's
//! error keys) and well-formed definitions that break a rule ("Object is not valid").

use super::app::{AppDefinition, UnreachableStrategy};
use super::checks::HealthProtocol;
use super::path;
use super::residency::{residency_violations, resident_change_violations};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// One entry of a 422 body's `details`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub path: String,
    pub errors: Vec<String>,
}

/// Why a body could not become an app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON at all: Marathon answers 400 with the parser's message as a string.
    Syntax(String),
    /// JSON, but a field has the wrong type: 422 "Invalid JSON".
    Shape(Vec<Violation>),
}

/// Parses a request body into a JSON value, then into `T`, reporting the failing field's path.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Syntax(
            "No content to map due to end-of-input".into(),
        ));
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| BodyError::Syntax(e.to_string()))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = json_pointer(&e.path().to_string());
        let error = play_json_key(&e.inner().to_string());
        BodyError::Shape(vec![Violation {
            path,
            errors: vec![error],
        }])
    })
}

/// `portDefinitions[0].name` → `/portDefinitions(0)/name`, Marathon's rendering.
fn json_pointer(serde_path: &str) -> String {
    if serde_path == "." {
        return "/".into();
    }
    let mut out = String::new();
    for part in serde_path.split('.') {
        match part.split_once('[') {
            Some((name, index)) => {
                if !name.is_empty() {
                    out.push('/');
                    out.push_str(name);
                }
                for idx in index.split('[') {
                    out.push_str(&format!("({})", idx.trim_end_matches(']')));
                }
            }
            None => {
                out.push('/');
                out.push_str(part);
            }
        }
    }
    out
}

/// Maps serde's message to the play-json error key Marathon clients know.
fn play_json_key(message: &str) -> String {
    let expected = message.split("expected ").nth(1).unwrap_or("");
    let key = if message.starts_with("missing field") {
        "error.path.missing"
    } else if expected.contains("f64") || expected.contains("i64") || expected.contains("integer") {
        "error.expected.jsnumber"
    } else if expected.contains("bool") {
        "error.expected.jsboolean"
    } else if expected.contains("sequence") {
        "error.expected.jsarray"
    } else if expected.contains("map") || expected.contains("struct") {
        "error.expected.jsobject"
    } else if expected.contains("string") || expected.contains("ISO-8601") {
        "error.expected.jsstring"
    } else if message.starts_with("unknown variant") {
        "error.expected.validenumvalue"
    } else {
        return message.to_string();
    };
    key.to_string()
}

/// Collects errors per path, in first-seen order, as Marathon lists them.
#[derive(Default)]
pub(crate) struct Violations(pub(crate) Vec<Violation>);

impl Violations {
    pub(crate) fn add(&mut self, path: &str, error: impl Into<String>) {
        match self.0.iter_mut().find(|v| v.path == path) {
            Some(v) => v.errors.push(error.into()),
            None => self.0.push(Violation {
                path: path.to_string(),
                errors: vec![error.into()],
            }),
        }
    }
}

/// A double as the JVM prints it in Marathon's messages (`3.0`, `0.5`).
pub(crate) fn jvm_double(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e7 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

const CONSTRAINT_OPERATORS: [&str; 7] = [
    "UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "MAX_PER", "UNLIKE", "IS",
];

pub(crate) fn constraint_errors(c: &[String]) -> Option<String> {
    if c.len() < 2 || c.len() > 3 {
        return Some("Each constraint must have either 2 or 3 fields".into());
    }
    if c[0].is_empty() {
        return Some("missing field for constraint declaration".into());
    }
    let operator = c[1].to_ascii_uppercase();
    let value = c.get(2);
    match operator.as_str() {
        "UNIQUE" if value.is_some() => Some("UNIQUE does not accept a value".into()),
        "GROUP_BY" if value.is_some_and(|v| !v.is_empty() && v.parse::<u32>().is_err()) => {
            Some("GROUP BY must define an integer value or else no value at all".into())
        }
        "LIKE" | "UNLIKE" => match value {
            Some(v) if !v.is_empty() => regex::Regex::new(v)
                .err()
                .map(|_| format!("'{v}' is not a valid regular expression")),
            _ => Some("LIKE and UNLIKE require a non-empty, regular expression value".into()),
        },
        "MAX_PER" if value.is_none_or(|v| v.parse::<u32>().is_err()) => {
            Some("MAX_PER requires an integer value".into())
        }
        "IS" if value.is_none_or(|v| {
            !v.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "_/.-".contains(ch))
        }) =>
        {
            Some("IS only supports Mesos text and float values (see http://mesos.apache.org/documentation/latest/attributes-resources/)".into())
        }
        op if !CONSTRAINT_OPERATORS.contains(&op) => Some(
            "operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS"
                .into(),
        ),
        _ => None,
    }
}

/// Checks a complete definition against Marathon's rules; `raw_id` is the id as the client wrote it.
pub fn validate_app(app: &AppDefinition, raw_id: &str) -> Result<(), Vec<Violation>> {
    let mut v = Violations::default();
    for error in path::app_id_errors(raw_id) {
        v.add("/id", error);
    }
    let has_container = app.container.is_some();
    let has_args = !app.args.is_empty();
    match &app.cmd {
        Some(cmd) if cmd.trim().is_empty() => v.add("/cmd", "must not be an empty string"),
        Some(_) if has_args => v.add(
            "/",
            "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.",
        ),
        None if !has_args && !has_container => v.add(
            "/",
            "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.",
        ),
        _ => {}
    }
    if let Some(container) = &app.container {
        let image = container.pointer("/docker/image").and_then(|i| i.as_str());
        let named = image.is_some_and(|image| !image.trim().is_empty());
        if !named && (app.runs_in_docker() || image.is_some()) {
            v.add("/container/docker/image", "must not be empty");
        }
    }
    let at_least_zero_int = |v: &mut Violations, path: &str, value: i64| {
        if value < 0 {
            v.add(path, format!("got {value}, expected 0 or more"));
        }
    };
    at_least_zero_int(&mut v, "/instances", app.instances);
    at_least_zero_int(&mut v, "/gpus", app.gpus);
    at_least_zero_int(&mut v, "/backoffSeconds", app.backoff_seconds);
    at_least_zero_int(
        &mut v,
        "/maxLaunchDelaySeconds",
        app.max_launch_delay_seconds,
    );
    if let Some(grace) = app.task_kill_grace_period_seconds {
        at_least_zero_int(&mut v, "/taskKillGracePeriodSeconds", grace);
    }
    for (path, value) in [("/cpus", app.cpus), ("/mem", app.mem), ("/disk", app.disk)] {
        if value.is_nan() || value < 0.0 || value.is_infinite() {
            v.add(
                path,
                format!("got {}, expected 0.0 or more", jvm_double(value)),
            );
        }
    }
    if app.backoff_factor.is_nan() || app.backoff_factor < 1.0 {
        v.add(
            "/backoffFactor",
            format!(
                "got {}, expected 1.0 or more",
                jvm_double(app.backoff_factor)
            ),
        );
    }
    for (name, value) in [
        (
            "minimumHealthCapacity",
            app.upgrade_strategy.minimum_health_capacity,
        ),
        (
            "maximumOverCapacity",
            app.upgrade_strategy.maximum_over_capacity,
        ),
    ] {
        if !(0.0..=1.0).contains(&value) {
            v.add(
                &format!("/upgradeStrategy/{name}"),
                format!("got {}, expected between 0.0 and 1.0", jvm_double(value)),
            );
        }
    }
    if app.upgrade_strategy.deployment_timeout_seconds == Some(0) {
        v.add(
            "/upgradeStrategy/deploymentTimeoutSeconds",
            "got 0, expected 1 or more",
        );
    }
    if let UnreachableStrategy::Enabled {
        inactive_after_seconds: inactive,
        expunge_after_seconds: expunge,
    } = app.unreachable_strategy
    {
        at_least_zero_int(
            &mut v,
            "/unreachableStrategy/inactiveAfterSeconds",
            inactive,
        );
        at_least_zero_int(&mut v, "/unreachableStrategy/expungeAfterSeconds", expunge);
        if inactive > expunge {
            v.add(
                "/unreachableStrategy/inactiveAfterSeconds",
                format!(
                    "inactiveAfterSeconds ({inactive}) must be less or equal to expungeAfterSeconds, which is {expunge}"
                ),
            );
        }
    }
    check_health_checks(app, &mut v);
    check_readiness_checks(app, &mut v);
    for violation in residency_violations(app) {
        for error in violation.errors {
            v.add(&violation.path, error);
        }
    }
    let mut seen = HashSet::new();
    for (i, constraint) in app.constraints.iter().enumerate() {
        if let Some(error) = constraint_errors(constraint) {
            v.add(&format!("/constraints({i})"), error);
        }
        if !seen.insert(constraint) {
            v.add("/constraints", "Elements must be unique");
        }
    }
    let mut names = HashSet::new();
    let mut ports = HashSet::new();
    for (i, pd) in app.port_definitions.iter().enumerate() {
        if !(0..=65535).contains(&pd.port) {
            v.add(
                &format!("/portDefinitions({i})/port"),
                format!("got {}, expected between 0 and 65535", pd.port),
            );
        }
        if !["tcp", "udp", "udp,tcp"].contains(&pd.protocol.as_str()) {
            v.add(
                &format!("/portDefinitions({i})/protocol"),
                "is not one of (tcp,udp,udp,tcp)",
            );
        }
        if pd.name.as_ref().is_some_and(|n| !names.insert(n.clone())) {
            v.add("/portDefinitions", "Port names must be unique.");
        }
        if pd.port != 0 && !ports.insert(pd.port) {
            v.add("/portDefinitions", "Ports must be unique.");
        }
    }
    if !app.accepted_resource_roles.is_empty() {
        let unique: HashSet<_> = app.accepted_resource_roles.iter().collect();
        if unique.len() != app.accepted_resource_roles.len() {
            v.add("/acceptedResourceRoles", "Elements must be unique");
        }
    }
    if app.role.is_empty() {
        v.add("/role", "must not be empty");
    }
    for (i, dep) in app.dependencies.iter().enumerate() {
        for error in path::app_id_errors(dep)
            .into_iter()
            .filter(|e| e.starts_with("must fully match"))
        {
            v.add(&format!("/dependencies({i})"), error);
        }
    }
    if !app.secrets.is_empty() {
        v.add(
            "/secrets",
            "Feature secrets is not enabled. Enable with --enable_features secrets)",
        );
    }
    if v.0.is_empty() {
        Ok(())
    } else {
        Err(v.0)
    }
}

/// [`validate_app`] for an app that replaces `before` (if it exists), with the rules on what a
/// change may not touch (`force`: the request's, which lets a resident app change its role).
pub fn validate_app_update(
    before: Option<&AppDefinition>,
    next: &AppDefinition,
    raw_id: &str,
    force: bool,
) -> Result<(), Vec<Violation>> {
    let mut errors = validate_app(next, raw_id).err().unwrap_or_default();
    if let Some(before) = before {
        errors.extend(resident_change_violations(before, next, force));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_health_checks(app: &AppDefinition, v: &mut Violations) {
    let run_by_mesos = app
        .health_checks
        .iter()
        .filter(|c| !c.protocol.is_probed_by_scheduler())
        .count();
    if run_by_mesos > 1 {
        v.add(
            "/healthChecks",
            "AppDefinition can contain at most one health check run by Mesos (COMMAND, MESOS_HTTP, MESOS_HTTPS or MESOS_TCP)",
        );
    }
    for (i, check) in app.health_checks.iter().enumerate() {
        let at = |field: &str| format!("/healthChecks({i})/{field}");
        for (field, value) in [
            ("gracePeriodSeconds", check.grace_period_seconds),
            ("intervalSeconds", check.interval_seconds),
            ("timeoutSeconds", check.timeout_seconds),
            ("maxConsecutiveFailures", check.max_consecutive_failures),
            ("delaySeconds", check.delay_seconds),
        ] {
            if value < 0 {
                v.add(&at(field), format!("got {value}, expected 0 or more"));
            }
        }
        if check.protocol == HealthProtocol::Command {
            if check
                .command
                .as_ref()
                .is_none_or(|c| c.value.trim().is_empty())
            {
                v.add(&at("command"), "COMMAND health checks need a command value");
            }
            continue;
        }
        if check.command.is_some() {
            v.add(
                &at("command"),
                "Only COMMAND health checks may define a command",
            );
        }
        match (check.port, check.port_index) {
            (Some(_), Some(_)) => v.add(
                &format!("/healthChecks({i})"),
                "Health check definition must specify either a port or a portIndex, not both",
            ),
            (None, None) => v.add(
                &format!("/healthChecks({i})"),
                "Health check port indices must address an element of the ports array or container port mappings.",
            ),
            (None, Some(index)) if index < 0 || index as usize >= app.port_definitions.len() => v.add(
                &format!("/healthChecks({i})"),
                "Health check port indices must address an element of the ports array or container port mappings.",
            ),
            (Some(port), None) if !(1..=65535).contains(&port) => v.add(
                &at("port"),
                format!("got {port}, expected between 1 and 65535"),
            ),
            _ => {}
        }
    }
}

fn check_readiness_checks(app: &AppDefinition, v: &mut Violations) {
    if app.readiness_checks.len() > 1 {
        v.add(
            "/readinessChecks",
            format!("got {}, expected 1 or less", app.readiness_checks.len()),
        );
    }
    for (i, check) in app.readiness_checks.iter().enumerate() {
        let at = |field: &str| format!("/readinessChecks({i})/{field}");
        if !app
            .port_definitions
            .iter()
            .any(|pd| pd.name.as_deref() == Some(check.port_name.as_str()))
        {
            v.add(
                &at("portName"),
                format!(
                    "'{}' must be the name of one of the app's port definitions",
                    check.port_name
                ),
            );
        }
        if check.interval_seconds < 0 {
            v.add(
                &at("intervalSeconds"),
                format!("got {}, expected 0 or more", check.interval_seconds),
            );
        }
        if check.timeout_seconds < 1 {
            v.add(
                &at("timeoutSeconds"),
                format!("got {}, expected 1 or more", check.timeout_seconds),
            );
        } else if check.timeout_seconds >= check.interval_seconds {
            v.add(&at("timeoutSeconds"), "must be less than intervalSeconds");
        }
        if check.http_status_codes_for_ready.is_empty() {
            v.add(&at("httpStatusCodesForReady"), "must not be empty");
        }
        if let Some(code) = check
            .http_status_codes_for_ready
            .iter()
            .find(|c| !(100..=999).contains(*c))
        {
            v.add(
                &at("httpStatusCodesForReady"),
                format!("got {code}, expected between 100 and 999"),
            );
        }
    }
}

/// The labels as `MARATHON_APP_LABEL_*` keys (`[^a-zA-Z0-9_]+` → `_`, upper case), Marathon's rule.
pub fn label_env_key(key: &str) -> String {
    let mut out = String::new();
    let mut in_run = false;
    for ch in key.chars() {
        if ch.is_ascii_alphanumeric() || ch == '_' {
            out.push(ch.to_ascii_uppercase());
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out
}

/// Errors grouped by field for forms: `/cmd` → `["must not be an empty string"]`.
pub fn by_field(violations: &[Violation]) -> BTreeMap<String, Vec<String>> {
    violations
        .iter()
        .map(|v| (v.path.trim_start_matches('/').to_string(), v.errors.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::Timestamp;
    use crate::model::AppUpdate;

    fn app(json: &str) -> Result<AppDefinition, BodyError> {
        let update: AppUpdate = parse_body(json.as_bytes())?;
        Ok(AppDefinition::create(
            path::absolute(update.id.as_deref().unwrap_or(""), "/"),
            update,
            Timestamp::from_millis(0),
        ))
    }

    #[test]
    fn syntax_and_shape_errors() {
        assert!(matches!(app("{"), Err(BodyError::Syntax(_))));
        assert!(matches!(app(""), Err(BodyError::Syntax(_))));
        let Err(BodyError::Shape(details)) = app(r#"{"id":"/a","cpus":"x"}"#) else {
            panic!("expected a shape error")
        };
        assert_eq!(details[0].path, "/cpus");
        assert_eq!(details[0].errors, vec!["error.expected.jsnumber"]);
        let Err(BodyError::Shape(details)) = app(r#"{"id":"/a","portDefinitions":[{"port":"x"}]}"#)
        else {
            panic!("expected a shape error")
        };
        assert_eq!(details[0].path, "/portDefinitions(0)/port");
    }

    #[test]
    fn a_docker_container_must_name_its_image() {
        let image_error = |json: &str| {
            validate_app(&app(json).unwrap(), "/a")
                .err()
                .into_iter()
                .flatten()
                .find(|v| v.path == "/container/docker/image")
        };
        let missing = image_error(r#"{"id":"/a","container":{"type":"DOCKER","docker":{}}}"#);
        assert_eq!(missing.unwrap().errors, vec!["must not be empty"]);
        assert!(image_error(r#"{"id":"/a","container":{"docker":{"image":" "}}}"#).is_some());
        assert!(
            image_error(r#"{"id":"/a","container":{"type":"MESOS","docker":{"image":""}}}"#)
                .is_some()
        );
        assert!(image_error(r#"{"id":"/a","cmd":"x","container":{"type":"MESOS"}}"#).is_none());
        assert!(image_error(
            r#"{"id":"/a","container":{"type":"DOCKER","docker":{"image":"bb:1"}}}"#
        )
        .is_none());
    }

    #[test]
    fn rules_report_marathon_texts() {
        let a = app(r#"{"id":"/a","cmd":"x","cpus":-3,"instances":-1}"#).unwrap();
        let errors = validate_app(&a, "/a").unwrap_err();
        assert!(errors.contains(&Violation {
            path: "/cpus".into(),
            errors: vec!["got -3.0, expected 0.0 or more".into()]
        }));
        assert!(errors.contains(&Violation {
            path: "/instances".into(),
            errors: vec!["got -1, expected 0 or more".into()]
        }));
        let a = app(r#"{"id":"/a"}"#).unwrap();
        let errors = validate_app(&a, "/a").unwrap_err();
        assert_eq!(errors[0].path, "/");
        let a = app(r#"{"id":"/A_b","cmd":"x","constraints":[["hostname","FOO"]]}"#).unwrap();
        let errors = validate_app(&a, "/A_b").unwrap_err();
        assert_eq!(errors[0].path, "/id");
        assert_eq!(errors[1].path, "/constraints(0)");
    }

    #[test]
    fn unreachable_strategies_follow_marathon() {
        let a = app(r#"{"id":"/a","cmd":"x","unreachableStrategy":{"inactiveAfterSeconds":9,"expungeAfterSeconds":3}}"#).unwrap();
        let errors = validate_app(&a, "/a").unwrap_err();
        assert_eq!(
            errors[0].errors,
            vec![
                "inactiveAfterSeconds (9) must be less or equal to expungeAfterSeconds, which is 3"
            ]
        );
        let a = app(r#"{"id":"/a","cmd":"x","unreachableStrategy":"disabled"}"#).unwrap();
        assert_eq!(a.unreachable_strategy, UnreachableStrategy::Disabled);
        assert!(validate_app(&a, "/a").is_ok());
        assert_eq!(
            serde_json::to_value(a.unreachable_strategy).unwrap(),
            serde_json::json!("disabled")
        );
        let a = app(r#"{"id":"/a","cmd":"x","unreachableStrategy":{"expungeAfterSeconds":5}}"#)
            .unwrap();
        assert_eq!(
            serde_json::to_value(a.unreachable_strategy).unwrap(),
            serde_json::json!({"inactiveAfterSeconds": 0, "expungeAfterSeconds": 5})
        );
        assert!(app(r#"{"id":"/a","cmd":"x","unreachableStrategy":"sometimes"}"#).is_err());
    }

    #[test]
    fn a_plain_app_is_valid() {
        let a = app(r#"{"id":"/prod/web","cmd":"python3 -m http.server $PORT0","constraints":[["hostname","UNIQUE"]]}"#).unwrap();
        assert_eq!(validate_app(&a, "/prod/web"), Ok(()));
    }

    #[test]
    fn label_keys_become_env_names() {
        assert_eq!(label_env_key("owner.team-x"), "OWNER_TEAM_X");
    }
}
