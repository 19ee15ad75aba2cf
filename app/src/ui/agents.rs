//! The Agents page: every agent with its state (unreachable ones first and plainly marked),
//! attributes and fault domain, how much of it is used and how many of Stride's tasks run or
//! are unreachable there. With the built-in master, an agent can be cut off as a network
//! partition would (after a confirmation) and brought back.

use super::format::{self, Tone};
use super::live::use_live;
use super::widgets::{mutation_problem, succeeded, Age, ErrorNote, Meter, Modal, Mutation};
use crate::api::{list_agents, set_agent_reachable};
use crate::model::{AgentRow, AgentState, AgentsView};
use leptos::prelude::*;
use leptos_meta::Title;

fn state_tone(state: AgentState) -> Tone {
    match state {
        AgentState::Active => Tone::Good,
        AgentState::Deactivated | AgentState::Draining => Tone::Busy,
        AgentState::Unreachable => Tone::Bad,
        AgentState::Gone => Tone::Quiet,
    }
}

/// What the page's heading says of the agents: "4 agents · 1 unreachable".
fn headline(agents: &[AgentRow]) -> String {
    let unreachable = agents
        .iter()
        .filter(|a| a.state == AgentState::Unreachable)
        .count();
    let noun = if agents.len() == 1 { "agent" } else { "agents" };
    match unreachable {
        0 => format!("{} {noun}", agents.len()),
        n => format!("{} {noun} · {n} unreachable", agents.len()),
    }
}

#[component]
pub fn AgentsPage() -> impl IntoView {
    let revision = use_live().revision();
    // A cut-off or returning agent changes nothing that an event names at once on the
    // agent itself, so the page also refetches after its own actions.
    let changed = RwSignal::new(0u32);
    let agents = Resource::new(move || (revision.get(), changed.get()), |_| list_agents());
    view! {
        <Title text="Agents"/>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                agents
                    .get()
                    .map(|answer| match answer {
                        Err(error) => {
                            view! {
                                <p class="error-note" role="alert">
                                    "The agents could not be loaded: " {error.to_string()}
                                </p>
                            }
                                .into_any()
                        }
                        Ok(view) => view! { <AgentsTable view changed/> }.into_any(),
                    })
            }}
        </Transition>
    }
    .into_any()
}

#[component]
fn AgentsTable(view: AgentsView, changed: RwSignal<u32>) -> impl IntoView {
    let AgentsView {
        mut agents,
        built_in,
    } = view;
    // Unreachable agents first: they are what someone opening this page looks for.
    agents.sort_by_key(|a| (a.state != AgentState::Unreachable, a.hostname.clone()));
    let head = headline(&agents);
    let note = (!built_in).then(|| {
        view! {
            <p class="muted" data-testid="agents-note">
                "The agents Stride has had offers from or runs tasks on. Cutting an agent off is for the built-in master."
            </p>
        }
    });
    let rows = agents
        .into_iter()
        .map(|agent| view! { <AgentLine agent built_in changed/> })
        .collect_view();
    view! {
        <div class="page-head">
            <h1>"Agents"</h1>
            <span class="muted" data-testid="agents-headline">{head}</span>
        </div>
        {note}
        <table class="table agents">
            <thead>
                <tr>
                    <th scope="col">"Agent"</th>
                    <th scope="col">"State"</th>
                    <th scope="col">"Attributes"</th>
                    <th scope="col">"CPUs"</th>
                    <th scope="col">"Memory"</th>
                    <th scope="col" class="num">"Tasks"</th>
                    {built_in.then(|| view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> })}
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[component]
fn AgentLine(agent: AgentRow, built_in: bool, changed: RwSignal<u32>) -> impl IntoView {
    let state = agent.state;
    let since = agent
        .unreachable_since
        .map(|at| view! { <span class="muted since">"since " <Age at/></span> });
    let mut attributes: Vec<String> = agent
        .attributes
        .iter()
        .map(|(name, value)| format!("{name}:{value}"))
        .collect();
    if let Some((region, zone)) = &agent.domain {
        attributes.push(format!("@region:{region}"));
        attributes.push(format!("@zone:{zone}"));
    }
    let attributes = attributes
        .into_iter()
        .map(|text| view! { <code class="attribute">{text}</code> })
        .collect_view();
    let unreachable_tasks = (agent.tasks_unreachable > 0).then(|| {
        view! {
            <span class="unreachable-tasks" data-testid="unreachable-tasks">
                {agent.tasks_unreachable} " unreachable"
            </span>
        }
    });
    let cpus = format!(
        "{} of {} CPUs used",
        format::cpus(agent.cpus_used),
        format::cpus(agent.cpus_total)
    );
    let mem = format!(
        "{} of {} used",
        format::mem(agent.mem_used),
        format::mem(agent.mem_total)
    );
    let action = built_in.then(|| {
        view! {
            <td class="row-actions">
                <ReachabilityButton hostname=agent.hostname.clone() state changed/>
            </td>
        }
    });
    view! {
        <tr
            data-testid="agent-row"
            data-hostname=agent.hostname.clone()
            data-state=state.label()
            class=(state == AgentState::Unreachable).then_some("unreachable")
        >
            <td>
                <div class="agent-host">{agent.hostname.clone()}</div>
                <div class="muted agent-id" title=agent.id.clone()>{agent.id.clone()}</div>
            </td>
            <td>
                <span class=format!("chip {}", state_tone(state).class())>{state.label()}</span>
                {since}
            </td>
            <td class="attributes">{attributes}</td>
            <td>
                <Meter used=agent.cpus_used total=agent.cpus_total label=cpus.clone()/>
                <div class="muted usage">{cpus}</div>
            </td>
            <td>
                <Meter used=agent.mem_used total=agent.mem_total label=mem.clone()/>
                <div class="muted usage">{mem}</div>
            </td>
            <td class="num">
                <span data-testid="running-tasks">{agent.tasks_running} " running"</span>
                {unreachable_tasks}
            </td>
            {action}
        </tr>
    }
    .into_any()
}

/// Disconnect (confirmed first: the agent's tasks are replaced elsewhere as their apps'
/// `unreachableStrategy` says) or Reconnect.
#[component]
fn ReachabilityButton(
    hostname: String,
    state: AgentState,
    changed: RwSignal<u32>,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    let set: Mutation<(String, bool)> = Action::new(|(hostname, reachable): &(String, bool)| {
        set_agent_reachable(hostname.clone(), *reachable)
    });
    let pending = set.pending();
    Effect::new(move |_| {
        if succeeded(set) {
            asking.set(false);
            changed.update(|n| *n += 1);
        }
    });
    let button = match state {
        AgentState::Unreachable => {
            let hostname = hostname.clone();
            view! {
                <button class="small" data-testid="reconnect-agent" disabled=move || pending.get()
                    on:click=move |_| { set.dispatch((hostname.clone(), true)); }>
                    "Reconnect"
                </button>
            }
            .into_any()
        }
        AgentState::Gone => ().into_any(),
        _ => view! {
            <button class="small" data-testid="disconnect-agent" disabled=move || pending.get()
                on:click=move |_| asking.set(true)>
                "Disconnect"
            </button>
        }
        .into_any(),
    };
    view! {
        {button}
        <ErrorNote problem=mutation_problem(set)/>
        {move || {
            asking.get().then(|| {
                let hostname = hostname.clone();
                let title = format!("Cut {hostname} off?");
                view! {
                    <Modal title on_close=Callback::new(move |_| asking.set(false))>
                        <p>
                            "The master loses sight of the agent as in a network partition: its processes keep running, its tasks turn unreachable and are replaced elsewhere as their apps' unreachable strategy says. Reconnect brings it back; tasks replaced meanwhile are then killed there."
                        </p>
                        <div class="form-actions">
                            <button
                                class="danger"
                                data-testid="confirm-disconnect"
                                disabled=move || pending.get()
                                on:click=move |_| {
                                    set.dispatch((hostname.clone(), false));
                                }
                            >
                                "Disconnect"
                            </button>
                            <button on:click=move |_| asking.set(false)>"Keep it connected"</button>
                        </div>
                    </Modal>
                }
            })
        }}
    }
    .into_any()
}
