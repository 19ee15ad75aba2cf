//! The Mesos master a Stride subscribes to: the built-in one (`--master local`, in this
//! process) or one given by URL.

use crate::config;
use crate::master;
use crate::mesos;
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;

/// The master Stride subscribes to, and what goes with it.
pub struct Master {
    pub backend: Arc<dyn mesos::Backend>,
    /// The hostname Stride reports as its own in FrameworkInfo.
    pub hostname: String,
    /// The built-in master, whose HTTP endpoints Stride serves on its own address too, and
    /// whose agents' sandboxes and fault injection the dashboard uses.
    pub local: Option<master::local::LocalMaster>,
}

/// Starts the built-in master and its agents: the one of `--agent-hostname`, whose tasks live
/// in `data_dir/agent`, or those of `--agent`, each in `data_dir/agents/<hostname>`. Returns the
/// master and its hostname.
pub async fn start_local_master(
    agent: &config::AgentConfig,
    data_dir: &Path,
    simulated: Option<(usize, master::host::HostResources)>,
) -> anyhow::Result<(master::local::LocalMaster, String)> {
    let hostname = agent
        .agent_hostname
        .clone()
        .unwrap_or_else(master::host::hostname);
    let is_simulated = simulated.is_some();
    let agents = match simulated {
        Some((count, resources)) => (0..count)
            .map(|n| master::local::AgentSettings {
                work_dir: data_dir.join("agent"),
                hostname: format!("sim-{n}.{hostname}"),
                resources: resources.clone(),
                attributes: Vec::new(),
                domain: None,
            })
            .collect(),
        None => agents_of(agent, data_dir, &hostname)?,
    };
    let images = Arc::new(crate::images::ImageStore::new(
        data_dir.join("images"),
        &crate::images::RegistrySettings {
            insecure: agent.insecure_registries.clone(),
        },
    ));
    if !is_simulated {
        let container_dirs = agents
            .iter()
            .map(|a| a.work_dir.join("containers"))
            .collect();
        let unused_for = std::time::Duration::from_secs_f64(agent.image_gc_after_seconds);
        tokio::spawn(crate::images::collect_periodically(
            images.clone(),
            container_dirs,
            unused_for,
        ));
    }
    let local = master::local::LocalMaster::start(master::local::MasterSettings {
        work_dir: data_dir.join("agent"),
        stride_exe: std::env::current_exe()?,
        hostname: hostname.clone(),
        agents,
        simulated: is_simulated,
        images,
        docker_socket: agent.docker_socket.clone(),
    })
    .await
    .context("starting the built-in master")?;
    Ok((local, hostname))
}

/// The agents `--agent` (or the one-agent flags) describe, with this machine's resources
/// divided among them.
fn agents_of(
    agent: &config::AgentConfig,
    data_dir: &Path,
    hostname: &str,
) -> anyhow::Result<Vec<master::local::AgentSettings>> {
    use master::topology::{divide_resources, AgentSpec};
    let specs = AgentSpec::parse_all(&agent.agents).map_err(|e| anyhow::anyhow!("--agent {e}"))?;
    let one = specs.is_empty();
    let specs = if one {
        let attributes = match &agent.agent_attributes {
            Some(spec) => master::host::parse_attributes(spec)
                .map_err(|e| anyhow::anyhow!("--agent-attributes: {e}"))?,
            None => Vec::new(),
        };
        vec![AgentSpec {
            hostname: hostname.to_string(),
            attributes,
            domain: None,
        }]
    } else {
        specs
    };
    let mut resources = master::host::HostResources::detect(data_dir)?;
    if let Some(spec) = &agent.agent_resources {
        resources
            .apply_overrides(spec)
            .map_err(|e| anyhow::anyhow!("--agent-resources: {e}"))?;
    }
    if let Some(shared) = resources
        .disks
        .iter()
        .find(|d| !one && Path::new(&d.at.root).is_absolute())
    {
        anyhow::bail!(
            "--agent-resources: the disk at {} would be every agent's; give it a relative root \
             (each agent's is then under its own work dir)",
            shared.at.root
        );
    }
    let shares = divide_resources(&resources, specs.len(), agent.agent_resources.is_none());
    Ok(specs
        .into_iter()
        .zip(shares)
        .map(|(spec, resources)| {
            let work_dir = if one {
                data_dir.join("agent")
            } else {
                data_dir.join("agents").join(&spec.hostname)
            };
            master::local::AgentSettings {
                resources: master::disks::rooted_under(resources, &work_dir),
                work_dir,
                hostname: spec.hostname,
                attributes: spec.attributes,
                domain: spec.domain,
            }
        })
        .collect())
}

/// Starts the built-in master and agent for `--master local`, or prepares the HTTP connection
/// to the Mesos master named by a URL.
pub async fn connect_master(
    config: &config::ServeConfig,
    data_dir: &Path,
) -> anyhow::Result<Master> {
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
            local: None,
        });
    }
    let (local, hostname) = start_local_master(&config.agent, data_dir, None).await?;
    Ok(Master {
        backend: Arc::new(local.clone()),
        hostname,
        local: Some(local),
    })
}
