//! Command-line flags; each can also be set through the `STRIDE_*` environment variable named after it.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "stride",
    version,
    about = "Stride: a Marathon-compatible orchestrator for Apache Mesos",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeConfig,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serves the built-in single-node Mesos master (and its agent) over Mesos' v1 scheduler
    /// HTTP API, for any number of frameworks: `stride --master http://ADDR` among them.
    Master(MasterArgs),
    /// Runs the load balancer alone on this node, following a Stride leader's apps and tasks
    /// (as marathon-lb does with HAProxy): every app's service ports, routed to its healthy
    /// tasks.
    Lb(LbArgs),
    /// Container images in the built-in agents' store.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Forks the built-in agent's task supervisors (started by the agent, one per agent).
    #[command(hide = true)]
    Zygote,
    /// Runs the DOCKER container of the task whose sandbox is the current directory (a
    /// task's command, started by its supervisor).
    #[command(hide = true)]
    DockerExecutor,
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Imports the images of a `docker save` or OCI archive (for agents that cannot reach a
    /// registry); tasks naming them then run without a pull.
    Load {
        /// The archive: a tar file.
        file: PathBuf,
        /// The reference to store the image by, for an archive that does not name it (or to
        /// rename its one image).
        #[arg(long)]
        name: Option<String>,
        /// The data dir of the Stride (or `stride master`) whose agents run the images.
        #[arg(long, env = "STRIDE_DATA_DIR", default_value = "./stride-data")]
        data_dir: PathBuf,
    },
}

#[derive(Args, Debug, Clone)]
pub struct LbArgs {
    /// Any Stride of the cluster, `http://HOST:PORT` (a standby answers for the leader).
    #[arg(long, env = "STRIDE_LB_LEADER")]
    pub leader: String,

    /// The address to listen on, every app's service ports there.
    #[arg(long, env = "STRIDE_LB_ADDRESS", default_value = "127.0.0.1")]
    pub lb_address: std::net::IpAddr,

    /// The tasks listen on this machine's loopback (the agents of a built-in master here)
    /// rather than at their agent's hostname.
    #[arg(long, env = "STRIDE_LB_BACKENDS_ON_LOOPBACK")]
    pub backends_on_loopback: bool,

    /// The network named VIPs get their addresses from: the leader's `--vip-range`.
    #[arg(long, env = "STRIDE_VIP_RANGE", default_value = "127.77.0.0/16")]
    pub vip_range: crate::lb::vips::VipRange,
}

#[derive(Args, Debug, Clone)]
pub struct MasterArgs {
    /// Address the Mesos scheduler API listens on.
    #[arg(long, env = "STRIDE_MASTER_LISTEN", default_value = "127.0.0.1:5050")]
    pub listen: SocketAddr,

    /// Holds the agent's task sandboxes (in `agent/`).
    #[arg(
        long,
        env = "STRIDE_MASTER_DATA_DIR",
        default_value = "./stride-master-data"
    )]
    pub data_dir: PathBuf,

    #[command(flatten)]
    pub agent: AgentConfig,

    /// Instead of this machine's agent, simulate this many agents whose tasks run nowhere
    /// (RUNNING at once, KILLED when killed): for benchmarks at cluster scale.
    #[arg(long, env = "STRIDE_MASTER_SIMULATE_AGENTS")]
    pub simulate_agents: Option<usize>,

    /// Resources of each simulated agent, Mesos style.
    #[arg(
        long,
        env = "STRIDE_MASTER_SIMULATED_AGENT_RESOURCES",
        default_value = "cpus:8;mem:32768;disk:100000;ports:[31000-32000]"
    )]
    pub simulated_agent_resources: String,
}

#[derive(Args, Debug, Clone)]
pub struct ServeConfig {
    /// Address the REST API and dashboard listen on.
    #[arg(long, env = "STRIDE_HTTP_ADDRESS", default_value = "127.0.0.1:8080")]
    pub http_address: SocketAddr,

    /// Holds the SQLite database and the built-in agent's task sandboxes.
    #[arg(long, env = "STRIDE_DATA_DIR", default_value = "./stride-data")]
    pub data_dir: PathBuf,

    /// Where the state is: `sqlite://PATH` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`;
    /// defaults to `stride.db` in the data dir. Strides sharing one Postgres store elect a
    /// leader among them.
    #[arg(long, env = "STRIDE_STORE")]
    pub store: Option<String>,

    /// The host name other Strides and clients reach this one at (with the HTTP port, the
    /// leader's address); defaults to the listen address, or the machine's hostname when
    /// listening on every address.
    #[arg(long, env = "STRIDE_HOSTNAME")]
    pub hostname: Option<String>,

    #[command(flatten)]
    pub leadership: LeadershipConfig,

    /// `local` runs the built-in single-node Mesos master and agent in this process;
    /// `http://HOST:PORT` subscribes to that Mesos master (any master: redirects lead to the leader).
    #[arg(long, env = "STRIDE_MASTER", default_value = "local")]
    pub master: String,

    #[command(flatten)]
    pub mesos: MesosConfig,

    #[command(flatten)]
    pub agent: AgentConfig,

    #[command(flatten)]
    pub events: EventsConfig,

    #[command(flatten)]
    pub metrics: MetricsConfig,

    #[command(flatten)]
    pub discovery: DiscoveryConfig,
}

/// Service ports, as Marathon hands them out, and the load balancer listening on them.
#[derive(Args, Debug, Clone)]
pub struct DiscoveryConfig {
    /// The address the built-in load balancer listens on, every app's service ports there;
    /// `none` turns it off.
    #[arg(long, env = "STRIDE_LB_ADDRESS", default_value = "127.0.0.1")]
    pub lb_address: String,

    /// The network named VIPs (`VIP_0: /my-app:80`) get their addresses from.
    #[arg(long, env = "STRIDE_VIP_RANGE", default_value = "127.77.0.0/16")]
    pub vip_range: crate::lb::vips::VipRange,

    /// Serve DNS (UDP and TCP) on this address with Mesos-DNS's names for the apps, tasks,
    /// VIPs and leader, e.g. `127.0.0.1:8053`. Off when not given.
    #[arg(long, env = "STRIDE_DNS_ADDRESS")]
    pub dns_address: Option<SocketAddr>,

    /// The lowest service port given to a port 0 (Marathon's `--local_port_min`).
    #[arg(long, env = "STRIDE_LOCAL_PORT_MIN", default_value_t = 10_000)]
    pub local_port_min: u16,

    /// One past the highest service port given to a port 0 (Marathon's `--local_port_max`).
    #[arg(long, env = "STRIDE_LOCAL_PORT_MAX", default_value_t = 20_000)]
    pub local_port_max: u16,
}

impl DiscoveryConfig {
    /// Where the load balancer listens, or `None` when it is off.
    pub fn lb_address(&self) -> anyhow::Result<Option<std::net::IpAddr>> {
        if self.lb_address == "none" {
            return Ok(None);
        }
        self.lb_address.parse().map(Some).map_err(|_| {
            anyhow::anyhow!(
                "--lb-address {}: not an IP address nor `none`",
                self.lb_address
            )
        })
    }

    pub fn service_ports(&self) -> anyhow::Result<crate::scheduler::service_ports::PortRange> {
        anyhow::ensure!(
            self.local_port_min < self.local_port_max,
            "--local-port-min {} must be below --local-port-max {}",
            self.local_port_min,
            self.local_port_max
        );
        Ok(crate::scheduler::service_ports::PortRange {
            min: self.local_port_min.into(),
            max: self.local_port_max.into(),
        })
    }
}

/// Leader election and the standbys' proxying (for a Postgres store).
#[derive(Args, Debug, Clone)]
pub struct LeadershipConfig {
    /// Lead alone on a Postgres store, without an election (as with SQLite).
    #[arg(long, env = "STRIDE_DISABLE_HA")]
    pub disable_ha: bool,

    /// Seconds a leader's lease lasts without a renewal: how long the others wait for a
    /// leader that stopped answering (one whose process died is replaced at once).
    #[arg(long, env = "STRIDE_LEADER_LEASE_SECONDS", default_value_t = 5.0)]
    pub leader_lease_seconds: f64,

    /// Milliseconds a standby waits to connect to the leader when proxying a request.
    #[arg(
        long,
        env = "STRIDE_LEADER_PROXY_CONNECTION_TIMEOUT_MS",
        default_value_t = 5000
    )]
    pub leader_proxy_connection_timeout_ms: u64,

    /// Milliseconds a standby waits for the leader's answer to a proxied request (event
    /// streams excepted).
    #[arg(
        long,
        env = "STRIDE_LEADER_PROXY_READ_TIMEOUT_MS",
        default_value_t = 10000
    )]
    pub leader_proxy_read_timeout_ms: u64,
}

impl LeadershipConfig {
    pub fn lease(&self) -> anyhow::Result<std::time::Duration> {
        if !(self.leader_lease_seconds.is_finite() && self.leader_lease_seconds >= 0.2) {
            anyhow::bail!("--leader-lease-seconds must be at least 0.2");
        }
        Ok(std::time::Duration::from_secs_f64(
            self.leader_lease_seconds,
        ))
    }
}

/// Metric names and where they are pushed.
#[derive(Args, Debug, Clone)]
pub struct MetricsConfig {
    /// The first component of every metric name (Marathon's `--metrics_prefix`).
    #[arg(long, env = "STRIDE_METRICS_NAME_PREFIX", default_value = crate::metrics::DEFAULT_PREFIX)]
    pub metrics_name_prefix: String,

    /// Turns `/metrics/prometheus` off (it answers 404).
    #[arg(long, env = "STRIDE_DISABLE_METRICS_PROMETHEUS")]
    pub disable_metrics_prometheus: bool,

    /// `HOST:PORT` of a StatsD server (or DataDog agent) to send every metric to over UDP.
    #[arg(long, env = "STRIDE_METRICS_STATSD")]
    pub metrics_statsd: Option<String>,

    /// DataDog tags added to every StatsD line, comma-separated (`env:prod,team:infra`).
    #[arg(long, env = "STRIDE_METRICS_STATSD_TAGS", value_delimiter = ',')]
    pub metrics_statsd_tags: Vec<String>,

    /// `HOST:PORT` of a Graphite server to send every metric to over TCP (plaintext).
    #[arg(long, env = "STRIDE_METRICS_GRAPHITE")]
    pub metrics_graphite: Option<String>,

    /// Seconds between two pushes to StatsD and Graphite.
    #[arg(long, env = "STRIDE_METRICS_INTERVAL_SECONDS", default_value_t = 10.0)]
    pub metrics_interval_seconds: f64,
}

impl MetricsConfig {
    /// Where to push, with the addresses resolved.
    pub fn push_settings(&self) -> anyhow::Result<crate::metrics::push::PushSettings> {
        use anyhow::Context;
        use std::net::ToSocketAddrs;
        let resolve = |flag: &str, value: &Option<String>| -> anyhow::Result<Option<SocketAddr>> {
            value
                .as_deref()
                .map(|v| {
                    v.to_socket_addrs()
                        .with_context(|| format!("{flag} {v}: not a HOST:PORT"))?
                        .next()
                        .with_context(|| format!("{flag} {v}: no address"))
                })
                .transpose()
        };
        if !(self.metrics_interval_seconds.is_finite() && self.metrics_interval_seconds > 0.0) {
            anyhow::bail!("--metrics-interval-seconds must be a positive number");
        }
        Ok(crate::metrics::push::PushSettings {
            prefix: self.metrics_name_prefix.clone(),
            statsd: resolve("--metrics-statsd", &self.metrics_statsd)?,
            statsd_tags: self.metrics_statsd_tags.clone(),
            graphite: resolve("--metrics-graphite", &self.metrics_graphite)?,
            interval: std::time::Duration::from_secs_f64(self.metrics_interval_seconds),
        })
    }
}

/// The event bus, its journal and the HTTP callback subscribers.
#[derive(Args, Debug, Clone)]
pub struct EventsConfig {
    /// How many of the newest events Stride keeps (in memory and journaled in the store) for
    /// event-stream clients and callback subscribers that fall behind or reconnect.
    #[arg(long, env = "STRIDE_EVENT_RING_SIZE", default_value_t = crate::events::DEFAULT_RING_SIZE)]
    pub event_ring_size: usize,

    /// Turns `/v2/eventSubscriptions` off (it answers 400, as Marathon without
    /// `--event_subscriber http_callback`).
    #[arg(long, env = "STRIDE_DISABLE_EVENT_CALLBACKS")]
    pub disable_event_callbacks: bool,

    /// Callback URLs subscribed at start (if not subscribed already), comma-separated.
    #[arg(long, env = "STRIDE_HTTP_ENDPOINTS", value_delimiter = ',')]
    pub http_endpoints: Vec<String>,

    /// Seconds a callback subscriber may take to answer one event before the delivery counts
    /// as failed.
    #[arg(
        long,
        env = "STRIDE_EVENT_CALLBACK_TIMEOUT_SECONDS",
        default_value_t = 10.0
    )]
    pub event_callback_timeout_seconds: f64,

    /// The longest wait, in seconds, between two attempts at a failing subscriber.
    #[arg(
        long,
        env = "STRIDE_EVENT_CALLBACK_MAX_BACKOFF_SECONDS",
        default_value_t = 30.0
    )]
    pub event_callback_max_backoff_seconds: f64,

    /// Seconds of failing deliveries after which a subscriber is unsubscribed.
    #[arg(
        long,
        env = "STRIDE_EVENT_SUBSCRIBER_DROP_AFTER_SECONDS",
        default_value_t = 3600.0
    )]
    pub event_subscriber_drop_after_seconds: f64,
}

impl EventsConfig {
    pub fn callback_settings(&self) -> crate::events::callbacks::Settings {
        let seconds = |s: f64| std::time::Duration::from_secs_f64(s.max(0.0));
        crate::events::callbacks::Settings {
            request_timeout: seconds(self.event_callback_timeout_seconds),
            max_backoff: seconds(self.event_callback_max_backoff_seconds),
            drop_after: seconds(self.event_subscriber_drop_after_seconds),
        }
    }
}

/// How Stride registers with a Mesos master given as a URL.
#[derive(Args, Debug, Clone)]
pub struct MesosConfig {
    /// Path of the master's scheduler endpoint; a master run in-process by libmesos answers only
    /// on `/master/api/v1/scheduler`.
    #[arg(
        long,
        env = "STRIDE_MESOS_API_PATH",
        default_value = "/api/v1/scheduler"
    )]
    pub mesos_api_path: String,

    /// Encoding of calls and events.
    #[arg(
        long,
        env = "STRIDE_MESOS_CONTENT_TYPE",
        value_enum,
        default_value = "protobuf"
    )]
    pub mesos_content_type: crate::mesos::http::ContentType,

    /// The framework's name in Mesos.
    #[arg(long, env = "STRIDE_FRAMEWORK_NAME", default_value = "stride")]
    pub framework_name: String,

    /// Roles whose resources Stride is offered, comma-separated (subscribed as MULTI_ROLE).
    #[arg(
        long,
        env = "STRIDE_MESOS_ROLE",
        default_value = "*",
        value_delimiter = ','
    )]
    pub mesos_role: Vec<String>,

    /// User tasks run as; defaults to `$USER`, else root.
    #[arg(long, env = "STRIDE_MESOS_USER")]
    pub mesos_user: Option<String>,

    /// Principal for HTTP basic authentication with the master (and FrameworkInfo.principal).
    #[arg(long, env = "STRIDE_MESOS_PRINCIPAL")]
    pub mesos_principal: Option<String>,

    /// Secret for the principal.
    #[arg(long, env = "STRIDE_MESOS_SECRET", hide_env_values = true)]
    pub mesos_secret: Option<String>,

    /// Seconds the master keeps Stride's tasks running while Stride is disconnected.
    #[arg(long, env = "STRIDE_FAILOVER_TIMEOUT", default_value_t = 7 * 24 * 3600)]
    pub failover_timeout: u64,

    /// Heartbeat intervals without any event after which the event stream counts as dead and
    /// Stride subscribes again.
    #[arg(long, env = "STRIDE_MESOS_HEARTBEAT_MISSES", default_value_t = 5)]
    pub mesos_heartbeat_misses: u32,
}

/// Options of the built-in agents.
#[derive(Args, Debug, Clone, Default)]
pub struct AgentConfig {
    /// An agent of the built-in master: its hostname, then its attributes in Mesos' syntax, and
    /// its fault domain as `@region:R;@zone:Z`, e.g. `node-1;rack:r1;@region:eu;@zone:a`.
    /// Repeat for several agents (`STRIDE_AGENTS`: specs separated by whitespace); without it,
    /// one agent named after this machine.
    #[arg(long = "agent", env = "STRIDE_AGENTS", value_name = "SPEC")]
    pub agents: Vec<String>,

    /// Every agent's resources instead of an even share of the detected ones, Mesos style:
    /// `cpus:4;mem:8192;disk:10000;ports:[31000-32000]`, or Mesos' JSON form, which can also
    /// declare PATH and MOUNT disks for `path` and `mount` volumes (relative roots are under
    /// each agent's work dir). Unnamed resources keep the machine's value; ports are always
    /// divided among the agents, so that none hands out another's.
    #[arg(long, env = "STRIDE_AGENT_RESOURCES")]
    pub agent_resources: Option<String>,

    /// Attributes of the one agent for placement constraints, e.g. `rack:a;zone:eu` (with
    /// `--agent`, each spec names its own).
    #[arg(long, env = "STRIDE_AGENT_ATTRIBUTES", conflicts_with = "agents")]
    pub agent_attributes: Option<String>,

    /// Hostname the one agent reports (and tasks get as HOST); defaults to the machine's
    /// hostname (with `--agent`, each spec names its own).
    #[arg(long, env = "STRIDE_AGENT_HOSTNAME", conflicts_with = "agents")]
    pub agent_hostname: Option<String>,

    /// A registry (`HOST:PORT`) the agents pull container images from over plain HTTP, such
    /// as one on loopback; repeatable (`STRIDE_INSECURE_REGISTRIES`: comma-separated).
    #[arg(
        long = "insecure-registry",
        env = "STRIDE_INSECURE_REGISTRIES",
        value_name = "HOST:PORT",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,

    /// The Docker-API engine (Docker, or `podman system service`) that runs DOCKER containers
    /// on the built-in agents.
    #[arg(
        long,
        env = "STRIDE_DOCKER_SOCKET",
        default_value = "/var/run/docker.sock"
    )]
    pub docker_socket: PathBuf,

    /// Seconds an image that no container uses stays in the store after it was last asked
    /// for; then it goes, with the layers no other image holds.
    #[arg(long, env = "STRIDE_IMAGE_GC_AFTER_SECONDS", default_value_t = 3600.0)]
    pub image_gc_after_seconds: f64,
}
