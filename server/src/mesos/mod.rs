//! The Mesos driver: subscribes to a master, turns its events into the core's inputs and the
//! core's requests into calls. It only translates; all decisions are the core's.
//!
//! # Layout
//! - [`Backend`]: how to reach a master: the built-in one in-process ([`LocalMaster`]), or any
//!   Mesos master over HTTP ([`http::HttpMaster`]).
//! - [`translate`]: protocol messages ↔ core types.
//! - [`run_driver`]: the subscribe/re-subscribe loop.

pub mod http;
pub mod translate;

use crate::core::Outgoing;
use crate::master::local::{LocalMaster, MasterError};
use crate::scheduler::placement::{DockerEngine, OfferView};
use crate::scheduler::status::StatusUpdate;
use futures::future::BoxFuture;
use proto::mesos::v1 as mesos;
use proto::mesos::v1::scheduler::{self, event};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What the driver tells the core.
#[derive(Debug)]
pub enum MesosInput {
    Subscribed {
        framework_id: String,
        /// The master's hostname, from its `MasterInfo`.
        master: Option<String>,
    },
    Disconnected,
    /// An executor's message to the framework.
    Message {
        agent_id: String,
        executor_id: String,
        data: Vec<u8>,
    },
    Offers(Vec<OfferView>),
    Rescind(String),
    Status {
        update: StatusUpdate,
        /// Present when the update must be acknowledged (after it is persisted).
        ack: Option<Vec<u8>>,
    },
}

pub type EventStream = mpsc::UnboundedReceiver<scheduler::Event>;

/// Acknowledgements in flight at once. They are independent of each other and of every other
/// call, so they need not wait in line; everything else keeps its order.
const CONCURRENT_ACKS: usize = 64;

/// The longest wait between two attempts to subscribe.
const MAX_RESUBSCRIBE_BACKOFF: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Worth trying again: the master is unreachable, busy, or the stream broke.
    #[error("{0}")]
    Transient(String),
    /// Trying again cannot help: refused credentials or subscription, or a framework that
    /// failed over to another scheduler or was removed.
    #[error("{0}")]
    Fatal(String),
}

impl From<MasterError> for BackendError {
    fn from(error: MasterError) -> Self {
        Self::Transient(error.to_string())
    }
}

/// A connection to a Mesos master.
pub trait Backend: Send + Sync + 'static {
    /// Subscribes; the framework id and the events, SUBSCRIBED first.
    fn subscribe(
        &self,
        subscribe: scheduler::call::Subscribe,
    ) -> BoxFuture<'_, Result<(String, EventStream), BackendError>>;
    fn call(&self, call: scheduler::Call) -> BoxFuture<'_, Result<(), BackendError>>;
    /// Whether the agent can run DOCKER containers, which Mesos' offers do not say.
    fn docker_engine(&self, _agent_id: &str) -> DockerEngine {
        DockerEngine::Unknown
    }
}

impl Backend for LocalMaster {
    fn subscribe(
        &self,
        subscribe: scheduler::call::Subscribe,
    ) -> BoxFuture<'_, Result<(String, EventStream), BackendError>> {
        Box::pin(async move { Ok(LocalMaster::subscribe(self, subscribe).await?) })
    }

    fn call(&self, call: scheduler::Call) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move { Ok(LocalMaster::call(self, call).await?) })
    }

    /// The built-in agents share one engine.
    fn docker_engine(&self, _agent_id: &str) -> DockerEngine {
        LocalMaster::docker_engine(self)
    }
}

/// How Stride presents itself to the master.
#[derive(Clone, Debug)]
pub struct FrameworkSettings {
    pub name: String,
    pub user: String,
    pub roles: Vec<String>,
    pub principal: Option<String>,
    pub hostname: String,
    pub webui_url: String,
    pub failover_timeout: Duration,
}

fn framework_info(settings: &FrameworkSettings, id: Option<String>) -> mesos::FrameworkInfo {
    let capability = |kind: mesos::framework_info::capability::Type| {
        let mut c = mesos::framework_info::Capability::default();
        c.set_type(kind);
        c
    };
    use mesos::framework_info::capability::Type as Cap;
    mesos::FrameworkInfo {
        user: settings.user.clone(),
        name: settings.name.clone(),
        id: id.map(|value| mesos::FrameworkId { value }),
        failover_timeout: Some(settings.failover_timeout.as_secs_f64()),
        checkpoint: Some(true),
        hostname: Some(settings.hostname.clone()),
        webui_url: Some(settings.webui_url.clone()),
        roles: settings.roles.clone(),
        principal: settings.principal.clone(),
        capabilities: vec![
            capability(Cap::MultiRole),
            capability(Cap::PartitionAware),
            capability(Cap::TaskKillingState),
        ],
        ..Default::default()
    }
}

/// Keeps a subscription alive: subscribes (again after a drop, with capped backoff), forwards
/// events to the core and the core's requests to the master, until `shutdown` flips. Returns
/// an error only when going on cannot help (see [`BackendError::Fatal`]).
pub async fn run_driver(
    backend: std::sync::Arc<dyn Backend>,
    settings: FrameworkSettings,
    mut framework_id: Option<String>,
    to_core: mpsc::UnboundedSender<MesosInput>,
    mut from_core: mpsc::UnboundedReceiver<Outgoing>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let mut retry = Duration::from_millis(250);
    let acks = std::sync::Arc::new(tokio::sync::Semaphore::new(CONCURRENT_ACKS));
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let subscribe = scheduler::call::Subscribe {
            framework_info: framework_info(&settings, framework_id.clone()),
            ..Default::default()
        };
        let mut events = match backend.subscribe(subscribe).await {
            Ok((id, events)) => {
                retry = Duration::from_millis(250);
                framework_id = Some(id);
                events
            }
            Err(BackendError::Fatal(reason)) => return Err(reason),
            Err(BackendError::Transient(e)) => {
                tracing::warn!(error = %e, retry_in = ?retry, "subscribing to the Mesos master failed");
                tokio::select! {
                    _ = tokio::time::sleep(retry) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
                retry = (retry * 2).min(MAX_RESUBSCRIBE_BACKOFF);
                continue;
            }
        };
        let id = framework_id.clone().unwrap_or_default();
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => {
                        if let Some(error) = &event.error {
                            tracing::error!(message = %error.message, "the Mesos master reported an error");
                            if http::is_fatal_error(&error.message) {
                                return Err(format!("the Mesos master ended the framework: {}", error.message));
                            }
                        }
                        if let Some(mut input) = input_of(event) {
                            if let MesosInput::Offers(offers) = &mut input {
                                for offer in offers {
                                    offer.docker_engine = backend.docker_engine(&offer.agent_id);
                                }
                            }
                            if to_core.send(input).is_err() {
                                return Ok(());
                            }
                        }
                    }
                    None => {
                        tracing::warn!("the Mesos master closed the event stream; subscribing again");
                        let _ = to_core.send(MesosInput::Disconnected);
                        break;
                    }
                },
                outgoing = from_core.recv() => match outgoing {
                    Some(outgoing) => {
                        let is_ack = matches!(outgoing, Outgoing::Acknowledge { .. });
                        let caller = translate::Caller {
                            framework_id: &id,
                            principal: settings.principal.as_deref(),
                        };
                        let call = translate::call_of(outgoing, &caller);
                        if is_ack {
                            let permit = acks.clone().acquire_owned().await.expect("never closed");
                            let backend = backend.clone();
                            tokio::spawn(async move {
                                if let Err(e) = backend.call(call).await {
                                    tracing::warn!(error = %e, "acknowledging a status update failed");
                                }
                                drop(permit);
                            });
                        } else if let Err(e) = backend.call(call).await {
                            tracing::warn!(error = %e, "a call to the Mesos master failed");
                        }
                    }
                    None => return Ok(()),
                },
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }
}

fn input_of(event: scheduler::Event) -> Option<MesosInput> {
    match event.r#type() {
        event::Type::Subscribed => event.subscribed.map(|s| MesosInput::Subscribed {
            framework_id: s.framework_id.value,
            master: s.master_info.and_then(|m| m.hostname),
        }),
        event::Type::Message => event.message.map(|m| MesosInput::Message {
            agent_id: m.agent_id.value,
            executor_id: m.executor_id.value,
            data: m.data,
        }),
        event::Type::Offers => event
            .offers
            .map(|o| MesosInput::Offers(o.offers.iter().map(translate::offer_view).collect())),
        event::Type::Rescind => event.rescind.map(|r| MesosInput::Rescind(r.offer_id.value)),
        event::Type::Update => event.update.map(|u| MesosInput::Status {
            update: translate::status_update(&u.status),
            ack: u.status.uuid.clone(),
        }),
        _ => None,
    }
}
