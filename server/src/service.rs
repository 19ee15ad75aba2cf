//! The service layer: the one task that owns the [`Core`], and the handle the REST API and the
//! dashboard use to read snapshots and request changes.
//!
//! Requests run as jobs on the core's task, so each read-modify-write is atomic. Jobs and Mesos
//! inputs that arrive together are committed in one transaction; replies, events and Mesos calls
//! (acknowledgements included) go out only after that commit.

mod groups;

pub use groups::GroupOutcome;

use crate::core::{versioned, Core, KillOutcome, Outgoing, Snapshot, Versioning};
use crate::events::callbacks::Callbacks;
use crate::events::EventBus;
use crate::leadership::Election;
use crate::master::local::LocalMaster;
use crate::mesos::MesosInput;
use crate::metrics;
use crate::scheduler::deployment::Deployment;
use crate::scheduler::health::ProbeResult;
use crate::scheduler::instance::parse_task_id;
use crate::scheduler::service_ports::PortRange;
use crate::store::Store;
use app::model::{
    parse_body, path, validate_app, validate_app_update, AppDefinition, AppUpdate, BodyError,
    ReadinessResult, ServiceError, TaskLog, Timestamp,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

type Finish = Box<dyn FnOnce(bool) + Send>;
type Job = Box<dyn FnOnce(&mut Core, Timestamp) -> Finish + Send>;

/// Jobs or inputs taken from the queues before committing, bounding a transaction's size.
const MAX_BATCH: usize = 512;

/// Facts about this Stride the API reports (`/v2/info`).
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub master: String,
    pub framework_name: String,
    pub hostname: String,
    pub user: String,
    pub failover_timeout_secs: u64,
    pub http_port: u16,
    /// The first component of metric names.
    pub metrics_prefix: String,
    /// Whether `/metrics/prometheus` answers.
    pub prometheus: bool,
    /// Whether Strides elect a leader (a Postgres store without `--disable-ha`).
    pub ha: bool,
    /// This Stride's `host:port`: the leader's address while it leads.
    pub address: String,
    /// Where service ports 0 get their port from.
    pub service_ports: PortRange,
    /// Where the built-in load balancer listens, if it runs.
    pub lb_address: Option<std::net::IpAddr>,
    /// Where named VIPs get their addresses.
    pub vip_range: crate::lb::vips::VipRange,
    /// Where the DNS server answers, if it runs.
    pub dns_address: Option<std::net::SocketAddr>,
}

#[derive(Clone)]
pub struct Service {
    pub settings: Arc<Settings>,
    jobs: mpsc::Sender<Job>,
    /// Where probers send their results.
    pub probes: mpsc::Sender<ProbeInput>,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    pub events: EventBus,
    /// HTTP callback subscribers; `None` when Stride runs with `--disable-event-callbacks`.
    pub callbacks: Option<Callbacks>,
    /// The election this Stride leads by (`DELETE /v2/leader` abdicates through it).
    pub election: Option<Election>,
    /// When this leadership began (the scheduler was started).
    pub leading_since: std::time::Instant,
    store: Store,
    /// The built-in master, when its agents run in this process: their sandboxes hold the
    /// tasks' output, and the dashboard's Agents page lists and cuts them off.
    pub local: Option<LocalMaster>,
    /// Flips to `true` when Stride stops; long-lived responses (event streams) end then.
    pub shutdown: watch::Receiver<bool>,
}

pub fn now() -> Timestamp {
    Timestamp::from_millis(chrono::Utc::now().timestamp_millis())
}

/// Starts the core's task. Mesos inputs come in on `mesos`; calls for the master go out on the
/// returned receiver; probe results are sent with [`Service::probes`].
pub async fn start(
    settings: Settings,
    store: Store,
    events: EventBus,
    mesos: mpsc::UnboundedReceiver<MesosInput>,
    local: Option<LocalMaster>,
    shutdown: watch::Receiver<bool>,
) -> Result<(Service, mpsc::UnboundedReceiver<Outgoing>), crate::store::Error> {
    let core = Core::new(store.load().await?, StdRng::from_entropy())
        .with_service_port_range(settings.service_ports);
    let (snapshot_tx, snapshot) = watch::channel(Arc::new(core.snapshot()));
    let (jobs, jobs_rx) = mpsc::channel(1024);
    let (probes, probes_rx) = mpsc::channel(PROBE_QUEUE);
    let (outgoing_tx, outgoing_rx) = mpsc::unbounded_channel();
    tokio::spawn(
        CoreTask {
            core,
            service_ports: settings.service_ports,
            store: store.clone(),
            events: events.clone(),
            jobs: jobs_rx,
            mesos,
            probes: probes_rx,
            snapshot: snapshot_tx,
            outgoing: outgoing_tx,
            balancer_runs: settings.lb_address.is_some(),
            shutdown: shutdown.clone(),
        }
        .run(),
    );
    Ok((
        Service {
            settings: Arc::new(settings),
            jobs,
            probes,
            snapshot,
            events,
            callbacks: None,
            election: None,
            leading_since: std::time::Instant::now(),
            store,
            local,
            shutdown,
        },
        outgoing_rx,
    ))
}

/// Probe results waiting for the core; a full queue makes probers wait (they run off the
/// core's task, so waiting costs the API nothing).
const PROBE_QUEUE: usize = 4096;

/// What health and readiness probes report.
#[derive(Debug)]
pub enum ProbeInput {
    Health(ProbeResult),
    Readiness(ReadinessResult),
}

/// The task that owns the core: everything it reads from and writes to.
struct CoreTask {
    core: Core,
    /// The core's service port range, for a core made again from the store.
    service_ports: PortRange,
    /// Where every batch is committed before anything else happens.
    store: Store,
    /// Where the committed events go.
    events: EventBus,
    /// Requests from the API and the dashboard.
    jobs: mpsc::Receiver<Job>,
    /// What the Mesos driver hears from the master.
    mesos: mpsc::UnboundedReceiver<MesosInput>,
    /// Health and readiness probe results.
    probes: mpsc::Receiver<ProbeInput>,
    /// Readers' view, replaced after every commit.
    snapshot: watch::Sender<Arc<Snapshot>>,
    /// Calls for the master, sent after the commit.
    outgoing: mpsc::UnboundedSender<Outgoing>,
    /// Whether the built-in load balancer follows this scheduler's snapshots: kills of the
    /// tasks it routes to then wait for it to drain them.
    balancer_runs: bool,
    shutdown: watch::Receiver<bool>,
}

impl CoreTask {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut finishers: Vec<Finish> = Vec::new();
            tokio::select! {
                job = self.jobs.recv() => match job {
                    Some(job) => finishers.push(job(&mut self.core, now())),
                    None => return,
                },
                input = self.mesos.recv() => match input {
                    Some(input) => apply_input(&mut self.core, input, now()),
                    None => return,
                },
                Some(probe) = self.probes.recv() => apply_probe(&mut self.core, probe, now()),
                _ = tick.tick() => self.core.on_tick(now()),
                _ = self.shutdown.changed() => return,
            }
            for _ in 0..MAX_BATCH {
                if let Ok(input) = self.mesos.try_recv() {
                    apply_input(&mut self.core, input, now());
                } else if let Ok(job) = self.jobs.try_recv() {
                    finishers.push(job(&mut self.core, now()));
                } else if let Ok(probe) = self.probes.try_recv() {
                    apply_probe(&mut self.core, probe, now());
                } else {
                    break;
                }
            }
            self.core.after_change(now());
            let changes = self.core.take_changes();
            let committing = std::time::Instant::now();
            let committed = self.store.commit(&changes.batch).await;
            metrics::scheduler::commit(committing.elapsed(), committed.is_ok());
            match committed {
                Ok(()) => {
                    let snapshot = Arc::new(self.core.snapshot());
                    let _ = self.snapshot.send(snapshot.clone());
                    metrics::scheduler::events(&changes.events);
                    self.events.publish(changes.events);
                    for call in changes.calls {
                        metrics::scheduler::call(&call);
                        if self.balancer_runs && kills_a_routed_task(&snapshot, &call) {
                            let outgoing = self.outgoing.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(crate::lb::DRAIN_BEFORE_KILL).await;
                                let _ = outgoing.send(call);
                            });
                        } else {
                            let _ = self.outgoing.send(call);
                        }
                    }
                    finishers.into_iter().for_each(|f| f(true));
                }
                Err(e) => {
                    tracing::error!(error = %e, "committing to the store failed; reloading the state from it");
                    finishers.into_iter().for_each(|f| f(false));
                    match self.store.load().await {
                        Ok(loaded) => {
                            self.core = Core::new(loaded, StdRng::from_entropy())
                                .with_service_port_range(self.service_ports);
                            let _ = self.snapshot.send(Arc::new(self.core.snapshot()));
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "the store cannot be read; the scheduler stops");
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// Whether `call` kills a task of an app with service ports: one the balancer routes to.
fn kills_a_routed_task(snapshot: &Snapshot, call: &Outgoing) -> bool {
    let Outgoing::Kill { task_id, .. } = call else {
        return false;
    };
    parse_task_id(task_id)
        .and_then(|(instance_id, _)| snapshot.instances.get(instance_id))
        .and_then(|instance| snapshot.definition_of(instance))
        .is_some_and(|app| !app.service_ports().is_empty())
}

fn apply_input(core: &mut Core, input: MesosInput, now: Timestamp) {
    metrics::scheduler::input(&input);
    match input {
        MesosInput::Subscribed {
            framework_id,
            master,
        } => core.on_subscribed(framework_id, master, now),
        MesosInput::Disconnected => core.on_disconnected(now),
        MesosInput::Message {
            agent_id,
            executor_id,
            data,
        } => core.on_message(agent_id, executor_id, data, now),
        MesosInput::Offers(offers) => core.on_offers(offers, now),
        MesosInput::Rescind(offer_id) => core.on_rescind(&offer_id),
        MesosInput::Status { update, ack } => core.on_status(update, ack, now),
    }
}

fn apply_probe(core: &mut Core, probe: ProbeInput, now: Timestamp) {
    metrics::scheduler::probe(&probe);
    match probe {
        ProbeInput::Health(result) => core.on_probe(result, now),
        ProbeInput::Readiness(result) => core.on_readiness(result, now),
    }
}

fn unavailable() -> ServiceError {
    ServiceError::Unavailable("The scheduler is not available; try again".into())
}

/// A body error as the API reports it.
pub fn body_error(e: BodyError) -> ServiceError {
    match e {
        BodyError::Syntax(details) => ServiceError::BadRequest {
            message: "Invalid JSON".into(),
            details: Some(details),
        },
        BodyError::Shape(details) => ServiceError::InvalidJson(details),
    }
}

/// An app after an update from a client: merged into the existing one when `partial`, a new
/// definition otherwise (or when there is none), and versioned.
fn edited(
    id: &str,
    before: Option<&AppDefinition>,
    update: AppUpdate,
    partial: bool,
    now: Timestamp,
) -> AppDefinition {
    let merged = match (before, partial) {
        (Some(b), true) => b.merged(update),
        _ => AppDefinition::create(id.to_string(), update, now),
    };
    versioned(
        AppDefinition {
            id: id.to_string(),
            ..merged
        },
        before,
        Versioning::Edit,
        now,
    )
}

/// Who asked for a change through the REST API, for Marathon's `api_post_event`.
#[derive(Clone, Debug)]
pub struct Origin {
    pub client_ip: String,
    pub uri: String,
}

impl Origin {
    fn event(&self, app: &AppDefinition, now: Timestamp) -> app::model::MarathonEvent {
        app::model::MarathonEvent::ApiPostEvent {
            client_ip: self.client_ip.clone(),
            uri: self.uri.clone(),
            app_definition: Box::new(app.clone()),
            timestamp: now,
        }
    }
}

/// The result of changing an app: its new definition, the deployment, and whether it was created.
pub struct Deployed {
    pub app: Option<AppDefinition>,
    pub deployment: Deployment,
    pub created: bool,
}

impl Service {
    /// The service with callback subscribers to deliver events to.
    pub fn with_callbacks(self, callbacks: Callbacks) -> Service {
        Service {
            callbacks: Some(callbacks),
            ..self
        }
    }

    /// The service of a leader elected by `election`.
    pub fn with_election(self, election: Election) -> Service {
        Service {
            election: Some(election),
            ..self
        }
    }

    /// Every metric, with the gauges of the state as it is now.
    pub fn metrics_report(&self) -> metrics::Report {
        metrics::registry().report(metrics::gauges::computed(self))
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// A receiver that changes after every commit, for pages that follow the state.
    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.clone()
    }

    async fn on_core<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core, Timestamp) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |core, now| {
            let result = f(core, now);
            Box::new(move |committed| {
                let _ = tx.send(if committed {
                    result
                } else {
                    Err(unavailable())
                });
            })
        });
        self.jobs.send(job).await.map_err(|_| unavailable())?;
        rx.await.map_err(|_| unavailable())?
    }

    /// `POST /v2/apps`: creates an app from a client's body.
    pub async fn create_app(
        &self,
        body: &[u8],
        force: bool,
        origin: Option<Origin>,
    ) -> Result<Deployed, ServiceError> {
        let update: AppUpdate = parse_body(body).map_err(body_error)?;
        let Some(raw_id) = update.id.clone() else {
            return Err(ServiceError::InvalidJson(vec![app::model::Violation {
                path: "/id".into(),
                errors: vec!["error.path.missing".into()],
            }]));
        };
        self.create(raw_id, update, force, origin).await
    }

    /// Creates an app from already parsed fields (the dashboard's form).
    pub async fn create(
        &self,
        raw_id: String,
        update: AppUpdate,
        force: bool,
        origin: Option<Origin>,
    ) -> Result<Deployed, ServiceError> {
        let id = path::absolute(&raw_id, "/");
        self.on_core(move |core, now| {
            let app = AppDefinition::create(id.clone(), update, now);
            validate_app(&app, &raw_id).map_err(ServiceError::Invalid)?;
            if core.snapshot().apps.contains_key(&id) {
                return Err(ServiceError::Conflict(format!(
                    "An app with id [{id}] already exists."
                )));
            }
            if let Some(origin) = &origin {
                core.record(origin.event(&app, now));
            }
            let deployment = core.deploy(vec![(id.clone(), Some(app.clone()))], force, now)?;
            Ok(Deployed {
                app: core.deployed_app(&id).or(Some(app)),
                deployment,
                created: true,
            })
        })
        .await
    }

    /// `PUT`/`PATCH /v2/apps/{id}`: partial (merge) or full update; creates a missing app.
    pub async fn update_app(
        &self,
        raw_id: &str,
        update: AppUpdate,
        partial: bool,
        force: bool,
        origin: Option<Origin>,
    ) -> Result<Deployed, ServiceError> {
        let id = path::absolute(raw_id, "/");
        if update.is_rollback() {
            let version = update.version.unwrap_or(Timestamp::from_millis(0));
            let stored = self
                .store
                .app_version(&id, version)
                .await
                .map_err(|_| unavailable())?
                .ok_or_else(|| ServiceError::app_not_found(&id))?;
            return self
                .on_core(move |core, now| {
                    let before = core.snapshot().apps.get(&id).map(|a| (**a).clone());
                    let restored = versioned(stored, before.as_ref(), Versioning::Restart, now);
                    if let Some(origin) = &origin {
                        core.record(origin.event(&restored, now));
                    }
                    let deployment =
                        core.deploy(vec![(id.clone(), Some(restored.clone()))], force, now)?;
                    Ok(Deployed {
                        app: core.deployed_app(&id).or(Some(restored)),
                        deployment,
                        created: before.is_none(),
                    })
                })
                .await;
        }
        if update.version.is_some() {
            return Err(ServiceError::Invalid(vec![app::model::Violation {
                path: "/".into(),
                errors: vec![
                    "The 'version' field may only be combined with the 'id' field.".into(),
                ],
            }]));
        }
        let raw_id = raw_id.to_string();
        self.on_core(move |core, now| {
            let before = core.snapshot().apps.get(&id).map(|a| (**a).clone());
            let next = edited(&id, before.as_ref(), update, partial, now);
            validate_app_update(before.as_ref(), &next, &raw_id, force)
                .map_err(ServiceError::Invalid)?;
            if let Some(origin) = &origin {
                core.record(origin.event(&next, now));
            }
            let deployment = core.deploy(vec![(id.clone(), Some(next.clone()))], force, now)?;
            Ok(Deployed {
                app: core.deployed_app(&id).or(Some(next)),
                deployment,
                created: before.is_none(),
            })
        })
        .await
    }

    /// Changes only the instance count (the dashboard's stepper).
    pub async fn scale(
        &self,
        id: &str,
        instances: i64,
        force: bool,
    ) -> Result<Deployed, ServiceError> {
        self.update_app(
            id,
            AppUpdate {
                instances: Some(instances),
                ..Default::default()
            },
            true,
            force,
            None,
        )
        .await
    }

    /// `POST /v2/apps/{id}/restart`: new tasks for the same definition.
    pub async fn restart(&self, raw_id: &str, force: bool) -> Result<Deployed, ServiceError> {
        let id = path::absolute(raw_id, "/");
        self.on_core(move |core, now| {
            let before = core
                .snapshot()
                .apps
                .get(&id)
                .map(|a| (**a).clone())
                .ok_or_else(|| ServiceError::app_not_found(&id))?;
            let next = versioned(before.clone(), Some(&before), Versioning::Restart, now);
            let deployment = core.deploy(vec![(id.clone(), Some(next.clone()))], force, now)?;
            Ok(Deployed {
                app: core.deployed_app(&id).or(Some(next)),
                deployment,
                created: false,
            })
        })
        .await
    }

    /// `DELETE /v2/apps/{id}`.
    pub async fn delete_app(&self, raw_id: &str, force: bool) -> Result<Deployment, ServiceError> {
        let id = path::absolute(raw_id, "/");
        self.on_core(move |core, now| {
            if !core.snapshot().apps.contains_key(&id) {
                return Err(ServiceError::app_not_found(&id));
            }
            core.deploy(vec![(id.clone(), None)], force, now)
        })
        .await
    }

    /// `PUT`/`PATCH /v2/apps`: several apps changed in one deployment. Each update needs an
    /// `id`; with `partial`, existing apps are merged with their update; `create` allows ids
    /// that do not exist yet (PUT), otherwise they are 404 (PATCH).
    pub async fn update_apps(
        &self,
        updates: Vec<AppUpdate>,
        partial: bool,
        create: bool,
        force: bool,
    ) -> Result<Deployment, ServiceError> {
        self.on_core(move |core, now| {
            let snapshot = core.snapshot();
            let mut changes = Vec::new();
            let mut violations = Vec::new();
            for (n, update) in updates.into_iter().enumerate() {
                let Some(raw_id) = update.id.clone() else {
                    return Err(ServiceError::Unprocessable(
                        "requirement failed: App Update must have app id set".into(),
                    ));
                };
                let id = path::absolute(&raw_id, "/");
                let before = snapshot.apps.get(&id).map(|a| (**a).clone());
                if before.is_none() && !create {
                    return Err(ServiceError::app_not_found(&id));
                }
                let next = edited(&id, before.as_ref(), update, partial, now);
                if let Err(errors) = validate_app_update(before.as_ref(), &next, &raw_id, force) {
                    violations.extend(errors.into_iter().map(|v| app::model::Violation {
                        path: format!("/({n}){}", v.path),
                        errors: v.errors,
                    }));
                }
                changes.push((id, Some(next)));
            }
            if !violations.is_empty() {
                return Err(ServiceError::Invalid(violations));
            }
            core.deploy(changes, force, now)
        })
        .await
    }

    /// `DELETE /v2/queue/{id}/delay`.
    pub async fn reset_delay(&self, raw_id: &str) -> Result<(), ServiceError> {
        let id = path::absolute(raw_id, "/");
        self.on_core(move |core, now| {
            if core.reset_delay(&id, now) {
                Ok(())
            } else {
                Err(ServiceError::NotFound(format!(
                    "Application {id} not found in tasks queue."
                )))
            }
        })
        .await
    }

    pub async fn kill_tasks(
        &self,
        task_ids: Vec<String>,
        scale: bool,
        wipe: bool,
        force: bool,
    ) -> Result<KillOutcome, ServiceError> {
        self.on_core(move |core, now| core.kill_tasks(&task_ids, scale, wipe, force, now))
            .await
    }

    pub async fn delete_deployment(
        &self,
        id: &str,
        force: bool,
    ) -> Result<Option<Deployment>, ServiceError> {
        let id = id.to_string();
        self.on_core(move |core, now| core.delete_deployment(&id, force, now))
            .await
    }

    pub async fn app_versions(&self, raw_id: &str) -> Result<Vec<Timestamp>, ServiceError> {
        let id = path::absolute(raw_id, "/");
        if !self.snapshot().apps.contains_key(&id) {
            return Err(ServiceError::app_not_found(&id));
        }
        self.store
            .app_versions(&id)
            .await
            .map_err(|_| unavailable())
    }

    pub async fn app_version(
        &self,
        raw_id: &str,
        version: Timestamp,
    ) -> Result<AppDefinition, ServiceError> {
        let id = path::absolute(raw_id, "/");
        if !self.snapshot().apps.contains_key(&id) {
            return Err(ServiceError::app_not_found(&id));
        }
        self.store
            .app_version(&id, version)
            .await
            .map_err(|_| unavailable())?
            .ok_or_else(|| {
                ServiceError::NotFound(format!("App '{id}' does not exist in version {version}"))
            })
    }

    /// The last `max_bytes` of a task's `stdout` or `stderr` (built-in agent only).
    pub async fn task_log(
        &self,
        task_id: &str,
        stream: &str,
        max_bytes: u64,
    ) -> Result<TaskLog, ServiceError> {
        let not_found = || ServiceError::NotFound(format!("Task '{task_id}' does not exist"));
        if stream != "stdout" && stream != "stderr" {
            return Err(ServiceError::BadRequest {
                message: format!("Unknown stream '{stream}': use stdout or stderr"),
                details: None,
            });
        }
        let (instance_id, _) =
            crate::scheduler::instance::parse_task_id(task_id).ok_or_else(not_found)?;
        if task_id.contains('/') || !self.snapshot().instances.contains_key(instance_id) {
            return Err(not_found());
        }
        let Some(local) = &self.local else {
            return Err(ServiceError::NotFound(
                "Task logs are only available for tasks of the built-in agent".into(),
            ));
        };
        let file = local.sandbox_dir(task_id).join(stream);
        let (text, truncated) = tokio::task::spawn_blocking(move || tail(&file, max_bytes))
            .await
            .map_err(|_| unavailable())?
            .map_err(|_| not_found())?;
        Ok(TaskLog {
            task_id: task_id.to_string(),
            stream: stream.to_string(),
            text,
            truncated,
        })
    }
}

/// The end of a file, starting at a line boundary when cut.
fn tail(file: &std::path::Path, max_bytes: u64) -> std::io::Result<(String, bool)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(file)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(max_bytes);
    f.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if start > 0 {
        if let Some(newline) = text.find('\n') {
            text.drain(..=newline);
        }
    }
    Ok((text, start > 0))
}
