//! Stride's server: the Marathon REST API, the dashboard, the scheduler, the store and the
//! built-in Mesos master/agent.
//!
//! # Layout
//! - [`config`]: command-line flags.
//! - [`serve`]: serving: the store, the election, the listener, and a leadership while elected.
//! - [`leadership`]: the election among Strides sharing a Postgres store.
//! - [`api`]: Marathon's `/v2` REST API and the `/v2/events` SSE stream.
//! - [`dashboard`]: the dashboard's server-function backend.
//! - [`service`]: the task that owns the scheduler state, and the handle everyone else uses.
//! - [`core`]: the scheduler state and the operations on it (plan in memory, commit, then act).
//! - [`scheduler`]: the pure decisions (convergence, placement, status, backoff, deployments).
//! - [`views`]: read models for the API and the dashboard.
//! - [`store`]: SQLite/Postgres persistence.
//! - [`events`]: the event bus, its journal and the HTTP callback subscribers.
//! - [`metrics`]: Marathon-style metrics, `/metrics` in JSON and Prometheus, StatsD/Graphite.
//! - [`mesos`]: the Mesos driver (subscribe, translate, call).
//! - [`probes`]: Stride's own health and readiness probes, off the core's task.
//! - [`lb`]: the built-in L4 load balancer on the apps' service ports and VIPs.
//! - [`dns`]: the built-in DNS server with Mesos-DNS's names.
//! - [`master`]: the built-in single-node master, its process agent and the task supervisor.
//! - [`images`]: the built-in agents' image store (pulls over the OCI distribution API).

pub mod api;
pub mod config;
pub mod core;
pub mod dashboard;
pub mod dns;
pub mod events;
pub mod images;
pub mod lb;
pub mod leadership;
pub mod master;
pub mod mesos;
pub mod metrics;
pub mod probes;
pub mod scheduler;
pub mod serve;
pub mod service;
pub mod store;
pub mod views;

use anyhow::Context;
use std::future::IntoFuture;
use tokio::sync::watch;

pub use serve::run;

/// `stride lb`: the load balancer alone, following a leader, until SIGINT/SIGTERM.
pub async fn run_lb(args: config::LbArgs) -> anyhow::Result<()> {
    let following = lb::follow::Following {
        leader: args.leader.trim_end_matches('/').to_string(),
        address: args.lb_address,
        reach: if args.backends_on_loopback {
            lb::proxy::Reach::Loopback
        } else {
            lb::proxy::Reach::Hostname
        },
        vip_range: args.vip_range,
    };
    tracing::info!(leader = %following.leader, address = %following.address, "the load balancer follows the leader");
    tokio::select! {
        () = lb::follow::follow_leader(following) => {}
        () = shutdown_signal() => tracing::info!("the load balancer stops"),
    }
    Ok(())
}

/// `stride master`: serves the built-in master over HTTP until SIGINT/SIGTERM. Tasks keep
/// running when it stops and are re-adopted at its next start.
pub async fn run_master(args: config::MasterArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data dir {}", args.data_dir.display()))?;
    let data_dir = args.data_dir.canonicalize()?;
    let simulated = match args.simulate_agents {
        Some(count) => {
            let mut resources = master::host::HostResources::default();
            resources
                .apply_overrides(&args.simulated_agent_resources)
                .map_err(|e| anyhow::anyhow!("--simulated-agent-resources: {e}"))?;
            Some((count, resources))
        }
        None => None,
    };
    let (local, _) = serve::master::start_local_master(&args.agent, &data_dir, simulated).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(address = %args.listen, data_dir = %data_dir.display(), "the Mesos master is serving");
    let (stop_tx, mut stopping) = watch::channel(false);
    let server = axum::serve(listener, master::server::router(local, args.listen))
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("stopping; tasks keep running and are re-adopted at the next start");
            let _ = stop_tx.send(true);
        });
    // Event streams stay open until their frameworks hang up; do not wait for them long.
    tokio::select! {
        served = server.into_future() => served?,
        _ = async {
            let _ = stopping.wait_for(|stop| *stop).await;
            tokio::time::sleep(serve::SHUTDOWN_GRACE).await;
        } => {}
    }
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
