//! The dashboard: server-rendered Leptos pages with their data on first paint, hydrated in the
//! browser and kept current by the event stream.
//!
//! # Layout
//! - [`shell`] and [`App`]: the document, the router and the frame (navigation, top bar).
//! - `live`: the page's one `EventSource`, batching events into refetches; the clock.
//! - `apps`, `create`, `app_page`, `deployments`, `agents`, `events`, `metrics`: the pages
//!   and the create-app form; `tasks_tab` and `volumes`: tabs of the app page.
//! - `topbar`, `widgets`, `format`, `keys`: the cluster bar, shared pieces, wording and numbers,
//!   keyboard shortcuts.
//!
//! Every route renders in [`SsrMode::Async`]: the server waits for the pages' resources so that
//! the first HTML already shows the data (the backend answers from memory, so this is quick).
//! Browser tests find elements by `data-testid` and wait for `data-hydrated="true"` on the
//! frame.

mod agents;
mod app_page;
mod apps;
mod create;
mod deployments;
mod events;
mod format;
mod keys;
mod live;
mod metrics;
mod tasks_tab;
mod topbar;
mod volumes;
mod widgets;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::hooks::use_location;
use leptos_router::{path, SsrMode};

/// The HTML document around the app (server side only renders it).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                // No favicon yet; this keeps the browser from asking for one.
                <link rel="icon" href="data:,"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="stride" href="/pkg/stride.css"/>
        <Title formatter=|page: String| if page.is_empty() { "Stride".to_string() } else { format!("{page} · Stride") }/>
        <Router>
            <Frame/>
        </Router>
    }
    .into_any()
}

/// Navigation, top bar and the routed page.
#[component]
fn Frame() -> impl IntoView {
    live::Live::provide();
    keys::install();
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <div class="frame" data-hydrated=move || hydrated.get().then_some("true")>
            <Navigation/>
            <topbar::TopBar/>
            <main class="page">
                <Routes fallback=|| view! { <NotFound/> }>
                    <Route path=path!("/") view=apps::AppsPage ssr=SsrMode::Async/>
                    <Route path=path!("/apps/*id") view=app_page::AppPage ssr=SsrMode::Async/>
                    <Route path=path!("/deployments") view=deployments::DeploymentsPage ssr=SsrMode::Async/>
                    <Route path=path!("/agents") view=agents::AgentsPage ssr=SsrMode::Async/>
                    <Route path=path!("/events") view=events::EventsPage ssr=SsrMode::Async/>
                    <Route path=path!("/monitor") view=metrics::MetricsPage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </div>
    }
    .into_any()
}

#[component]
fn Navigation() -> impl IntoView {
    let location = use_location();
    let link = move |href: &'static str, label: &'static str, keys: &'static str| {
        let current = move || {
            location.pathname.with(|path| {
                let here = match href {
                    "/" => path == "/" || path.starts_with("/apps/"),
                    section => path.starts_with(section),
                };
                here.then_some("page")
            })
        };
        view! {
            <a href=href aria-current=current>
                <span>{label}</span>
                <kbd title=format!("Press {keys}")>{keys}</kbd>
            </a>
        }
    };
    view! {
        <nav class="sidebar" aria-label="Sections">
            <a class="brand" href="/">"Stride"</a>
            {link("/", "Apps", "g a")}
            {link("/deployments", "Deployments", "g d")}
            {link("/agents", "Agents", "g n")}
            {link("/events", "Events", "g e")}
            {link("/monitor", "Metrics", "g m")}
        </nav>
    }
    .into_any()
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <Title text="Not found"/>
        <section class="panel empty">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. " <a href="/">"Go to the apps"</a> "."</p>
        </section>
    }
    .into_any()
}
