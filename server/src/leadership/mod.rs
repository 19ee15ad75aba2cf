//! Leader election among the Strides that share one Postgres store.
//!
//! Why a lease row *and* an advisory lock: the lease (a term and an expiry on the database's
//! clock) is what fences writes and what survives partitions, since it needs nothing from the
//! network once it runs out; the session advisory lock is what makes a failover after a crash
//! fast, since Postgres frees it the moment the dead leader's connection closes. A lock alone
//! would leave a leader cut off from Postgres holding it until TCP gives up (minutes to hours);
//! a lease alone would make every crash cost the whole lease time.
//!
//! - [`lease`]: the rules, without IO.
//! - [`start`]: the task that campaigns while standing by, renews while leading, and steps
//!   down (to come back as a standby, never by exiting) when it cannot renew in time, when
//!   asked to abdicate, or when the leader's work reports that it cannot go on.

pub mod lease;

use crate::store::leadership::{Campaign, Candidate, ElectionConnection};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// What this process is, as the election says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Leading; `term` is `None` without an election (a SQLite store, or `--disable-ha`).
    Leader { term: Option<i64> },
    /// Standing by; `leader` is the leader's `host:port` when one is known.
    Standby { leader: Option<String> },
}

/// What the rest of the process asks of the election.
#[derive(Debug)]
enum Request {
    /// `DELETE /v2/leader`: give the lease up so that another Stride takes over.
    Abdicate,
    /// The leader's work cannot go on (its store is fenced, its scheduler stopped, Mesos
    /// failed it over): stand by and campaign again.
    StepDown { reason: String },
}

/// How the election runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The Postgres store's URL.
    pub url: String,
    pub candidate: Candidate,
    /// How often a standby campaigns.
    pub poll: Duration,
}

/// The election's handle: the current role, and requests to it.
#[derive(Clone)]
pub struct Election {
    role: watch::Receiver<Role>,
    requests: mpsc::UnboundedSender<Request>,
    /// Whether a leadership's work runs in this process: a lease being handed over is given
    /// up only once it no longer does (its newest events journaled).
    working: Arc<watch::Sender<bool>>,
    /// Whether Strides elect a leader at all (`/v2/info`'s `ha`).
    pub ha: bool,
}

impl Election {
    pub fn role(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }

    pub fn abdicate(&self) {
        let _ = self.requests.send(Request::Abdicate);
    }

    pub fn step_down(&self, reason: String) {
        let _ = self.requests.send(Request::StepDown { reason });
    }

    /// Says whether a leadership's work runs now (started) or not (stopped).
    pub fn working(&self, running: bool) {
        self.working.send_replace(running);
    }
}

/// The longest a leader handing its lease over waits for its work to stop.
const HAND_OVER_WAIT: Duration = Duration::from_secs(10);

/// How long a Stride that gave its lease up waits before campaigning again, so that another
/// takes over; alone, it leads again after that.
fn abdication_pause(lease: Duration) -> Duration {
    lease.max(Duration::from_secs(1))
}

/// Without an election this process always leads; a request to step down or abdicate starts
/// its leadership anew (the state reloaded from the store, Mesos subscribed again) after a
/// pause, as an external supervisor restarting Marathon would.
pub fn without_election(shutdown: watch::Receiver<bool>) -> (Election, JoinHandle<()>) {
    let (role_tx, role) = watch::channel(Role::Leader { term: None });
    let (requests, mut requests_rx) = mpsc::unbounded_channel();
    let mut stopping = shutdown;
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                request = requests_rx.recv() => {
                    let Some(request) = request else { return };
                    tracing::warn!(?request, "the leadership starts anew");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    role_tx.send_replace(Role::Leader { term: None });
                }
                _ = stopping.changed() => return,
            }
        }
    });
    let election = Election {
        role,
        requests,
        working: Arc::new(watch::channel(false).0),
        ha: false,
    };
    (election, task)
}

/// Starts campaigning; the task ends once Stride stops and the lease is handed over.
pub fn start(settings: Settings, shutdown: watch::Receiver<bool>) -> (Election, JoinHandle<()>) {
    let (role_tx, role) = watch::channel(Role::Standby { leader: None });
    let (requests, requests_rx) = mpsc::unbounded_channel();
    let (working, work) = watch::channel(false);
    let task = tokio::spawn(
        Campaigner {
            settings,
            role: role_tx,
            requests: requests_rx,
            work,
            shutdown,
            connection: None,
        }
        .run(),
    );
    let election = Election {
        role,
        requests,
        working: Arc::new(working),
        ha: true,
    };
    (election, task)
}

/// The election task's state.
struct Campaigner {
    settings: Settings,
    role: watch::Sender<Role>,
    requests: mpsc::UnboundedReceiver<Request>,
    /// Whether a leadership's work runs in this process.
    work: watch::Receiver<bool>,
    shutdown: watch::Receiver<bool>,
    /// The election's own connection, while it works; its session holds the lock.
    connection: Option<ElectionConnection>,
}

/// How a leadership ended.
enum Ended {
    Lost,
    Abdicated,
    Stopping,
}

impl Campaigner {
    fn lease(&self) -> Duration {
        self.settings.candidate.lease
    }

    /// How often a leader renews, and how long one attempt may take.
    fn renew_interval(&self) -> Duration {
        (self.lease() / 4).max(Duration::from_millis(50))
    }

    async fn run(mut self) {
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            let started = Instant::now();
            match self.campaign().await {
                Some(Campaign::Elected { term }) => {
                    tracing::info!(term, address = %self.settings.candidate.address, "elected leader");
                    self.role.send_replace(Role::Leader { term: Some(term) });
                    let ended = self.lead(term, started).await;
                    self.role.send_replace(Role::Standby { leader: None });
                    // The lock goes with the session: a standby may take over at once.
                    self.connection = None;
                    let stopping = match ended {
                        Ended::Stopping => return,
                        Ended::Abdicated => self.follow(abdication_pause(self.lease())).await,
                        Ended::Lost => self.pause(self.settings.poll).await,
                    };
                    if stopping {
                        return;
                    }
                }
                Some(Campaign::Standby { leader }) => {
                    self.role.send_if_modified(|role| {
                        let standby = Role::Standby { leader };
                        let changed = *role != standby;
                        *role = standby;
                        changed
                    });
                    if self.pause(self.settings.poll).await {
                        return;
                    }
                }
                None => {
                    self.role.send_if_modified(|role| {
                        let changed = *role != Role::Standby { leader: None };
                        *role = Role::Standby { leader: None };
                        changed
                    });
                    if self
                        .pause(self.settings.poll.max(Duration::from_secs(1)))
                        .await
                    {
                        return;
                    }
                }
            }
        }
    }

    /// Waits, answering requests (a standby has nothing to abdicate); whether Stride stops.
    async fn pause(&mut self, pause: Duration) -> bool {
        let until = tokio::time::Instant::now() + pause;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return false,
                request = self.requests.recv() => {
                    if request.is_none() {
                        return true;
                    }
                }
                _ = self.shutdown.changed() => return true,
            }
        }
    }

    /// Stands by without campaigning for `pause`, naming the leader the lease names (so that
    /// requests to this Stride go to the one that took over); whether Stride stops.
    async fn follow(&mut self, pause: Duration) -> bool {
        let until = tokio::time::Instant::now() + pause;
        while tokio::time::Instant::now() < until {
            let timeout = self.renew_interval().max(Duration::from_secs(1));
            let leader = match self.connection.as_mut() {
                Some(connection) => tokio::time::timeout(timeout, connection.leader())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .flatten(),
                None => {
                    let connecting = ElectionConnection::connect(&self.settings.url);
                    if let Ok(Ok(connection)) = tokio::time::timeout(timeout, connecting).await {
                        self.connection = Some(connection);
                    }
                    None
                }
            };
            if leader.is_some() {
                self.role.send_replace(Role::Standby { leader });
            }
            if self.pause(self.settings.poll).await {
                return true;
            }
        }
        false
    }

    /// One campaign; `None` when the store cannot be reached.
    async fn campaign(&mut self) -> Option<Campaign> {
        let timeout = self.renew_interval().max(Duration::from_secs(1));
        if self.connection.is_none() {
            match tokio::time::timeout(timeout, ElectionConnection::connect(&self.settings.url))
                .await
            {
                Ok(Ok(connection)) => self.connection = Some(connection),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "the election cannot reach the store");
                    return None;
                }
                Err(_) => {
                    tracing::warn!("the election's connection to the store timed out");
                    return None;
                }
            }
        }
        let connection = self.connection.as_mut()?;
        match tokio::time::timeout(timeout, connection.campaign(&self.settings.candidate)).await {
            Ok(Ok(campaign)) => Some(campaign),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "campaigning failed");
                self.connection = None;
                None
            }
            Err(_) => {
                tracing::warn!("campaigning timed out");
                self.connection = None;
                None
            }
        }
    }

    /// Leads until the lease is lost or given up: renews it every quarter of its time, and
    /// stops acting a fifth of the lease before the last renewal could run out.
    async fn lead(&mut self, term: i64, campaign_started: Instant) -> Ended {
        let lease = self.lease();
        let margin = lease / 5;
        let interval = self.renew_interval();
        let mut renewed = campaign_started;
        loop {
            let acts_until = lease::acts_until(renewed, lease, margin);
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = tokio::time::sleep_until(acts_until.into()) => {
                    tracing::error!(term, "stepping down: the lease could not be renewed in time");
                    return Ended::Lost;
                }
                request = self.requests.recv() => match request {
                    Some(Request::Abdicate) => {
                        tracing::info!(term, "abdicating");
                        self.hand_over(term, renewed).await;
                        return Ended::Abdicated;
                    }
                    Some(Request::StepDown { reason }) => {
                        tracing::error!(term, %reason, "stepping down");
                        return Ended::Lost;
                    }
                    None => return Ended::Stopping,
                },
                _ = self.shutdown.changed() => {
                    // Handing over at once spares the others the wait for the lease.
                    self.hand_over(term, renewed).await;
                    return Ended::Stopping;
                }
            }
            let attempt = Instant::now();
            let acts_until = lease::acts_until(renewed, lease, margin);
            match self.renew(term, acts_until).await {
                Some(true) => renewed = attempt,
                Some(false) => {
                    tracing::error!(term, "stepping down: another Stride holds the lease, or this one's session (and lock) ended");
                    return Ended::Lost;
                }
                None if Instant::now() >= acts_until => {
                    tracing::error!(
                        term,
                        "stepping down: the lease could not be renewed in time"
                    );
                    return Ended::Lost;
                }
                None => {}
            }
        }
    }

    /// One renewal, given up at `deadline`: `Some(held)`, or `None` when the store did not
    /// answer in time. A connection that fails while it holds the lock is a lost lease: its
    /// session (and lock) is gone, so a standby may take over at once.
    async fn renew(&mut self, term: i64, deadline: Instant) -> Option<bool> {
        let deadline = tokio::time::Instant::from_std(deadline);
        if self.connection.is_none() {
            let connecting = ElectionConnection::connect(&self.settings.url);
            match tokio::time::timeout_at(deadline, connecting).await {
                Ok(Ok(connection)) => self.connection = Some(connection),
                Ok(Err(e)) => {
                    tracing::warn!(term, error = %e, "renewing the lease: the store cannot be reached");
                    return None;
                }
                Err(_) => {
                    tracing::warn!(term, "renewing the lease: connecting timed out");
                    return None;
                }
            }
        }
        let connection = self.connection.as_mut()?;
        let held_lock = connection.holds_lock();
        let renewing = connection.renew(&self.settings.candidate, term);
        let failure = match tokio::time::timeout_at(deadline, renewing).await {
            Ok(Ok(held)) => return Some(held),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_string(),
        };
        tracing::warn!(term, %failure, "renewing the lease failed");
        self.connection = None;
        held_lock.then_some(false)
    }

    /// Gives the lease up once the leader's work has stopped, renewing it until then, so that
    /// what the work writes last (its newest events) is not fenced out.
    async fn hand_over(&mut self, term: i64, mut renewed: Instant) {
        self.role.send_replace(Role::Standby { leader: None });
        let lease = self.lease();
        let margin = lease / 5;
        let interval = self.renew_interval();
        let waited = tokio::time::Instant::now() + HAND_OVER_WAIT;
        while *self.work.borrow_and_update() {
            let acts_until = lease::acts_until(renewed, lease, margin);
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = tokio::time::sleep_until(acts_until.into()) => return,
                _ = tokio::time::sleep_until(waited) => break,
                _ = self.work.changed() => continue,
            }
            let attempt = Instant::now();
            match self.renew(term, acts_until).await {
                Some(true) => renewed = attempt,
                Some(false) => return,
                None => {}
            }
        }
        self.give_up(term).await;
    }

    async fn give_up(&mut self, term: i64) {
        let timeout = self.renew_interval();
        if let Some(connection) = self.connection.as_mut() {
            match tokio::time::timeout(timeout, connection.abdicate(term)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(term, error = %e, "giving the lease up failed; it runs out instead")
                }
                Err(_) => {
                    tracing::warn!(term, "giving the lease up timed out; it runs out instead")
                }
            }
        }
    }
}
