//! The HTTP side: the leader's router (the API and the dashboard), and the one the listener
//! serves, which hands each request to the leader's router while this Stride leads and to the
//! [`Proxy`] while it stands by.

use super::proxy::Proxy;
use crate::{api, metrics, service};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tower::ServiceExt;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// Marathon's header naming the leader, on every response.
pub const LEADER_HEADER: &str = "x-marathon-leader";

/// How long a request waits for a leader to be known before it is answered without one
/// (Marathon waits 10 × 250 ms): a failover after a crash takes less.
const LEADER_WAIT: Duration = Duration::from_secs(3);

/// What the listener serves now.
#[derive(Clone)]
pub enum Current {
    /// This Stride leads: the leader's router.
    Leading(Router),
    /// Another leads (its `host:port`), or none is known yet.
    Standby { leader: Option<String> },
}

#[derive(Clone, axum::extract::FromRef)]
struct AppState {
    leptos_options: LeptosOptions,
    service: service::Service,
}

/// The state the listener's router dispatches on.
#[derive(Clone)]
struct Switch {
    current: watch::Receiver<Current>,
    proxy: Arc<Proxy>,
    /// This Stride's `host:port`.
    address: String,
}

/// Where the built dashboard (`pkg/stride.js`, `.wasm`, `.css`) is: `STRIDE_SITE_ROOT`, else
/// `site` beside the binary's directory (`target/site` for `target/debug/stride`).
pub fn site_root() -> PathBuf {
    if let Ok(root) = std::env::var("STRIDE_SITE_ROOT") {
        return PathBuf::from(root);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(|p| p.join("site")))
        .unwrap_or_else(|| PathBuf::from("target/site"))
}

/// The router the listener serves: the dashboard's files, `/ping` and the built-in master's
/// endpoints (`local`) from this process whatever its role, everything else from the leader
/// (this Stride's router, or proxied).
pub fn listener_router(
    current: watch::Receiver<Current>,
    proxy: Proxy,
    address: String,
    local: Router,
) -> Router {
    let no_cache = |name: &'static str, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    };
    let switch = Switch {
        current,
        proxy: Arc::new(proxy),
        address,
    };
    Router::new()
        .nest_service("/pkg", ServeDir::new(site_root().join("pkg")))
        .route("/ping", get(api::system::ping))
        .fallback(dispatch)
        .layer(axum::middleware::from_fn_with_state(
            switch.clone(),
            name_the_leader,
        ))
        .with_state(switch)
        .merge(local)
        .layer(no_cache(
            "cache-control",
            "no-cache, no-store, must-revalidate",
        ))
        .layer(no_cache("pragma", "no-cache"))
        .layer(no_cache("expires", "0"))
        .layer(axum::middleware::from_fn(metrics::http::track))
        .layer(SetResponseHeaderLayer::overriding(
            axum::http::header::SERVER,
            HeaderValue::from_str(&api::system::stride_version())
                .unwrap_or_else(|_| HeaderValue::from_static("stride")),
        ))
}

/// What to do with a request now: wait (up to `until`) for a leader to be known, then hand
/// it to this Stride's router or the leader's address.
async fn current_leader(
    switch: &Switch,
    until: tokio::time::Instant,
    mut known: impl FnMut(&Current) -> bool,
) -> Current {
    let mut current = switch.current.clone();
    let waited = tokio::time::timeout_at(until, async {
        current.wait_for(|c| known(c)).await.map(|now| now.clone())
    })
    .await;
    match waited {
        Ok(Ok(now)) => now,
        _ => switch.current.borrow().clone(),
    }
}

fn is_known(current: &Current) -> bool {
    !matches!(current, Current::Standby { leader: None })
}

/// Serves a request as the leader, or passes it on to the leader. During a failover it waits
/// for the next leader (up to [`LEADER_WAIT`]): a request the old leader refused never reached
/// it and is sent to the next one.
async fn dispatch(State(switch): State<Switch>, request: Request) -> Response {
    let until = tokio::time::Instant::now() + LEADER_WAIT;
    if let Current::Leading(router) = current_leader(&switch, until, is_known).await {
        return serve(router, request).await;
    }
    let (parts, body) = request.into_parts();
    if switch.proxy.is_loop(&parts) {
        return super::proxy::proxy_loop();
    }
    let body = match super::proxy::read_body(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let mut refused_by: Option<String> = None;
    loop {
        let next = current_leader(&switch, until, |c| match c {
            Current::Leading(_) => true,
            Current::Standby { leader: Some(l) } => refused_by.as_deref() != Some(l),
            Current::Standby { leader: None } => false,
        })
        .await;
        match next {
            Current::Leading(router) => {
                return serve(router, super::proxy::rebuild(&parts, body)).await
            }
            Current::Standby {
                leader: Some(leader),
            } if refused_by.as_deref() != Some(&leader) => {
                match switch.proxy.forward(&parts, body.clone(), &leader).await {
                    Ok(response) => return response,
                    Err(super::proxy::Refused) => refused_by = Some(leader),
                }
            }
            Current::Standby { leader: Some(_) } => return super::proxy::refused(),
            Current::Standby { leader: None } => return super::proxy::no_leader(parts.uri.path()),
        }
    }
}

async fn serve(router: Router, request: Request) -> Response {
    match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// Adds `X-Marathon-Leader: http://<leader>` to every response that has none (a proxied
/// response has the leader's own).
async fn name_the_leader(
    State(switch): State<Switch>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let leader = match &*switch.current.borrow() {
        Current::Leading(_) => Some(switch.address.clone()),
        Current::Standby { leader } => leader.clone(),
    };
    if let Some(value) = leader.and_then(|l| HeaderValue::from_str(&format!("http://{l}")).ok()) {
        response
            .headers_mut()
            .entry(HeaderName::from_static(LEADER_HEADER))
            .or_insert(value);
    }
    response
}

/// The leader's router: the REST API and the dashboard, on `service`.
pub fn leader_router(service: service::Service, http_address: std::net::SocketAddr) -> Router {
    let leptos_options = LeptosOptions::builder()
        .output_name("stride")
        .site_root(site_root().display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(http_address)
        .build();
    let state = AppState {
        leptos_options: leptos_options.clone(),
        service: service.clone(),
    };
    let backend: Arc<dyn app::api::Backend> = Arc::new(service.clone());
    let routes = generate_route_list(app::ui::App);
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
        .with_state(state)
        .merge(api)
        .fallback(api::not_found)
}
