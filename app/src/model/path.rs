//! Path ids: `/group/app`, Marathon's rules for normalising and validating them.

use regex::Regex;
use std::sync::LazyLock;

/// The segment rule Marathon reports verbatim in its 422 bodies.
pub const SEGMENT_PATTERN: &str = r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])|(\.|\.\.)$";

static SEGMENT: LazyLock<Regex> = LazyLock::new(|| {
    // Marathon uses Java's `matches`, which must match the whole segment; anchor the
    // alternation as a group for the same effect.
    Regex::new(r"^(?:(?:(?:[a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*(?:[a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])|\.|\.\.)$")
        .expect("segment regex")
});

const RESERVED_LAST_SEGMENTS: [&str; 5] = ["restart", "tasks", "versions", ".", ".."];

/// Makes `raw` absolute against `base` (a normalised absolute id), resolving `.` and `..`, dropping
/// empty segments. A `..` above the root stays at the root.
pub fn absolute(raw: &str, base: &str) -> String {
    let mut segments: Vec<&str> = if raw.starts_with('/') {
        Vec::new()
    } else {
        base.split('/').filter(|s| !s.is_empty()).collect()
    };
    for segment in raw.split('/').filter(|s| !s.is_empty()) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    format!("/{}", segments.join("/"))
}

/// Validation errors for an app id as given by the user (before normalisation), Marathon's texts.
pub fn app_id_errors(raw: &str) -> Vec<String> {
    let segments: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
    let mut errors = Vec::new();
    if segments.iter().any(|s| !SEGMENT.is_match(s)) {
        errors.push(format!(
            "must fully match regular expression '{SEGMENT_PATTERN}'"
        ));
    }
    if segments.is_empty() || absolute(raw, "/") == "/" {
        errors.push("Path must contain at least one path element".to_string());
    } else if segments
        .last()
        .is_some_and(|last| RESERVED_LAST_SEGMENTS.contains(last))
    {
        errors.push(
            "must not end with any of the following reserved keywords: restart, tasks, versions, ., .."
                .to_string(),
        );
    }
    errors
}

/// `/foo/bar` → `foo_bar`, the form used inside instance and task ids.
pub fn safe_path(id: &str) -> String {
    id.trim_start_matches('/').replace('/', "_")
}

/// `/foo/bar` → `/foo`; the root's parent is the root.
pub fn parent(id: &str) -> String {
    match id.trim_end_matches('/').rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => id[..i].to_string(),
    }
}

/// Whether `id` lies inside the group `group` (strictly below it; everything is within `/`).
pub fn is_within(id: &str, group: &str) -> bool {
    group == "/" && id != "/"
        || id
            .strip_prefix(group)
            .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1)
}

/// The group path segments of an id without its last segment, for display (`/prod/api/web` → `/prod/api/`).
pub fn group_prefix(id: &str) -> &str {
    match id.rfind('/') {
        Some(i) => &id[..=i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_resolves_relative_parts() {
        assert_eq!(absolute("foo/bar", "/"), "/foo/bar");
        assert_eq!(absolute("//a//b/", "/"), "/a/b");
        assert_eq!(absolute("../db/db1", "/prod/service"), "/prod/db/db1");
        assert_eq!(absolute("/x", "/prod"), "/x");
        assert_eq!(absolute("..", "/"), "/");
    }

    #[test]
    fn id_rules_match_marathon() {
        assert!(app_id_errors("/prod/web-1").is_empty());
        assert!(app_id_errors("a.b/c").is_empty());
        assert_eq!(app_id_errors("/Foo").len(), 1);
        assert_eq!(app_id_errors("/-x").len(), 1);
        assert_eq!(app_id_errors("/a_b").len(), 1);
        assert_eq!(
            app_id_errors("/"),
            vec!["Path must contain at least one path element"]
        );
        assert!(app_id_errors("/x/tasks")[0].starts_with("must not end with"));
    }

    #[test]
    fn derived_forms() {
        assert_eq!(safe_path("/foo/bar"), "foo_bar");
        assert_eq!(parent("/foo/bar"), "/foo");
        assert_eq!(parent("/foo"), "/");
        assert_eq!(group_prefix("/prod/web"), "/prod/");
        assert!(is_within("/prod/web", "/prod"));
        assert!(is_within("/prod/web", "/"));
        assert!(!is_within("/production", "/prod"));
        assert!(!is_within("/prod", "/prod"));
    }
}
