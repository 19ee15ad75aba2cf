//! Stride's server: the Marathon REST API, the dashboard, the scheduler, the store and the
//! built-in Mesos master/agent.
//!
//! # Layout
//! - [`config`]: command-line flags.
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
//! - [`master`]: the built-in single-node master, its process agent and the task supervisor.

pub mod api;
pub mod config;
pub mod core;
pub mod dashboard;
pub mod events;
pub mod master;
pub mod mesos;
pub mod metrics;
pub mod probes;
pub mod scheduler;
pub mod service;
pub mod store;
pub mod views;

use anyhow::Context;
use axum::extract::FromRef;
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// How long open requests may take to finish once Stride is asked to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Clone, FromRef)]
struct AppState {
    leptos_options: LeptosOptions,
    service: service::Service,
}

/// Where the built dashboard (`pkg/stride.js`, `.wasm`, `.css`) is: `STRIDE_SITE_ROOT`, else
/// `site` beside the binary's directory (`target/site` for `target/debug/stride`).
fn site_root() -> PathBuf {
    if let Ok(root) = std::env::var("STRIDE_SITE_ROOT") {
        return PathBuf::from(root);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(|p| p.join("site")))
        .unwrap_or_else(|| PathBuf::from("target/site"))
}

/// Serves Stride until SIGINT/SIGTERM.
pub async fn run(config: config::ServeConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data dir {}", config.data_dir.display()))?;
    let data_dir = config.data_dir.canonicalize()?;
    let store = store::Store::open(&format!(
        "sqlite://{}",
        data_dir.join("stride.db").display()
    ))
    .await
    .context("opening the store")?;

    let (shutdown_tx, shutdown) = watch::channel(false);
    let (bus, journal) = events::journal::journaled_bus(
        config.events.event_ring_size,
        store.clone(),
        shutdown.clone(),
    )
    .await
    .context("reading the event journal")?;
    let (mesos_tx, mesos_rx) = mpsc::unbounded_channel();
    let master = connect_master(&config, &data_dir).await?;
    let settings = service::Settings {
        master: config.master.clone(),
        framework_name: config.mesos.framework_name.clone(),
        hostname: master.hostname.clone(),
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
    };
    let (service, outgoing) = service::start(
        settings.clone(),
        store.clone(),
        bus.clone(),
        mesos_rx,
        master.sandboxes,
        shutdown.clone(),
    )
    .await?;
    let service = if config.events.disable_event_callbacks {
        service
    } else {
        service.with_callbacks(
            events::callbacks::Callbacks::start(
                bus,
                store.clone(),
                config.events.callback_settings(),
                &config.events.http_endpoints,
                shutdown.clone(),
            )
            .await
            .context("starting the event callbacks")?,
        )
    };
    metrics::register_marathon_names();
    tokio::spawn(metrics::history::run(shutdown.clone()));
    let reported = service.clone();
    tokio::spawn(metrics::push::run(
        config.metrics.push_settings()?,
        move || reported.metrics_report(),
        shutdown.clone(),
    ));
    probes::start(service.watch(), service.probes.clone(), shutdown.clone())
        .context("starting the health-check prober")?;
    let framework_id = service.snapshot().framework_id.clone();
    let driver = mesos::run_driver(
        master.backend,
        mesos::FrameworkSettings {
            name: settings.framework_name.clone(),
            user: settings.user.clone(),
            roles: config.mesos.mesos_role.clone(),
            principal: config.mesos.mesos_principal.clone(),
            hostname: master.hostname,
            webui_url: format!("http://{}", config.http_address),
            failover_timeout: Duration::from_secs(settings.failover_timeout_secs),
        },
        framework_id,
        mesos_tx,
        outgoing,
        shutdown.clone(),
    );
    let (fatal_tx, fatal_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        if let Err(reason) = driver.await {
            let _ = fatal_tx.send(reason);
        }
    });

    let router = http_router(service, config.http_address);
    let listener = tokio::net::TcpListener::bind(config.http_address)
        .await
        .with_context(|| format!("binding {}", config.http_address))?;
    tracing::info!(address = %config.http_address, data_dir = %data_dir.display(), "Stride is serving");
    let fatal = Arc::new(std::sync::Mutex::new(None::<String>));
    let fatal_slot = fatal.clone();
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let driver_failed = async {
            match fatal_rx.await {
                Ok(reason) => reason,
                // The driver ended without a reason: Stride is stopping anyway.
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown_signal() => {
                tracing::info!("stopping; tasks keep running and are re-adopted at the next start");
            }
            reason = driver_failed => {
                tracing::error!(%reason, "stopping: the connection to Mesos cannot go on");
                *fatal_slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason);
            }
        }
        let _ = shutdown_tx.send(true);
    });
    let mut stopping = shutdown.clone();
    tokio::select! {
        served = server.into_future() => served?,
        _ = async {
            let _ = stopping.wait_for(|stop| *stop).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::warn!("requests still open {SHUTDOWN_GRACE:?} after the stop signal; stopping anyway"),
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, journal).await.is_err() {
        tracing::warn!(
            "the newest events could not be journaled in time; readers resume from before them"
        );
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

/// Starts the built-in master and its agent, whose tasks live in `data_dir/agent`; the master
/// and the agent's hostname.
async fn start_local_master(
    agent: &config::AgentConfig,
    data_dir: &Path,
    simulated: Option<(usize, master::host::HostResources)>,
) -> anyhow::Result<(master::local::LocalMaster, String)> {
    let hostname = agent
        .agent_hostname
        .clone()
        .unwrap_or_else(master::host::hostname);
    let mut resources = master::host::HostResources::detect(data_dir)?;
    if let Some(spec) = &agent.agent_resources {
        resources
            .apply_overrides(spec)
            .map_err(|e| anyhow::anyhow!("--agent-resources: {e}"))?;
    }
    let attributes = match &agent.agent_attributes {
        Some(spec) => master::host::parse_attributes(spec)
            .map_err(|e| anyhow::anyhow!("--agent-attributes: {e}"))?,
        None => Vec::new(),
    };
    let local = master::local::LocalMaster::start(master::local::AgentSettings {
        work_dir: data_dir.join("agent"),
        stride_exe: std::env::current_exe()?,
        hostname: hostname.clone(),
        resources,
        attributes,
        simulated,
    })
    .await
    .context("starting the built-in master")?;
    Ok((local, hostname))
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
    let (local, _) = start_local_master(&args.agent, &data_dir, simulated).await?;
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
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {}
    }
    Ok(())
}

/// The master Stride subscribes to, and what goes with it.
struct Master {
    backend: Arc<dyn mesos::Backend>,
    /// The hostname Stride reports as its own in FrameworkInfo.
    hostname: String,
    /// Where a task's sandbox is, when tasks run on this machine (the built-in agent).
    sandboxes: Option<service::SandboxLocator>,
}

/// Starts the built-in master and agent for `--master local`, or prepares the HTTP connection
/// to the Mesos master named by a URL.
async fn connect_master(config: &config::ServeConfig, data_dir: &Path) -> anyhow::Result<Master> {
    if config.master != "local" {
        let master = config
            .master
            .parse()
            .with_context(|| format!("--master {}: not `local` nor a URL", config.master))?;
        let mesos = &config.mesos;
        let credentials = match (&mesos.mesos_principal, &mesos.mesos_secret) {
            (Some(principal), Some(secret)) => Some((principal.clone(), secret.clone())),
            (None, Some(_)) => anyhow::bail!("--mesos-secret needs --mesos-principal"),
            _ => None,
        };
        let backend = mesos::http::HttpMaster::new(mesos::http::HttpSettings {
            master,
            api_path: mesos.mesos_api_path.clone(),
            content_type: mesos.mesos_content_type,
            credentials,
            heartbeat_misses: mesos.mesos_heartbeat_misses.max(1),
        })
        .map_err(|e| anyhow::anyhow!("--master {}: {e}", config.master))?;
        return Ok(Master {
            backend: Arc::new(backend),
            hostname: master::host::hostname(),
            sandboxes: None,
        });
    }
    let (local, hostname) = start_local_master(&config.agent, data_dir, None).await?;
    let locator = local.clone();
    Ok(Master {
        backend: Arc::new(local),
        hostname,
        sandboxes: Some(Arc::new(move |task_id: &str| locator.sandbox_dir(task_id))),
    })
}

fn http_router(service: service::Service, address: SocketAddr) -> Router {
    let site_root = site_root();
    let leptos_options = LeptosOptions::builder()
        .output_name("stride")
        .site_root(site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(address)
        .build();
    let state = AppState {
        leptos_options: leptos_options.clone(),
        service: service.clone(),
    };
    let backend: Arc<dyn app::api::Backend> = Arc::new(service.clone());
    let routes = generate_route_list(app::ui::App);
    let no_cache = |name: &'static str, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(
            axum::http::HeaderName::from_static(name),
            axum::http::HeaderValue::from_static(value),
        )
    };
    let api = api::router()
        .route_layer(axum::middleware::from_fn(metrics::http::tag_route))
        .with_state(service);
    Router::new()
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(backend.clone()),
            move || app::ui::shell(leptos_options.clone()),
        )
        .nest_service("/pkg", ServeDir::new(site_root.join("pkg")))
        .with_state(state)
        .merge(api)
        .fallback(api::not_found)
        .layer(no_cache(
            "cache-control",
            "no-cache, no-store, must-revalidate",
        ))
        .layer(no_cache("pragma", "no-cache"))
        .layer(no_cache("expires", "0"))
        .layer(axum::middleware::from_fn(metrics::http::track))
        .layer(SetResponseHeaderLayer::overriding(
            axum::http::header::SERVER,
            axum::http::HeaderValue::from_str(&api::system::stride_version())
                .unwrap_or_else(|_| axum::http::HeaderValue::from_static("stride")),
        ))
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
