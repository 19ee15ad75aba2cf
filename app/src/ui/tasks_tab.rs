//! The App page's Tasks tab: where the app is reachable (service ports at the load balancer,
//! VIPs, DNS name), its last failure, and each task with its state, health, ports, place in the
//! load balancer's rotation and a Kill button.

use super::format;
use super::widgets::{
    mutation_problem, succeeded, Age, ErrorNote, Mutation, RowChanges, TaskStateChip,
};
use crate::api::kill_task;
use crate::model::{AppDetail, Rotation, TaskRow};
use leptos::prelude::*;

#[component]
pub(super) fn TasksTab(
    app: Memo<AppDetail>,
    on_open: Callback<String>,
    on_change: Callback<()>,
) -> impl IntoView {
    // Oldest first, so that new tasks append and nothing jumps.
    let tasks = Memo::new(move |_| {
        app.with(|a| {
            let mut tasks = a.tasks.clone();
            tasks.sort_by(|x, y| {
                (x.task.staged_at, &x.task.id).cmp(&(y.task.staged_at, &y.task.id))
            });
            tasks
        })
    });
    let changes = RowChanges::new();
    let balanced =
        Memo::new(move |_| app.with(|a| a.service_ports.iter().any(|p| p.address.is_some())));
    view! {
        <ContainerImage app/>
        <ServicePorts app/>
        {move || {
            app.with(|a| {
                a.last_task_failure
                    .clone()
                    .map(|failure| {
                        view! {
                            <p class="last-failure">
                                <span class="chip bad">"Last failure"</span>
                                " " <Age at=failure.timestamp/> ": "
                                {format::task_state_label(failure.state)} " on " {failure.host} " — "
                                {failure.message}
                            </p>
                        }
                    })
            })
        }}
        <Show
            when=move || !tasks.with(Vec::is_empty)
            fallback=|| view! { <p class="muted">"No tasks. Scale the app up to start some."</p> }
        >
            <table class="table tasks">
                <thead>
                    <tr>
                        <th scope="col">"State"</th>
                        <th scope="col">"Health"</th>
                        <th scope="col">"Host"</th>
                        <th scope="col">"Ports"</th>
                        {move || balanced.get().then(|| view! { <th scope="col">"Load balancer"</th> })}
                        <th scope="col">"Started"</th>
                        <th scope="col">"Version"</th>
                        <th scope="col">"Message"</th>
                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=move || tasks.get()
                        key=|row| format!("{row:?}")
                        children=move |row| {
                            let class = changes.class(&row.task.id, &format!("{row:?}"));
                            view! { <TaskLine row class balanced=balanced.get_untracked() on_open on_change/> }
                        }
                    />
                </tbody>
            </table>
        </Show>
    }
    .into_any()
}

#[component]
fn TaskLine(
    row: TaskRow,
    class: &'static str,
    /// The app's tasks are behind the built-in load balancer: show each one's place.
    balanced: bool,
    on_open: Callback<String>,
    on_change: Callback<()>,
) -> impl IntoView {
    let TaskRow {
        task,
        message,
        healthy,
        outdated,
        rotation,
    } = row;
    let open = {
        let id = task.id.clone();
        move || on_open.run(id.clone())
    };
    let open_on_enter = open.clone();
    let kill: Mutation<()> = {
        let id = task.id.clone();
        Action::new(move |_: &()| kill_task(id.clone()))
    };
    let killing = kill.pending();
    Effect::new(move |_| {
        if succeeded(kill) {
            on_change.run(());
        }
    });
    let ports = task
        .ports
        .iter()
        .map(|port| {
            let address = format!("{}:{port}", task.host);
            view! {
                <a href=format!("http://{address}") target="_blank" rel="noopener" on:click=|event| event.stop_propagation()>
                    {address.clone()}
                </a>
            }
        })
        .collect_view();
    let started = task.started_at.or(task.staged_at);
    let version = task.version.map(|version| {
        view! {
            <span title=format::exact(version)>{format::short_time(version)}</span>
            {outdated.then(|| view! { <span class="chip quiet" title="Launched from an older configuration; an upgrade replaces it">"old"</span> })}
        }
    });
    let health = match healthy {
        Some(true) => view! { <span class="chip good">"Healthy"</span> }.into_any(),
        Some(false) => view! { <span class="chip bad">"Unhealthy"</span> }.into_any(),
        None => view! { <span class="muted">"—"</span> }.into_any(),
    };
    view! {
        <tr
            class=format!("clickable {class}")
            data-testid="task-row"
            data-task-id=task.id.clone()
            data-state=task.state.name()
            data-health=match healthy {
                Some(true) => "healthy",
                Some(false) => "unhealthy",
                None => "unknown",
            }
            data-outdated=outdated.to_string()
            tabindex="0"
            title="Open this task's output"
            on:click=move |_| open()
            on:keydown=move |event| {
                if event.key() == "Enter" {
                    open_on_enter();
                }
            }
        >
            <td>
                <TaskStateChip state=task.state/>
            </td>
            <td>{health}</td>
            <td class="mono">{task.host.clone()}</td>
            <td class="ports">{ports}</td>
            {balanced.then(|| view! { <td><RotationChip rotation/></td> })}
            <td>{started.map(|at| view! { <Age at/> })}</td>
            <td class="version">{version}</td>
            <td class="message">{message}</td>
            <td class="row-actions">
                {(!task.state.is_terminal())
                    .then(|| {
                        view! {
                            <button
                                class="small"
                                title="Kill this task; the app starts a replacement while it wants more instances"
                                disabled=move || killing.get()
                                on:click=move |event| {
                                    event.stop_propagation();
                                    kill.dispatch(());
                                }
                            >
                                {move || if killing.get() { "Killing…" } else { "Kill" }}
                            </button>
                            <ErrorNote problem=mutation_problem(kill)/>
                        }
                    })}
            </td>
        </tr>
    }
    .into_any()
}

/// A task's place behind the load balancer: in, draining, or out and why.
#[component]
fn RotationChip(rotation: Option<Rotation>) -> impl IntoView {
    let Some(rotation) = rotation else {
        return view! { <span class="muted" data-testid="rotation">"—"</span> }.into_any();
    };
    let tone = match rotation {
        Rotation::In => "good",
        Rotation::Draining => "busy",
        Rotation::Unhealthy | Rotation::NotReady => "bad",
    };
    view! {
        <span class=format!("chip {tone}") data-testid="rotation" data-rotation=format!("{rotation:?}")>
            {rotation.label()}
        </span>
    }
    .into_any()
}

/// The image the app's tasks run in and which runtime runs it, and how many tasks wait for
/// its pull.
#[component]
fn ContainerImage(app: Memo<AppDetail>) -> impl IntoView {
    let image = Memo::new(move |_| {
        app.with(|a| {
            let container = a.app.container.as_ref()?;
            let image = container.pointer("/docker/image")?.as_str()?.to_string();
            let runtime = match container.get("type").and_then(|t| t.as_str()) {
                Some("MESOS") => "MESOS container",
                _ => "Docker",
            };
            let pulling = a
                .tasks
                .iter()
                .filter(|row| {
                    row.message
                        .as_deref()
                        .is_some_and(|m| m.starts_with("Pulling image"))
                        && row.task.state == crate::model::TaskState::Starting
                })
                .count();
            Some((image, runtime, pulling))
        })
    });
    move || {
        image.get().map(|(image, runtime, pulling)| {
            view! {
                <p class="service-ports" data-testid="container-image">
                    <span class="muted">"Image "</span>
                    <code class="copyable">{image}</code>
                    <span class="muted">{format!(" · {runtime}")}</span>
                    {(pulling > 0).then(|| view! {
                        <span class="chip busy" data-testid="pulling">
                            {format!("Pulling for {pulling} task{}", if pulling == 1 { "" } else { "s" })}
                        </span>
                    })}
                </p>
            }
        })
    }
}

/// The app's service ports: where the load balancer takes connections for it, its VIPs and
/// its DNS name (select one to copy it), or the bare ports when the balancer is off.
#[component]
fn ServicePorts(app: Memo<AppDetail>) -> impl IntoView {
    let ports = Memo::new(move |_| app.with(|a| a.service_ports.clone()));
    let dns_name = Memo::new(move |_| app.with(|a| a.dns_name.clone()));
    view! {
        <Show when=move || !ports.with(Vec::is_empty)>
            <p class="service-ports" data-testid="service-ports">
                <span class="muted">"Service ports "</span>
                <For
                    each=move || ports.get()
                    key=|p| format!("{p:?}")
                    children=|p| {
                        let label = p.name.clone().map(|n| format!(" {n}")).unwrap_or_default();
                        let shown = p.address.clone().unwrap_or_else(|| p.port.to_string());
                        let tcp = p.protocol.contains("tcp");
                        let vips = p
                            .vips
                            .iter()
                            .map(|vip| view! {
                                <span class="muted">" VIP "</span>
                                <Reachable address=vip.clone() tcp/>
                            })
                            .collect_view();
                        view! {
                            <span class="service-port" data-testid="service-port">
                                {match p.address.clone() {
                                    Some(address) => view! { <Reachable address tcp/> }.into_any(),
                                    None => view! { <code class="copyable">{shown}</code> }.into_any(),
                                }}
                                <span class="muted">{format!(" {}{label}", p.protocol)}</span>
                                {vips}
                            </span>
                        }
                    }
                />
                {move || dns_name.get().map(|name| view! {
                    <span class="service-port" data-testid="dns-name">
                        <span class="muted">"DNS "</span>
                        <code class="copyable">{name}</code>
                    </span>
                })}
            </p>
        </Show>
    }
    .into_any()
}

/// A `host:port` to copy: a link when it speaks TCP (it may well be HTTP), text otherwise.
#[component]
fn Reachable(address: String, tcp: bool) -> impl IntoView {
    if tcp {
        view! {
            <a class="copyable" href=format!("http://{address}") target="_blank" rel="noopener">
                {address.clone()}
            </a>
        }
        .into_any()
    } else {
        view! { <code class="copyable">{address}</code> }.into_any()
    }
}
