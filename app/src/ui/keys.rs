//! Keyboard shortcuts: `/` focuses the search box, `g a` / `g d` / `g n` / `g e` / `g m` go
//! to Apps, Deployments, Agents (nodes), Events and Metrics. Dialogs close themselves on `Esc` (see [`super::widgets::Modal`]).

use leptos::{ev, html, prelude::*};
use leptos_router::hooks::use_navigate;

/// A `g` counts as the start of a two-key shortcut for this long (milliseconds).
const SEQUENCE_WINDOW_MS: f64 = 1500.0;

/// The Apps page's search box, for `/` to focus.
#[derive(Clone, Copy)]
pub struct SearchBox(pub NodeRef<html::Input>);

#[derive(Debug, PartialEq, Eq)]
enum Shortcut {
    FocusSearch,
    /// The first key of `g …`.
    Go,
    Navigate(&'static str),
}

fn shortcut(key: &str, after_go: bool) -> Option<Shortcut> {
    match (after_go, key) {
        (true, "a") => Some(Shortcut::Navigate("/")),
        (true, "d") => Some(Shortcut::Navigate("/deployments")),
        (true, "n") => Some(Shortcut::Navigate("/agents")),
        (true, "e") => Some(Shortcut::Navigate("/events")),
        (true, "m") => Some(Shortcut::Navigate("/monitor")),
        (_, "g") => Some(Shortcut::Go),
        (_, "/") => Some(Shortcut::FocusSearch),
        _ => None,
    }
}

/// Whether keys currently go into a form control rather than to the page.
fn typing_in_a_field() -> bool {
    document().active_element().is_some_and(|element| {
        matches!(element.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
            || element.has_attribute("contenteditable")
    })
}

/// Listens for the shortcuts on the window for as long as the calling component lives.
pub fn install() {
    let search = SearchBox(NodeRef::new());
    provide_context(search);
    // `/` may have to open the Apps page first: the box takes the focus once it is there.
    let focus_wanted = RwSignal::new(false);
    Effect::new(move |_| {
        let Some(input) = search.0.get() else { return };
        if focus_wanted.get() {
            // A box the Apps page has just created joins the document after this runs.
            request_animation_frame(move || {
                if input.is_connected() {
                    focus_wanted.set(false);
                    let _ = input.focus();
                    input.select();
                }
            });
        }
    });
    let navigate = use_navigate();
    let go_pressed_at = StoredValue::new(None::<f64>);
    let listener = window_event_listener(ev::keydown, move |event| {
        if event.ctrl_key() || event.meta_key() || event.alt_key() || typing_in_a_field() {
            return;
        }
        let now = event.time_stamp();
        let after_go = go_pressed_at
            .get_value()
            .is_some_and(|at| now - at < SEQUENCE_WINDOW_MS);
        go_pressed_at.set_value(None);
        match shortcut(&event.key(), after_go) {
            Some(Shortcut::FocusSearch) => {
                event.prevent_default();
                let on_page = search
                    .0
                    .get_untracked()
                    .is_some_and(|input| input.is_connected());
                if !on_page {
                    navigate("/", Default::default());
                }
                focus_wanted.set(true);
            }
            Some(Shortcut::Go) => go_pressed_at.set_value(Some(now)),
            Some(Shortcut::Navigate(path)) => navigate(path, Default::default()),
            None => {}
        }
    });
    on_cleanup(move || listener.remove());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_key_sequences() {
        assert_eq!(shortcut("a", false), None);
        assert_eq!(shortcut("g", false), Some(Shortcut::Go));
        assert_eq!(shortcut("a", true), Some(Shortcut::Navigate("/")));
        assert_eq!(shortcut("e", true), Some(Shortcut::Navigate("/events")));
        assert_eq!(shortcut("/", true), Some(Shortcut::FocusSearch));
    }
}
