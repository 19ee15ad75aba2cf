//! The Apps page: every app in one dense table with a search box that filters as you type
//! (kept in the URL as `?filter=`), and the create-app form; a first visit gets a ready example.

use super::create::CreateAppForm;
use super::format::{self, app_href};
use super::keys::SearchBox;
use super::live::use_live;
use super::widgets::{Age, Instances, Modal, RowChanges, StatusChip};
use crate::api::list_apps;
use crate::model::{path::group_prefix, AppSummary, NewApp};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::location::Url;
use leptos_router::NavigateOptions;

/// The app the empty state offers: a static web server on the first offered port.
fn example_app() -> NewApp {
    NewApp {
        id: "/hello".into(),
        cmd: "python3 -m http.server $PORT0".into(),
        cpus: 0.1,
        mem: 64.0,
        instances: 2,
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
                    <button class="primary" on:click=move |_| creating.set(true)>
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

#[component]
fn AppsTable(
    apps: Signal<Vec<AppSummary>>,
    #[prop(into)] filter: Signal<String>,
    on_clear: Callback<()>,
) -> impl IntoView {
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
                    each=move || visible.get()
                    key=|app| format!("{app:?}")
                    children=move |app| {
                        let class = changes.class(&app.id, &format!("{app:?}"));
                        view! { <AppRow app class/> }
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
fn AppRow(app: AppSummary, class: &'static str) -> impl IntoView {
    let href = app_href(&app.id);
    let prefix = group_prefix(&app.id).to_string();
    let name = app.id[prefix.len()..].to_string();
    let waiting = app.waiting_reasons.join(" · ");
    view! {
        <tr class=class data-testid="app-row" data-app-id=app.id.clone()>
            <td class="app-id">
                <a href=href>
                    <span class="dim">{prefix}</span>
                    <strong>{name}</strong>
                </a>
            </td>
            <td title=waiting>
                <StatusChip status=app.status/>
            </td>
            <td class="num">
                <Instances running=app.running staged=app.staged target=app.instances/>
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
