//! The built-in Mesos master: the master side of the v1 scheduler API for agents of this
//! machine (one by default, several with `--agent`), each with a [`ProcessAgent`] running its
//! tasks in sandboxes of its own.
//!
//! It takes `scheduler::Call`s and produces `scheduler::Event`s, the same messages a real master
//! exchanges over HTTP, so the scheduler cannot tell them apart; serving it over HTTP only needs
//! framing. It keeps its state in memory: after a restart the agent's checkpoints tell it which
//! tasks live, and frameworks re-subscribe with their ids.
//!
//! One actor task owns the [`State`]; its concerns are split by file:
//! - here: the handle, the actor's loop (`handle`, `call`, `on_tick`) and the state's types;
//! - [`frameworks`]: subscriptions, failover, teardown and the events sent to frameworks;
//! - [`offers`]: allocation, offers, ACCEPT (launches) and DECLINE filters;
//! - [`tasks`]: kills, reconciliation and the reliable (retried until acknowledged) updates;
//! - [`partitions`]: agents cut off and brought back (fault injection);
//! - [`operator`]: the operator API's agent and task calls (gone, deactivated, drained agents);
//! - [`reservations`]: dynamic reservations and persistent volumes (RESERVE, CREATE, DESTROY,
//!   UNRESERVE), and tasks on them;
//! - [`resources`]: the resource arithmetic (scalars and port ranges);
//! - [`state_json`]: the JSON of `/master/state`.

mod frameworks;
mod offers;
mod operator;
mod partitions;
mod reservations;
mod resources;
mod state_json;
mod tasks;
mod volume_fs;

use super::agent::{AgentOptions, AgentUpdate, ProcessAgent};
use super::host::{AttributeValue, HostResources};
use super::topology::FaultDomain;
use crate::scheduler::placement::DockerEngine;
pub use operator::OperatorCall;
use proto::mesos::v1 as mesos;
use proto::mesos::v1::scheduler::{self, call, event};
use resources::Resources;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// Mesos' command executor default time between SIGTERM and SIGKILL.
const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);
/// Mesos agents retry unacknowledged status updates starting at 10 s, doubling up to 10 min.
const FIRST_UPDATE_RETRY: Duration = Duration::from_secs(10);
const MAX_UPDATE_RETRY: Duration = Duration::from_secs(600);
/// An offer not answered within this long is rescinded and its resources offered again.
const OFFER_TIMEOUT: Duration = Duration::from_secs(60);
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// Offers go out at most this often: a burst of calls costs one pass over the agents, not one each.
const ALLOCATION_INTERVAL: Duration = Duration::from_millis(20);
const DEFAULT_REFUSE: Duration = Duration::from_secs(5);

/// An error a real master would answer with an HTTP status; the text is Mesos'.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct MasterError {
    pub status: u16,
    pub message: String,
}

impl MasterError {
    fn bad_request(message: impl Into<String>) -> MasterError {
        MasterError {
            status: 400,
            message: message.into(),
        }
    }
}

/// How the built-in master is set up: its agents and what runs their tasks.
pub struct MasterSettings {
    /// Where the master keeps the ids of simulated agents (real agents keep theirs in their own
    /// work dirs).
    pub work_dir: PathBuf,
    /// The `stride` binary, whose `stride zygote` forks each agent's task supervisors.
    pub stride_exe: PathBuf,
    /// The master's own hostname.
    pub hostname: String,
    pub agents: Vec<AgentSettings>,
    /// The agents are simulated: their tasks run nowhere (they are RUNNING at once and KILLED
    /// when killed). For benchmarking schedulers at cluster scale.
    pub simulated: bool,
    /// The agents' image store, for tasks with a container image.
    pub images: std::sync::Arc<crate::images::ImageStore>,
    /// The Docker-API engine the agents run DOCKER containers with.
    pub docker_socket: PathBuf,
}

/// One agent of the built-in master.
pub struct AgentSettings {
    /// Its directory: the agent's id, and its task sandboxes in `sandboxes/`.
    pub work_dir: PathBuf,
    pub hostname: String,
    pub resources: HostResources,
    pub attributes: Vec<(String, AttributeValue)>,
    pub domain: Option<FaultDomain>,
}

/// One agent: what it is, whether it can be reached and offers, and its resources.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentStatus {
    pub id: String,
    pub hostname: String,
    /// Attributes as Mesos prints their values (`rack: r1`, `weight: 2.5`).
    pub attributes: Vec<(String, String)>,
    pub domain: Option<FaultDomain>,
    /// Cut off since then (`POST /master/agents/{hostname}/disconnect`).
    pub unreachable_since: Option<std::time::SystemTime>,
    /// Deactivated by the operator (or draining): it offers nothing.
    pub active: bool,
    pub draining: bool,
    pub gone: bool,
    pub cpus: Usage,
    pub mem: Usage,
}

/// How much of one resource an agent has, and how much of it tasks use.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub used: f64,
    pub total: f64,
}

/// A handle to the master's task; cheap to clone.
#[derive(Clone)]
pub struct LocalMaster {
    inputs: mpsc::UnboundedSender<Input>,
    /// Where each agent keeps its task sandboxes.
    sandboxes: Vec<PathBuf>,
    /// Whether the Docker engine the agents share answers (unknown for simulated agents).
    docker_engine: watch::Receiver<DockerEngine>,
}

type Subscribed = (String, mpsc::UnboundedReceiver<scheduler::Event>);

enum Input {
    Subscribe {
        subscribe: Box<scheduler::call::Subscribe>,
        reply: oneshot::Sender<Result<Subscribed, MasterError>>,
    },
    Call {
        call: Box<scheduler::Call>,
        reply: oneshot::Sender<Result<(), MasterError>>,
    },
    /// An update from the process agent at this index.
    Agent(usize, AgentUpdate),
    State {
        reply: oneshot::Sender<serde_json::Value>,
    },
    Agents {
        reply: oneshot::Sender<Vec<AgentStatus>>,
    },
    Operator {
        call: OperatorCall,
        reply: oneshot::Sender<Result<serde_json::Value, MasterError>>,
    },
    /// Cuts an agent off or brings it back (fault injection).
    Reachability {
        hostname: String,
        reachable: bool,
        reply: oneshot::Sender<Result<(), MasterError>>,
    },
}

impl LocalMaster {
    /// Starts the master and its agents, re-adopting the tasks their checkpoints name.
    pub async fn start(settings: MasterSettings) -> std::io::Result<LocalMaster> {
        std::fs::create_dir_all(&settings.work_dir)?;
        let (inputs, mut inputs_rx) = mpsc::unbounded_channel();
        let simulated_base = match settings.simulated {
            true => Some(stable_id(&settings.work_dir.join("agent_id"), "S0")?),
            false => None,
        };
        let mut agents = Vec::with_capacity(settings.agents.len());
        for (index, agent) in settings.agents.iter().enumerate() {
            let (id, runner) = match &simulated_base {
                Some(base) => (format!("{base}-SIM{index}"), Runner::Simulated),
                None => {
                    std::fs::create_dir_all(&agent.work_dir)?;
                    for disk in &agent.resources.disks {
                        std::fs::create_dir_all(&disk.at.root)?;
                    }
                    let id = stable_id(&agent.work_dir.join("agent_id"), &format!("S{index}"))?;
                    let (updates_tx, mut updates_rx) = mpsc::unbounded_channel();
                    let forward = inputs.clone();
                    tokio::spawn(async move {
                        while let Some(update) = updates_rx.recv().await {
                            if forward.send(Input::Agent(index, update)).is_err() {
                                break;
                            }
                        }
                    });
                    let processes = ProcessAgent::new(
                        AgentOptions {
                            work_dir: agent.work_dir.clone(),
                            stride_exe: settings.stride_exe.clone(),
                            hostname: agent.hostname.clone(),
                            images: settings.images.clone(),
                            docker_socket: settings.docker_socket.clone(),
                        },
                        updates_tx,
                    );
                    (id, Runner::Processes(processes))
                }
            };
            let work_dir = matches!(runner, Runner::Processes(_)).then(|| agent.work_dir.clone());
            let mut agent = Agent::new(id, agent, runner, work_dir);
            if let Some(dir) = &agent.work_dir {
                agent.reservations = reservations::load_reservations(dir)?;
                for reservation in &agent.reservations {
                    agent.free = agent.free.minus(&reservation.total);
                }
            }
            agents.push(agent);
        }
        let mut state = State {
            master_id: uuid::Uuid::new_v4().to_string(),
            hostname: settings.hostname.clone(),
            agent_index: agents
                .iter()
                .enumerate()
                .map(|(index, agent)| (agent.id.clone(), index))
                .collect(),
            agents,
            frameworks: BTreeMap::new(),
            removed: BTreeMap::new(),
            tasks: HashMap::new(),
            offers: HashMap::new(),
            next_framework: 0,
            next_offer: 0,
            allocation_pending: true,
        };
        for index in 0..state.agents.len() {
            let Runner::Processes(processes) = &state.agents[index].runner else {
                continue;
            };
            for recovered in processes.recover().await? {
                let launch = recovered.launch;
                let resources = Resources::of_launch(&launch);
                let reserved = launch
                    .reservation
                    .clone()
                    .map(|r| reservations::ReservedUse {
                        role: r.role,
                        labels: r.labels,
                        resources: resources.clone(),
                        volumes: r.volumes,
                    });
                match &reserved {
                    Some(share) => {
                        if let Err(e) = state.take_reserved(index, share) {
                            tracing::warn!(
                                "task {} recovered without its reservation: {e}",
                                launch.task_id
                            );
                        }
                    }
                    None => {
                        let agent = &mut state.agents[index];
                        agent.free = agent.free.minus(&resources);
                    }
                }
                let status = state.status(
                    Some(index),
                    &launch.task_id,
                    mesos::TaskState::TaskRunning,
                    "",
                    None,
                );
                let mut task = Task::new(launch.framework_id.clone(), index, resources, status);
                task.reserved = reserved;
                state.tasks.insert(launch.task_id.clone(), task);
            }
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let mut next_heartbeat = Instant::now() + HEARTBEAT_INTERVAL;
            let mut next_allocation = Instant::now();
            loop {
                let allocate_now = state.allocation_pending && Instant::now() >= next_allocation;
                if allocate_now {
                    state.allocate(Instant::now());
                    next_allocation = Instant::now() + ALLOCATION_INTERVAL;
                }
                tokio::select! {
                    input = inputs_rx.recv() => match input {
                        Some(input) => state.handle(input).await,
                        None => break,
                    },
                    _ = tokio::time::sleep_until(next_allocation), if state.allocation_pending => {}
                    _ = tick.tick() => {
                        let now = Instant::now();
                        if now >= next_heartbeat {
                            next_heartbeat = now + HEARTBEAT_INTERVAL;
                            state.broadcast(event_of(event::Type::Heartbeat));
                        }
                        state.on_tick(now);
                    }
                }
            }
        });
        let docker_engine = match settings.simulated {
            true => watch::channel(DockerEngine::Unknown).1,
            false => super::docker::watch_engine(settings.docker_socket.clone()).await,
        };
        Ok(LocalMaster {
            inputs,
            docker_engine,
            // Simulated agents run nothing, so they have no sandboxes to look in.
            sandboxes: match settings.simulated {
                true => Vec::new(),
                false => settings
                    .agents
                    .iter()
                    .map(|agent| agent.work_dir.join("sandboxes"))
                    .collect(),
            },
        })
    }

    /// Whether the agents can run DOCKER containers now.
    pub fn docker_engine(&self) -> DockerEngine {
        self.docker_engine.borrow().clone()
    }

    /// SUBSCRIBE: returns the framework id and its event stream (starting with SUBSCRIBED).
    pub async fn subscribe(
        &self,
        subscribe: scheduler::call::Subscribe,
    ) -> Result<Subscribed, MasterError> {
        let (reply, rx) = oneshot::channel();
        self.inputs
            .send(Input::Subscribe {
                subscribe: Box::new(subscribe),
                reply,
            })
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Any call but SUBSCRIBE.
    pub async fn call(&self, call: scheduler::Call) -> Result<(), MasterError> {
        let (reply, rx) = oneshot::channel();
        self.inputs
            .send(Input::Call {
                call: Box::new(call),
                reply,
            })
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// A subset of Mesos' `/master/state`: the master, its agents, frameworks (active and
    /// removed) with their tasks and offers.
    pub async fn state(&self) -> Result<serde_json::Value, MasterError> {
        let (reply, rx) = oneshot::channel();
        self.inputs
            .send(Input::State { reply })
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())
    }

    /// Each agent as the dashboard's Agents page shows it.
    pub async fn agents(&self) -> Result<Vec<AgentStatus>, MasterError> {
        let (reply, rx) = oneshot::channel();
        self.inputs
            .send(Input::Agents { reply })
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())
    }

    /// Cuts the agent off as a network partition would: its tasks keep running, the master
    /// reports them TASK_UNREACHABLE and offers nothing of the agent until it is reconnected.
    /// With `reachable`, brings it back: it re-registers and reports its tasks as they are.
    pub async fn set_reachable(&self, hostname: &str, reachable: bool) -> Result<(), MasterError> {
        let (reply, rx) = oneshot::channel();
        self.inputs
            .send(Input::Reachability {
                hostname: hostname.to_string(),
                reachable,
                reply,
            })
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// An operator API call: its answer's JSON (`null` for calls that answer nothing).
    pub async fn operate(&self, call: OperatorCall) -> Result<serde_json::Value, MasterError> {
        let (reply, rx) = oneshot::channel();
        self.inputs
            .send(Input::Operator { call, reply })
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Where a task's files are, for the logs view: the sandbox of whichever agent ran it.
    pub fn sandbox_dir(&self, task_id: &str) -> PathBuf {
        let sandboxes: Vec<PathBuf> = self.sandboxes.iter().map(|dir| dir.join(task_id)).collect();
        sandboxes
            .iter()
            .find(|dir| dir.exists())
            .or(sandboxes.first())
            .cloned()
            .unwrap_or_else(|| PathBuf::from(task_id))
    }
}

fn stopped() -> MasterError {
    MasterError {
        status: 503,
        message: "Master is not running".into(),
    }
}

/// An id kept in `path` across restarts, created as `<uuid>-<suffix>` the first time.
fn stable_id(path: &std::path::Path, suffix: &str) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        _ => {
            let id = format!("{}-{suffix}", uuid::Uuid::new_v4());
            std::fs::write(path, &id)?;
            Ok(id)
        }
    }
}

fn event_of(kind: event::Type) -> scheduler::Event {
    let mut e = scheduler::Event::default();
    e.set_type(kind);
    e
}

fn error_event(message: &str) -> scheduler::Event {
    let mut error = event_of(event::Type::Error);
    error.error = Some(event::Error {
        message: message.to_owned(),
    });
    error
}

struct Framework {
    info: mesos::FrameworkInfo,
    /// The live subscription; `None` while the framework is disconnected.
    events: Option<mpsc::UnboundedSender<scheduler::Event>>,
    /// Since when the framework has been disconnected: after its failover timeout it is
    /// removed and its tasks are killed.
    disconnected_at: Option<Instant>,
    suppressed: bool,
    /// Per agent and role: declined resources are not offered again to this framework before
    /// then.
    refused: HashMap<(usize, String), Instant>,
}

struct Task {
    framework_id: String,
    /// Index of its agent in `State::agents`.
    agent: usize,
    /// Its unreserved resources (none when it runs on a reservation).
    resources: Resources,
    /// Its share of a reservation, with the volumes it uses.
    reserved: Option<reservations::ReservedUse>,
    /// The latest status, without a uuid (as reconciliation answers it).
    status: mesos::TaskStatus,
    /// Updates not yet acknowledged, oldest first; only the first is being retried.
    pending: VecDeque<mesos::TaskStatus>,
    next_retry: Option<Instant>,
    retry_interval: Duration,
    /// While its agent is cut off: the status the agent last gave, which `status` (now
    /// TASK_UNREACHABLE) hides until the agent is back.
    reachable_status: Option<mesos::TaskStatus>,
}

impl Framework {
    fn disconnect(&mut self, now: Instant) {
        if self.events.take().is_some() || self.disconnected_at.is_none() {
            self.disconnected_at = Some(now);
        }
    }

    fn failover_timeout(&self) -> Duration {
        let seconds = self.info.failover_timeout.unwrap_or(0.0);
        Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
    }
}

impl Task {
    fn new(
        framework_id: String,
        agent: usize,
        resources: Resources,
        status: mesos::TaskStatus,
    ) -> Task {
        Task {
            framework_id,
            agent,
            resources,
            reserved: None,
            status,
            pending: VecDeque::new(),
            next_retry: None,
            retry_interval: FIRST_UPDATE_RETRY,
            reachable_status: None,
        }
    }

    fn is_terminal(&self) -> bool {
        is_terminal(self.status.state())
    }
}

fn is_terminal(state: mesos::TaskState) -> bool {
    use mesos::TaskState::*;
    matches!(
        state,
        TaskFinished
            | TaskFailed
            | TaskKilled
            | TaskError
            | TaskLost
            | TaskDropped
            | TaskGone
            | TaskGoneByOperator
    )
}

struct Offer {
    framework_id: String,
    agent: usize,
    /// The role it is allocated to: its reserved resources are that role's.
    role: String,
    /// Its unreserved resources (reserved ones are taken only when used).
    resources: Resources,
    made_at: Instant,
}

/// One agent of this master.
struct Agent {
    id: String,
    hostname: String,
    attributes: Vec<(String, AttributeValue)>,
    domain: Option<FaultDomain>,
    total: Resources,
    /// Neither used by a task nor in the outstanding offer.
    free: Resources,
    /// The agent's outstanding offer: one at a time, as Mesos' allocator does per framework.
    offered: bool,
    runner: Runner,
    /// Cut off since then (fault injection): no offers, its news held back.
    unreachable_since: Option<std::time::SystemTime>,
    /// What its process agent reported while it was cut off, delivered when it is back.
    held_updates: Vec<AgentUpdate>,
    /// Kills asked for while it was cut off, carried out when it is back.
    held_kills: Vec<String>,
    /// Offers its resources (not deactivated or drained by the operator).
    active: bool,
    /// Marked gone by the operator: it never comes back.
    gone: bool,
    /// Being drained; `Some(true)`: marked gone once its tasks have ended.
    drain_then_gone: Option<bool>,
    /// Where its sandboxes, volumes and checkpoints are (none for a simulated agent).
    work_dir: Option<PathBuf>,
    reservations: Vec<reservations::Reservation>,
    /// Offers go to each of a framework's roles in turn.
    next_role: usize,
}

impl Agent {
    fn new(
        id: String,
        settings: &AgentSettings,
        runner: Runner,
        work_dir: Option<PathBuf>,
    ) -> Agent {
        let total = Resources::from_host(&settings.resources);
        Agent {
            id,
            hostname: settings.hostname.clone(),
            attributes: settings.attributes.clone(),
            domain: settings.domain.clone(),
            free: total.clone(),
            total,
            offered: false,
            runner,
            unreachable_since: None,
            held_updates: Vec::new(),
            held_kills: Vec::new(),
            active: true,
            gone: false,
            drain_then_gone: None,
            work_dir,
            reservations: Vec::new(),
            next_role: 0,
        }
    }

    fn is_reachable(&self) -> bool {
        self.unreachable_since.is_none()
    }

    /// Its free resources may be offered.
    fn offers_resources(&self) -> bool {
        self.is_reachable() && self.active && !self.gone
    }
}

/// What runs an agent's tasks.
enum Runner {
    /// Supervised processes on this machine.
    Processes(ProcessAgent),
    /// Nothing: launching answers TASK_RUNNING and killing TASK_KILLED, at once.
    Simulated,
}

struct State {
    master_id: String,
    hostname: String,
    agents: Vec<Agent>,
    agent_index: HashMap<String, usize>,
    frameworks: BTreeMap<String, Framework>,
    /// Frameworks torn down or timed out: their ids can never subscribe again.
    removed: BTreeMap<String, mesos::FrameworkInfo>,
    tasks: HashMap<String, Task>,
    offers: HashMap<String, Offer>,
    next_framework: u64,
    next_offer: u64,
    /// Resources were freed or interest changed since the last allocation.
    allocation_pending: bool,
}

impl State {
    /// A status of `task_id` on `agent` (none for a task no agent knows).
    fn status(
        &self,
        agent: Option<usize>,
        task_id: &str,
        state: mesos::TaskState,
        message: &str,
        reason: Option<mesos::task_status::Reason>,
    ) -> mesos::TaskStatus {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut status = mesos::TaskStatus {
            task_id: mesos::TaskId {
                value: task_id.into(),
            },
            message: (!message.is_empty()).then(|| message.to_string()),
            agent_id: agent.map(|index| mesos::AgentId {
                value: self.agents[index].id.clone(),
            }),
            timestamp: Some(now),
            ..Default::default()
        };
        status.set_state(state);
        status.set_source(mesos::task_status::Source::Executor);
        if let Some(reason) = reason {
            status.set_reason(reason);
        }
        status
    }

    async fn handle(&mut self, input: Input) {
        match input {
            Input::Subscribe { subscribe, reply } => {
                let _ = reply.send(self.subscribe(*subscribe));
            }
            Input::Call { call, reply } => {
                let result = self.call(*call).await;
                let _ = reply.send(result);
            }
            Input::Agent(agent, update) => self.on_agent_update(agent, update),
            Input::State { reply } => {
                let _ = reply.send(self.state_json());
            }
            Input::Agents { reply } => {
                let _ = reply.send(self.agent_statuses());
            }
            Input::Operator { call, reply } => {
                let _ = reply.send(self.operate(call));
            }
            Input::Reachability {
                hostname,
                reachable,
                reply,
            } => {
                let found = self.agents.iter().position(|a| a.hostname == hostname);
                let result = match found {
                    Some(agent) => {
                        if reachable {
                            self.reconnect_agent(agent);
                        } else {
                            self.disconnect_agent(agent);
                        }
                        Ok(())
                    }
                    None => Err(MasterError {
                        status: 404,
                        message: format!("No agent '{hostname}'"),
                    }),
                };
                let _ = reply.send(result);
            }
        }
    }

    async fn call(&mut self, call: scheduler::Call) -> Result<(), MasterError> {
        let Some(framework_id) = call.framework_id.as_ref().map(|f| f.value.clone()) else {
            return Err(MasterError::bad_request(
                "Failed to validate scheduler::Call: Expecting 'framework_id' to be present",
            ));
        };
        match self.frameworks.get(&framework_id) {
            None => return Err(MasterError::bad_request("Framework cannot be found")),
            Some(f) if f.events.is_none() => {
                return Err(MasterError {
                    status: 403,
                    message: "Framework is not subscribed".into(),
                })
            }
            Some(_) => {}
        }
        let now = Instant::now();
        match call.r#type() {
            call::Type::Accept => {
                let accept = call.accept.unwrap_or_default();
                self.accept(&framework_id, accept, now).await;
            }
            call::Type::Decline => {
                let decline = call.decline.unwrap_or_default();
                for id in &decline.offer_ids {
                    let owned = self
                        .offers
                        .get(&id.value)
                        .is_some_and(|offer| offer.framework_id == framework_id);
                    if let Some(offer) = owned.then(|| self.return_offer(&id.value)).flatten() {
                        self.refuse(
                            &framework_id,
                            (offer.agent, offer.role),
                            decline.filters.as_ref(),
                            now,
                        );
                    }
                }
            }
            call::Type::Kill => {
                let kill = call.kill.unwrap_or_default();
                self.kill(&framework_id, &kill.task_id.value);
            }
            call::Type::Acknowledge => {
                let ack = call.acknowledge.unwrap_or_default();
                self.acknowledge(&ack.task_id.value, &ack.uuid);
            }
            call::Type::Reconcile => {
                let reconcile = call.reconcile.unwrap_or_default();
                self.reconcile(&framework_id, reconcile);
            }
            call::Type::Revive => {
                if let Some(f) = self.frameworks.get_mut(&framework_id) {
                    f.suppressed = false;
                    f.refused.clear();
                }
                self.allocation_pending = true;
            }
            call::Type::Suppress => {
                if let Some(f) = self.frameworks.get_mut(&framework_id) {
                    f.suppressed = true;
                }
            }
            call::Type::Teardown => self.remove_framework(&framework_id),
            call::Type::UpdateFramework => {
                let update = call.update_framework.unwrap_or_default();
                self.update_framework(&framework_id, update)?;
            }
            call::Type::Subscribe => {
                return Err(MasterError::bad_request(
                    "SUBSCRIBE must be the first call on its own connection",
                ))
            }
            // Nothing here for these to act on: no custom executors (SHUTDOWN, MESSAGE), no
            // operations with ids (their acks and reconciliation), no maintenance (inverse
            // offers); REQUEST is ignored by Mesos' allocator too.
            call::Type::Shutdown
            | call::Type::Message
            | call::Type::AcknowledgeOperationStatus
            | call::Type::ReconcileOperations
            | call::Type::AcceptInverseOffers
            | call::Type::DeclineInverseOffers
            | call::Type::Request => {}
            call::Type::Unknown => {
                return Err(MasterError {
                    status: 501,
                    message: "Unknown call type".into(),
                })
            }
        }
        Ok(())
    }

    fn on_tick(&mut self, now: Instant) {
        self.expire_frameworks(now);
        self.finish_drains();
        let mut due = Vec::new();
        for task in self.tasks.values_mut() {
            if task.next_retry.is_some_and(|t| t <= now) {
                if let Some(status) = task.pending.front() {
                    due.push((task.framework_id.clone(), status.clone()));
                    task.next_retry = Some(now + task.retry_interval);
                    task.retry_interval = (task.retry_interval * 2).min(MAX_UPDATE_RETRY);
                } else {
                    task.next_retry = None;
                }
            }
        }
        for (framework_id, status) in due {
            let mut update = event_of(event::Type::Update);
            update.update = Some(event::Update { status });
            self.send(&framework_id, update);
        }
        let expired: Vec<(String, String)> = self
            .offers
            .iter()
            .filter(|(_, o)| now.duration_since(o.made_at) > OFFER_TIMEOUT)
            .map(|(id, o)| (id.clone(), o.framework_id.clone()))
            .collect();
        for (offer_id, framework_id) in expired {
            self.return_offer(&offer_id);
            let mut rescind = event_of(event::Type::Rescind);
            rescind.rescind = Some(event::Rescind {
                offer_id: mesos::OfferId { value: offer_id },
            });
            self.send(&framework_id, rescind);
        }
        // Refusal filters run out with time: look at the agents again.
        self.allocation_pending = true;
    }
}
