//! Stride's server: the REST API, the scheduler, the store and the built-in Mesos master/agent.

pub mod config;
pub mod core;
pub mod events;
pub mod master;
pub mod scheduler;
pub mod store;

pub async fn run(_config: config::ServeConfig) -> anyhow::Result<()> {
    anyhow::bail!("not wired yet")
}
