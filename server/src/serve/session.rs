//! One leadership: everything a Stride runs only while it leads, started when it is elected and
//! stopped when it steps down. The state is loaded from the store anew each time, the event bus
//! continues the journal's numbering, and Mesos is subscribed again with the stored framework
//! id, so tasks run on through a change of leader.

use super::master::Master;
use super::router::leader_router;
use crate::config::ServeConfig;
use crate::core::Snapshot;
use crate::leadership::{Election, Role};
use crate::store::Store;
use crate::{dns, events, lb, mesos, metrics, probes, service};
use anyhow::Context;
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// How long the leader's work may take to stop (the event journal to be written, Mesos to be
/// let go of).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What every leadership of this process shares.
pub struct Process {
    pub config: ServeConfig,
    pub store: Store,
    pub master: Master,
    pub election: Election,
    /// This Stride's `host:port`.
    pub address: String,
}

/// A leadership under way.
pub struct Leadership {
    stop: watch::Sender<bool>,
    journal: JoinHandle<()>,
    driver: JoinHandle<Result<(), String>>,
    /// Turns `true` once a write finds the term fenced; `None` without an election.
    fenced: Option<watch::Receiver<bool>>,
    /// Closes when the scheduler's task ends.
    scheduler: watch::Receiver<Arc<Snapshot>>,
    /// The API and the dashboard on this leadership's scheduler.
    pub router: Router,
}

/// Why a leadership cannot go on.
#[derive(Debug)]
pub enum Ended {
    /// A write found that another Stride holds the lease.
    Fenced,
    /// The scheduler's task stopped (the store cannot be read).
    SchedulerStopped,
    /// The Mesos driver ended without an error (its scheduler went away).
    DriverStopped,
    /// The Mesos driver gave up, with why.
    DriverFailed(String),
}

impl Ended {
    /// Whether this Stride must stop rather than stand by: the framework is gone from Mesos,
    /// or, without an election, Mesos will not take Stride's subscription (another scheduler
    /// took its framework over, or the master refuses it).
    pub fn is_fatal(&self, ha: bool) -> bool {
        match self {
            Ended::DriverFailed(reason) => !ha || reason.contains("has been removed"),
            Ended::Fenced | Ended::SchedulerStopped | Ended::DriverStopped => false,
        }
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Fenced => write!(f, "another Stride holds the lease"),
            Ended::SchedulerStopped => write!(f, "the scheduler stopped"),
            Ended::DriverStopped => write!(f, "the Mesos driver stopped"),
            Ended::DriverFailed(reason) => write!(f, "{reason}"),
        }
    }
}

impl Leadership {
    /// Starts leading in `term` (`None` without an election), unless `role` says the
    /// leadership ended while it was starting: a late subscription to Mesos would take the
    /// framework from the next leader.
    pub async fn start(
        process: &Process,
        term: Option<i64>,
        role: &watch::Receiver<Role>,
    ) -> anyhow::Result<Leadership> {
        let config = &process.config;
        let (stop, stopping) = watch::channel(false);
        let (store, fenced) = match term {
            Some(term) => {
                let (store, fenced) = process.store.fenced(term);
                (store, Some(fenced))
            }
            None => (process.store.clone(), None),
        };
        let (bus, journal) = events::journal::journaled_bus(
            config.events.event_ring_size,
            store.clone(),
            stopping.clone(),
        )
        .await
        .context("reading the event journal")?;
        let (mesos_tx, mesos_rx) = mpsc::unbounded_channel();
        let settings = service::Settings {
            master: config.master.clone(),
            framework_name: config.mesos.framework_name.clone(),
            hostname: process.master.hostname.clone(),
            user: config
                .mesos
                .mesos_user
                .clone()
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "root".into()),
            failover_timeout_secs: config.mesos.failover_timeout,
            http_port: config.http_address.port(),
            metrics_prefix: config.metrics.metrics_name_prefix.clone(),
            prometheus: !config.metrics.disable_metrics_prometheus,
            ha: process.election.ha,
            address: process.address.clone(),
            service_ports: config.discovery.service_ports()?,
            lb_address: config.discovery.lb_address()?,
            vip_range: config.discovery.vip_range,
            dns_address: config.discovery.dns_address,
        };
        let (service, outgoing) = service::start(
            settings.clone(),
            store.clone(),
            bus.clone(),
            mesos_rx,
            process.master.local.clone(),
            stopping.clone(),
        )
        .await?;
        let mut service = service.with_election(process.election.clone());
        if !config.events.disable_event_callbacks {
            service = service.with_callbacks(
                events::callbacks::Callbacks::start(
                    bus,
                    store,
                    config.events.callback_settings(),
                    &config.events.http_endpoints,
                    stopping.clone(),
                )
                .await
                .context("starting the event callbacks")?,
            );
        }
        let reported = service.clone();
        tokio::spawn(metrics::push::run(
            config.metrics.push_settings()?,
            move || reported.metrics_report(),
            stopping.clone(),
        ));
        probes::start(service.watch(), service.probes.clone(), stopping.clone())
            .context("starting the health-check prober")?;
        // The built-in master's agents are this machine: their tasks listen on loopback.
        let reach = if config.master == "local" {
            lb::proxy::Reach::Loopback
        } else {
            lb::proxy::Reach::Hostname
        };
        if let Some(address) = settings.lb_address {
            tokio::spawn(lb::follow_scheduler(
                service.watch(),
                address,
                reach,
                settings.vip_range,
            ));
        }
        if let Some(address) = settings.dns_address {
            let serving = dns::Serving {
                framework: settings.framework_name.clone(),
                leader: settings.address.clone(),
                reach,
                vip_range: settings.vip_range,
            };
            let snapshots = service.watch();
            tokio::spawn(async move {
                if let Err(e) = dns::serve(address, snapshots, serving).await {
                    tracing::error!("the DNS server cannot serve on {address}: {e}");
                }
            });
        }
        if *role.borrow() != (Role::Leader { term }) {
            anyhow::bail!("the leadership ended while it was starting");
        }
        let driver = tokio::spawn(mesos::run_driver(
            process.master.backend.clone(),
            mesos::FrameworkSettings {
                name: settings.framework_name.clone(),
                user: settings.user.clone(),
                roles: config.mesos.mesos_role.clone(),
                principal: config.mesos.mesos_principal.clone(),
                hostname: process.master.hostname.clone(),
                webui_url: format!("http://{}", process.address),
                failover_timeout: Duration::from_secs(settings.failover_timeout_secs),
            },
            service.snapshot().framework_id.clone(),
            mesos_tx,
            outgoing,
            stopping,
        ));
        Ok(Leadership {
            stop,
            journal,
            driver,
            fenced,
            scheduler: service.watch(),
            router: leader_router(service, config.http_address),
        })
    }

    /// Waits until the leadership cannot go on.
    pub async fn ended(&mut self) -> Ended {
        let fenced = async {
            match &mut self.fenced {
                Some(fenced) => {
                    if fenced.wait_for(|lost| *lost).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        let scheduler = async { while self.scheduler.changed().await.is_ok() {} };
        // The scheduler's end makes the driver end too; it is the cause, so it is asked first.
        tokio::select! {
            biased;
            () = fenced => Ended::Fenced,
            () = scheduler => Ended::SchedulerStopped,
            driven = &mut self.driver => match driven {
                Ok(Ok(())) => Ended::DriverStopped,
                Ok(Err(reason)) => Ended::DriverFailed(reason),
                Err(e) => Ended::DriverFailed(format!("the Mesos driver failed: {e}")),
            },
        }
    }

    /// Stops everything this leadership runs; its event streams end, its newest events are
    /// journaled (unless the term is fenced), Mesos is let go of without tearing anything down.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if !self.driver.is_finished()
            && tokio::time::timeout(STOP_GRACE, &mut self.driver)
                .await
                .is_err()
        {
            // A subscription still under way must not go through later and take the
            // framework from the next leader.
            tracing::warn!("the Mesos driver did not stop in time; it is aborted");
            self.driver.abort();
        }
        if tokio::time::timeout(STOP_GRACE, self.journal)
            .await
            .is_err()
        {
            tracing::warn!(
                "the newest events could not be journaled in time; readers resume from before them"
            );
        }
    }
}
