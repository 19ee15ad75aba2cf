//! `stride` serving: the store, the election, the HTTP listener, and a [`Leadership`] whenever
//! this Stride leads.
//!
//! - [`master`]: the Mesos master Stride subscribes to (built in, or by URL).
//! - [`session`]: one leadership (scheduler, event bus, callbacks, probes, Mesos driver).
//! - [`router`]: the leader's router, and the listener's, which switches with the role.
//! - [`proxy`]: how a standby passes requests on to the leader.

pub mod master;
pub mod proxy;
pub mod router;
pub mod session;

use crate::config::ServeConfig;
use crate::leadership::{self, Role};
use crate::store::leadership::Candidate;
use crate::store::{Backend, Store};
use crate::{metrics, shutdown_signal};
use anyhow::Context;
use router::Current;
use session::{Leadership, Process};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// How long open requests may take to finish once Stride is asked to stop.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How often a standby campaigns.
const CAMPAIGN_POLL: Duration = Duration::from_millis(250);

/// Serves Stride until SIGINT/SIGTERM.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data dir {}", config.data_dir.display()))?;
    let data_dir = config.data_dir.canonicalize()?;
    // Flags are checked now: a leadership that could never start must not be retried forever.
    config.metrics.push_settings()?;
    let lease = config.leadership.lease()?;
    let store_url = config
        .store
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("stride.db").display()));
    let store = Store::open(&store_url).await.context("opening the store")?;
    let ha = store.backend() == Backend::Postgres && !config.leadership.disable_ha;
    if ha && config.master == "local" {
        anyhow::bail!(
            "Strides sharing a Postgres store need a Mesos master they can all reach \
             (`--master http://HOST:PORT`, `stride master` for one); the built-in master \
             runs only in its own process. Pass --disable-ha to lead alone."
        );
    }
    let address = advertised_address(&config);
    let (shutdown_tx, shutdown) = watch::channel(false);
    let (election, electing) = if ha {
        leadership::start(
            leadership::Settings {
                url: store_url,
                candidate: Candidate {
                    id: uuid::Uuid::new_v4().to_string(),
                    address: address.clone(),
                    lease,
                },
                poll: CAMPAIGN_POLL,
            },
            shutdown.clone(),
        )
    } else {
        leadership::without_election(shutdown.clone())
    };
    let master = master::connect_master(&config, &data_dir).await?;
    metrics::register_marathon_names();
    tokio::spawn(metrics::history::run(shutdown.clone()));

    let proxy = proxy::Proxy::new(
        &address,
        Duration::from_millis(config.leadership.leader_proxy_connection_timeout_ms),
        Duration::from_millis(config.leadership.leader_proxy_read_timeout_ms),
    )?;
    let (current_tx, current) = watch::channel(Current::Standby { leader: None });
    let local = match &master.local {
        Some(local) => crate::master::server::router(local.clone(), config.http_address),
        None => axum::Router::new(),
    };
    let router = router::listener_router(current, proxy, address.clone(), local);
    let listener = tokio::net::TcpListener::bind(config.http_address)
        .await
        .with_context(|| format!("binding {}", config.http_address))?;
    tracing::info!(address = %config.http_address, advertised = %address, data_dir = %data_dir.display(), ha, "Stride is serving");

    let http_address = config.http_address;
    let process = Arc::new(Process {
        config,
        store,
        master,
        election,
        address,
    });
    let (fatal_tx, fatal_rx) = oneshot::channel();
    let leading = tokio::spawn(lead_when_elected(
        process,
        current_tx,
        fatal_tx,
        shutdown.clone(),
    ));

    let fatal = Arc::new(std::sync::Mutex::new(None::<String>));
    let fatal_slot = fatal.clone();
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let cannot_go_on = async {
            match fatal_rx.await {
                Ok(reason) => reason,
                // The leaderships ended without a reason: Stride is stopping anyway.
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown_signal() => {
                tracing::info!("stopping; tasks keep running and are re-adopted at the next start");
            }
            reason = cannot_go_on => {
                tracing::error!(%reason, "stopping: the connection to Mesos cannot go on");
                *fatal_slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason);
            }
        }
        let _ = shutdown_tx.send(true);
    });
    let mut stopping = shutdown.clone();
    tokio::select! {
        served = server.into_future() => served.with_context(|| format!("serving {http_address}"))?,
        _ = async {
            let _ = stopping.wait_for(|stop| *stop).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::warn!("requests still open {SHUTDOWN_GRACE:?} after the stop signal; stopping anyway"),
    }
    if tokio::time::timeout(2 * SHUTDOWN_GRACE, leading)
        .await
        .is_err()
    {
        tracing::warn!("the leadership did not stop in time");
    }
    // The lease is handed over once the leadership has stopped.
    if tokio::time::timeout(SHUTDOWN_GRACE, electing)
        .await
        .is_err()
    {
        tracing::warn!("the lease could not be handed over in time; it runs out instead");
    }
    let fatal = fatal
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    match fatal {
        Some(reason) => Err(anyhow::anyhow!(reason)),
        None => Ok(()),
    }
}

/// `--hostname` (or the listen address, or the machine's name when listening on every
/// address) with the HTTP port.
fn advertised_address(config: &ServeConfig) -> String {
    let host = config.hostname.clone().unwrap_or_else(|| {
        let ip = config.http_address.ip();
        if ip.is_unspecified() {
            crate::master::host::hostname()
        } else {
            ip.to_string()
        }
    });
    format!("{host}:{}", config.http_address.port())
}

/// Follows the election: leads while elected (and tells the listener so), stands by
/// otherwise. A leadership that cannot go on is stopped and the election told to step down;
/// one that must not go on at all (the framework is gone from Mesos) stops Stride.
async fn lead_when_elected(
    process: Arc<Process>,
    current: watch::Sender<Current>,
    fatal: oneshot::Sender<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut roles = process.election.role();
    let mut role = roles.borrow_and_update().clone();
    let mut fatal = Some(fatal);
    loop {
        let mut leadership = None;
        match role {
            Role::Leader { term } => {
                // Until the state is loaded, requests wait for this leader rather than go
                // to the one before.
                current.send_replace(Current::Standby { leader: None });
                match Leadership::start(&process, term, &roles).await {
                    Ok(started) => {
                        process.election.working(true);
                        current.send_replace(Current::Leading(started.router.clone()));
                        leadership = Some(started);
                    }
                    Err(e) => process
                        .election
                        .step_down(format!("the leadership could not start: {e:#}")),
                }
            }
            Role::Standby { leader } => {
                current.send_replace(Current::Standby { leader });
            }
        }
        loop {
            let ended = async {
                match leadership.as_mut() {
                    Some(leadership) => leadership.ended().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = roles.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                ended = ended => {
                    current.send_replace(Current::Standby { leader: None });
                    if let Some(leadership) = leadership.take() {
                        leadership.stop().await;
                        process.election.working(false);
                    }
                    if ended.is_fatal(process.election.ha) {
                        if let Some(fatal) = fatal.take() {
                            let _ = fatal.send(ended.to_string());
                        }
                        return;
                    }
                    process.election.step_down(ended.to_string());
                }
                () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => {
                    if let Some(leadership) = leadership.take() {
                        leadership.stop().await;
                        process.election.working(false);
                    }
                    return;
                }
            }
        }
        if let Some(leadership) = leadership.take() {
            current.send_replace(Current::Standby { leader: None });
            leadership.stop().await;
            process.election.working(false);
        }
        role = roles.borrow_and_update().clone();
    }
}
