//! The Apps page: every app in one dense table with a search box that filters as you type
//! (kept in the URL as `?filter=`), and the create-app form; a first visit gets a ready example.

use super::create::CreateAppForm;
use super::format::{self, app_href};
use super::keys::SearchBox;
use super::live::use_live;
use super::widgets::{Age, Instances, Modal, RowChanges, StatusChip};
use crate::api::list_apps;
use crate::model::{AppSummary, NewApp};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::location::Url;
use leptos_router::NavigateOptions;
use std::collections::BTreeSet;

/// The app the empty state offers: a static web server on the first offered port.
fn example_app() -> NewApp {
    NewApp {
        id: "/hello".into(),
        cmd: "python3 -m http.server $PORT0".into(),
        cpus: 0.1,
        mem: 64.0,
        instances: 2,
        ..NewApp::default()
    }
}

/// What the create dialog starts from.
fn blank_app() -> NewApp {
    NewApp {
        cpus: 0.1,
        mem: 64.0,
        instances: 1,
        ..NewApp::default()
    }
}

fn matches_filter(app: &AppSummary, filter: &str) -> bool {
    let filter = filter.trim().to_lowercase();
    filter.is_empty()
        || app.id.to_lowercase().contains(&filter)
        || app.status.label().to_lowercase().contains(&filter)
}

#[component]
pub fn AppsPage() -> impl IntoView {
    let revision = use_live().revision();
    let apps = Resource::new(move || revision.get(), |_| list_apps());
    // The box owns the filter while typing; the URL follows it (replacing, not adding history).
    let filter = RwSignal::new(
        use_query_map()
            .get_untracked()
            .get("filter")
            .unwrap_or_default(),
    );
    let navigate = use_navigate();
    let set_filter = Callback::new(move |text: String| {
        let url = if text.is_empty() {
            "/".to_string()
        } else {
            format!("/?filter={}", Url::escape(&text))
        };
        filter.set(text);
        navigate(
            &url,
            NavigateOptions {
                replace: true,
                scroll: false,
                ..Default::default()
            },
        );
    });
    let creating = RwSignal::new(false);
    let search = expect_context::<SearchBox>().0;

    let loaded = move || apps.get().and_then(Result::ok);
    let no_apps = move || loaded().is_some_and(|apps| apps.is_empty());

    let table = move || {
        view! {
            <AppsTable
                apps=Signal::derive(move || loaded().unwrap_or_default())
                filter=filter.read_only()
                on_clear=Callback::new(move |_| set_filter.run(String::new()))
            />
        }
    };

    // Everything reading `apps` stays inside a Transition, so that the server waits for it and
    // the hydrating client sees the same state. The search box does not: it is there at once.
    view! {
        <Title text="Apps"/>
        <div class="page-head">
            <h1>"Apps"</h1>
            <input
                id="search"
                class="search"
                type="search"
                placeholder="Filter apps  /"
                aria-label="Filter apps by id or status"
                autocomplete="off"
                spellcheck="false"
                data-testid="app-search"
                node_ref=search
                value=filter.get_untracked()
                prop:value=move || filter.get()
                on:input=move |event| set_filter.run(event_target_value(&event))
            />
            <span class="spacer"></span>
            <Transition>
                <Show when=move || !no_apps()>
                    <button class="primary" data-testid="create-button" on:click=move |_| creating.set(true)>
                        "Create app"
                    </button>
                </Show>
            </Transition>
        </div>
        <Transition fallback=|| view! { <p class="muted">"Loading apps…"</p> }>
            {move || {
                apps.get()
                    .and_then(Result::err)
                    .map(|error| {
                        view! {
                            <p class="error-note" role="alert">
                                "The apps could not be loaded: " {error.to_string()}
                            </p>
                        }
                    })
            }}
            <Show when=no_apps fallback=table>
                <FirstAppPanel/>
            </Show>
        </Transition>
        <Show when=move || creating.get()>
            <Modal title="Create app" on_close=Callback::new(move |_| creating.set(false))>
                <CreateAppForm initial=blank_app() on_cancel=Callback::new(move |_| creating.set(false))/>
            </Modal>
        </Show>
    }
    .into_any()
}

/// One line of the apps table: a group (collapsible) or an app, at its depth in the tree.
#[derive(Clone, Debug, PartialEq)]
enum Line {
    Group {
        id: String,
        depth: usize,
        apps: usize,
    },
    App {
        app: AppSummary,
        depth: usize,
    },
}

/// The apps as a tree: each group once, before its apps and subgroups (ids sorted, so that
/// everything below a group comes right after it), skipping what collapsed groups hold.
fn tree_lines(apps: &[AppSummary], collapsed: &BTreeSet<String>) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut seen = BTreeSet::new();
    for app in apps {
        let groups: Vec<String> = ancestors(&app.id);
        for (depth, group) in groups.iter().enumerate() {
            if seen.insert(group.clone()) {
                let hidden = groups[..depth].iter().any(|g| collapsed.contains(g));
                if !hidden {
                    let prefix = format!("{group}/");
                    lines.push(Line::Group {
                        id: group.clone(),
                        depth,
                        apps: apps.iter().filter(|a| a.id.starts_with(&prefix)).count(),
                    });
                }
            }
        }
        if !groups.iter().any(|g| collapsed.contains(g)) {
            lines.push(Line::App {
                app: app.clone(),
                depth: groups.len(),
            });
        }
    }
    lines
}

/// `/a/b/c` → `["/a", "/a/b"]`.
fn ancestors(id: &str) -> Vec<String> {
    let segments: Vec<&str> = id.trim_start_matches('/').split('/').collect();
    (1..segments.len())
        .map(|n| format!("/{}", segments[..n].join("/")))
        .collect()
}

#[component]
fn AppsTable(
    apps: Signal<Vec<AppSummary>>,
    #[prop(into)] filter: Signal<String>,
    on_clear: Callback<()>,
) -> impl IntoView {
    let collapsed = RwSignal::new(BTreeSet::<String>::new());
    let visible = Memo::new(move |_| {
        let filter = filter.get();
        let mut shown: Vec<AppSummary> = apps
            .get()
            .into_iter()
            .filter(|app| matches_filter(app, &filter))
            .collect();
        shown.sort_by(|a, b| a.id.cmp(&b.id));
        shown
    });
    let lines = Memo::new(move |_| collapsed.with(|c| visible.with(|apps| tree_lines(apps, c))));
    let toggle = Callback::new(move |group: String| {
        collapsed.update(|c| {
            if !c.remove(&group) {
                c.insert(group);
            }
        })
    });
    let changes = RowChanges::new();
    view! {
        <table class="table" data-testid="apps-table">
            <thead>
                <tr>
                    <th scope="col">"ID"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col" class="num">"Instances"</th>
                    <th scope="col" class="num">"CPU"</th>
                    <th scope="col" class="num">"Memory"</th>
                    <th scope="col">"Version"</th>
                </tr>
            </thead>
            <tbody>
                // A row is keyed by its whole content: a changed app gets a new row, which
                // `RowChanges` marks for the highlight; unchanged rows stay untouched.
                <For
                    each=move || lines.get()
                    key=|line| format!("{line:?}")
                    children=move |line| match line {
                        Line::Group { id, depth, apps } => {
                            let open = Signal::derive({
                                let id = id.clone();
                                move || collapsed.with(|c| !c.contains(&id))
                            });
                            view! { <GroupRow id depth apps open on_toggle=toggle/> }.into_any()
                        }
                        Line::App { app, depth } => {
                            let class = changes.class(&app.id, &format!("{app:?}"));
                            view! { <AppRow app class depth/> }.into_any()
                        }
                    }
                />
            </tbody>
        </table>
        <Show when=move || visible.with(Vec::is_empty)>
            <p class="muted empty-filter">
                "No app matches “" {move || filter.get()} "”. "
                <button class="link" on:click=move |_| on_clear.run(())>"Clear the filter"</button>
            </p>
        </Show>
    }
    .into_any()
}

#[component]
fn GroupRow(
    id: String,
    depth: usize,
    apps: usize,
    open: Signal<bool>,
    on_toggle: Callback<String>,
) -> impl IntoView {
    let name = id.rsplit('/').next().unwrap_or_default().to_string();
    let toggled = id.clone();
    view! {
        <tr class="group-row" data-testid="group-row" data-group-id=id.clone()>
            <td colspan="6" style=format!("padding-left:{}rem", 0.75 + depth as f64 * 1.25)>
                <button
                    class="link group-toggle"
                    aria-expanded=move || open.get().to_string()
                    title=move || if open.get() { "Collapse this group" } else { "Expand this group" }
                    on:click=move |_| on_toggle.run(toggled.clone())
                >
                    <span class="caret" aria-hidden="true">{move || if open.get() { "▾" } else { "▸" }}</span>
                    <strong>{name}</strong>
                    "/"
                </button>
                <span class="muted">" " {apps} {if apps == 1 { " app" } else { " apps" }}</span>
            </td>
        </tr>
    }
    .into_any()
}

#[component]
fn AppRow(app: AppSummary, class: &'static str, depth: usize) -> impl IntoView {
    let href = app_href(&app.id);
    let name = app.id.rsplit('/').next().unwrap_or_default().to_string();
    let waiting = app.waiting_reasons.join(" · ");
    let healthy = app
        .has_health_checks
        .then_some((app.healthy, app.unhealthy));
    view! {
        <tr class=class data-testid="app-row" data-app-id=app.id.clone()>
            <td class="app-id" style=format!("padding-left:{}rem", 0.75 + depth as f64 * 1.25)>
                <a href=href>
                    <strong>{name}</strong>
                </a>
            </td>
            <td title=waiting>
                <StatusChip status=app.status/>
            </td>
            <td class="num">
                <Instances running=app.running staged=app.staged target=app.instances healthy/>
            </td>
            <td class="num">{format::cpus(app.cpus)}</td>
            <td class="num">{format::mem(app.mem)}</td>
            <td>
                <Age at=app.version/>
            </td>
        </tr>
    }
    .into_any()
}

#[component]
fn FirstAppPanel() -> impl IntoView {
    view! {
        <section class="panel first-app">
            <h2>"Create your first app"</h2>
            <p>
                "An app is a command Stride keeps running on the cluster, as many times as you ask. "
                "This example serves the current directory over HTTP on the port each instance is given ("
                <code>"$PORT0"</code> "). Adjust it or create it as it is."
            </p>
            <CreateAppForm initial=example_app()/>
        </section>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AppStatus, Timestamp};

    fn app(id: &str) -> AppSummary {
        AppSummary {
            id: id.into(),
            status: AppStatus::Running,
            instances: 1,
            running: 1,
            staged: 0,
            healthy: 0,
            unhealthy: 0,
            has_health_checks: false,
            cpus: 0.1,
            mem: 32.0,
            version: Timestamp::from_millis(0),
            waiting_reasons: vec![],
        }
    }

    #[test]
    fn groups_come_before_what_they_hold_and_collapse() {
        let apps = vec![app("/prod/api/web"), app("/prod/db"), app("/solo")];
        let names = |lines: Vec<Line>| -> Vec<String> {
            lines
                .into_iter()
                .map(|l| match l {
                    Line::Group { id, depth, apps } => format!("{depth} {id}/ ({apps})"),
                    Line::App { app, depth } => format!("{depth} {}", app.id),
                })
                .collect()
        };
        assert_eq!(
            names(tree_lines(&apps, &BTreeSet::new())),
            vec![
                "0 /prod/ (2)",
                "1 /prod/api/ (1)",
                "2 /prod/api/web",
                "1 /prod/db",
                "0 /solo"
            ]
        );
        let collapsed = BTreeSet::from(["/prod".to_string()]);
        assert_eq!(
            names(tree_lines(&apps, &collapsed)),
            vec!["0 /prod/ (2)", "0 /solo"]
        );
    }
}
