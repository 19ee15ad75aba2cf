//! Turning model values into the words and numbers the dashboard shows: ages, resources, chip
//! tones, links, and errors in plain language.

use crate::model::{validate::by_field, AppStatus, ServiceError, TaskState, Timestamp, Violation};
use leptos::prelude::ServerFnError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The page of an app: ids are absolute (`/prod/web`), so this is `/apps/prod/web`.
pub fn app_href(id: &str) -> String {
    format!("/apps{id}")
}

/// `then` relative to `now` (both epoch milliseconds), as an ops tool says it: `12s ago`.
pub fn ago(then: i64, now: i64) -> String {
    let seconds = (now - then).max(0) / 1000;
    match seconds {
        0..=4 => "just now".to_string(),
        5..=59 => format!("{seconds}s ago"),
        60..=3599 => format!("{}m ago", seconds / 60),
        3600..=86_399 => format!("{}h ago", seconds / 3600),
        _ => format!("{}d ago", seconds / 86_400),
    }
}

/// A span of time in words: `45 s`, `5 min`, `2 h`.
pub fn duration_words(seconds: u64) -> String {
    match seconds {
        0..=119 => format!("{seconds} s"),
        120..=7199 => format!("{} min", seconds / 60),
        _ => format!("{} h", seconds / 3600),
    }
}

/// The exact time for a tooltip, in UTC.
pub fn exact(at: Timestamp) -> String {
    at.datetime()
        .format("%Y-%m-%d %H:%M:%S%.3f UTC")
        .to_string()
}

/// A compact UTC time for table cells, e.g. versions: `09-29 15:59:51`.
pub fn short_time(at: Timestamp) -> String {
    at.datetime().format("%m-%d %H:%M:%S").to_string()
}

/// CPU shares without trailing zeros: `0.1`, `2`, `1.25`.
pub fn cpus(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Memory given in MiB, switching to GiB from 1024 up.
pub fn mem(mib: f64) -> String {
    if mib >= 1024.0 {
        format!("{} GiB", cpus(mib / 1024.0))
    } else {
        format!("{} MiB", cpus(mib))
    }
}

/// `part / whole` as a percentage for bar widths, clamped to 0–100.
pub fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        (part / whole * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    }
}

/// The colour meaning of a state; the CSS class of chips and bars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Good,
    Busy,
    Bad,
    Quiet,
}

impl Tone {
    pub fn class(self) -> &'static str {
        match self {
            Tone::Good => "good",
            Tone::Busy => "busy",
            Tone::Bad => "bad",
            Tone::Quiet => "quiet",
        }
    }
}

pub fn status_tone(status: AppStatus) -> Tone {
    match status {
        AppStatus::Running => Tone::Good,
        AppStatus::Deploying | AppStatus::Waiting | AppStatus::Delayed => Tone::Busy,
        AppStatus::Suspended => Tone::Quiet,
    }
}

/// Mesos task states by what they mean to an operator.
pub fn task_tone(state: TaskState) -> Tone {
    match state {
        TaskState::Running => Tone::Good,
        TaskState::Staging | TaskState::Starting | TaskState::Killing => Tone::Busy,
        TaskState::Failed
        | TaskState::Error
        | TaskState::Lost
        | TaskState::Dropped
        | TaskState::Gone
        | TaskState::GoneByOperator
        | TaskState::Unreachable
        | TaskState::Unknown => Tone::Bad,
        TaskState::Finished | TaskState::Killed => Tone::Quiet,
    }
}

/// `TASK_GONE_BY_OPERATOR` → `Gone by operator`.
pub fn task_state_label(state: TaskState) -> String {
    let words = state
        .name()
        .trim_start_matches("TASK_")
        .replace('_', " ")
        .to_lowercase();
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// An error ready to show: a sentence for the form or button that caused it, and sentences per
/// form field (`""` is the whole form, as Marathon's path `/`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub message: String,
    pub fields: BTreeMap<String, Vec<String>>,
}

impl Problem {
    fn plain(message: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            fields: BTreeMap::new(),
        }
    }

    fn with_fields(message: &str, violations: &[Violation]) -> Problem {
        let fields = by_field(violations)
            .into_iter()
            .map(|(field, errors)| {
                let errors = errors.iter().map(|e| in_plain_words(e)).collect();
                (field, errors)
            })
            .collect();
        Problem {
            message: message.to_string(),
            fields,
        }
    }

    /// The errors of one field, or of the whole form for `""`.
    pub fn field(&self, name: &str) -> Vec<String> {
        self.fields.get(name).cloned().unwrap_or_default()
    }

    /// Errors of fields a form does not have, as `field: error` lines for the form's footer.
    pub fn other_fields(&self, shown: &[&str]) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(field, _)| !field.is_empty() && !shown.contains(&field.as_str()))
            .flat_map(|(field, errors)| errors.iter().map(move |e| format!("{field}: {e}")))
            .collect()
    }
}

impl From<&ServiceError> for Problem {
    fn from(error: &ServiceError) -> Problem {
        match error {
            ServiceError::Invalid(violations) => {
                Problem::with_fields("Some fields need a change.", violations)
            }
            ServiceError::InvalidJson(violations) => {
                Problem::with_fields("Some fields have the wrong type.", violations)
            }
            ServiceError::BadRequest {
                message,
                details: Some(details),
            } => Problem::plain(format!("{message}: {details}")),
            ServiceError::Locked(deployments) => Problem::plain(format!(
                "A deployment ({}) is still changing this app. Wait for it to finish, then try again.",
                deployments.join(", ")
            )),
            ServiceError::Unavailable(reason) => {
                Problem::plain(format!("The scheduler cannot take this right now: {reason}"))
            }
            other => Problem::plain(other.to_string()),
        }
    }
}

impl From<&ServerFnError> for Problem {
    fn from(error: &ServerFnError) -> Problem {
        Problem::plain(format!("The server could not be reached: {error}"))
    }
}

/// What a mutation's answer means for the page: nothing (not answered yet, or it worked) or
/// the problem to show next to its button.
pub fn outcome_problem<T>(
    answer: &Result<Result<T, ServiceError>, ServerFnError>,
) -> Option<Problem> {
    match answer {
        Ok(Ok(_)) => None,
        Ok(Err(refused)) => Some(refused.into()),
        Err(failed) => Some(failed.into()),
    }
}

/// Marathon's validation texts, rephrased for people filling in a form.
fn in_plain_words(error: &str) -> String {
    if error.starts_with("must fully match regular expression") {
        return "Use lowercase letters, digits, dots and dashes, with slashes between groups (e.g. /prod/web).".into();
    }
    if error.starts_with("must not end with any of the following reserved keywords") {
        return "The last part of the id cannot be restart, tasks, versions, . or ..".into();
    }
    if let Some(rest) = error.strip_prefix("got ") {
        if let Some((got, expected)) = rest.split_once(", expected ") {
            return format!("Must be {expected} (it is {got}).");
        }
    }
    match error {
        "Path must contain at least one path element" => "Give the app an id, e.g. /hello.".into(),
        "must not be an empty string"
        | "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'." => {
            "Enter the command the app runs.".into()
        }
        "error.path.missing" => "This field is required.".into(),
        "error.expected.jsnumber" => "Enter a number.".into(),
        "error.expected.jsstring" => "Enter text.".into(),
        other => {
            let mut chars = other.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_an_ops_tool() {
        assert_eq!(ago(0, 3_000), "just now");
        assert_eq!(ago(0, 42_000), "42s ago");
        assert_eq!(ago(0, 5 * 60_000), "5m ago");
        assert_eq!(ago(0, 3 * 3_600_000), "3h ago");
        assert_eq!(ago(0, 2 * 86_400_000), "2d ago");
        assert_eq!(ago(10_000, 0), "just now");
        assert_eq!(duration_words(10), "10 s");
        assert_eq!(duration_words(300), "5 min");
        assert_eq!(duration_words(7200), "2 h");
    }

    #[test]
    fn resources_and_states() {
        assert_eq!(cpus(0.1), "0.1");
        assert_eq!(cpus(2.0), "2");
        assert_eq!(mem(64.0), "64 MiB");
        assert_eq!(mem(1536.0), "1.5 GiB");
        assert_eq!(percent(1.0, 0.0), 0.0);
        assert_eq!(percent(3.0, 2.0), 100.0);
        assert_eq!(
            task_state_label(TaskState::GoneByOperator),
            "Gone by operator"
        );
        assert_eq!(task_tone(TaskState::Failed), Tone::Bad);
        assert!(TaskState::Killed.is_terminal() && !TaskState::Killing.is_terminal());
        assert_eq!(app_href("/prod/web"), "/apps/prod/web");
    }

    #[test]
    fn validation_errors_land_on_their_fields_in_plain_words() {
        let refused = ServiceError::Invalid(vec![
            Violation {
                path: "/id".into(),
                errors: crate::model::path::app_id_errors("/Web"),
            },
            Violation {
                path: "/cpus".into(),
                errors: vec!["got -1.0, expected 0.0 or more".into()],
            },
            Violation {
                path: "/".into(),
                errors: vec!["AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.".into()],
            },
            Violation {
                path: "/portDefinitions(0)/port".into(),
                errors: vec!["got 70000, expected between 0 and 65535".into()],
            },
        ]);
        let problem = Problem::from(&refused);
        assert!(problem.field("id")[0].starts_with("Use lowercase letters"));
        assert_eq!(
            problem.field("cpus"),
            vec!["Must be 0.0 or more (it is -1.0)."]
        );
        assert_eq!(problem.field(""), vec!["Enter the command the app runs."]);
        assert_eq!(
            problem.other_fields(&["id", "cmd", "cpus", "mem", "instances"]),
            vec!["portDefinitions(0)/port: Must be between 0 and 65535 (it is 70000)."]
        );
    }
}
