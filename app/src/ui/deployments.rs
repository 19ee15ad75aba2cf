//! The Deployments page: every deployment in progress with each step's actions and how far its
//! apps are (new instances ready of wanted, old ones left), with Roll back and Cancel behind a
//! confirmation; below, the apps that wait for resources or are delayed, with the scheduler's
//! reasons. [`DeploymentCard`] is shared with the app page.

use super::format::{self, app_href};
use super::live::use_live;
use super::widgets::{
    mutation_problem, succeeded, Age, ErrorNote, Instances, Modal, Mutation, StatusChip,
};
use crate::api::{cancel_deployment, list_apps, list_deployments, rollback_deployment};
use crate::model::{ActionProgress, AppStatus, AppSummary, DeploymentView};
use leptos::prelude::*;
use leptos_meta::Title;

fn waiting(app: &AppSummary) -> bool {
    matches!(app.status, AppStatus::Waiting | AppStatus::Delayed)
}

#[component]
pub fn DeploymentsPage() -> impl IntoView {
    let revision = use_live().revision();
    let deployments = Resource::new(move || revision.get(), |_| list_deployments());
    let apps = Resource::new(move || revision.get(), |_| list_apps());
    view! {
        <Title text="Deployments"/>
        <div class="page-head">
            <h1>"Deployments"</h1>
        </div>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                deployments
                    .get()
                    .map(|answer| match answer {
                        Err(error) => {
                            view! {
                                <p class="error-note" role="alert">
                                    "The deployments could not be loaded: " {error.to_string()}
                                </p>
                            }
                                .into_any()
                        }
                        Ok(list) if list.is_empty() => {
                            view! {
                                <section class="panel empty" data-testid="no-deployments">
                                    <h2>"Nothing is deploying"</h2>
                                    <p>"Deployments show up here while apps scale, restart or roll out a new version."</p>
                                </section>
                            }
                                .into_any()
                        }
                        Ok(list) => {
                            view! {
                                <div class="deployment-list">
                                    {list
                                        .into_iter()
                                        .map(|deployment| view! { <DeploymentCard deployment/> })
                                        .collect_view()}
                                </div>
                            }
                                .into_any()
                        }
                    })
            }}
            {move || {
                apps.get()
                    .and_then(Result::ok)
                    .map(|apps| apps.into_iter().filter(waiting).collect::<Vec<_>>())
                    .filter(|apps| !apps.is_empty())
                    .map(|apps| view! { <WaitingTable apps/> })
            }}
        </Transition>
    }
    .into_any()
}

/// One deployment: its steps with their actions and progress, and what can be done about it.
#[component]
pub fn DeploymentCard(deployment: DeploymentView) -> impl IntoView {
    let info = deployment.info.clone();
    let steps = info
        .steps
        .iter()
        .enumerate()
        .map(|(n, step)| {
            let current = n + 1 == info.current_step as usize;
            let done = n + 1 < info.current_step as usize;
            let state = if current {
                "current"
            } else if done {
                "done"
            } else {
                "waiting"
            };
            let actions = step
                .actions
                .iter()
                .map(|action| {
                    let progress = deployment
                        .progress
                        .iter()
                        .find(|p| p.app == action.app && p.action == action.action)
                        .cloned();
                    view! { <ActionLine action=action.action.name() app=action.app.clone() progress/> }
                })
                .collect_view();
            view! {
                <li class=format!("step {state}") data-step-state=state>
                    <span class="step-number">{n + 1}</span>
                    <ul class="actions">{actions}</ul>
                </li>
            }
        })
        .collect_view();
    let short_id = info.id.chars().take(8).collect::<String>();
    view! {
        <article class="panel deployment-card" data-testid="deployment-card" data-deployment-id=info.id.clone()>
            <header class="deployment-head">
                <h2>
                    <code title=info.id.clone()>{short_id}</code>
                </h2>
                <span class="muted">"started " <Age at=info.version/></span>
                <span class="num muted">"step " {info.current_step} " of " {info.total_steps}</span>
                {deployment.deadline.map(|at| {
                    view! {
                        <span class="muted" title=format::exact(at)>
                            {if deployment.auto_rollback { "rolls back " } else { "fails " }}
                            <Age at/>
                            " if not done"
                        </span>
                    }
                })}
                <span class="spacer"></span>
                <StopButtons id=info.id.clone()/>
            </header>
            <ol class="steps">{steps}</ol>
        </article>
    }
    .into_any()
}

#[component]
fn ActionLine(
    action: &'static str,
    app: String,
    progress: Option<ActionProgress>,
) -> impl IntoView {
    let detail = progress.map(|p| {
        let new = format!("{} of {} new ready", p.new_ready, p.target.max(0));
        let old = (p.old_left > 0).then(|| format!(" · {} old left", p.old_left));
        view! {
            <Instances
                running=p.new_ready
                staged=p.new_total.saturating_sub(p.new_ready)
                target=p.target
                healthy=None
            />
            <span class="muted" data-testid="action-progress">{new}{old}</span>
        }
    });
    view! {
        <li class="action" data-testid="deployment-action" data-app-id=app.clone()>
            <span class="action-name">{action}</span>
            <a href=app_href(&app)>{app.clone()}</a>
            {detail}
        </li>
    }
    .into_any()
}

/// Roll back (a new deployment restoring what this one changed) and Cancel (stop it, keep
/// everything as it is), each confirmed first.
#[component]
fn StopButtons(id: String) -> impl IntoView {
    let asking = RwSignal::new(None::<bool>);
    let stop: Mutation<(String, bool)> = Action::new(|(id, force): &(String, bool)| {
        let (id, force) = (id.clone(), *force);
        async move {
            if force {
                cancel_deployment(id).await
            } else {
                rollback_deployment(id).await
            }
        }
    });
    let pending = stop.pending();
    Effect::new(move |_| {
        if succeeded(stop) {
            asking.set(None);
        }
    });
    let confirm_id = id.clone();
    view! {
        <button class="small" data-testid="rollback-button" disabled=move || pending.get() on:click=move |_| asking.set(Some(false))>
            "Roll back"
        </button>
        <button class="small" data-testid="cancel-button" disabled=move || pending.get() on:click=move |_| asking.set(Some(true))>
            "Cancel"
        </button>
        <ErrorNote problem=mutation_problem(stop)/>
        {move || {
            asking.get().map(|force| {
                let id = confirm_id.clone();
                let (title, text, button) = if force {
                    ("Cancel this deployment?", "Stride stops working on it. What it started keeps running and what it stopped stays stopped; the apps keep their new definitions.", "Cancel deployment")
                } else {
                    ("Roll back this deployment?", "A new deployment puts every app it changed back the way it was, replacing what this one started.", "Roll back")
                };
                view! {
                    <Modal title on_close=Callback::new(move |_| asking.set(None))>
                        <p>{text}</p>
                        <div class="form-actions">
                            <button
                                class="danger"
                                data-testid="confirm-stop"
                                disabled=move || pending.get()
                                on:click=move |_| {
                                    stop.dispatch((id.clone(), force));
                                }
                            >
                                {button}
                            </button>
                            <button on:click=move |_| asking.set(None)>"Keep it going"</button>
                        </div>
                    </Modal>
                }
            })
        }}
    }
    .into_any()
}

#[component]
fn WaitingTable(apps: Vec<AppSummary>) -> impl IntoView {
    let rows = apps
        .into_iter()
        .map(|app| {
            view! {
                <tr data-testid="waiting-row" data-app-id=app.id.clone()>
                    <td class="app-id">
                        <a href=app_href(&app.id)>{app.id.clone()}</a>
                    </td>
                    <td>
                        <StatusChip status=app.status/>
                    </td>
                    <td class="num">
                        <Instances running=app.running staged=app.staged target=app.instances healthy=None/>
                    </td>
                    <td class="reasons">
                        {app.waiting_reasons.into_iter().map(|reason| view! { <div>{reason}</div> }).collect_view()}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <h2 class="section-title">"Waiting for resources"</h2>
        <table class="table">
            <thead>
                <tr>
                    <th scope="col">"App"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col" class="num">"Instances"</th>
                    <th scope="col">"Why it waits"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
