//! The Events page: the event bus as it happens, newest first. It starts from the server's recent
//! events and grows with the page's live stream; chips filter by event type, and each row opens to
//! its JSON.

use super::format::{app_href, task_tone, Tone};
use super::live::{use_live, EVENT_BUFFER};
use crate::api::recent_events;
use crate::model::EventRecord;
use leptos::prelude::*;
use leptos_meta::Title;
use serde_json::Value;
use std::collections::BTreeSet;

/// How many events the page asks the server for on load.
const INITIAL_EVENTS: usize = 200;

fn event_tone(event_type: &str, json: &Value) -> Tone {
    match event_type {
        "deployment_failed" => Tone::Bad,
        "deployment_success" => Tone::Good,
        "status_update_event" => {
            serde_json::from_value(json["taskStatus"].clone()).map_or(Tone::Quiet, task_tone)
        }
        "deployment_info" | "deployment_step_success" => Tone::Busy,
        "deployment_step_failure"
        | "group_change_failed"
        | "failed_health_check_event"
        | "unhealthy_instance_kill_event" => Tone::Bad,
        _ => Tone::Quiet,
    }
}

/// The one line that says what happened, without opening the JSON.
fn gist(event_type: &str, json: &Value) -> String {
    let text = |key: &str| json[key].as_str().unwrap_or_default();
    match event_type {
        "status_update_event" => format!("{} {}", text("taskStatus"), text("taskId")),
        "instance_changed_event" => format!("{} {}", text("condition"), text("instanceId")),
        "deployment_info" | "deployment_step_success" | "deployment_success" => {
            format!(
                "deployment {}",
                json["plan"]["id"].as_str().unwrap_or_default()
            )
        }
        "deployment_failed" => format!(
            "deployment {} {}",
            json["plan"]["id"].as_str().unwrap_or_default(),
            text("reason")
        ),
        "api_post_event" => text("uri").to_string(),
        "group_change_success" => format!("group {}", text("groupId")),
        _ => String::new(),
    }
}

#[component]
pub fn EventsPage() -> impl IntoView {
    let initial = Resource::new(|| (), |_| recent_events(INITIAL_EVENTS));
    view! {
        <Title text="Events"/>
        <Transition fallback=|| view! { <p class="muted">"Loading events…"</p> }>
            {move || {
                initial
                    .get()
                    .and_then(Result::err)
                    .map(|error| {
                        view! {
                            <p class="error-note" role="alert">
                                "Recent events could not be loaded: " {error.to_string()}
                            </p>
                        }
                    })
            }}
            <EventList loaded=Signal::derive(move || initial.get().and_then(Result::ok).unwrap_or_default())/>
        </Transition>
    }
    .into_any()
}

#[component]
fn EventList(loaded: Signal<Vec<EventRecord>>) -> impl IntoView {
    let live = use_live().events();
    let events = Memo::new(move |_| {
        let mut events: Vec<EventRecord> = live.with(|live| live.iter().cloned().collect());
        events.extend(loaded.get());
        events.sort_by_key(|event| std::cmp::Reverse(event.seq));
        events.dedup_by(|a, b| a.seq != 0 && a.seq == b.seq);
        events.truncate(EVENT_BUFFER);
        events
    });
    // Event types to show; empty shows all.
    let chosen = RwSignal::new(BTreeSet::<String>::new());
    let types = Memo::new(move |_| {
        events.with(|events| {
            events
                .iter()
                .map(|e| e.event_type.clone())
                .collect::<BTreeSet<_>>()
        })
    });
    let visible = Memo::new(move |_| {
        chosen.with(|chosen| {
            events.with(|events| {
                events
                    .iter()
                    .filter(|e| chosen.is_empty() || chosen.contains(&e.event_type))
                    .cloned()
                    .collect::<Vec<_>>()
            })
        })
    });
    // The newest event already on screen: rows above it arrived live and get the highlight.
    let newest_shown = StoredValue::new(None::<u64>);
    Effect::new(move |_| {
        let newest = events.with(|events| events.first().map(|e| e.seq).unwrap_or_default());
        newest_shown.update_value(|shown| *shown = Some(shown.unwrap_or_default().max(newest)));
    });

    let chip = move |event_type: Option<String>| {
        let pressed = {
            let event_type = event_type.clone();
            move || match &event_type {
                None => chosen.with(BTreeSet::is_empty),
                Some(t) => chosen.with(|chosen| chosen.contains(t)),
            }
        };
        let label = event_type.clone().unwrap_or_else(|| "all".to_string());
        view! {
            <button
                class="filter-chip"
                aria-pressed=move || pressed().to_string()
                on:click=move |_| match &event_type {
                    None => chosen.set(BTreeSet::new()),
                    Some(t) => {
                        chosen
                            .update(|chosen| {
                                if !chosen.remove(t) {
                                    chosen.insert(t.clone());
                                }
                            })
                    }
                }
            >
                {label}
            </button>
        }
    };

    view! {
        <div class="page-head">
            <h1>"Events"</h1>
            <span class="muted num">{move || format!("{} shown", visible.with(Vec::len))}</span>
        </div>
        <div class="filter-chips" role="group" aria-label="Event types">
            {chip(None)}
            {move || types.get().into_iter().map(|t| chip(Some(t))).collect_view()}
        </div>
        <Show
            when=move || !visible.with(Vec::is_empty)
            fallback=|| view! { <p class="muted">"No events yet. Changes to apps and tasks appear here as they happen."</p> }
        >
            <ol class="events">
                <For
                    each=move || visible.get()
                    key=|event| (event.seq, event.event_type.clone(), event.timestamp.clone())
                    children=move |event| {
                        let arrived = newest_shown.get_value().is_some_and(|shown| event.seq > shown);
                        view! { <EventRow event arrived/> }
                    }
                />
            </ol>
        </Show>
    }
    .into_any()
}

#[component]
fn EventRow(event: EventRecord, arrived: bool) -> impl IntoView {
    let json: Value = serde_json::from_str(&event.json).unwrap_or(Value::Null);
    let pretty = serde_json::to_string_pretty(&json).unwrap_or_else(|_| event.json.clone());
    let tone = event_tone(&event.event_type, &json);
    let line = gist(&event.event_type, &json);
    let time = event
        .timestamp
        .get(11..19)
        .unwrap_or(&event.timestamp)
        .to_string();
    view! {
        <li class:changed=arrived data-testid="event-row" data-event-type=event.event_type.clone()>
            <details>
                <summary>
                    <span class="num dim">"#" {event.seq}</span>
                    <time class="num" datetime=event.timestamp.clone() title=event.timestamp.clone()>
                        {time}
                    </time>
                    <span class=format!("chip {}", tone.class())>{event.event_type.clone()}</span>
                    <span class="event-app">
                        {event.app_id.map(|id| view! { <a href=app_href(&id)>{id.clone()}</a> })}
                    </span>
                    <span class="gist">{line}</span>
                </summary>
                <pre class="code">{pretty}</pre>
            </details>
        </li>
    }
    .into_any()
}
