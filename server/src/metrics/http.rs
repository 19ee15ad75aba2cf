//! Measuring HTTP requests: Marathon's totals (`http.requests.duration`, by method, responses
//! by status class, sizes, requests in flight) and Stride's by route and status
//! (`http.routes.v2-apps-path.duration`, `http.routes.v2-apps-path.responses.404`).
//!
//! [`track`] wraps the whole router; [`tag_route`] runs inside the routing, where the
//! matched route is known, and hands it out on the response.

use super::{component, registry, Counter, Gauge, Meter, Name, Timer, Unit};
use axum::body::HttpBody as _;
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

/// The route a response answered, as a name component.
#[derive(Clone, Debug)]
struct Route(String);

/// The fixed HTTP metrics, looked up once.
struct Totals {
    active: Arc<Gauge>,
    request_bytes: Arc<Counter>,
    response_bytes: Arc<Counter>,
    duration: Arc<Timer>,
    /// By status class, 1xx to 5xx.
    classes: [Arc<Meter>; 5],
}

static TOTALS: LazyLock<Totals> = LazyLock::new(|| {
    let r = registry();
    Totals {
        active: r.gauge(Name::new("http.requests.active")),
        request_bytes: r.counter(Name::in_unit("http.requests.size", Unit::Bytes)),
        response_bytes: r.counter(Name::in_unit("http.responses.size", Unit::Bytes)),
        duration: r.timer(Name::in_unit("http.requests.duration", Unit::Seconds)),
        classes: [1, 2, 3, 4, 5].map(|c| r.meter(Name::new(format!("http.responses.{c}xx.rate")))),
    }
});

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

pub async fn track(request: Request, next: Next) -> Response {
    let totals = &*TOTALS;
    let started = Instant::now();
    let method = request.method().clone();
    if let Some(size) = content_length(request.headers()) {
        totals.request_bytes.add(size);
    }
    let response = {
        let _active = totals.active.track();
        next.run(request).await
    };
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    totals.duration.record(elapsed);
    if let Some(meter) = totals.classes.get((status / 100) as usize - 1) {
        meter.mark(1);
    }
    if let Some(size) = content_length(response.headers()).or(response.body().size_hint().exact()) {
        totals.response_bytes.add(size);
    }
    if matches!(
        method,
        Method::GET | Method::POST | Method::PUT | Method::DELETE | Method::PATCH
    ) {
        registry()
            .timer(Name::in_unit(
                format!(
                    "http.requests.{}.duration",
                    method.as_str().to_ascii_lowercase()
                ),
                Unit::Seconds,
            ))
            .record(elapsed);
    }
    if let Some(Route(route)) = response.extensions().get::<Route>() {
        let r = registry();
        r.timer(Name::in_unit(
            format!("http.routes.{route}.duration"),
            Unit::Seconds,
        ))
        .record(elapsed);
        r.counter(Name::new(format!("http.routes.{route}.responses.{status}")))
            .inc();
    }
    response
}

/// Puts the matched route on the response, for [`track`].
pub async fn tag_route(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if let Some(matched) = matched {
        response
            .extensions_mut()
            .insert(Route(component(matched.as_str())));
    }
    response
}
