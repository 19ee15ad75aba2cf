//! The built-in single-node Mesos master: the master side of the v1 scheduler API for this
//! machine, with [`ProcessAgent`] running the tasks.
//!
//! It takes `scheduler::Call`s and produces `scheduler::Event`s, the same messages a real master
//! exchanges over HTTP, so the scheduler cannot tell them apart; serving it over HTTP only needs
//! framing. It keeps its state in memory: after a restart the agent's checkpoints tell it which
//! tasks live, and frameworks re-subscribe with their ids.

use super::agent::{
    AgentOptions, AgentUpdate, CommandSpec, ProcessAgent, TaskLaunch, TaskState as AgentState,
    UpdateReason,
};
use super::checks::{CheckKind, HealthCheckSpec};
use super::host::{AttributeValue, HostResources};
use proto::mesos::v1 as mesos;
use proto::mesos::v1::scheduler::{self, call, event};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
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

/// How the built-in master describes its one agent.
pub struct AgentSettings {
    pub work_dir: PathBuf,
    pub stride_exe: PathBuf,
    pub hostname: String,
    pub resources: HostResources,
    pub attributes: Vec<(String, AttributeValue)>,
    /// Instead of this machine's agent, this many simulated agents with these resources each:
    /// their tasks run nowhere (they are RUNNING at once and KILLED when killed). For
    /// benchmarking schedulers at cluster scale.
    pub simulated: Option<(usize, HostResources)>,
}

/// A handle to the master's task; cheap to clone.
#[derive(Clone)]
pub struct LocalMaster {
    inputs: mpsc::UnboundedSender<Input>,
    /// Where the process agent keeps sandboxes.
    sandboxes: PathBuf,
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
    Agent(AgentUpdate),
    State {
        reply: oneshot::Sender<serde_json::Value>,
    },
}

impl LocalMaster {
    /// Starts the master and its agent, re-adopting the tasks the agent's checkpoints name.
    pub async fn start(settings: AgentSettings) -> std::io::Result<LocalMaster> {
        std::fs::create_dir_all(&settings.work_dir)?;
        let agent_id = stable_id(&settings.work_dir.join("agent_id"), "S0")?;
        let (updates_tx, mut updates_rx) = mpsc::unbounded_channel();
        let (agents, runner) = match &settings.simulated {
            Some((count, resources)) => {
                let agents = (0..*count)
                    .map(|n| {
                        Agent::new(
                            format!("{agent_id}-SIM{n}"),
                            format!("sim-{n}.{}", settings.hostname),
                            Resources::from_host(resources),
                            settings.attributes.clone(),
                        )
                    })
                    .collect();
                (agents, Runner::Simulated)
            }
            None => {
                let agent = Agent::new(
                    agent_id,
                    settings.hostname.clone(),
                    Resources::from_host(&settings.resources),
                    settings.attributes.clone(),
                );
                let processes = ProcessAgent::new(
                    AgentOptions {
                        work_dir: settings.work_dir.clone(),
                        stride_exe: settings.stride_exe.clone(),
                        hostname: settings.hostname.clone(),
                    },
                    updates_tx,
                );
                (vec![agent], Runner::Processes(processes))
            }
        };
        let mut state = State {
            master_id: uuid::Uuid::new_v4().to_string(),
            hostname: settings.hostname.clone(),
            agent_index: agents
                .iter()
                .enumerate()
                .map(|(index, agent)| (agent.id.clone(), index))
                .collect(),
            agents,
            runner,
            frameworks: BTreeMap::new(),
            removed: BTreeMap::new(),
            tasks: HashMap::new(),
            offers: HashMap::new(),
            next_framework: 0,
            next_offer: 0,
            allocation_pending: true,
        };
        if let Runner::Processes(processes) = &state.runner {
            for recovered in processes.recover().await? {
                let launch = recovered.launch;
                let resources = Resources::of_launch(&launch);
                state.agents[0].free = state.agents[0].free.minus(&resources);
                let status = state.status(
                    Some(0),
                    &launch.task_id,
                    mesos::TaskState::TaskRunning,
                    "",
                    None,
                );
                state.tasks.insert(
                    launch.task_id.clone(),
                    Task {
                        framework_id: launch.framework_id.clone(),
                        agent: 0,
                        resources,
                        status,
                        pending: VecDeque::new(),
                        next_retry: None,
                        retry_interval: FIRST_UPDATE_RETRY,
                    },
                );
            }
        }
        let (inputs, mut inputs_rx) = mpsc::unbounded_channel();
        let forward = inputs.clone();
        tokio::spawn(async move {
            while let Some(update) = updates_rx.recv().await {
                if forward.send(Input::Agent(update)).is_err() {
                    break;
                }
            }
        });
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
        Ok(LocalMaster {
            inputs,
            sandboxes: settings.work_dir.join("sandboxes"),
        })
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

    /// A subset of Mesos' `/master/state`: the master, its agent, frameworks (active and
    /// removed) with their tasks and offers.
    pub async fn state(&self) -> Result<serde_json::Value, MasterError> {
        let (reply, rx) = oneshot::channel();
        self.inputs
            .send(Input::State { reply })
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())
    }

    /// Where a task's files are, for the logs view.
    pub fn sandbox_dir(&self, task_id: &str) -> PathBuf {
        self.sandboxes.join(task_id)
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

/// Inclusive port ranges sorted, with overlapping and adjacent ones merged.
fn normalize_ranges(ranges: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut sorted: Vec<(u32, u32)> = ranges.iter().copied().filter(|(b, e)| b <= e).collect();
    sorted.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(sorted.len());
    for (begin, end) in sorted {
        match merged.last_mut() {
            Some(last) if begin <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => merged.push((begin, end)),
        }
    }
    merged
}

/// `from` without `taken`, both normalized.
fn subtract_ranges(from: &[(u32, u32)], taken: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut next_taken = 0;
    for &(begin, end) in from {
        // u64, so that one past the end of a range cannot overflow.
        let (mut start, end) = (u64::from(begin), u64::from(end));
        while next_taken < taken.len() && u64::from(taken[next_taken].1) < start {
            next_taken += 1;
        }
        let mut index = next_taken;
        while start <= end && index < taken.len() && u64::from(taken[index].0) <= end {
            let (t_begin, t_end) = (u64::from(taken[index].0), u64::from(taken[index].1));
            if t_begin > start {
                out.push((start as u32, (t_begin - 1) as u32));
            }
            start = start.max(t_end + 1);
            index += 1;
        }
        if start <= end {
            out.push((start as u32, end as u32));
        }
    }
    out
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

/// Scalar resources and port ranges, as the master accounts for them.
#[derive(Clone, Debug, Default, PartialEq)]
struct Resources {
    cpus: f64,
    mem: f64,
    disk: f64,
    ports: Vec<(u32, u32)>,
}

impl Resources {
    fn from_host(host: &HostResources) -> Resources {
        Resources {
            cpus: host.cpus,
            mem: host.mem_mb,
            disk: host.disk_mb,
            ports: host.ports.clone(),
        }
    }

    fn of_launch(launch: &TaskLaunch) -> Resources {
        Resources {
            cpus: launch.cpus,
            mem: launch.mem_mb,
            disk: launch.disk_mb,
            ports: launch.ports.iter().map(|&p| (p, p)).collect(),
        }
    }

    fn of_proto(resources: &[mesos::Resource]) -> Resources {
        let mut r = Resources::default();
        for resource in resources {
            let scalar = resource.scalar.as_ref().map_or(0.0, |s| s.value);
            match resource.name.as_str() {
                "cpus" => r.cpus += scalar,
                "mem" => r.mem += scalar,
                "disk" => r.disk += scalar,
                "ports" => r.ports.extend(
                    resource
                        .ranges
                        .iter()
                        .flat_map(|rs| rs.range.iter())
                        .map(|range| (range.begin as u32, range.end as u32)),
                ),
                _ => {}
            }
        }
        r
    }

    fn port_list(&self) -> Vec<u32> {
        self.ports.iter().flat_map(|&(b, e)| b..=e).collect()
    }

    /// `self` minus `used`; ports by value.
    fn minus(&self, used: &Resources) -> Resources {
        Resources {
            cpus: (self.cpus - used.cpus).max(0.0),
            mem: (self.mem - used.mem).max(0.0),
            disk: (self.disk - used.disk).max(0.0),
            ports: subtract_ranges(
                &normalize_ranges(&self.ports),
                &normalize_ranges(&used.ports),
            ),
        }
    }

    fn plus(&self, other: &Resources) -> Resources {
        let mut ports = self.ports.clone();
        ports.extend(other.ports.iter().copied());
        Resources {
            cpus: self.cpus + other.cpus,
            mem: self.mem + other.mem,
            disk: self.disk + other.disk,
            ports: normalize_ranges(&ports),
        }
    }

    /// Whether `self` fits into `available` (with Mesos' three-decimal precision).
    fn fits_in(&self, available: &Resources) -> bool {
        let wanted = normalize_ranges(&self.ports);
        self.cpus <= available.cpus + 0.0005
            && self.mem <= available.mem + 0.0005
            && self.disk <= available.disk + 0.0005
            && subtract_ranges(&wanted, &normalize_ranges(&available.ports)).is_empty()
    }

    fn is_useful(&self) -> bool {
        self.cpus >= 0.01 || self.mem >= 1.0
    }

    /// As Mesos' state endpoints write resources: scalars, and ports as `[b-e,b-e]`.
    fn to_json(&self) -> serde_json::Value {
        let ports: Vec<String> = self.ports.iter().map(|(b, e)| format!("{b}-{e}")).collect();
        serde_json::json!({
            "cpus": self.cpus,
            "mem": self.mem,
            "disk": self.disk,
            "ports": format!("[{}]", ports.join(",")),
        })
    }

    fn to_proto(&self) -> Vec<mesos::Resource> {
        // Mesos keeps three decimal digits of scalars.
        let scalar = |name: &str, value: f64| {
            mesos::Resource::scalar(name, (value * 1000.0).floor() / 1000.0, "*")
        };
        let mut out = vec![
            scalar("cpus", self.cpus),
            scalar("mem", self.mem),
            scalar("disk", self.disk),
        ];
        if !self.ports.is_empty() {
            out.push(mesos::Resource::ranges(
                "ports",
                self.ports.iter().map(|&(b, e)| (b as u64, e as u64)),
                "*",
            ));
        }
        out
    }
}

struct Framework {
    info: mesos::FrameworkInfo,
    /// The live subscription; `None` while the framework is disconnected.
    events: Option<mpsc::UnboundedSender<scheduler::Event>>,
    /// Since when the framework has been disconnected: after its failover timeout it is
    /// removed and its tasks are killed.
    disconnected_at: Option<Instant>,
    suppressed: bool,
    /// Per agent: declined resources are not offered again to this framework before then.
    refused: HashMap<usize, Instant>,
}

struct Task {
    framework_id: String,
    /// Index of its agent in `State::agents`.
    agent: usize,
    resources: Resources,
    /// The latest status, without a uuid (as reconciliation answers it).
    status: mesos::TaskStatus,
    /// Updates not yet acknowledged, oldest first; only the first is being retried.
    pending: VecDeque<mesos::TaskStatus>,
    next_retry: Option<Instant>,
    retry_interval: Duration,
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
    resources: Resources,
    made_at: Instant,
}

/// One agent of this master.
struct Agent {
    id: String,
    hostname: String,
    attributes: Vec<(String, AttributeValue)>,
    total: Resources,
    /// Neither used by a task nor in the outstanding offer.
    free: Resources,
    /// The agent's outstanding offer: one at a time, as Mesos' allocator does per framework.
    offered: bool,
}

impl Agent {
    fn new(
        id: String,
        hostname: String,
        total: Resources,
        attributes: Vec<(String, AttributeValue)>,
    ) -> Agent {
        Agent {
            id,
            hostname,
            attributes,
            free: total.clone(),
            total,
            offered: false,
        }
    }
}

/// What runs the tasks.
enum Runner {
    /// This machine's agent: tasks are supervised processes.
    Processes(ProcessAgent),
    /// Simulated agents: launching answers TASK_RUNNING and killing TASK_KILLED, at once.
    Simulated,
}

struct State {
    master_id: String,
    hostname: String,
    agents: Vec<Agent>,
    agent_index: HashMap<String, usize>,
    runner: Runner,
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
            Input::Agent(update) => self.on_agent_update(update),
            Input::State { reply } => {
                let _ = reply.send(self.state_json());
            }
        }
    }

    fn state_json(&self) -> serde_json::Value {
        use serde_json::json;
        let framework_json = |id: &str, info: &mesos::FrameworkInfo, active: bool| {
            let tasks: Vec<serde_json::Value> = self
                .tasks
                .iter()
                .filter(|(_, task)| task.framework_id == id)
                .map(|(task_id, task)| {
                    json!({
                        "id": task_id,
                        "framework_id": id,
                        "slave_id": self.agents[task.agent].id,
                        "state": task.status.state().as_str_name(),
                        "resources": task.resources.to_json(),
                    })
                })
                .collect();
            let offers: Vec<serde_json::Value> = self
                .offers
                .iter()
                .filter(|(_, offer)| offer.framework_id == id)
                .map(|(offer_id, offer)| {
                    json!({"id": offer_id, "slave_id": self.agents[offer.agent].id, "resources": offer.resources.to_json()})
                })
                .collect();
            json!({
                "id": id,
                "name": info.name,
                "user": info.user,
                "hostname": info.hostname,
                "webui_url": info.webui_url,
                "roles": info.roles,
                "principal": info.principal,
                "failover_timeout": info.failover_timeout.unwrap_or(0.0),
                "active": active,
                "connected": active,
                "tasks": tasks,
                "offers": offers,
            })
        };
        let frameworks: Vec<serde_json::Value> = self
            .frameworks
            .iter()
            .map(|(id, f)| framework_json(id, &f.info, f.events.is_some()))
            .collect();
        let completed: Vec<serde_json::Value> = self
            .removed
            .iter()
            .map(|(id, info)| framework_json(id, info, false))
            .collect();
        let mut offered_by_agent: HashMap<&str, Resources> = HashMap::new();
        for offer in self.offers.values() {
            let offered = offered_by_agent
                .entry(&self.agents[offer.agent].id)
                .or_default();
            *offered = offered.plus(&offer.resources);
        }
        let slaves: Vec<serde_json::Value> = self
            .agents
            .iter()
            .map(|agent| {
                let attributes: serde_json::Map<String, serde_json::Value> = agent
                    .attributes
                    .iter()
                    .map(|attribute| {
                        let attribute = attribute_of(attribute);
                        let text = crate::mesos::translate::attribute_text(&attribute);
                        (attribute.name, json!(text))
                    })
                    .collect();
                let offered = offered_by_agent
                    .get(agent.id.as_str())
                    .cloned()
                    .unwrap_or_default();
                json!({
                    "id": agent.id,
                    "hostname": agent.hostname,
                    "active": true,
                    "resources": agent.total.to_json(),
                    "used_resources": agent.total.minus(&agent.free.plus(&offered)).to_json(),
                    "offered_resources": offered.to_json(),
                    "attributes": attributes,
                })
            })
            .collect();
        json!({
            "id": self.master_id,
            "hostname": self.hostname,
            "activated_slaves": self.agents.len(),
            "frameworks": frameworks,
            "completed_frameworks": completed,
            "slaves": slaves,
        })
    }

    fn subscribe(
        &mut self,
        subscribe: scheduler::call::Subscribe,
    ) -> Result<Subscribed, MasterError> {
        let mut info = subscribe.framework_info;
        if info.user.is_empty() {
            return Err(MasterError::bad_request(
                "Failed to validate scheduler::Call: Expecting 'framework_info.user' to be present",
            ));
        }
        let framework_id = match &info.id {
            Some(id) => id.value.clone(),
            None => {
                let id = format!("{}-{:04}", self.master_id, self.next_framework);
                self.next_framework += 1;
                info.id = Some(mesos::FrameworkId { value: id.clone() });
                id
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        if self.removed.contains_key(&framework_id) {
            // As Mesos does: the subscription is accepted, then ended by an ERROR.
            let _ = tx.send(error_event("Framework has been removed"));
            return Ok((framework_id, rx));
        }
        // A framework that subscribes again replaces its old stream (failover); offers made to
        // the old connection are void.
        self.return_offers_of(&framework_id);
        if let Some(old) = self
            .frameworks
            .get_mut(&framework_id)
            .and_then(|f| f.events.take())
        {
            let _ = old.send(error_event("Framework failed over"));
        }
        let mut subscribed = event_of(event::Type::Subscribed);
        subscribed.subscribed = Some(event::Subscribed {
            framework_id: mesos::FrameworkId {
                value: framework_id.clone(),
            },
            heartbeat_interval_seconds: Some(HEARTBEAT_INTERVAL.as_secs_f64()),
            master_info: None,
        });
        let _ = tx.send(subscribed);
        self.frameworks.insert(
            framework_id.clone(),
            Framework {
                info,
                events: Some(tx),
                disconnected_at: None,
                suppressed: subscribe.suppressed_roles.iter().any(|r| r == "*"),
                refused: HashMap::new(),
            },
        );
        // Updates that waited for the framework go out now.
        let now = Instant::now();
        for task in self
            .tasks
            .values_mut()
            .filter(|t| t.framework_id == framework_id)
        {
            if !task.pending.is_empty() {
                task.next_retry = Some(now);
            }
        }
        self.allocation_pending = true;
        Ok((framework_id, rx))
    }

    /// Takes back an outstanding offer: its resources are free again.
    fn return_offer(&mut self, offer_id: &str) -> Option<Offer> {
        let offer = self.offers.remove(offer_id)?;
        self.release(offer.agent, &offer.resources);
        Some(offer)
    }

    fn return_offers_of(&mut self, framework_id: &str) {
        let ids: Vec<String> = self
            .offers
            .iter()
            .filter(|(_, offer)| offer.framework_id == framework_id)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.return_offer(&id);
        }
    }

    fn send(&mut self, framework_id: &str, event: scheduler::Event) {
        if let Some(f) = self.frameworks.get_mut(framework_id) {
            let delivered = f.events.as_ref().is_some_and(|tx| tx.send(event).is_ok());
            if !delivered {
                f.disconnect(Instant::now());
            }
        }
    }

    /// Notices subscriptions whose connection went away, and removes frameworks that stayed
    /// away longer than their failover timeout, killing their tasks.
    fn expire_frameworks(&mut self, now: Instant) {
        for framework in self.frameworks.values_mut() {
            if framework.events.as_ref().is_some_and(|tx| tx.is_closed()) {
                framework.disconnect(now);
            }
        }
        let expired: Vec<String> = self
            .frameworks
            .iter()
            .filter(|(_, f)| {
                f.disconnected_at
                    .is_some_and(|since| now.duration_since(since) >= f.failover_timeout())
            })
            .map(|(id, _)| id.clone())
            .collect();
        for framework_id in expired {
            tracing::info!(
                framework_id,
                "the framework did not come back within its failover timeout; removing it"
            );
            self.remove_framework(&framework_id);
        }
    }

    /// TEARDOWN, or a failover timeout: kills the framework's tasks and forgets its offers; its
    /// id can never subscribe again.
    fn remove_framework(&mut self, framework_id: &str) {
        let live: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.framework_id == framework_id && !t.is_terminal())
            .map(|(id, _)| id.clone())
            .collect();
        for id in live {
            self.kill_task(&id);
        }
        self.return_offers_of(framework_id);
        if let Some(framework) = self.frameworks.remove(framework_id) {
            self.removed.insert(framework_id.to_owned(), framework.info);
        }
    }

    fn broadcast(&mut self, event: scheduler::Event) {
        let ids: Vec<String> = self.frameworks.keys().cloned().collect();
        for id in ids {
            self.send(&id, event.clone());
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
                        self.refuse(&framework_id, offer.agent, decline.filters.as_ref(), now);
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

    /// UPDATE_FRAMEWORK: a new FrameworkInfo and set of suppressed roles, with Mesos' rules.
    fn update_framework(
        &mut self,
        framework_id: &str,
        update: scheduler::call::UpdateFramework,
    ) -> Result<(), MasterError> {
        let info = update.framework_info;
        if info.id.as_ref().map(|id| id.value.as_str()) != Some(framework_id) {
            return Err(MasterError::bad_request(
                "Failed to validate scheduler::Call: 'framework_info.id' differs from 'framework_id'",
            ));
        }
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return Err(MasterError::bad_request("Framework cannot be found"));
        };
        let old = &framework.info;
        if info.user != old.user
            || info.principal != old.principal
            || info.checkpoint != old.checkpoint
        {
            return Err(MasterError::bad_request(
                "Updating 'FrameworkInfo.user', 'FrameworkInfo.principal' or \
                 'FrameworkInfo.checkpoint' is not supported",
            ));
        }
        framework.info = info;
        let suppressed = update.suppressed_roles.iter().any(|role| role == "*");
        if framework.suppressed && !suppressed {
            framework.refused.clear();
        }
        framework.suppressed = suppressed;
        self.allocation_pending = true;
        Ok(())
    }

    /// Holds `agent`'s resources back from the framework for the filter's `refuse_seconds`.
    fn refuse(
        &mut self,
        framework_id: &str,
        agent: usize,
        filters: Option<&mesos::Filters>,
        now: Instant,
    ) {
        let seconds = filters.map_or(DEFAULT_REFUSE.as_secs_f64(), |f| f.refuse_seconds());
        let seconds = if seconds < 0.0 {
            DEFAULT_REFUSE.as_secs_f64()
        } else {
            seconds.min(31_536_000.0)
        };
        if let Some(f) = self.frameworks.get_mut(framework_id) {
            f.refused
                .insert(agent, now + Duration::from_secs_f64(seconds));
        }
    }

    async fn accept(&mut self, framework_id: &str, accept: scheduler::call::Accept, now: Instant) {
        // Offers are used at most once, by their framework, all of one agent.
        let mut offered = Resources::default();
        let mut agent = None;
        let mut valid = !accept.offer_ids.is_empty();
        for id in &accept.offer_ids {
            let usable = self.offers.get(&id.value).is_some_and(|offer| {
                offer.framework_id == framework_id && agent.is_none_or(|a| a == offer.agent)
            });
            if !usable {
                valid = false;
                continue;
            }
            let offer = self.offers.remove(&id.value).expect("checked above");
            agent = Some(offer.agent);
            offered = offered.plus(&offer.resources);
        }
        let agent = match agent {
            Some(agent) if valid => agent,
            _ => {
                // Nothing happens to the offers' resources: they are free again.
                if let Some(agent) = agent {
                    self.release(agent, &offered);
                }
                valid = false;
                usize::MAX
            }
        };
        let mut remaining = offered;
        for operation in accept.operations {
            let Some(launch) = operation.launch else {
                continue;
            };
            for task in launch.task_infos {
                let task_id = task.task_id.value.clone();
                let requested = Resources::of_proto(&task.resources);
                let failure = if !valid {
                    Some((
                        mesos::TaskState::TaskDropped,
                        mesos::task_status::Reason::InvalidOffers,
                        "Task launched with invalid offers".to_string(),
                    ))
                } else if self.tasks.get(&task_id).is_some_and(|t| !t.is_terminal()) {
                    Some((
                        mesos::TaskState::TaskError,
                        mesos::task_status::Reason::TaskInvalid,
                        format!("Task {task_id} is already running"),
                    ))
                } else if !requested.fits_in(&remaining) {
                    Some((
                        mesos::TaskState::TaskError,
                        mesos::task_status::Reason::TaskInvalid,
                        "Task uses more resources than the offer has".to_string(),
                    ))
                } else {
                    unsupported_container(&task).map(|message| {
                        (
                            mesos::TaskState::TaskFailed,
                            mesos::task_status::Reason::ContainerLaunchFailed,
                            message,
                        )
                    })
                };
                let on_agent = valid.then_some(agent);
                let status = match &failure {
                    Some((state, reason, message)) => {
                        self.status(on_agent, &task_id, *state, message, Some(*reason))
                    }
                    None => {
                        self.status(on_agent, &task_id, mesos::TaskState::TaskStaging, "", None)
                    }
                };
                if failure
                    .as_ref()
                    .is_some_and(|(state, _, _)| *state != mesos::TaskState::TaskFailed)
                {
                    // The master's own verdicts on a launch are sent once, without a uuid, and
                    // the task is not kept, as in Mesos.
                    let mut status = status;
                    status.set_source(mesos::task_status::Source::Master);
                    let mut update = event_of(event::Type::Update);
                    update.update = Some(event::Update { status });
                    self.send(framework_id, update);
                    continue;
                }
                let resources = if failure.is_none() {
                    requested.clone()
                } else {
                    Resources::default()
                };
                remaining = remaining.minus(&resources);
                self.tasks.insert(
                    task_id.clone(),
                    Task {
                        framework_id: framework_id.to_string(),
                        agent,
                        resources,
                        status: status.clone(),
                        pending: VecDeque::new(),
                        next_retry: None,
                        retry_interval: FIRST_UPDATE_RETRY,
                    },
                );
                if failure.is_some() {
                    self.queue_update(&task_id, status);
                    continue;
                }
                match &self.runner {
                    Runner::Processes(processes) => {
                        processes
                            .launch(launch_of(framework_id, &task, requested))
                            .await
                    }
                    Runner::Simulated => {
                        let running = self.status(
                            Some(agent),
                            &task_id,
                            mesos::TaskState::TaskRunning,
                            "",
                            None,
                        );
                        self.queue_update(&task_id, running);
                    }
                }
            }
        }
        if valid {
            self.release(agent, &remaining);
            self.refuse(framework_id, agent, accept.filters.as_ref(), now);
        }
    }

    /// The rest of `agent`'s outstanding offer, free again.
    fn release(&mut self, agent: usize, resources: &Resources) {
        self.agents[agent].offered = false;
        self.free(agent, resources);
    }

    /// Resources of `agent` that are neither used nor offered any more.
    fn free(&mut self, agent: usize, resources: &Resources) {
        let agent = &mut self.agents[agent];
        agent.free = agent.free.plus(resources);
        self.allocation_pending = true;
    }

    /// Asks the task's agent to kill it.
    fn kill_task(&mut self, task_id: &str) {
        match &self.runner {
            Runner::Processes(processes) => processes.kill(task_id),
            Runner::Simulated => {
                let Some(task) = self.tasks.get(task_id) else {
                    return;
                };
                let killed = self.status(
                    Some(task.agent),
                    task_id,
                    mesos::TaskState::TaskKilled,
                    "Command terminated with signal SIGTERM",
                    None,
                );
                self.queue_update(task_id, killed);
            }
        }
    }

    fn kill(&mut self, framework_id: &str, task_id: &str) {
        match self.tasks.get(task_id) {
            Some(t) if !t.is_terminal() => self.kill_task(task_id),
            Some(_) => {}
            None => {
                let mut update = event_of(event::Type::Update);
                update.update = Some(event::Update {
                    status: self.status(
                        None,
                        task_id,
                        mesos::TaskState::TaskUnknown,
                        "Kill: Task is unknown to the master",
                        Some(mesos::task_status::Reason::Reconciliation),
                    ),
                });
                self.send(framework_id, update);
            }
        }
    }

    fn acknowledge(&mut self, task_id: &str, uuid: &[u8]) {
        let Some(task) = self.tasks.get_mut(task_id) else {
            return;
        };
        if task.pending.front().and_then(|s| s.uuid.as_deref()) != Some(uuid) {
            return;
        }
        task.pending.pop_front();
        task.retry_interval = FIRST_UPDATE_RETRY;
        task.next_retry = None;
        if !task.pending.is_empty() {
            self.deliver_pending(task_id);
        } else if task.is_terminal() {
            self.tasks.remove(task_id);
            if let Runner::Processes(processes) = &self.runner {
                processes.forget(task_id);
            }
        }
    }

    fn reconcile(&mut self, framework_id: &str, reconcile: scheduler::call::Reconcile) {
        let statuses: Vec<mesos::TaskStatus> = if reconcile.tasks.is_empty() {
            self.tasks
                .values()
                .filter(|t| t.framework_id == framework_id)
                .map(|t| t.status.clone())
                .collect()
        } else {
            reconcile
                .tasks
                .iter()
                .map(|r| match self.tasks.get(&r.task_id.value) {
                    Some(t) if t.framework_id == framework_id => t.status.clone(),
                    // As a real master answers a partition-aware framework: a registered
                    // agent that lacks the task has lost it for good.
                    _ => match r
                        .agent_id
                        .as_ref()
                        .and_then(|agent| self.agent_index.get(&agent.value))
                    {
                        Some(&agent) => self.status(
                            Some(agent),
                            &r.task_id.value,
                            mesos::TaskState::TaskGone,
                            "Reconciliation: Task is unknown to the agent",
                            Some(mesos::task_status::Reason::Reconciliation),
                        ),
                        None => self.status(
                            None,
                            &r.task_id.value,
                            mesos::TaskState::TaskUnknown,
                            "Reconciliation: Task is unknown to the master",
                            Some(mesos::task_status::Reason::Reconciliation),
                        ),
                    },
                })
                .collect()
        };
        for mut status in statuses {
            status.set_reason(mesos::task_status::Reason::Reconciliation);
            status.set_source(mesos::task_status::Source::Master);
            let mut update = event_of(event::Type::Update);
            update.update = Some(event::Update { status });
            self.send(framework_id, update);
        }
    }

    fn on_agent_update(&mut self, update: AgentUpdate) {
        let (state, default_reason) = match update.state {
            AgentState::Starting => (mesos::TaskState::TaskStarting, None),
            AgentState::Running => (mesos::TaskState::TaskRunning, None),
            AgentState::Finished => (mesos::TaskState::TaskFinished, None),
            AgentState::Failed => (
                mesos::TaskState::TaskFailed,
                Some(mesos::task_status::Reason::CommandExecutorFailed),
            ),
            AgentState::Killed => (mesos::TaskState::TaskKilled, None),
            AgentState::Error => (
                mesos::TaskState::TaskError,
                Some(mesos::task_status::Reason::TaskInvalid),
            ),
        };
        let reason = update.reason.map(reason_of).or(default_reason);
        let Some(agent) = self.tasks.get(&update.task_id).map(|task| task.agent) else {
            return;
        };
        let mut status = self.status(Some(agent), &update.task_id, state, &update.message, reason);
        if let Some(UpdateReason::HealthCheck { healthy }) = update.reason {
            status.healthy = Some(healthy);
        }
        self.queue_update(&update.task_id, status);
    }

    /// Records a task's new status and queues it for reliable delivery (retried until
    /// acknowledged); a terminal status frees the task's resources.
    fn queue_update(&mut self, task_id: &str, mut status: mesos::TaskStatus) {
        let Some(task) = self.tasks.get_mut(task_id) else {
            return;
        };
        task.status = status.clone();
        let freed = if is_terminal(status.state()) {
            Some((task.agent, std::mem::take(&mut task.resources)))
        } else {
            None
        };
        status.uuid = Some(uuid::Uuid::new_v4().as_bytes().to_vec());
        task.pending.push_back(status);
        let first = task.pending.len() == 1;
        if let Some((agent, resources)) = freed {
            self.free(agent, &resources);
        }
        if first {
            self.deliver_pending(task_id);
        }
    }

    /// Sends the task's oldest unacknowledged update now, and again later until acknowledged.
    fn deliver_pending(&mut self, task_id: &str) {
        let Some(task) = self.tasks.get_mut(task_id) else {
            return;
        };
        let Some(status) = task.pending.front().cloned() else {
            return;
        };
        task.retry_interval = FIRST_UPDATE_RETRY;
        task.next_retry = Some(Instant::now() + FIRST_UPDATE_RETRY);
        let framework_id = task.framework_id.clone();
        let mut update = event_of(event::Type::Update);
        update.update = Some(event::Update { status });
        self.send(&framework_id, update);
    }

    fn on_tick(&mut self, now: Instant) {
        self.expire_frameworks(now);
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

    /// Offers each agent's free resources (one outstanding offer per agent) to the frameworks
    /// that want offers, taking turns, skipping a framework whose filter holds the agent back.
    /// Each framework gets its offers in one OFFERS event.
    fn allocate(&mut self, now: Instant) {
        self.allocation_pending = false;
        let candidates: Vec<String> = self
            .frameworks
            .iter()
            .filter(|(_, f)| f.events.is_some() && !f.suppressed)
            .map(|(id, _)| id.clone())
            .collect();
        if candidates.is_empty() {
            return;
        }
        let mut batches: BTreeMap<String, Vec<mesos::Offer>> = BTreeMap::new();
        for index in 0..self.agents.len() {
            let agent = &self.agents[index];
            if agent.offered || !agent.free.is_useful() {
                continue;
            }
            let turn = self.next_offer as usize;
            let chosen = (0..candidates.len())
                .map(|k| &candidates[(turn + k) % candidates.len()])
                .find(|id| {
                    self.frameworks[*id]
                        .refused
                        .get(&index)
                        .is_none_or(|until| *until <= now)
                })
                .cloned();
            let Some(framework_id) = chosen else {
                continue;
            };
            let offer_id = format!("{}-O{}", self.master_id, self.next_offer);
            self.next_offer += 1;
            let agent = &mut self.agents[index];
            let resources = std::mem::take(&mut agent.free);
            agent.offered = true;
            let offer = mesos::Offer {
                id: mesos::OfferId {
                    value: offer_id.clone(),
                },
                framework_id: mesos::FrameworkId {
                    value: framework_id.clone(),
                },
                agent_id: mesos::AgentId {
                    value: agent.id.clone(),
                },
                hostname: agent.hostname.clone(),
                resources: resources.to_proto(),
                attributes: agent.attributes.iter().map(attribute_of).collect(),
                ..Default::default()
            };
            self.offers.insert(
                offer_id,
                Offer {
                    framework_id: framework_id.clone(),
                    agent: index,
                    resources,
                    made_at: now,
                },
            );
            batches.entry(framework_id).or_default().push(offer);
        }
        for (framework_id, offers) in batches {
            let mut event = event_of(event::Type::Offers);
            event.offers = Some(event::Offers { offers });
            self.send(&framework_id, event);
        }
    }
}

fn reason_of(reason: UpdateReason) -> mesos::task_status::Reason {
    use mesos::task_status::Reason;
    match reason {
        UpdateReason::CommandExecutorFailed => Reason::CommandExecutorFailed,
        UpdateReason::ExecutorTerminated => Reason::ExecutorTerminated,
        UpdateReason::ContainerLaunchFailed => Reason::ContainerLaunchFailed,
        UpdateReason::ContainerLimitationMemory => Reason::ContainerLimitationMemory,
        UpdateReason::TaskKilledDuringLaunch => Reason::TaskKilledDuringLaunch,
        UpdateReason::TaskInvalid => Reason::TaskInvalid,
        UpdateReason::AgentRestarted => Reason::AgentRestarted,
        UpdateReason::HealthCheck { .. } => Reason::TaskHealthCheckStatusUpdated,
    }
}

/// Stride's agent runs plain commands only: a Docker container, or files to fetch first, are
/// refused with a clear reason rather than run without what the task expects.
fn unsupported_container(task: &mesos::TaskInfo) -> Option<String> {
    if task
        .container
        .as_ref()
        .is_some_and(|container| container.r#type() == mesos::container_info::Type::Docker)
    {
        return Some(
            "Stride's built-in agent runs command tasks only (the MESOS containerizer without \
             images); Docker containers need an Apache Mesos agent"
                .to_string(),
        );
    }
    let fetch = task
        .command
        .as_ref()
        .map_or(0, |command| command.uris.len());
    (fetch > 0).then(|| {
        format!(
            "Stride's built-in agent does not fetch URIs yet ({fetch} in the app's fetch); \
             run this app on an Apache Mesos agent"
        )
    })
}

fn launch_of(framework_id: &str, task: &mesos::TaskInfo, resources: Resources) -> TaskLaunch {
    let command = task.command.clone().unwrap_or_default();
    let env = command
        .environment
        .as_ref()
        .map(|e| {
            e.variables
                .iter()
                .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let kill_grace = task
        .kill_policy
        .as_ref()
        .and_then(|k| k.grace_period.as_ref())
        .map_or(DEFAULT_KILL_GRACE, |d| {
            Duration::from_nanos(d.nanoseconds.max(0) as u64)
        });
    TaskLaunch {
        task_id: task.task_id.value.clone(),
        framework_id: framework_id.to_string(),
        command: CommandSpec {
            shell: command.shell(),
            value: command.value.clone().unwrap_or_default(),
            arguments: command.arguments.clone(),
        },
        env,
        cpus: resources.cpus,
        mem_mb: resources.mem,
        disk_mb: resources.disk,
        ports: resources.port_list(),
        kill_grace,
        health_check: task.health_check.as_ref().and_then(check_of),
    }
}

/// The agent's form of `TaskInfo.health_check`; `None` for a check it cannot run.
fn check_of(check: &mesos::HealthCheck) -> Option<HealthCheckSpec> {
    use mesos::health_check::Type;
    let kind = match check.r#type() {
        Type::Command => CheckKind::Command {
            shell: check.command.as_ref()?.value.clone()?,
        },
        Type::Http => {
            let http = check.http.as_ref()?;
            CheckKind::Http {
                port: u16::try_from(http.port).ok()?,
                path: http.path.clone().unwrap_or_else(|| "/".into()),
                https: http.scheme.as_deref() == Some("https"),
            }
        }
        Type::Tcp => CheckKind::Tcp {
            port: u16::try_from(check.tcp.as_ref()?.port).ok()?,
        },
        Type::Unknown => return None,
    };
    let seconds = |s: f64| Duration::from_secs_f64(s.max(0.0));
    Some(HealthCheckSpec {
        kind,
        delay: seconds(check.delay_seconds()),
        interval: seconds(check.interval_seconds()),
        timeout: seconds(check.timeout_seconds()),
        grace: seconds(check.grace_period_seconds()),
        consecutive_failures: check.consecutive_failures(),
    })
}

fn attribute_of((name, value): &(String, AttributeValue)) -> mesos::Attribute {
    let mut attribute = mesos::Attribute {
        name: name.clone(),
        ..Default::default()
    };
    match value {
        AttributeValue::Text(text) => {
            attribute.set_type(mesos::value::Type::Text);
            attribute.text = Some(mesos::value::Text {
                value: text.clone(),
            });
        }
        AttributeValue::Scalar(v) => {
            attribute.set_type(mesos::value::Type::Scalar);
            attribute.scalar = Some(mesos::value::Scalar { value: *v });
        }
        AttributeValue::Ranges(ranges) => {
            attribute.set_type(mesos::value::Type::Ranges);
            attribute.ranges = Some(mesos::value::Ranges {
                range: ranges
                    .iter()
                    .map(|&(begin, end)| mesos::value::Range { begin, end })
                    .collect(),
            });
        }
    }
    attribute
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn port_range_arithmetic_matches_sets_of_ports(
            from in proptest::collection::vec((31000u32..31060, 0u32..8), 0..6),
            taken in proptest::collection::vec((31000u32..31060, 0u32..8), 0..6),
        ) {
            let ranges = |spec: &[(u32, u32)]| -> Vec<(u32, u32)> {
                spec.iter().map(|&(begin, length)| (begin, begin + length)).collect()
            };
            let ports = |ranges: &[(u32, u32)]| -> std::collections::BTreeSet<u32> {
                ranges.iter().flat_map(|&(b, e)| b..=e).collect()
            };
            let (from, taken) = (normalize_ranges(&ranges(&from)), normalize_ranges(&ranges(&taken)));
            let left = subtract_ranges(&from, &taken);
            let expected: std::collections::BTreeSet<u32> =
                ports(&from).difference(&ports(&taken)).copied().collect();
            proptest::prop_assert_eq!(ports(&left), expected);
            proptest::prop_assert_eq!(normalize_ranges(&left), left.clone(), "normalized");
        }
    }

    #[test]
    fn resource_arithmetic_splits_port_ranges() {
        let total = Resources {
            cpus: 2.0,
            mem: 1024.0,
            disk: 100.0,
            ports: vec![(31000, 31010)],
        };
        let used = Resources {
            cpus: 0.5,
            mem: 128.0,
            disk: 0.0,
            ports: vec![(31000, 31000), (31005, 31005)],
        };
        let free = total.minus(&used);
        assert_eq!(free.ports, vec![(31001, 31004), (31006, 31010)]);
        assert!((free.cpus - 1.5).abs() < 1e-9);
        assert!(used.fits_in(&total));
        assert!(!used.fits_in(&free));
    }
}
