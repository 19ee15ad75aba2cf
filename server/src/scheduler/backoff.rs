//! Marathon's launch backoff: after a failed task, an app's next launch waits, longer each time.
//!
//! Keyed by (app id, config version): a config change starts without delay, a scale keeps it.

use app::model::{AppDefinition, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    /// The delay that was last applied.
    pub delay_ms: i64,
    /// No launch before this moment.
    pub deadline: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    pub initial_ms: i64,
    pub factor: f64,
    pub max_ms: i64,
}

impl Policy {
    pub fn of(app: &AppDefinition) -> Policy {
        Policy {
            initial_ms: app.backoff_seconds.saturating_mul(1000),
            factor: app.backoff_factor,
            max_ms: app.max_launch_delay_seconds.saturating_mul(1000),
        }
    }
}

/// The backoff after one more failure.
pub fn after_failure(previous: Option<Backoff>, policy: Policy, now: Timestamp) -> Backoff {
    let delay_ms = match previous {
        None => policy.initial_ms.min(policy.max_ms),
        Some(b) => ((b.delay_ms as f64 * policy.factor) as i64)
            .max(b.delay_ms)
            .min(policy.max_ms),
    };
    Backoff {
        delay_ms,
        deadline: now.plus_millis(delay_ms),
    }
}

/// A task made progress (staging, running): the delay stays but holds nothing back any more.
pub fn after_progress(backoff: Backoff, now: Timestamp) -> Backoff {
    Backoff {
        deadline: backoff.deadline.min(now),
        ..backoff
    }
}

/// Forgotten after `maxLaunchDelaySeconds` without a new failure: the app is stable again.
pub fn is_stale(backoff: Backoff, policy: Policy, now: Timestamp) -> bool {
    now > backoff.deadline.plus_millis(policy.max_ms)
}

pub fn blocks_launch(backoff: Option<Backoff>, now: Timestamp) -> bool {
    backoff.is_some_and(|b| now < b.deadline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DEFAULT: Policy = Policy {
        initial_ms: 1000,
        factor: 1.15,
        max_ms: 300_000,
    };

    #[test]
    fn follows_marathons_sequence() {
        let now = Timestamp::from_millis(0);
        let mut b = after_failure(None, DEFAULT, now);
        assert_eq!(b.delay_ms, 1000);
        b = after_failure(Some(b), DEFAULT, now);
        assert_eq!(b.delay_ms, 1150);
        b = after_failure(Some(b), DEFAULT, now);
        assert_eq!(b.delay_ms, 1322);
        assert!(blocks_launch(Some(b), now));
        assert!(!blocks_launch(Some(b), now.plus_millis(1322)));
    }

    #[test]
    fn progress_releases_but_keeps_the_delay() {
        let now = Timestamp::from_millis(0);
        let b = after_failure(None, DEFAULT, now);
        let p = after_progress(b, now.plus_millis(10));
        assert_eq!(p.delay_ms, b.delay_ms);
        assert!(!blocks_launch(Some(p), now.plus_millis(10)));
        assert!(!is_stale(p, DEFAULT, now.plus_millis(300_010)));
        assert!(is_stale(p, DEFAULT, now.plus_millis(300_011)));
    }

    proptest! {
        #[test]
        fn delay_grows_monotonically_and_never_exceeds_the_cap(
            initial in 0i64..100_000, factor in 1.0f64..5.0, max in 0i64..1_000_000, failures in 1usize..100
        ) {
            let policy = Policy { initial_ms: initial, factor, max_ms: max };
            let now = Timestamp::from_millis(1_000_000);
            let mut previous: Option<Backoff> = None;
            for _ in 0..failures {
                let next = after_failure(previous, policy, now);
                prop_assert!(next.delay_ms <= max);
                if let Some(p) = previous { prop_assert!(next.delay_ms >= p.delay_ms); }
                prop_assert_eq!(next.deadline, now.plus_millis(next.delay_ms));
                previous = Some(next);
            }
        }
    }
}
