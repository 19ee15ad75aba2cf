//! The create-app form: id, command, what it runs in (the host, a MESOS container or a Docker
//! container of an image), resources and instance count; labels above fields, errors under the
//! field they belong to, and the new app's page once the server accepted it.

use super::format::{self, app_href};
use super::widgets::{mutation_problem, succeeded, Mutation};
use crate::api::create_app;
use crate::model::{path, NewApp, NewRuntime};
use leptos::{ev::SubmitEvent, html, prelude::*};
use leptos_router::hooks::use_navigate;
use std::collections::BTreeMap;
use std::str::FromStr;

/// The fields of the form, by their names in Marathon's error paths (`/cpus` → `cpus`).
const FIELDS: [&str; 6] = [
    "id",
    "cmd",
    "cpus",
    "mem",
    "instances",
    "container/docker/image",
];

/// The runtimes the form offers, as its radio buttons name them.
const RUNTIMES: [(NewRuntime, &str, &str); 3] = [
    (NewRuntime::Host, "host", "Command on the host"),
    (NewRuntime::Mesos, "mesos", "MESOS container"),
    (NewRuntime::Docker, "docker", "Docker"),
];

/// Reads a number field; what is wrong with it goes into `mistakes` under the field's name.
fn read_number<T: FromStr + Default>(
    field: &'static str,
    text: RwSignal<String>,
    example: &str,
    mistakes: &mut BTreeMap<&'static str, String>,
) -> T {
    let text = text.get_untracked();
    let text = text.trim();
    let mistake = if text.is_empty() {
        format!("Enter a number, e.g. {example}.")
    } else {
        match text.parse() {
            Ok(number) => return number,
            Err(_) => format!("“{text}” is not a number this field takes; try {example}."),
        }
    };
    mistakes.insert(field, mistake);
    T::default()
}

#[component]
pub fn CreateAppForm(
    initial: NewApp,
    #[prop(optional)] on_cancel: Option<Callback<()>>,
) -> impl IntoView {
    let id = RwSignal::new(initial.id);
    let cmd = RwSignal::new(initial.cmd);
    let cpus = RwSignal::new(format::cpus(initial.cpus));
    let mem = RwSignal::new(format::cpus(initial.mem));
    let instances = RwSignal::new(initial.instances.to_string());
    let runtime = RwSignal::new(initial.runtime);
    let image = RwSignal::new(initial.image);
    let container_port = RwSignal::new(
        initial
            .container_port
            .map(|port| port.to_string())
            .unwrap_or_default(),
    );
    let in_container = move || runtime.get() != NewRuntime::Host;
    // Mistakes caught before asking the server (a number field that holds no number).
    let local_errors = RwSignal::new(BTreeMap::<&'static str, String>::new());

    let create: Mutation<NewApp> = Action::new(|form: &NewApp| create_app(form.clone()));
    let pending = create.pending();
    let problem = mutation_problem(create);
    let errors = move |field: &'static str| {
        Signal::derive(move || match local_errors.with(|e| e.get(field).cloned()) {
            Some(error) => vec![error],
            None => problem.with(|p| p.as_ref().map(|p| p.field(field)).unwrap_or_default()),
        })
    };

    let created_id = StoredValue::new(String::new());
    let navigate = use_navigate();
    Effect::new(move |_| {
        if succeeded(create) {
            navigate(&app_href(&created_id.get_value()), Default::default());
        }
    });

    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        let mut mistakes = BTreeMap::new();
        let form = NewApp {
            id: id.get_untracked().trim().to_string(),
            cmd: cmd.get_untracked(),
            cpus: read_number("cpus", cpus, "0.1", &mut mistakes),
            mem: read_number("mem", mem, "64", &mut mistakes),
            instances: read_number("instances", instances, "2", &mut mistakes),
            runtime: runtime.get_untracked(),
            image: image.get_untracked(),
            container_port: (runtime.get_untracked() == NewRuntime::Docker
                && !container_port.get_untracked().trim().is_empty())
            .then(|| read_number("container-port", container_port, "80", &mut mistakes)),
        };
        let ready = mistakes.is_empty();
        local_errors.set(mistakes);
        if ready {
            created_id.set_value(path::absolute(&form.id, "/"));
            create.dispatch(form);
        }
    };

    // In a dialog the form takes the focus; on the page it leaves it where the reader is.
    let first_field = NodeRef::<html::Input>::new();
    Effect::new(move |_| {
        if on_cancel.is_some() {
            if let Some(input) = first_field.get() {
                let _ = input.focus();
            }
        }
    });

    view! {
        <form class="form" data-testid="create-app-form" on:submit=submit novalidate>
            <Field name="id" label="ID" hint="Slashes make groups: /prod/web." errors=errors("id")>
                <input
                    id="field-id"
                    data-testid="field-id"
                    type="text"
                    autocomplete="off"
                    spellcheck="false"
                    placeholder="/hello"
                    node_ref=first_field
                    value=id.get_untracked()
                    prop:value=move || id.get()
                    on:input=move |event| id.set(event_target_value(&event))
                />
            </Field>
            <Field name="cmd" label="Command" hint="Runs in a shell; $PORT0 is the instance's port. In a container, leave it empty for the image's own." errors=errors("cmd")>
                <input
                    id="field-cmd"
                    data-testid="field-cmd"
                    class="mono"
                    type="text"
                    autocomplete="off"
                    spellcheck="false"
                    value=cmd.get_untracked()
                    prop:value=move || cmd.get()
                    on:input=move |event| cmd.set(event_target_value(&event))
                />
            </Field>
            <fieldset class="field choice" data-testid="field-runtime">
                <legend>"Runs in"</legend>
                {RUNTIMES
                    .into_iter()
                    .map(|(which, value, label)| view! {
                        <label class="choice-option">
                            <input
                                type="radio"
                                name="runtime"
                                value=value
                                data-testid=format!("runtime-{value}")
                                prop:checked=move || runtime.get() == which
                                on:change=move |_| runtime.set(which)
                            />
                            {label}
                        </label>
                    })
                    .collect_view()}
            </fieldset>
            <Show when=in_container>
                <div class="field-row wide-first">
                    <Field
                        name="image"
                        label="Image"
                        hint="Pulled from its registry, e.g. busybox:1.36 or registry:5000/team/app:2."
                        errors=errors("container/docker/image")
                    >
                        <input
                            id="field-image"
                            data-testid="field-image"
                            class="mono"
                            type="text"
                            autocomplete="off"
                            spellcheck="false"
                            placeholder="busybox:1.36"
                            value=image.get_untracked()
                            prop:value=move || image.get()
                            on:input=move |event| image.set(event_target_value(&event))
                        />
                    </Field>
                    <Show when=move || runtime.get() == NewRuntime::Docker>
                        <Field
                            name="container-port"
                            label="Container port"
                            hint="Published on a host port (bridge network)."
                            errors=errors("container-port")
                        >
                            <NumberInput name="container-port" value=container_port step="1"/>
                        </Field>
                    </Show>
                </div>
            </Show>
            <div class="field-row">
                <Field name="cpus" label="CPUs" errors=errors("cpus")>
                    <NumberInput name="cpus" value=cpus step="0.1"/>
                </Field>
                <Field name="mem" label="Memory (MiB)" errors=errors("mem")>
                    <NumberInput name="mem" value=mem step="16"/>
                </Field>
                <Field name="instances" label="Instances" errors=errors("instances")>
                    <NumberInput name="instances" value=instances step="1"/>
                </Field>
            </div>
            {move || {
                problem
                    .get()
                    .map(|problem| {
                        let mut lines = problem.field("");
                        lines.extend(problem.other_fields(&FIELDS));
                        view! {
                            <div class="form-error" role="alert" data-testid="form-error">
                                <p>{problem.message}</p>
                                {lines.into_iter().map(|line| view! { <p>{line}</p> }).collect_view()}
                            </div>
                        }
                    })
            }}
            <div class="form-actions">
                <button type="submit" class="primary" data-testid="create-app-submit" disabled=move || pending.get()>
                    {move || if pending.get() { "Creating…" } else { "Create app" }}
                </button>
                {on_cancel
                    .map(|cancel| {
                        view! {
                            <button type="button" on:click=move |_| cancel.run(())>
                                "Cancel"
                            </button>
                        }
                    })}
            </div>
        </form>
    }
    .into_any()
}

/// One labelled field with its hint and, when there are any, its errors underneath.
#[component]
fn Field(
    name: &'static str,
    label: &'static str,
    #[prop(optional)] hint: Option<&'static str>,
    errors: Signal<Vec<String>>,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="field" class:invalid=move || errors.with(|e| !e.is_empty())>
            <label for=format!("field-{name}")>{label}</label>
            {children()}
            {move || {
                errors
                    .with(|e| {
                        (!e.is_empty())
                            .then(|| {
                                view! {
                                    <p class="field-error" data-testid="field-error" data-field=name>
                                        {e.join(" ")}
                                    </p>
                                }
                            })
                    })
            }}
            {hint.map(|hint| view! { <p class="hint">{hint}</p> })}
        </div>
    }
    .into_any()
}

#[component]
fn NumberInput(name: &'static str, value: RwSignal<String>, step: &'static str) -> impl IntoView {
    view! {
        <input
            id=format!("field-{name}")
            data-testid=format!("field-{name}")
            class="num"
            type="number"
            min="0"
            step=step
            inputmode="decimal"
            value=value.get_untracked()
            prop:value=move || value.get()
            on:input=move |event| value.set(event_target_value(&event))
        />
    }
    .into_any()
}
