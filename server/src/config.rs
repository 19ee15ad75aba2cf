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
    /// Forks the built-in agent's task supervisors (started by the agent, one per agent).
    #[command(hide = true)]
    Zygote,
}

#[derive(Args, Debug, Clone)]
pub struct ServeConfig {
    /// Address the REST API and dashboard listen on.
    #[arg(long, env = "STRIDE_HTTP_ADDRESS", default_value = "127.0.0.1:8080")]
    pub http_address: SocketAddr,

    /// Holds the SQLite database and the built-in agent's task sandboxes.
    #[arg(long, env = "STRIDE_DATA_DIR", default_value = "./stride-data")]
    pub data_dir: PathBuf,

    /// `local` runs the built-in single-node Mesos master and agent in this process.
    #[arg(long, env = "STRIDE_MASTER", default_value = "local")]
    pub master: String,

    #[command(flatten)]
    pub agent: AgentConfig,
}

/// Options of the built-in agent.
#[derive(Args, Debug, Clone, Default)]
pub struct AgentConfig {
    /// Resources to offer instead of the detected ones, Mesos style:
    /// `cpus:4;mem:8192;disk:10000;ports:[31000-32000]`. Unnamed resources keep their detected value.
    #[arg(long, env = "STRIDE_AGENT_RESOURCES")]
    pub agent_resources: Option<String>,

    /// Attributes of the agent for placement constraints, e.g. `rack:a;zone:eu`.
    #[arg(long, env = "STRIDE_AGENT_ATTRIBUTES")]
    pub agent_attributes: Option<String>,

    /// Hostname the agent reports (and tasks get as HOST); defaults to the machine's hostname.
    #[arg(long, env = "STRIDE_AGENT_HOSTNAME")]
    pub agent_hostname: Option<String>,
}
