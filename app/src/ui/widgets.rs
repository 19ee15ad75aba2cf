//! Small building blocks shared by the pages: chips, bars, relative times, error notes, the
//! modal dialog and the row-change marker.

use super::format::{self, outcome_problem, Problem, Tone};
use super::live::use_live;
use crate::api::Outcome;
use crate::model::{AppStatus, TaskState, Timestamp};
use leptos::{ev, prelude::*};
use std::collections::HashMap;

/// A server call that changes something and answers with a deployment or a refusal.
pub type Mutation<I> = Action<I, Result<Outcome, ServerFnError>>;

/// The problem of a mutation's last answer, while it is not running again.
pub fn mutation_problem<I: Send + Sync + 'static>(action: Mutation<I>) -> Signal<Option<Problem>> {
    let pending = action.pending();
    Signal::derive(move || {
        if pending.get() {
            None
        } else {
            action
                .value()
                .with(|answer| answer.as_ref().and_then(outcome_problem))
        }
    })
}

/// Whether a mutation's last answer was a success; for effects that follow up on it.
pub fn succeeded<I: Send + Sync + 'static>(action: Mutation<I>) -> bool {
    action
        .value()
        .with(|answer| matches!(answer, Some(Ok(Ok(_)))))
}

#[component]
pub fn StatusChip(status: AppStatus) -> impl IntoView {
    view! {
        <span class=format!("chip {}", format::status_tone(status).class())>{status.label()}</span>
    }
    .into_any()
}

#[component]
pub fn TaskStateChip(state: TaskState) -> impl IntoView {
    view! {
        <span class=format!("chip {}", format::task_tone(state).class()) title=state.name()>
            {format::task_state_label(state)}
        </span>
    }
    .into_any()
}

/// A thin horizontal bar: how much of something is used.
#[component]
pub fn Meter(used: f64, total: f64, #[prop(into)] label: String) -> impl IntoView {
    view! {
        <span class="meter" role="meter" aria-label=label aria-valuenow=used.to_string() aria-valuemin="0" aria-valuemax=total.to_string()>
            <span class="meter-fill" style=format!("width:{:.1}%", format::percent(used, total))></span>
        </span>
    }
    .into_any()
}

/// `running/target` with a small bar: for an app with health checks, healthy, unhealthy and
/// not yet known running instances; staged ones after them.
#[component]
pub fn Instances(
    running: u32,
    staged: u32,
    target: i64,
    /// (healthy, unhealthy) among the running, when the app has health checks.
    healthy: Option<(u32, u32)>,
) -> impl IntoView {
    let whole = (target.max(0) as f64).max(f64::from(running + staged));
    let segment = |count: u32, tone: &'static str| {
        (count > 0).then(|| {
            view! {
                <span
                    class=format!("bar-segment {tone}")
                    style=format!("width:{:.1}%", format::percent(f64::from(count), whole))
                ></span>
            }
        })
    };
    let (good, bad, unknown) = match healthy {
        Some((good, bad)) => (good, bad, running.saturating_sub(good + bad)),
        None => (running, 0, 0),
    };
    let title = match healthy {
        Some(_) => format!(
            "{running} running ({good} healthy, {bad} unhealthy, {unknown} not checked yet), {staged} staged, {target} wanted"
        ),
        None => format!("{running} running, {staged} staged, {target} wanted"),
    };
    view! {
        <span class="instances" title=title>
            <span>{running} "/" {target}</span>
            <span class="instance-bar" aria-hidden="true">
                {segment(good, Tone::Good.class())}
                {segment(bad, Tone::Bad.class())}
                {segment(unknown, "unknown")}
                {segment(staged, Tone::Busy.class())}
            </span>
        </span>
    }
    .into_any()
}

/// A time shown relative to now, with the exact time on hover.
#[component]
pub fn Age(at: Timestamp) -> impl IntoView {
    let live = use_live();
    view! {
        <time datetime=at.to_string() title=format::exact(at)>
            {move || format::ago(at.millis(), live.now())}
        </time>
    }
    .into_any()
}

/// The error of the last attempt of an action, next to its button; nothing while there is none.
#[component]
pub fn ErrorNote(#[prop(into)] problem: Signal<Option<Problem>>) -> impl IntoView {
    move || {
        problem.get().map(|problem| {
            view! { <p class="error-note" role="alert">{problem.message}</p> }
        })
    }
}

/// A dialog over the page. `Esc` closes it, as does the caller's cancel button.
#[component]
pub fn Modal(
    #[prop(into)] title: String,
    on_close: Callback<()>,
    children: Children,
) -> impl IntoView {
    let closes_on_escape = window_event_listener(ev::keydown, move |event| {
        if event.key() == "Escape" {
            on_close.run(());
        }
    });
    on_cleanup(move || closes_on_escape.remove());
    let heading = title.clone();
    view! {
        <div class="backdrop">
            <div class="dialog" role="dialog" aria-modal="true" aria-label=title>
                <h2>{heading}</h2>
                {children()}
            </div>
        </div>
    }
    .into_any()
}

/// Remembers what each row of a live table looked like, so that a row re-created because its
/// content changed can be marked for a brief highlight, while rows appearing on first render or
/// on navigation stay calm.
#[derive(Clone, Copy)]
pub struct RowChanges(StoredValue<HashMap<String, String>>);

impl RowChanges {
    pub fn new() -> RowChanges {
        RowChanges(StoredValue::new(HashMap::new()))
    }

    /// Records `fingerprint` for row `id` and tells whether the row was there before, different.
    pub fn changed(self, id: &str, fingerprint: &str) -> bool {
        self.0
            .try_update_value(|seen| {
                seen.insert(id.to_string(), fingerprint.to_string())
                    .is_some_and(|before| before != fingerprint)
            })
            .unwrap_or(false)
    }

    /// The row's class: `changed` starts the highlight animation.
    pub fn class(self, id: &str, fingerprint: &str) -> &'static str {
        if self.changed(id, fingerprint) {
            "changed"
        } else {
            ""
        }
    }
}
