//! The page's live link to the server: one `EventSource` on `/v2/events` (Marathon's SSE
//! stream), opened after hydration and closed with the page.
//!
//! Events are gathered for a short window and published as one [`Changes`] batch, so a burst of
//! status updates costs one refetch. Resources take one of the revision memos ([`Live::revision`],
//! [`Live::app_revision`], [`Live::task_revision`]) as part of their source and so refetch only
//! when a batch touches what they show; nothing polls. The raw events also feed the Events page.

use crate::model::EventRecord;
use leptos::prelude::*;
use std::collections::{BTreeSet, VecDeque};

/// How many live events the page keeps for the Events view.
pub const EVENT_BUFFER: usize = 500;

/// The state of the event stream, as the live indicator shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Connected,
    /// Not (yet) receiving: before hydration, or while the browser retries a lost stream (it
    /// resumes with `Last-Event-ID`).
    Reconnecting,
}

impl Link {
    /// The `data-live` value browser tests wait for.
    pub fn attr(self) -> &'static str {
        match self {
            Link::Connected => "connected",
            Link::Reconnecting => "reconnecting",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Link::Connected => "Live",
            Link::Reconnecting => "Reconnecting…",
        }
    }
}

/// What one event, or a batch of them, may have changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Affected {
    /// The event says nothing more precise (or the stream was interrupted): refresh it all.
    pub everything: bool,
    pub apps: BTreeSet<String>,
    pub tasks: BTreeSet<String>,
}

// Only the browser receives events; the tests check how they are read.
#[cfg(any(test, feature = "hydrate"))]
impl Affected {
    fn all() -> Affected {
        Affected {
            everything: true,
            ..Affected::default()
        }
    }

    /// Reads an event's JSON for the apps and tasks it is about.
    pub fn of_event(event_type: &str, data: &serde_json::Value) -> Affected {
        match event_type {
            "event_stream_attached"
            | "event_stream_detached"
            | "subscribe_event"
            | "unsubscribe_event" => Affected::default(),
            // A missed stretch of events may have touched anything.
            "group_change_success"
            | "scheduler_registered_event"
            | "scheduler_reregistered_event"
            | "events_missed_event" => Affected::all(),
            _ => {
                let mut affected = Affected::default();
                let plan_apps = data["plan"]["steps"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|step| step["actions"].as_array().into_iter().flatten())
                    .map(|action| &action["app"]);
                let direct = [
                    &data["appId"],
                    &data["runSpecId"],
                    &data["appDefinition"]["id"],
                ];
                affected.apps = direct
                    .into_iter()
                    .chain(plan_apps)
                    .filter_map(|id| id.as_str().map(str::to_string))
                    .collect();
                affected.tasks = data["taskId"]
                    .as_str()
                    .map(str::to_string)
                    .into_iter()
                    .collect();
                affected.everything = affected.apps.is_empty();
                affected
            }
        }
    }
}

/// One published batch of changes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    /// Counts batches; a resource whose source includes it refetches on every batch.
    pub serial: u64,
    pub affected: Affected,
}

/// The live state every page reads: link status, change batches, recent events and the clock
/// that relative times are measured against.
#[derive(Clone, Copy)]
pub struct Live {
    pub link: RwSignal<Link>,
    changes: RwSignal<Changes>,
    events: RwSignal<VecDeque<EventRecord>>,
    now: RwSignal<i64>,
}

pub fn use_live() -> Live {
    expect_context::<Live>()
}

impl Live {
    /// Creates the live state for this page, provides it as context, and (in the browser)
    /// connects to the event stream.
    pub fn provide() {
        // The server's clock, shared with the hydrating client so that relative times render
        // identically on both sides.
        let rendered_at = SharedValue::new(wall_clock_millis).into_inner();
        let live = Live {
            link: RwSignal::new(Link::Reconnecting),
            changes: RwSignal::new(Changes::default()),
            events: RwSignal::new(VecDeque::new()),
            now: RwSignal::new(rendered_at),
        };
        provide_context(live);
        #[cfg(feature = "hydrate")]
        browser::connect(live, rendered_at);
    }

    /// Moves whenever any batch arrives.
    pub fn revision(self) -> Memo<u64> {
        let changes = self.changes;
        Memo::new(move |_| changes.with(|c| c.serial))
    }

    /// Moves whenever a batch touches `app`.
    pub fn app_revision(self, app: Memo<String>) -> Memo<u64> {
        let changes = self.changes;
        Memo::new(move |previous: Option<&u64>| {
            let app = app.get();
            changes.with(|c| {
                if c.affected.everything || c.affected.apps.contains(&app) {
                    c.serial
                } else {
                    previous.copied().unwrap_or_default()
                }
            })
        })
    }

    /// Moves whenever a batch carries a status update of `task`.
    pub fn task_revision(self, task: Signal<Option<String>>) -> Memo<u64> {
        let changes = self.changes;
        Memo::new(move |previous: Option<&u64>| {
            let task = task.get();
            changes.with(|c| match task {
                Some(task) if c.affected.tasks.contains(&task) => c.serial,
                _ => previous.copied().unwrap_or_default(),
            })
        })
    }

    /// The events received since the page loaded, newest first.
    pub fn events(self) -> ReadSignal<VecDeque<EventRecord>> {
        self.events.read_only()
    }

    /// Epoch milliseconds of the latest update (tracked): relative times move with the data.
    pub fn now(self) -> i64 {
        self.now.get()
    }
}

#[cfg(not(feature = "hydrate"))]
fn wall_clock_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(feature = "hydrate")]
fn wall_clock_millis() -> i64 {
    web_sys::js_sys::Date::now() as i64
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::*;
    use serde_json::Value;
    use std::time::Duration;
    use wasm_bindgen::{closure::Closure, JsCast};
    use web_sys::{Event, EventSource, MessageEvent};

    /// How long events are gathered before one refetch.
    const BATCH_WINDOW: Duration = Duration::from_millis(150);
    /// When the browser gives up on a stream (it closes it after a non-SSE answer), try anew.
    const REOPEN_AFTER: Duration = Duration::from_secs(5);

    /// The SSE `event:` names the page subscribes to (named events need one listener each).
    const EVENT_TYPES: [&str; 14] = [
        "status_update_event",
        "instance_changed_event",
        // Health decides the task's chip and its place in the load balancer.
        "health_status_changed_event",
        "instance_health_changed_event",
        "deployment_info",
        "deployment_success",
        "deployment_failed",
        "deployment_step_success",
        "api_post_event",
        "app_terminated_event",
        "group_change_success",
        "scheduler_registered_event",
        "event_stream_attached",
        "event_stream_detached",
    ];

    impl Affected {
        fn is_empty(&self) -> bool {
            !self.everything && self.apps.is_empty() && self.tasks.is_empty()
        }

        fn merge(&mut self, other: Affected) {
            self.everything |= other.everything;
            self.apps.extend(other.apps);
            self.tasks.extend(other.tasks);
        }
    }

    impl Live {
        fn publish(self, affected: Affected, now: i64) {
            self.now.set(now);
            if !affected.is_empty() {
                self.changes.update(|c| {
                    c.serial += 1;
                    c.affected = affected;
                });
            }
        }

        fn record(self, event: EventRecord) {
            self.events.update(|events| {
                events.push_front(event);
                events.truncate(EVENT_BUFFER);
            });
        }
    }

    /// The line the Events page lists for one received message.
    fn event_record(
        seq: u64,
        event_type: &str,
        data: &str,
        json: &Value,
        affected: &Affected,
    ) -> EventRecord {
        EventRecord {
            seq,
            event_type: event_type.to_string(),
            timestamp: json["timestamp"].as_str().unwrap_or_default().to_string(),
            app_id: affected.apps.first().cloned(),
            json: data.to_string(),
        }
    }

    pub fn connect(live: Live, rendered_at: i64) {
        // Relative times use the server's clock: the client's may be off.
        let clock_offset = rendered_at - wall_clock_millis();
        let server_now = move || wall_clock_millis() + clock_offset;
        let pending = StoredValue::new(None::<Affected>);
        let queue = move |affected: Affected| {
            let opens_window = pending
                .try_update_value(|p| {
                    let opens = p.is_none();
                    p.get_or_insert_with(Affected::default).merge(affected);
                    opens
                })
                .unwrap_or(false);
            if opens_window {
                set_timeout(
                    move || {
                        if let Some(Some(batch)) = pending.try_update_value(Option::take) {
                            live.publish(batch, server_now());
                        }
                    },
                    BATCH_WINDOW,
                );
            }
        };
        let generation = RwSignal::new(0u32);

        Effect::new(move |_| {
            generation.track();
            let Ok(source) = EventSource::new("/v2/events") else {
                live.link.set(Link::Reconnecting);
                return;
            };
            let mut handlers: Vec<Closure<dyn FnMut(Event)>> = Vec::new();

            // Events may have been missed before (re)connecting: refresh everything once.
            let on_open = Closure::<dyn FnMut(Event)>::new(move |_| {
                live.link.set(Link::Connected);
                queue(Affected::all());
            });
            source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
            handlers.push(on_open);

            let on_error = Closure::<dyn FnMut(Event)>::new(move |event: Event| {
                live.link.set(Link::Reconnecting);
                let closed = event
                    .target()
                    .and_then(|target| target.dyn_into::<EventSource>().ok())
                    .is_some_and(|source| source.ready_state() == EventSource::CLOSED);
                if closed {
                    set_timeout(
                        move || {
                            let _ = generation.try_update(|n| *n += 1);
                        },
                        REOPEN_AFTER,
                    );
                }
            });
            source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
            handlers.push(on_error);

            for event_type in EVENT_TYPES {
                let on_event = Closure::<dyn FnMut(Event)>::new(move |event: Event| {
                    let Some(message) = event.dyn_ref::<MessageEvent>() else {
                        return;
                    };
                    let data = message.data().as_string().unwrap_or_default();
                    let json: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                    let affected = Affected::of_event(event_type, &json);
                    let seq = message.last_event_id().parse().unwrap_or_default();
                    live.record(event_record(seq, event_type, &data, &json, &affected));
                    queue(affected);
                });
                let _ = source.add_event_listener_with_callback(
                    event_type,
                    on_event.as_ref().unchecked_ref(),
                );
                handlers.push(on_event);
            }

            // The closures must live as long as the listeners; both go when the page does.
            let connection = StoredValue::new_local((source, handlers));
            on_cleanup(move || {
                connection.with_value(|(source, _)| source.close());
                connection.dispose();
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn events_name_the_apps_and_tasks_they_touch() {
        let status =
            json!({"eventType": "status_update_event", "appId": "/web", "taskId": "web.1"});
        let affected = Affected::of_event("status_update_event", &status);
        assert_eq!(affected.apps, BTreeSet::from(["/web".to_string()]));
        assert_eq!(affected.tasks, BTreeSet::from(["web.1".to_string()]));
        assert!(!affected.everything);

        let deployment = json!({"plan": {"steps": [{"actions": [{"action": "ScaleApplication", "app": "/a"}]}]}});
        let affected = Affected::of_event("deployment_success", &deployment);
        assert_eq!(affected.apps, BTreeSet::from(["/a".to_string()]));

        assert!(Affected::of_event("group_change_success", &json!({})).everything);
        assert!(Affected::of_event("deployment_info", &Value::Null).everything);
        assert_eq!(
            Affected::of_event("event_stream_attached", &json!({})),
            Affected::default()
        );
    }
}
