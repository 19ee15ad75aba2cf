//! The lease's rules, without IO: who may take the leadership, and until when a leader may
//! act on its last renewal.

use std::time::{Duration, Instant};

/// The lease row as read from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Raised by every election; a leader's writes are fenced by it.
    pub term: i64,
    /// The instance id of the Stride that holds it (empty before the first election).
    pub holder: String,
    /// The holder's advertised `host:port`.
    pub leader: String,
    /// Milliseconds since the epoch, on the database's clock.
    pub expires_at: i64,
    /// Whether the holder holds the advisory lock as well.
    pub holds_lock: bool,
}

impl Lease {
    /// The leader's address, while the lease holds at `now_ms`.
    pub fn current_leader(&self, now_ms: i64) -> Option<&str> {
        (self.expires_at > now_ms && !self.leader.is_empty()).then_some(self.leader.as_str())
    }
}

/// Whether the Stride `me` may take the lease at `now_ms` (database clock), having just asked
/// for the advisory lock and got it (`got_lock`) or not.
///
/// - An expired lease may be taken by anyone.
/// - A lease whose holder held the lock may be taken by whoever gets the lock: the lock is
///   free only once the holder's database session has ended (its process died, or its
///   connection was cut), so nobody need wait for the lease to run out.
/// - A lease held without the lock (its holder took it while the lock was still held by the
///   session of a leader before) is only taken when it expires; the lock says nothing then.
/// - Its own lease a Stride may always take back (it stepped down and is campaigning again).
pub fn may_take_over(lease: &Lease, me: &str, now_ms: i64, got_lock: bool) -> bool {
    lease.expires_at <= now_ms || lease.holder == me || (got_lock && lease.holds_lock)
}

/// Until when a leader may act, having started its last successful renewal at `renewed`:
/// the lease then ran at least until `renewed + lease` on the database's clock, and the
/// leader stops `margin` before that, for the time its own work takes to stop.
pub fn acts_until(renewed: Instant, lease: Duration, margin: Duration) -> Instant {
    renewed + lease.saturating_sub(margin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lease(holder: &str, expires_at: i64, holds_lock: bool) -> Lease {
        Lease {
            term: 3,
            holder: holder.into(),
            leader: format!("{holder}:8080"),
            expires_at,
            holds_lock,
        }
    }

    #[test]
    fn a_live_leader_with_the_lock_keeps_its_lease() {
        assert!(!may_take_over(&lease("a", 2_000, true), "b", 1_000, false));
        assert!(may_take_over(&lease("a", 2_000, true), "b", 1_000, true));
        assert!(!may_take_over(&lease("a", 2_000, false), "b", 1_000, true));
        assert!(may_take_over(&lease("a", 2_000, false), "b", 2_000, false));
        assert!(may_take_over(&lease("b", 2_000, false), "b", 1_000, false));
        assert_eq!(
            lease("a", 2_000, true).current_leader(1_999),
            Some("a:8080")
        );
        assert_eq!(lease("a", 2_000, true).current_leader(2_000), None);
        let never_held = Lease {
            leader: String::new(),
            ..lease("", 2_000, false)
        };
        assert_eq!(never_held.current_leader(0), None);
    }

    proptest! {
        /// Two Strides that both campaign at the same moment never both take a live lease
        /// held by a third: at most one of them can have got the lock.
        #[test]
        fn only_one_of_two_rivals_takes_a_live_lease(
            expires_in in 1i64..10_000,
            holds_lock: bool,
            first_got_lock: bool,
        ) {
            let held = lease("leader", 1_000 + expires_in, holds_lock);
            let first = may_take_over(&held, "x", 1_000, first_got_lock);
            let second = may_take_over(&held, "y", 1_000, false);
            prop_assert!(!(first && second));
            prop_assert!(!second);
        }

        /// Nobody but the holder takes a lease held without the lock before it expires.
        #[test]
        fn a_lease_without_the_lock_runs_its_time(
            expires_at in 0i64..100_000,
            now in 0i64..100_000,
            got_lock: bool,
        ) {
            let taken = may_take_over(&lease("a", expires_at, false), "b", now, got_lock);
            prop_assert_eq!(taken, expires_at <= now);
        }

        #[test]
        fn a_leader_stops_acting_before_its_lease_ends(
            lease_ms in 0u64..60_000,
            margin_ms in 0u64..60_000,
        ) {
            let renewed = Instant::now();
            let lease = Duration::from_millis(lease_ms);
            let until = acts_until(renewed, lease, Duration::from_millis(margin_ms));
            prop_assert!(until <= renewed + lease);
            prop_assert!(until >= renewed);
        }
    }
}
