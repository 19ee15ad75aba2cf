//! The Deployments page: apps on their way to a new target (deploying), and apps that cannot get
//! there yet (waiting for resources, or delayed after failures) with the scheduler's reasons.

use super::format::app_href;
use super::live::use_live;
use super::widgets::{Age, Instances, StatusChip};
use crate::api::list_apps;
use crate::model::{AppStatus, AppSummary};
use leptos::prelude::*;
use leptos_meta::Title;

fn in_flight(app: &AppSummary) -> bool {
    matches!(
        app.status,
        AppStatus::Deploying | AppStatus::Waiting | AppStatus::Delayed
    )
}

#[component]
pub fn DeploymentsPage() -> impl IntoView {
    let revision = use_live().revision();
    let apps = Resource::new(move || revision.get(), |_| list_apps());
    let moving = move || {
        apps.get()
            .map(|answer| answer.map(|apps| apps.into_iter().filter(in_flight).collect::<Vec<_>>()))
    };
    view! {
        <Title text="Deployments"/>
        <div class="page-head">
            <h1>"Deployments"</h1>
        </div>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                moving()
                    .map(|answer| match answer {
                        Err(error) => {
                            view! {
                                <p class="error-note" role="alert">
                                    "The apps could not be loaded: " {error.to_string()}
                                </p>
                            }
                                .into_any()
                        }
                        Ok(apps) if apps.is_empty() => {
                            view! {
                                <section class="panel empty">
                                    <h2>"Nothing is deploying"</h2>
                                    <p>"Apps show up here while they scale, restart or roll out a new version, and while they wait for resources."</p>
                                </section>
                            }
                                .into_any()
                        }
                        Ok(apps) => view! { <DeploymentsTable apps/> }.into_any(),
                    })
            }}
        </Transition>
    }
    .into_any()
}

#[component]
fn DeploymentsTable(apps: Vec<AppSummary>) -> impl IntoView {
    let rows = apps
        .into_iter()
        .map(|app| {
            view! {
                <tr data-testid="deployment-row" data-app-id=app.id.clone()>
                    <td class="app-id">
                        <a href=app_href(&app.id)>{app.id.clone()}</a>
                    </td>
                    <td>
                        <StatusChip status=app.status/>
                    </td>
                    <td class="num">
                <Instances running=app.running staged=app.staged target=app.instances/>
            </td>
                    <td>
                        <Age at=app.version/>
                    </td>
                    <td class="reasons">
                        {app.waiting_reasons.into_iter().map(|reason| view! { <div>{reason}</div> }).collect_view()}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="table">
            <thead>
                <tr>
                    <th scope="col">"App"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col" class="num">"Instances"</th>
                    <th scope="col">"Version"</th>
                    <th scope="col">"Why it waits"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
