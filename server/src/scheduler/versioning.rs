//! Marathon's version bookkeeping for app definitions (SEMANTICS.md §2).

use app::model::{AppDefinition, Timestamp};

/// Why an app gets a new version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Versioning {
    /// The definition was edited (or created): what changed decides.
    Edit,
    /// New tasks for the same definition (`POST …/restart`, rolling back to a stored version).
    Restart,
}

/// Marathon's version bookkeeping (SEMANTICS.md §2), the one rule every change follows: a new
/// app and a config change move the version and both `versionInfo` times; a scale only
/// `lastScalingAt`; a restart `lastConfigChangeAt`; no change keeps the version.
pub fn versioned(
    mut next: AppDefinition,
    before: Option<&AppDefinition>,
    why: Versioning,
    now: Timestamp,
) -> AppDefinition {
    match (before, why) {
        (Some(b), Versioning::Restart) => {
            next.version = now;
            next.version_info.last_scaling_at = b.version_info.last_scaling_at;
            next.version_info.last_config_change_at = Some(now);
        }
        (Some(b), Versioning::Edit)
            if !b.is_config_change(&next) && b.instances == next.instances =>
        {
            next.version = b.version;
            next.version_info = b.version_info;
        }
        (Some(b), Versioning::Edit) if !b.is_config_change(&next) => {
            next.version = now;
            next.version_info = b.version_info;
            next.version_info.last_scaling_at = Some(now);
        }
        _ => {
            next.version = now;
            next.version_info.last_scaling_at = Some(now);
            next.version_info.last_config_change_at = Some(now);
        }
    }
    next
}
