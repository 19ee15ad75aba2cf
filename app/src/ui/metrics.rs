//! The Metrics page: sparklines of the last minutes (launches, status updates, API latency),
//! and how events reach their readers: the callback subscribers with their backlog and
//! failures, the open event streams and the ring that lets readers catch up. It refreshes at
//! the server's sampling interval while it is open; the full set is at `/metrics`.

use super::format;
use super::widgets::Age;
use crate::api::metrics_overview;
use crate::model::{EventSubscriber, MetricSample, MetricsView};
use leptos::prelude::*;
use leptos_meta::Title;
use std::time::Duration;

/// A sparkline's drawing: its polyline's points in a 100×32 box, highest value at the top.
pub fn sparkline_points(values: &[f64]) -> String {
    let max = values.iter().copied().fold(0.0_f64, f64::max);
    let step = if values.len() > 1 {
        100.0 / (values.len() - 1) as f64
    } else {
        0.0
    };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let y = if max > 0.0 {
                30.0 - v / max * 28.0
            } else {
                30.0
            };
            format!("{:.1},{:.1}", i as f64 * step, y)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A figure as the card shows it: whole numbers as they are, others with one decimal.
fn figure(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

#[component]
fn Sparkline(
    title: &'static str,
    /// What the latest figure is in ("per 5 s", "ms").
    unit: String,
    values: Vec<f64>,
    /// Seconds between two values.
    interval: u32,
    testid: &'static str,
) -> impl IntoView {
    let span = format::duration_words(values.len() as u64 * u64::from(interval));
    let latest = values.last().copied().unwrap_or_default();
    let peak = values.iter().copied().fold(0.0_f64, f64::max);
    let points = sparkline_points(&values);
    let empty = values.len() < 2;
    view! {
        <section class="metric-card" data-testid=testid>
            <h2>{title}</h2>
            <p class="metric-figure">
                <span class="num">{figure(latest)}</span>
                " "
                <span class="muted">{unit}</span>
            </p>
            {if empty {
                view! { <p class="hint">"Collecting: a point every few seconds."</p> }.into_any()
            } else {
                view! {
                    <svg class="sparkline" viewBox="0 0 100 32" preserveAspectRatio="none" role="img" aria-label=format!("{title}, peak {}", figure(peak))>
                        <polyline points=points fill="none" vector-effect="non-scaling-stroke"/>
                    </svg>
                }
                    .into_any()
            }}
            <p class="hint">"peak " {figure(peak)} " in the last " {span}</p>
        </section>
    }
    .into_any()
}

fn series(samples: &[MetricSample], value: impl Fn(&MetricSample) -> f64) -> Vec<f64> {
    samples.iter().map(value).collect()
}

#[component]
pub fn MetricsPage() -> impl IntoView {
    let tick = RwSignal::new(0u64);
    let view_data = Resource::new(move || tick.get(), |_| metrics_overview());
    // Refreshed at the server's sampling interval, only while the page is open.
    Effect::new(move |_| {
        let interval = view_data
            .get_untracked()
            .and_then(Result::ok)
            .map_or(5, |v| v.interval_secs.max(1));
        if let Ok(handle) = set_interval_with_handle(
            move || tick.update(|t| *t += 1),
            Duration::from_secs(interval.into()),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    view! {
        <Title text="Metrics"/>
        <div class="page-head">
            <h1>"Metrics"</h1>
            <p class="muted">
                "All of them: " <a href="/metrics">"/metrics"</a> " (JSON) · "
                <a href="/metrics/prometheus">"/metrics/prometheus"</a>
            </p>
        </div>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                view_data
                    .get()
                    .map(|answer| match answer {
                        Err(error) => {
                            view! {
                                <p class="error-note" role="alert">
                                    "The metrics could not be loaded: " {error.to_string()}
                                </p>
                            }
                                .into_any()
                        }
                        Ok(data) => view! { <Overview data/> }.into_any(),
                    })
            }}
        </Transition>
    }
    .into_any()
}

#[component]
fn Overview(data: MetricsView) -> impl IntoView {
    let per = format!("per {} s", data.interval_secs);
    let samples = &data.samples;
    view! {
        <div class="metric-cards">
            <Sparkline title="Launches" unit=per.clone() values=series(samples, |s| s.launches as f64) interval=data.interval_secs testid="spark-launches"/>
            <Sparkline title="Status updates" unit=per values=series(samples, |s| s.status_updates as f64) interval=data.interval_secs testid="spark-updates"/>
            <Sparkline title="API latency, mean" unit="ms".into() values=series(samples, |s| s.latency_mean_ms) interval=data.interval_secs testid="spark-latency"/>
        </div>
        <section class="panel wide" data-testid="event-delivery">
            <h2>"Event delivery"</h2>
            <p class="muted">
                <span class="num">{data.event_streams}</span>
                " open event streams · the newest "
                <span class="num">{data.ring_size}</span>
                " events are kept for readers that fall behind or reconnect (newest is number "
                <span class="num">{data.newest_event}</span>
                ")"
            </p>
            <Subscribers subscribers=data.subscribers/>
        </section>
    }
    .into_any()
}

#[component]
fn Subscribers(subscribers: Option<Vec<EventSubscriber>>) -> impl IntoView {
    match subscribers {
        None => view! {
            <p class="hint">"HTTP callbacks are turned off (--disable-event-callbacks)."</p>
        }
            .into_any(),
        Some(list) if list.is_empty() => view! {
            <p class="hint" data-testid="no-subscribers">
                "No callback subscribers. Subscribe with "
                <code>"POST /v2/eventSubscriptions?callbackUrl=…"</code>
                "; each is sent every event, in order, and shows up here with its backlog."
            </p>
        }
            .into_any(),
        Some(list) => view! {
            <table class="table" data-testid="subscribers">
                <thead>
                    <tr>
                        <th>"Callback URL"</th>
                        <th>"State"</th>
                        <th class="num">"Backlog"</th>
                        <th class="num">"Sent up to"</th>
                    </tr>
                </thead>
                <tbody>
                    {list.into_iter().map(|s| view! { <SubscriberRow subscriber=s/> }).collect_view()}
                </tbody>
            </table>
        }
            .into_any(),
    }
}

#[component]
fn SubscriberRow(subscriber: EventSubscriber) -> impl IntoView {
    let state = match (subscriber.failing_since, subscriber.drops_at) {
        (Some(since), drops_at) => view! {
            <span class="chip bad">"Failing"</span>
            " since " <Age at=since/>
            {drops_at
                .map(|at| {
                    view! {
                        ", dropped at "
                        <time datetime=at.to_string() title=format::exact(at)>{format::short_time(at)}</time>
                        " unless it recovers"
                    }
                })}
            {subscriber.last_error.map(|e| view! { <div class="hint">{e}</div> })}
        }
            .into_any(),
        (None, _) => view! { <span class="chip good">"Delivering"</span> }.into_any(),
    };
    let url = subscriber.callback_url;
    let data_url = url.clone();
    view! {
        <tr data-url=data_url>
            <td>
                <code>{url}</code>
                {subscriber.batch.then(|| view! { <span class="hint">" batches"</span> })}
            </td>
            <td>{state}</td>
            <td class="num">{subscriber.backlog}</td>
            <td class="num">{subscriber.delivered}</td>
        </tr>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_to_the_peak() {
        assert_eq!(
            sparkline_points(&[0.0, 5.0, 10.0]),
            "0.0,30.0 50.0,16.0 100.0,2.0"
        );
        assert_eq!(sparkline_points(&[0.0, 0.0]), "0.0,30.0 100.0,30.0");
        assert_eq!(figure(3.0), "3");
        assert_eq!(figure(2.25), "2.2");
    }
}
