//! The top bar: how the cluster is doing, which master Stride talks to, and whether the page
//! is receiving live events.

use super::format;
use super::live::{use_live, Link};
use super::widgets::Meter;
use crate::api::cluster_overview;
use crate::model::ClusterSummary;
use leptos::prelude::*;

#[component]
pub fn TopBar() -> impl IntoView {
    let revision = use_live().revision();
    let cluster = Resource::new(move || revision.get(), |_| cluster_overview());
    view! {
        <header class="topbar">
            <Transition>
                {move || {
                    cluster
                        .get()
                        .map(|answer| match answer {
                            Ok(summary) => view! { <ClusterFigures summary/> }.into_any(),
                            Err(error) => {
                                view! {
                                    <p class="error-note">
                                        "The cluster summary is unavailable: " {error.to_string()}
                                    </p>
                                }
                                    .into_any()
                            }
                        })
                }}
            </Transition>
            <LiveIndicator/>
        </header>
    }
    .into_any()
}

#[component]
fn ClusterFigures(summary: ClusterSummary) -> impl IntoView {
    let master_state = if summary.connected {
        "connected"
    } else {
        "not connected"
    };
    view! {
        <dl class="figures">
            <div class="figure">
                <dt>"Apps"</dt>
                <dd>
                    <span class="num">{summary.apps_running} "/" {summary.apps_total}</span>
                    " running"
                </dd>
            </div>
            <div class="figure">
                <dt>"Tasks"</dt>
                <dd>
                    <span class="num">{summary.tasks_running}</span>
                    " running"
                </dd>
            </div>
            <div class="figure">
                <dt>"CPU"</dt>
                <dd>
                    <Meter used=summary.cpus_used total=summary.cpus_total label="CPU allocated"/>
                    <span class="num">
                        {format::cpus(summary.cpus_used)} " / " {format::cpus(summary.cpus_total)}
                    </span>
                </dd>
            </div>
            <div class="figure">
                <dt>"Memory"</dt>
                <dd>
                    <Meter used=summary.mem_used total=summary.mem_total label="Memory allocated"/>
                    <span class="num">
                        {format::mem(summary.mem_used)} " / " {format::mem(summary.mem_total)}
                    </span>
                </dd>
            </div>
            <div class="figure">
                <dt>"Master"</dt>
                <dd class:bad=!summary.connected title=format!("Mesos master {}: {master_state}", summary.master)>
                    {summary.master.clone()}
                    {(!summary.connected).then_some(" (not connected)")}
                </dd>
            </div>
            {summary
                .leader
                .map(|leader| {
                    view! {
                        <div class="figure" data-testid="leader">
                            <dt>"Leader"</dt>
                            <dd title="The Stride that leads; the others pass every request on to it">
                                {leader}
                            </dd>
                        </div>
                    }
                })}
        </dl>
    }
    .into_any()
}

#[component]
fn LiveIndicator() -> impl IntoView {
    let link = use_live().link;
    view! {
        <span
            class="live"
            class:connected=move || link.get() == Link::Connected
            data-testid="live-indicator"
            data-live=move || link.get().attr()
            title="Live updates from the event stream"
        >
            <span class="live-dot" aria-hidden="true"></span>
            {move || link.get().label()}
        </span>
    }
    .into_any()
}
