//! The app page's Volumes tab, for a resident app: each persistent volume, whether a task has
//! it mounted (Attached) or it waits with its data (Detached), the agent it lives on and the
//! disk it is on.

use super::format::{self, Tone};
use crate::model::{AppDetail, VolumeRow};
use leptos::prelude::*;

#[component]
pub fn VolumesTab(app: Memo<AppDetail>) -> impl IntoView {
    let volumes = Memo::new(move |_| app.with(|a| a.volumes.clone()));
    view! {
        <Show
            when=move || !volumes.with(Vec::is_empty)
            fallback=|| view! {
                <p class="muted">
                    "No volume yet: each instance creates its volumes on an agent at its first launch."
                </p>
            }
        >
            <table class="table volumes">
                <thead>
                    <tr>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Host"</th>
                        <th scope="col">"Container path"</th>
                        <th scope="col" class="num">"Size"</th>
                        <th scope="col">"Disk"</th>
                        <th scope="col">"Volume"</th>
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=move || volumes.get()
                        key=|volume| format!("{volume:?}")
                        children=|volume| view! { <VolumeLine volume/> }
                    />
                </tbody>
            </table>
        </Show>
    }
    .into_any()
}

#[component]
fn VolumeLine(volume: VolumeRow) -> impl IntoView {
    let (status, tone) = if volume.attached {
        ("Attached", Tone::Good)
    } else {
        ("Detached", Tone::Quiet)
    };
    view! {
        <tr data-testid="volume-row" data-status=status>
            <td><span class=format!("chip {}", tone.class())>{status}</span></td>
            <td class="host"><code>{volume.host}</code></td>
            <td><code>{volume.container_path}</code></td>
            <td class="num">{format::mem(volume.size_mib)}</td>
            <td><code data-testid="volume-disk">{volume.disk}</code></td>
            <td><code title=volume.instance_id>{volume.persistence_id}</code></td>
        </tr>
    }
    .into_any()
}
