//! `/v2/events`: Marathon's SSE stream, its filter, and resuming with `Last-Event-ID`.

mod common;

use common::{Events, Stride, WAIT};
use eventsource_stream::Event;
use futures::StreamExt;
use serde_json::{json, Value};

/// Reads events until one of type `kind` whose data satisfies `matches` arrives.
async fn until(
    events: &mut Events,
    kind: &str,
    matches: impl Fn(&Value) -> bool,
) -> (Event, Vec<Event>) {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(WAIT, async {
        while let Some(e) = events.next().await {
            let data: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
            if e.event == kind && matches(&data) {
                return e;
            }
            seen.push(e);
        }
        panic!("the stream ended");
    })
    .await;
    match found {
        Ok(e) => (e, seen),
        Err(_) => panic!(
            "no {kind} event; saw {:?}",
            seen.iter().map(|e| e.event.clone()).collect::<Vec<_>>()
        ),
    }
}

#[tokio::test]
async fn an_app_launch_is_told_in_marathons_events() {
    let stride = Stride::start().await;
    let mut events = stride.events("", None).await;
    let (attached, _) = until(&mut events, "event_stream_attached", |_| true).await;
    let data: Value = serde_json::from_str(&attached.data).unwrap();
    assert_eq!(data["eventType"], "event_stream_attached");
    assert!(
        !attached.id.is_empty(),
        "events carry their sequence number"
    );

    let (status, _) = stride
        .post(
            "/v2/apps",
            &json!({"id": "/told", "cmd": "sleep 600", "cpus": 0.01, "mem": 16}).to_string(),
        )
        .await;
    assert_eq!(status, 201);
    let (post, _) = until(&mut events, "api_post_event", |d| {
        d["appDefinition"]["id"] == "/told"
    })
    .await;
    // Marathon's order: the request's event, then the deployment's.
    let post: Value = serde_json::from_str(&post.data).unwrap();
    assert_eq!(post["uri"], "/v2/apps");
    assert!(post["timestamp"].as_str().unwrap().ends_with('Z'));
    let (running, before) = until(&mut events, "status_update_event", |d| {
        d["taskStatus"] == "TASK_RUNNING"
    })
    .await;
    let running: Value = serde_json::from_str(&running.data).unwrap();
    assert_eq!(running["appId"], "/told");
    assert!(running["ports"][0].as_u64().is_some());
    let kinds: Vec<&str> = before.iter().map(|e| e.event.as_str()).collect();
    assert!(kinds.contains(&"deployment_info"), "{kinds:?}");
    assert!(kinds.contains(&"instance_changed_event"), "{kinds:?}");
    until(&mut events, "deployment_success", |d| {
        d["plan"]["steps"][1]["actions"][0]["app"] == "/told"
    })
    .await;
}

#[tokio::test]
async fn the_filter_and_last_event_id_work() {
    let stride = Stride::start().await;
    let mut only_terminations = stride
        .events("?event_type=app_terminated_event", None)
        .await;
    let mut everything = stride.events("", None).await;
    let (first, _) = until(&mut everything, "event_stream_attached", |_| true).await;

    stride
        .post(
            "/v2/apps",
            &json!({"id": "/brief", "cmd": "sleep 600", "cpus": 0.01, "mem": 16}).to_string(),
        )
        .await;
    stride.wait_running("/brief", 1).await;
    let (status, _) = stride.delete("/v2/apps/brief").await;
    assert_eq!(status, 200);
    let (terminated, skipped) = until(&mut only_terminations, "app_terminated_event", |d| {
        d["appId"] == "/brief"
    })
    .await;
    assert!(
        skipped.is_empty(),
        "the filter lets nothing else through: {skipped:?}"
    );

    // A client that reconnects with the last id it saw gets everything after it, no gap.
    drop(everything);
    let mut resumed = stride.events("", Some(&first.id)).await;
    let (replayed, before) = until(&mut resumed, "app_terminated_event", |d| {
        d["appId"] == "/brief"
    })
    .await;
    assert_eq!(replayed.id, terminated.id);
    let kinds: Vec<&str> = before.iter().map(|e| e.event.as_str()).collect();
    assert!(
        kinds.contains(&"api_post_event") && kinds.contains(&"deployment_success"),
        "{kinds:?}"
    );
    let first_id: u64 = first.id.parse().unwrap();
    assert!(before
        .iter()
        .all(|e| e.id.parse::<u64>().unwrap() > first_id));
}

#[tokio::test]
async fn a_client_without_the_sse_accept_header_is_refused() {
    let stride = Stride::start().await;
    let r = stride
        .http
        .get(stride.url("/v2/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 406);
}

#[tokio::test]
async fn stride_stops_promptly_with_event_streams_open() {
    let mut stride = Stride::start().await;
    let mut events = stride.events("", None).await;
    until(&mut events, "event_stream_attached", |_| true).await;
    let took = stride.terminate();
    assert!(took < std::time::Duration::from_secs(3), "took {took:?}");
}
