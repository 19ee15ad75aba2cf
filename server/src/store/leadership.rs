//! The election's SQL, on Postgres: the lease row (`leadership`) and a session advisory lock.
//!
//! Each Stride campaigns on a connection of its own ([`ElectionConnection`]): the advisory lock
//! lives and dies with that connection's session, so when a leader's process dies its lock is
//! free at once and a standby takes over without waiting for the lease to run out. Times are the
//! database's clock (`clock_timestamp()`), so the Strides' clocks never need to agree.

use super::{Error, Result};
use crate::leadership::lease::{may_take_over, Lease};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Connection, Row};
use std::time::Duration;

/// Now, in milliseconds since the epoch, on the database's clock.
pub(crate) const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// How long Postgres lets a session of a Stride sit in a transaction without a statement: a
/// leader cut off in the middle of a write would otherwise hold the lease row's lock (taken by
/// every fenced write) for as long as TCP takes to notice, and nobody could take over.
const IDLE_IN_TRANSACTION_MS: u64 = 2_000;

/// How long a campaign waits for the lease row's lock before trying again at the next poll.
const CAMPAIGN_LOCK_WAIT_MS: u64 = 1_000;

/// Sets the limit on idle transactions on a new connection.
pub(crate) async fn limit_idle_transactions(
    conn: &mut AnyConnection,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_MS}"
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// The advisory lock's key (`"STRIDE"` in ASCII).
const LOCK_KEY: i64 = 0x5354_5249_4445;

/// Who is campaigning.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// This process's instance id, new at every start.
    pub id: String,
    /// The `host:port` other Strides proxy to when this one leads.
    pub address: String,
    pub lease: Duration,
}

/// What a campaign came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Campaign {
    Elected {
        term: i64,
    },
    /// Somebody else leads (or nobody, for the moment).
    Standby {
        leader: Option<String>,
    },
}

/// A connection of its own for the election; dropping it ends its session and frees its lock.
pub struct ElectionConnection {
    conn: AnyConnection,
    holds_lock: bool,
}

fn lease_of(row: &AnyRow) -> Result<(Lease, i64)> {
    Ok((
        Lease {
            term: row.try_get(0)?,
            holder: row.try_get(1)?,
            leader: row.try_get(2)?,
            expires_at: row.try_get(3)?,
            holds_lock: row.try_get::<i64, _>(4)? != 0,
        },
        row.try_get(5)?,
    ))
}

fn select_lease(suffix: &str) -> String {
    format!(
        "SELECT term, holder, leader, expires_at, holds_lock, {NOW_MS} FROM leadership WHERE id = 1 {suffix}"
    )
}

impl ElectionConnection {
    pub async fn connect(url: &str) -> Result<ElectionConnection> {
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect(url).await?;
        limit_idle_transactions(&mut conn).await?;
        sqlx::query(&format!("SET lock_timeout = {CAMPAIGN_LOCK_WAIT_MS}"))
            .execute(&mut conn)
            .await?;
        Ok(ElectionConnection {
            conn,
            holds_lock: false,
        })
    }

    /// Whether this connection's session holds the advisory lock.
    pub fn holds_lock(&self) -> bool {
        self.holds_lock
    }

    /// The leader the lease names now, if it holds.
    pub async fn leader(&mut self) -> Result<Option<String>> {
        let row = sqlx::query(&select_lease(""))
            .fetch_one(&mut self.conn)
            .await?;
        let (lease, now_ms) = lease_of(&row)?;
        Ok(lease.current_leader(now_ms).map(str::to_string))
    }

    /// Takes the advisory lock if it is free; whether this connection holds it now.
    async fn try_lock(&mut self) -> Result<bool> {
        if !self.holds_lock {
            self.holds_lock = sqlx::query("SELECT pg_try_advisory_lock($1)")
                .bind(LOCK_KEY)
                .fetch_one(&mut self.conn)
                .await?
                .try_get(0)?;
        }
        Ok(self.holds_lock)
    }

    async fn unlock(&mut self) -> Result<()> {
        if self.holds_lock {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(LOCK_KEY)
                .execute(&mut self.conn)
                .await?;
            self.holds_lock = false;
        }
        Ok(())
    }

    /// Asks for the leadership: takes the lease when [`may_take_over`] allows it.
    pub async fn campaign(&mut self, me: &Candidate) -> Result<Campaign> {
        let got_lock = self.try_lock().await?;
        let row = sqlx::query(&select_lease(""))
            .fetch_one(&mut self.conn)
            .await?;
        let (lease, now_ms) = lease_of(&row)?;
        if !may_take_over(&lease, &me.id, now_ms, got_lock) {
            // A lock got while the leader does not hold it says nothing; let the leader have it.
            self.unlock().await?;
            return Ok(Campaign::Standby {
                leader: lease.current_leader(now_ms).map(str::to_string),
            });
        }
        // Again under the row's lock: another standby may have taken it since.
        let mut tx = self.conn.begin().await?;
        let row = sqlx::query(&select_lease("FOR UPDATE"))
            .fetch_one(&mut *tx)
            .await?;
        let (lease, now_ms) = lease_of(&row)?;
        if !may_take_over(&lease, &me.id, now_ms, got_lock) {
            tx.rollback().await?;
            self.unlock().await?;
            return Ok(Campaign::Standby {
                leader: lease.current_leader(now_ms).map(str::to_string),
            });
        }
        let term: i64 = sqlx::query(&format!(
            "UPDATE leadership SET term = term + 1, holder = $1, leader = $2, \
             expires_at = {NOW_MS} + $3, holds_lock = $4 WHERE id = 1 RETURNING term"
        ))
        .bind(&me.id)
        .bind(&me.address)
        .bind(lease_millis(me.lease))
        .bind(i64::from(got_lock))
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        tx.commit().await?;
        Ok(Campaign::Elected { term })
    }

    /// Extends the lease of `term`; `false` when it no longer holds (another Stride was
    /// elected, or it ran out).
    pub async fn renew(&mut self, me: &Candidate, term: i64) -> Result<bool> {
        let holds_lock = self.try_lock().await?;
        let renewed = sqlx::query(&format!(
            "UPDATE leadership SET expires_at = {NOW_MS} + $1, holds_lock = $2 \
             WHERE id = 1 AND term = $3 AND holder = $4 AND expires_at > {NOW_MS}"
        ))
        .bind(lease_millis(me.lease))
        .bind(i64::from(holds_lock))
        .bind(term)
        .bind(&me.id)
        .execute(&mut self.conn)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    /// Gives the lease of `term` up at once, so that a standby takes over at its next campaign.
    pub async fn abdicate(&mut self, term: i64) -> Result<()> {
        sqlx::query(
            "UPDATE leadership SET expires_at = 0, holds_lock = 0 WHERE id = 1 AND term = $1",
        )
        .bind(term)
        .execute(&mut self.conn)
        .await?;
        self.unlock().await
    }
}

fn lease_millis(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

impl super::Store {
    /// The lease as it stands, and the database's clock.
    pub async fn lease(&self) -> Result<(Lease, i64)> {
        if self.backend != super::Backend::Postgres {
            return Err(Error::NoElection);
        }
        let row = sqlx::query(&select_lease("")).fetch_one(&self.pool).await?;
        lease_of(&row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{testing, Batch, Store};

    fn candidate(name: &str, lease_ms: u64) -> Candidate {
        Candidate {
            id: name.into(),
            address: format!("{name}:8080"),
            lease: Duration::from_millis(lease_ms),
        }
    }

    fn a_write() -> Batch {
        Batch {
            framework_id: Some("fw".into()),
            ..Batch::default()
        }
    }

    #[tokio::test]
    async fn a_crashed_leader_is_replaced_at_once_and_can_never_write_again() {
        let url = testing::postgres_url().await;
        let store = Store::open(&url).await.unwrap();
        let (a, b) = (candidate("a", 60_000), candidate("b", 60_000));
        let mut a_conn = ElectionConnection::connect(&url).await.unwrap();
        let mut b_conn = ElectionConnection::connect(&url).await.unwrap();

        let Campaign::Elected { term } = a_conn.campaign(&a).await.unwrap() else {
            panic!("the first candidate is elected");
        };
        assert_eq!(
            b_conn.campaign(&b).await.unwrap(),
            Campaign::Standby {
                leader: Some("a:8080".into())
            }
        );
        let (a_store, mut a_lost) = store.fenced(term);
        a_store.commit(&a_write()).await.unwrap();
        assert!(a_conn.renew(&a, term).await.unwrap());

        // The leader's session ends (its process died): its lock is free, the lease long.
        drop(a_conn);
        // Postgres ends the session a moment after the client has gone.
        let mut b_term = None;
        for _ in 0..250 {
            if let Campaign::Elected { term } = b_conn.campaign(&b).await.unwrap() {
                b_term = Some(term);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let b_term = b_term.expect("elected once the leader's session ended");
        assert_eq!(b_term, term + 1);
        assert!(matches!(
            a_store.commit(&a_write()).await,
            Err(Error::Fenced(t)) if t == term
        ));
        assert!(*a_lost.borrow_and_update(), "the fenced leader is told");
        let (b_store, _) = store.fenced(b_term);
        b_store.commit(&a_write()).await.unwrap();
        let (lease, now) = store.lease().await.unwrap();
        assert_eq!(lease.current_leader(now), Some("b:8080"));
    }

    #[tokio::test]
    async fn a_leader_that_stops_renewing_loses_its_lease_when_it_runs_out() {
        let url = testing::postgres_url().await;
        let store = Store::open(&url).await.unwrap();
        let (a, b) = (candidate("a", 400), candidate("b", 400));
        let mut a_conn = ElectionConnection::connect(&url).await.unwrap();
        let mut b_conn = ElectionConnection::connect(&url).await.unwrap();
        let Campaign::Elected { term } = a_conn.campaign(&a).await.unwrap() else {
            panic!("elected");
        };
        // `a` is alive (its session holds the lock) but silent, as when cut off from the others.
        assert!(matches!(
            b_conn.campaign(&b).await.unwrap(),
            Campaign::Standby { .. }
        ));
        tokio::time::sleep(Duration::from_millis(450)).await;
        let (a_store, _) = store.fenced(term);
        assert!(
            matches!(a_store.commit(&a_write()).await, Err(Error::Fenced(_))),
            "a lease that ran out fences its writes before anyone takes over"
        );
        assert_eq!(
            b_conn.campaign(&b).await.unwrap(),
            Campaign::Elected { term: term + 1 }
        );
        assert!(!a_conn.renew(&a, term).await.unwrap(), "`a` learns it lost");
        let (lease, _) = store.lease().await.unwrap();
        assert!(!lease.holds_lock, "`a`'s session still holds the lock");
        drop(a_conn);
        // Postgres ends the session a moment after the client has gone.
        let mut holds_lock = false;
        for _ in 0..250 {
            assert!(b_conn.renew(&b, term + 1).await.unwrap());
            holds_lock = store.lease().await.unwrap().0.holds_lock;
            if holds_lock {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(holds_lock, "the new leader takes the lock once it is free");
    }

    #[tokio::test]
    async fn an_abdicated_lease_is_taken_at_the_next_campaign() {
        let url = testing::postgres_url().await;
        let (a, b) = (candidate("a", 60_000), candidate("b", 60_000));
        let mut a_conn = ElectionConnection::connect(&url).await.unwrap();
        let mut b_conn = ElectionConnection::connect(&url).await.unwrap();
        Store::open(&url).await.unwrap();
        let Campaign::Elected { term } = a_conn.campaign(&a).await.unwrap() else {
            panic!("elected");
        };
        a_conn.abdicate(term).await.unwrap();
        assert_eq!(
            b_conn.campaign(&b).await.unwrap(),
            Campaign::Elected { term: term + 1 }
        );
        assert!(!a_conn.renew(&a, term).await.unwrap());
    }
}
