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

/// The next `n` events of a stream.
async fn take(events: &mut Events, n: usize) -> Vec<Event> {
    tokio::time::timeout(WAIT, events.by_ref().take(n).collect::<Vec<_>>())
        .await
        .expect("the events in time")
}

#[tokio::test]
async fn a_client_that_reconnects_sees_every_event_exactly_once() {
    let stride = Stride::start().await;
    let mut watcher = stride.events("?event_type=api_post_event", None).await;
    let mut client = stride
        .events(
            "?event_type=api_post_event&event_type=deployment_success",
            None,
        )
        .await;
    stride.make_events("first", 3).await;
    let before = take(&mut client, 6).await;
    drop(client);
    // Published while the client is away.
    stride.make_events("second", 3).await;
    let mut client = stride
        .events(
            "?event_type=api_post_event&event_type=deployment_success",
            Some(&before.last().unwrap().id),
        )
        .await;
    stride.make_events("third", 3).await;
    let after = take(&mut client, 12).await;
    let seen: Vec<&Event> = before.iter().chain(&after).collect();
    let posted: Vec<&str> = seen
        .iter()
        .filter(|e| e.event == "api_post_event")
        .map(|e| e.id.as_str())
        .collect();
    let all_posted = take(&mut watcher, 9).await;
    assert_eq!(
        posted,
        all_posted.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        "every api_post_event once, in order"
    );
    let ids: Vec<u64> = seen.iter().map(|e| e.id.parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(
        seen.iter()
            .filter(|e| e.event == "deployment_success")
            .count(),
        9
    );
}

#[tokio::test]
async fn a_client_too_far_behind_is_told_what_it_missed() {
    let stride = Stride::start_with(&["--event-ring-size", "20"]).await;
    let mut first = stride.events("?event_type=api_post_event", None).await;
    stride.make_events("many", 10).await;
    let first_post = take(&mut first, 1).await.remove(0);
    let mut behind = stride
        .events("?event_type=api_post_event", Some(&first_post.id))
        .await;
    let told = take(&mut behind, 1).await.remove(0);
    assert_eq!(told.event, "events_missed_event", "whatever the filter");
    let missed: Value = serde_json::from_str(&told.data).unwrap();
    let first_id: u64 = first_post.id.parse().unwrap();
    assert_eq!(missed["firstMissed"], first_id + 1);
    assert_eq!(missed["ringSize"], 20);
    assert_eq!(told.id, missed["lastMissed"].to_string());
    // Then on from the oldest event still held.
    let next = take(&mut behind, 1).await.remove(0);
    assert_eq!(next.event, "api_post_event");
    assert!(next.id.parse::<u64>().unwrap() > missed["lastMissed"].as_u64().unwrap());
}

#[tokio::test]
async fn a_restarted_stride_continues_the_numbering_and_resumes_clients() {
    let mut stride = Stride::start().await;
    let mut client = stride.events("?event_type=api_post_event", None).await;
    stride.make_events("earlier", 2).await;
    let seen = take(&mut client, 2).await;
    stride.make_events("unseen", 1).await;
    drop(client);
    stride.terminate();
    stride.launch().await;
    let mut client = stride
        .events("?event_type=api_post_event", Some(&seen[0].id))
        .await;
    stride.make_events("later", 1).await;
    let resumed = take(&mut client, 3).await;
    let apps: Vec<String> = resumed
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.data).unwrap()["appDefinition"]["id"].to_string())
        .collect();
    assert_eq!(apps, [r#""/earlier-1""#, r#""/unseen-0""#, r#""/later-0""#]);
    assert_eq!(
        resumed[0].id, seen[1].id,
        "the same numbers after the restart"
    );
}

#[tokio::test]
async fn plan_format_full_adds_the_trees_before_and_after() {
    let stride = Stride::start().await;
    stride.make_events("before", 1).await;
    let mut light = stride.events("?event_type=deployment_success", None).await;
    let mut heavy = stride
        .events("?event_type=deployment_success&plan-format=full", None)
        .await;
    stride.make_events("heavy", 1).await;
    let light = take(&mut light, 1).await.remove(0);
    let light: Value = serde_json::from_str(&light.data).unwrap();
    assert!(
        light["plan"].get("original").is_none(),
        "light by default: {light}"
    );
    let heavy = take(&mut heavy, 1).await.remove(0);
    let heavy: Value = serde_json::from_str(&heavy.data).unwrap();
    let plan = &heavy["plan"];
    assert_eq!(plan["id"], light["plan"]["id"]);
    let ids = |tree: &Value| -> Vec<String> {
        tree["apps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&plan["original"]), ["/before-0"], "{plan}");
    assert_eq!(ids(&plan["target"]), ["/before-0", "/heavy-0"], "{plan}");
    assert_eq!(plan["target"]["version"], plan["version"]);
}
