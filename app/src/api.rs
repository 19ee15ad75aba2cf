//! Server functions: the dashboard's calls to the server. Each is thin: it finds the
//! [`Backend`] in the request context and calls it. Business errors (validation, conflicts) are
//! returned as data, `Err(ServiceError)`, so that the page can show them where they belong;
//! `ServerFnError` means the call itself failed.

use crate::model::{
    AgentsView, AppDetail, AppSummary, ClusterSummary, DeploymentView, EventRecord, MetricsView,
    NewApp, ServiceError, TaskLog,
};
use leptos::prelude::*;

/// What a mutation answers: the deployment id, or why it was refused.
pub type Outcome = Result<String, ServiceError>;

#[cfg(feature = "ssr")]
mod backend {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;

    pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

    /// What the server provides to the dashboard; implemented by the server's service.
    pub trait Backend: Send + Sync + 'static {
        fn cluster(&self) -> ClusterSummary;
        fn app_summaries(&self) -> Vec<AppSummary>;
        fn app_detail(&self, id: &str) -> Option<AppDetail>;
        fn recent_events(&self, limit: usize) -> Vec<EventRecord>;
        fn metrics(&self) -> MetricsView;
        fn create_app(&self, form: NewApp) -> BoxFuture<Outcome>;
        fn scale_app(&self, id: String, instances: i64) -> BoxFuture<Outcome>;
        fn restart_app(&self, id: String) -> BoxFuture<Outcome>;
        fn destroy_app(&self, id: String) -> BoxFuture<Outcome>;
        fn kill_task(&self, task_id: String) -> BoxFuture<Outcome>;
        fn deployments(&self) -> Vec<DeploymentView>;
        /// Rolls a deployment back (`force`: only cancels it).
        fn stop_deployment(&self, id: String, force: bool) -> BoxFuture<Outcome>;
        fn reset_delay(&self, app_id: String) -> BoxFuture<Outcome>;
        fn agents(&self) -> BoxFuture<AgentsView>;
        /// Cuts an agent of the built-in master off, or brings it back.
        fn set_agent_reachable(&self, hostname: String, reachable: bool) -> BoxFuture<Outcome>;
        fn task_log(
            &self,
            task_id: String,
            stream: String,
        ) -> BoxFuture<Result<TaskLog, ServiceError>>;
    }

    /// The backend from the request context; its absence is a server misconfiguration.
    pub fn backend() -> Result<std::sync::Arc<dyn Backend>, ServerFnError> {
        use_context::<std::sync::Arc<dyn Backend>>()
            .ok_or_else(|| ServerFnError::new("the dashboard backend is not configured"))
    }
}

#[cfg(feature = "ssr")]
pub use backend::{backend, Backend, BoxFuture};

#[server]
pub async fn cluster_overview() -> Result<ClusterSummary, ServerFnError> {
    Ok(backend()?.cluster())
}

#[server]
pub async fn list_apps() -> Result<Vec<AppSummary>, ServerFnError> {
    Ok(backend()?.app_summaries())
}

#[server]
pub async fn get_app(id: String) -> Result<Option<AppDetail>, ServerFnError> {
    Ok(backend()?.app_detail(&id))
}

#[server]
pub async fn recent_events(limit: usize) -> Result<Vec<EventRecord>, ServerFnError> {
    Ok(backend()?.recent_events(limit.min(1000)))
}

#[server]
pub async fn metrics_overview() -> Result<MetricsView, ServerFnError> {
    Ok(backend()?.metrics())
}

#[server]
pub async fn create_app(form: NewApp) -> Result<Outcome, ServerFnError> {
    Ok(backend()?.create_app(form).await)
}

#[server]
pub async fn scale_app(id: String, instances: i64) -> Result<Outcome, ServerFnError> {
    Ok(backend()?.scale_app(id, instances).await)
}

#[server]
pub async fn restart_app(id: String) -> Result<Outcome, ServerFnError> {
    Ok(backend()?.restart_app(id).await)
}

#[server]
pub async fn destroy_app(id: String) -> Result<Outcome, ServerFnError> {
    Ok(backend()?.destroy_app(id).await)
}

#[server]
pub async fn kill_task(task_id: String) -> Result<Outcome, ServerFnError> {
    Ok(backend()?.kill_task(task_id).await)
}

#[server]
pub async fn list_deployments() -> Result<Vec<DeploymentView>, ServerFnError> {
    Ok(backend()?.deployments())
}

/// Rolls a deployment back: a new deployment restores what it changed.
#[server]
pub async fn rollback_deployment(id: String) -> Result<Outcome, ServerFnError> {
    Ok(backend()?.stop_deployment(id, false).await)
}

/// Cancels a deployment, leaving everything as it is.
#[server]
pub async fn cancel_deployment(id: String) -> Result<Outcome, ServerFnError> {
    Ok(backend()?.stop_deployment(id, true).await)
}

/// Launches of the app wait no longer for their backoff.
#[server]
pub async fn reset_delay(app_id: String) -> Result<Outcome, ServerFnError> {
    Ok(backend()?.reset_delay(app_id).await)
}

#[server]
pub async fn list_agents() -> Result<AgentsView, ServerFnError> {
    Ok(backend()?.agents().await)
}

#[server]
pub async fn set_agent_reachable(
    hostname: String,
    reachable: bool,
) -> Result<Outcome, ServerFnError> {
    Ok(backend()?.set_agent_reachable(hostname, reachable).await)
}

#[server]
pub async fn task_output(
    task_id: String,
    stream: String,
) -> Result<Result<TaskLog, ServiceError>, ServerFnError> {
    Ok(backend()?.task_log(task_id, stream).await)
}
