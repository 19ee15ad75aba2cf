//! The App page (`/apps/<id>`): status, the instance stepper, Restart and Destroy; why the app
//! waits, when it does; tabs for its tasks (`tasks_tab`), configuration, deployments and task
//! logs, and a resident app's volumes (`volumes`).

use super::deployments::DeploymentCard;
use super::format::Problem;
use super::live::use_live;
use super::tasks_tab::TasksTab;
use super::volumes::VolumesTab;
use super::widgets::{
    mutation_problem, succeeded, ErrorNote, Instances, Meter, Modal, Mutation, StatusChip,
};
use crate::api::{destroy_app, get_app, reset_delay, restart_app, scale_app, task_output};
use crate::model::{path, ActionKind, AppDetail, AppStatus, ServiceError, TaskLog};
use leptos::{html, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};

type Detail = Resource<Result<Option<AppDetail>, ServerFnError>>;
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tab {
    Tasks,
    Configuration,
    Deployments,
    Logs,
    Volumes,
}

impl Tab {
    fn label(self) -> &'static str {
        match self {
            Tab::Tasks => "Tasks",
            Tab::Configuration => "Configuration",
            Tab::Deployments => "Deployments",
            Tab::Logs => "Logs",
            Tab::Volumes => "Volumes",
        }
    }
}

#[component]
pub fn AppPage() -> impl IntoView {
    let params = use_params_map();
    // The route's wildcard holds the id without its leading slash.
    let app_id =
        Memo::new(move |_| path::absolute(&params.read().get("id").unwrap_or_default(), "/"));
    let revision = use_live().app_revision(app_id);
    let detail: Detail = Resource::new(
        move || (app_id.get(), revision.get()),
        |(id, _)| get_app(id),
    );
    view! {
        <Title text=move || app_id.get()/>
        <Transition fallback=|| view! { <p class="muted">"Loading the app…"</p> }>
            <AppBody app_id detail/>
        </Transition>
    }
    .into_any()
}

/// Chooses between the app, its absence and a failed load.
#[component]
fn AppBody(app_id: Memo<String>, detail: Detail) -> impl IntoView {
    let current = Memo::new(move |_| detail.get().and_then(Result::ok).flatten());
    // The app view is built anew when another app is shown, and kept across refetches.
    let shown_id = Memo::new(move |_| current.with(|c| c.as_ref().map(|d| d.summary.id.clone())));
    view! {
        {move || {
            detail
                .get()
                .and_then(|answer| match answer {
                    Err(error) => {
                        Some(
                            view! {
                                <p class="error-note" role="alert">
                                    "The app could not be loaded: " {error.to_string()}
                                </p>
                            }
                                .into_any(),
                        )
                    }
                    Ok(None) => {
                        Some(
                            view! {
                                <section class="panel empty">
                                    <h1>"No app " <code>{app_id.get()}</code></h1>
                                    <p>"It may have been destroyed. " <a href="/">"Back to the apps"</a> "."</p>
                                </section>
                            }
                                .into_any(),
                        )
                    }
                    Ok(Some(_)) => None,
                })
        }}
        {move || {
            let id = shown_id.get()?;
            let initial = current.get_untracked()?;
            // `current` holds this app while the view exists; the fallbacks make the memo total.
            let app = Memo::new(move |previous: Option<&AppDetail>| {
                current.get().or_else(|| previous.cloned()).unwrap_or_else(|| initial.clone())
            });
            Some(view! { <AppView id app detail/> })
        }}
    }
    .into_any()
}

#[component]
fn AppView(id: String, app: Memo<AppDetail>, detail: Detail) -> impl IntoView {
    let tab = RwSignal::new(Tab::Tasks);
    let log_task = RwSignal::new(None::<String>);
    let open_logs = Callback::new(move |task: String| {
        log_task.set(Some(task));
        tab.set(Tab::Logs);
    });
    let refetch = Callback::new(move |_| detail.refetch());
    let status = Memo::new(move |_| app.with(|a| a.summary.status));
    let prefix = path::group_prefix(&id).to_string();
    let name = id[prefix.len()..].to_string();

    let tab_button = move |which: Tab| {
        let count = move || match which {
            Tab::Tasks => app.with(|a| Some(a.tasks.len())),
            Tab::Deployments => app.with(|a| Some(a.deployments.len())),
            Tab::Volumes => app.with(|a| Some(a.volumes.len())),
            Tab::Configuration | Tab::Logs => None,
        };
        view! {
            <button
                class="tab"
                role="tab"
                aria-selected=move || (tab.get() == which).to_string()
                on:click=move |_| tab.set(which)
            >
                {which.label()}
                {move || count().map(|n| view! { <span class="count">{n}</span> })}
            </button>
        }
    };

    view! {
        <div class="page-head app-head">
            <h1 class="app-id">
                <span class="dim">{prefix}</span>
                {name}
            </h1>
            <span data-testid="app-status" data-status=move || status.get().label()>
                {move || view! { <StatusChip status=status.get()/> }}
            </span>
            <span class="num" data-testid="app-instances">
                {move || {
                    app.with(|a| {
                        let s = &a.summary;
                        let healthy = s.has_health_checks.then_some((s.healthy, s.unhealthy));
                        view! { <Instances running=s.running staged=s.staged target=s.instances healthy/> }
                    })
                }}
            </span>
            <span class="spacer"></span>
            <Controls id=id.clone() app on_change=refetch/>
        </div>
        <WaitingBanner app on_change=refetch/>
        <UpgradePanel app/>
        <div class="tabs" role="tablist">
            {tab_button(Tab::Tasks)}
            {tab_button(Tab::Configuration)}
            {tab_button(Tab::Deployments)}
            {tab_button(Tab::Logs)}
            {move || app.with(|a| a.app.is_resident()).then(|| tab_button(Tab::Volumes))}
        </div>
        <section class="tab-panel" role="tabpanel">
            {move || match tab.get() {
                Tab::Tasks => view! { <TasksTab app on_open=open_logs on_change=refetch/> }.into_any(),
                Tab::Configuration => view! { <ConfigurationTab app/> }.into_any(),
                Tab::Deployments => view! { <DeploymentsTab app/> }.into_any(),
                Tab::Logs => view! { <LogsTab app task=log_task/> }.into_any(),
                Tab::Volumes => view! { <VolumesTab app/> }.into_any(),
            }}
        </section>
    }
    .into_any()
}

/// Why the app does not launch what it should: never a silent spinner. A delayed app can be
/// launched at once.
#[component]
fn WaitingBanner(app: Memo<AppDetail>, on_change: Callback<()>) -> impl IntoView {
    let reset: Mutation<String> = Action::new(|id: &String| reset_delay(id.clone()));
    let resetting = reset.pending();
    Effect::new(move |_| {
        if succeeded(reset) {
            on_change.run(());
        }
    });
    move || {
        app.with(|a| {
            let summary = &a.summary;
            (!summary.waiting_reasons.is_empty()).then(|| {
                let delayed = summary.status == AppStatus::Delayed;
                let headline = match summary.status {
                    AppStatus::Delayed => "Why launches are delayed",
                    AppStatus::Waiting => "Why it waits",
                    _ => "Why it is not launching",
                };
                let reasons = summary.waiting_reasons.clone();
                let id = summary.id.clone();
                view! {
                    <div class="banner busy" role="status" data-testid="waiting-banner">
                        <strong>{headline}</strong>
                        <ul>{reasons.into_iter().map(|reason| view! { <li>{reason}</li> }).collect_view()}</ul>
                        {delayed.then(|| view! {
                            <button
                                class="small"
                                data-testid="reset-delay"
                                title="Forget the failures' backoff and launch as soon as an offer fits"
                                disabled=move || resetting.get()
                                on:click=move |_| {
                                    reset.dispatch(id.clone());
                                }
                            >
                                {move || if resetting.get() { "Launching…" } else { "Launch now" }}
                            </button>
                            <ErrorNote problem=mutation_problem(reset)/>
                        })}
                    </div>
                }
            })
        })
    }
}

/// A rolling restart in progress: the new instances against the old ones, side by side.
#[component]
fn UpgradePanel(app: Memo<AppDetail>) -> impl IntoView {
    move || {
        app.with(|a| {
            let progress = a
                .deployments
                .iter()
                .flat_map(|d| d.progress.iter())
                .find(|p| p.current && p.app == a.summary.id && p.action == ActionKind::RestartApplication)?
                .clone();
            let target = progress.target.max(0) as f64;
            Some(view! {
                <section class="panel upgrade" data-testid="upgrade-panel">
                    <h2>"Upgrade in progress"</h2>
                    <div class="upgrade-sides">
                        <div>
                            <div class="muted">"New version"</div>
                            <div class="num big" data-testid="upgrade-new">{progress.new_ready} " of " {progress.target} " ready"</div>
                            <Meter used=f64::from(progress.new_ready) total=target label="New instances ready"/>
                            <div class="muted">{progress.new_total} " launched, " {progress.new_running} " running"</div>
                        </div>
                        <div>
                            <div class="muted">"Old version"</div>
                            <div class="num big" data-testid="upgrade-old">{progress.old_left} " left"</div>
                            <Meter used=f64::from(progress.old_left) total=target.max(f64::from(progress.old_left)) label="Old instances left"/>
                            <div class="muted">"Each goes once a new one is healthy and ready"</div>
                        </div>
                    </div>
                </section>
            })
        })
    }
}

/// The instance stepper, Restart and Destroy, each with its pending state and error.
#[component]
fn Controls(id: String, app: Memo<AppDetail>, on_change: Callback<()>) -> impl IntoView {
    let target = Memo::new(move |_| app.with(|a| a.summary.instances));
    // The number in the stepper while it differs from the app's target.
    let wanted = RwSignal::new(None::<i64>);
    let shown = move || wanted.get().unwrap_or_else(|| target.get());
    Effect::new(move |_| {
        if wanted.get() == Some(target.get()) {
            wanted.set(None);
        }
    });

    let scale: Mutation<i64> = {
        let id = id.clone();
        Action::new(move |instances: &i64| scale_app(id.clone(), *instances))
    };
    let restart: Mutation<()> = {
        let id = id.clone();
        Action::new(move |_: &()| restart_app(id.clone()))
    };
    let destroy: Mutation<()> = {
        let id = id.clone();
        Action::new(move |_: &()| destroy_app(id.clone()))
    };
    let scaling = scale.pending();
    let restarting = restart.pending();
    let destroying = destroy.pending();
    Effect::new(move |_| {
        if succeeded(scale) || succeeded(restart) {
            on_change.run(());
        }
    });
    let navigate = use_navigate();
    Effect::new(move |_| {
        if succeeded(destroy) {
            navigate("/", Default::default());
        }
    });

    let confirming = RwSignal::new(false);
    let step = move |by: i64| wanted.set(Some((shown() + by).max(0)));

    view! {
        <form
            class="stepper"
            aria-label="Instances"
            on:submit=move |event| {
                event.prevent_default();
                scale.dispatch(shown());
            }
        >
            <button type="button" aria-label="One instance fewer" disabled=move || shown() <= 0 on:click=move |_| step(-1)>
                "−"
            </button>
            <input
                class="num"
                type="number"
                min="0"
                aria-label="Instances"
                data-testid="instances-input"
                value=target.get_untracked()
                prop:value=move || shown().to_string()
                on:input=move |event| {
                    if let Ok(instances) = event_target_value(&event).trim().parse::<i64>() {
                        wanted.set(Some(instances.max(0)));
                    }
                }
            />
            <button type="button" aria-label="One instance more" on:click=move |_| step(1)>
                "+"
            </button>
            <button
                type="submit"
                class="primary"
                data-testid="scale-button"
                disabled=move || scaling.get() || shown() == target.get()
            >
                {move || {
                    if scaling.get() { format!("Scaling to {}…", shown()) } else { format!("Scale to {}", shown()) }
                }}
            </button>
        </form>
        <button data-testid="restart-button" disabled=move || restarting.get() on:click=move |_| {
            restart.dispatch(());
        }>{move || if restarting.get() { "Restarting…" } else { "Restart" }}</button>
        <button class="danger" data-testid="destroy-button" on:click=move |_| confirming.set(true)>
            "Destroy"
        </button>
        <div class="action-errors">
            <ErrorNote problem=mutation_problem(scale)/>
            <ErrorNote problem=mutation_problem(restart)/>
        </div>
        <Show when=move || confirming.get()>
            <ConfirmDestroy
                id=id.clone()
                tasks=app.with_untracked(|a| a.tasks.len())
                destroy
                destroying
                on_close=Callback::new(move |_| confirming.set(false))
            />
        </Show>
    }
    .into_any()
}

#[component]
fn ConfirmDestroy(
    id: String,
    tasks: usize,
    destroy: Mutation<()>,
    destroying: Memo<bool>,
    on_close: Callback<()>,
) -> impl IntoView {
    let cancel = NodeRef::<html::Button>::new();
    Effect::new(move |_| {
        if let Some(button) = cancel.get() {
            let _ = button.focus();
        }
    });
    let what = match tasks {
        0 => "It has no tasks running.".to_string(),
        1 => "Its 1 task will be killed.".to_string(),
        n => format!("Its {n} tasks will be killed."),
    };
    view! {
        <Modal title=format!("Destroy {id}?") on_close>
            <p>
                "This deletes " <strong>{id.clone()}</strong> " and its configuration history. " {what}
                " This cannot be undone."
            </p>
            <ErrorNote problem=mutation_problem(destroy)/>
            <div class="form-actions">
                <button
                    class="danger"
                    data-testid="confirm-destroy"
                    disabled=move || destroying.get()
                    on:click=move |_| {
                        destroy.dispatch(());
                    }
                >
                    {move || if destroying.get() { "Destroying…".to_string() } else { format!("Destroy {id}") }}
                </button>
                <button node_ref=cancel on:click=move |_| on_close.run(())>
                    "Cancel"
                </button>
            </div>
        </Modal>
    }
    .into_any()
}

#[component]
fn ConfigurationTab(app: Memo<AppDetail>) -> impl IntoView {
    view! {
        <pre class="code">
            {move || app.with(|a| serde_json::to_string_pretty(&a.app).unwrap_or_default())}
        </pre>
    }
    .into_any()
}

#[component]
fn DeploymentsTab(app: Memo<AppDetail>) -> impl IntoView {
    let deployments = Memo::new(move |_| app.with(|a| a.deployments.clone()));
    view! {
        <Show
            when=move || !deployments.with(Vec::is_empty)
            fallback=|| view! { <p class="muted">"No deployment is changing this app right now."</p> }
        >
            <For
                each=move || deployments.get()
                key=|deployment| format!("{deployment:?}")
                children=|deployment| view! { <DeploymentCard deployment/> }
            />
        </Show>
    }
    .into_any()
}

/// The tail of one task's stdout or stderr; refetched when that task's status changes.
#[component]
fn LogsTab(app: Memo<AppDetail>, task: RwSignal<Option<String>>) -> impl IntoView {
    let task_ids = Memo::new(move |_| {
        app.with(|a| {
            a.tasks
                .iter()
                .map(|t| t.task.id.clone())
                .collect::<Vec<_>>()
        })
    });
    let chosen = Memo::new(move |_| {
        task.get()
            .or_else(|| task_ids.with(|ids| ids.first().cloned()))
    });
    let stream = RwSignal::new("stdout");
    let revision = use_live().task_revision(chosen.into());
    let output = Resource::new(
        move || (chosen.get(), stream.get(), revision.get()),
        |(task, stream, _)| async move {
            match task {
                Some(task) => Some(task_output(task, stream.to_string()).await),
                None => None,
            }
        },
    );
    let refreshing = RwSignal::new(false);
    let stream_button = move |name: &'static str| {
        view! {
            <button type="button" aria-pressed=move || (stream.get() == name).to_string() on:click=move |_| stream.set(name)>
                {name}
            </button>
        }
    };
    view! {
        <div class="log-controls">
            <label>
                "Task "
                <select on:change=move |event| task.set(Some(event_target_value(&event)))>
                    {move || {
                        let selected = chosen.get();
                        task_ids
                            .get()
                            .into_iter()
                            .map(|id| {
                                let is_selected = selected.as_deref() == Some(id.as_str());
                                let label = id.clone();
                                view! { <option value=id selected=is_selected>{label}</option> }
                            })
                            .collect_view()
                    }}
                </select>
            </label>
            <span class="segmented" role="group" aria-label="Output stream">
                {stream_button("stdout")}
                {stream_button("stderr")}
            </span>
            <button type="button" disabled=move || refreshing.get() on:click=move |_| output.refetch()>
                {move || if refreshing.get() { "Refreshing…" } else { "Refresh" }}
            </button>
        </div>
        <Transition fallback=|| view! { <p class="muted">"Loading output…"</p> } set_pending=refreshing.write_only()>
            {move || output.get().map(|answer| view! { <LogOutput answer/> })}
        </Transition>
    }
    .into_any()
}

#[component]
fn LogOutput(
    answer: Option<Result<Result<TaskLog, ServiceError>, ServerFnError>>,
) -> impl IntoView {
    let log = match answer {
        None => return view! { <p class="muted">"This app has no tasks, so there is no output to show."</p> }.into_any(),
        Some(Ok(Ok(log))) => log,
        Some(Ok(Err(refused))) => return view! { <ErrorNote problem=Some(Problem::from(&refused))/> }.into_any(),
        Some(Err(failed)) => return view! { <ErrorNote problem=Some(Problem::from(&failed))/> }.into_any(),
    };
    let tail = NodeRef::<html::Pre>::new();
    // Show the end of the output, where the news is.
    Effect::new(move |_| {
        if let Some(pre) = tail.get() {
            pre.set_scroll_top(pre.scroll_height());
        }
    });
    view! {
        {log.truncated.then(|| view! { <p class="muted">"Earlier output is left out."</p> })}
        {log.text.is_empty().then(|| view! { <p class="muted">"No output yet."</p> })}
        <pre class="log" data-testid="task-log" node_ref=tail>{log.text}</pre>
    }
    .into_any()
}
