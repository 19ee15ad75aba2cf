//! `/v2/eventSubscriptions`: HTTP callbacks that arrive in order and complete after a
//! subscriber's failures, that a slow subscriber does not hold up, that stop on unsubscribe
//! and that survive a restart of Stride.

mod common;

use axum::extract::State;
use axum::http::StatusCode;
use common::{eventually, Stride};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A callback receiver on loopback: records every event it accepts, and can be told to fail
/// or to answer slowly.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Value>>>,
    /// Requests still to be answered with a 500.
    failures: Arc<AtomicUsize>,
    /// Requests answered with a 500 so far.
    failed: Arc<AtomicUsize>,
    delay: Duration,
    /// Requests whose body was an array of events.
    batches: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(self) -> (Receiver, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/callback", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/callback", axum::routing::post(receive))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (self, url)
    }

    fn failing(n: usize) -> Receiver {
        let receiver = Receiver::default();
        receiver.failures.store(n, Ordering::SeqCst);
        receiver
    }

    fn events(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }

    fn types(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e["eventType"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

async fn receive(State(receiver): State<Receiver>, body: String) -> StatusCode {
    tokio::time::sleep(receiver.delay).await;
    let failing = receiver
        .failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        receiver.failed.fetch_add(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let body: Value = serde_json::from_str(&body).unwrap();
    let mut received = receiver.received.lock().unwrap();
    match body {
        Value::Array(events) => {
            receiver.batches.fetch_add(1, Ordering::SeqCst);
            received.extend(events);
        }
        event => received.push(event),
    }
    StatusCode::OK
}

async fn subscribe(stride: &Stride, url: &str) -> Value {
    let (status, body) = stride
        .post(&format!("/v2/eventSubscriptions?callbackUrl={url}"), "")
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The ids of the apps whose `api_post_event`s arrived, in arrival order.
fn posted_apps(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["eventType"] == "api_post_event")
        .map(|e| e["appDefinition"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn events_arrive_in_order_and_complete_after_the_subscriber_recovers() {
    let stride = Stride::start().await;
    let (receiver, url) = Receiver::failing(4).start().await;
    let subscribed = subscribe(&stride, &url).await;
    assert_eq!(subscribed["eventType"], "subscribe_event");
    assert_eq!(subscribed["callbackUrl"], url.as_str());
    assert_eq!(subscribed["clientIp"], "127.0.0.1");
    let (_, list) = stride.get("/v2/eventSubscriptions").await;
    assert_eq!(list, json!({ "callbackUrls": [url] }));
    // Subscribing again changes nothing.
    subscribe(&stride, &url).await;

    stride.make_events("ordered", 5).await;
    let (_, status) = stride.get("/stride/v1/event-subscribers").await;
    assert_eq!(status[0]["callbackUrl"], url.as_str());

    let expected: Vec<String> = (0..5).map(|i| format!("/ordered-{i}")).collect();
    eventually("every event after the failures", || async {
        (posted_apps(&receiver.events()) == expected).then_some(())
    })
    .await;
    assert_eq!(receiver.failed.load(Ordering::SeqCst), 4);
    let types = receiver.types();
    assert_eq!(types[0], "subscribe_event", "the subscriber's first event");
    assert_eq!(
        types.iter().filter(|t| *t == "subscribe_event").count(),
        2,
        "both subscriptions were published, each once: {types:?}"
    );
    eventually("the backlog emptied", || async {
        let (_, status) = stride.get("/stride/v1/event-subscribers").await;
        (status[0]["backlog"] == 0 && status[0]["failedAttempts"] == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_slow_subscriber_does_not_hold_up_another_and_unsubscribing_stops_delivery() {
    let stride = Stride::start().await;
    let (slow, slow_url) = Receiver {
        delay: Duration::from_secs(3),
        ..Receiver::default()
    }
    .start()
    .await;
    let (fast, fast_url) = Receiver::default().start().await;
    subscribe(&stride, &slow_url).await;
    subscribe(&stride, &fast_url).await;
    stride.make_events("brisk", 4).await;
    let expected: Vec<String> = (0..4).map(|i| format!("/brisk-{i}")).collect();
    // Twenty-odd events: the slow subscriber takes a minute for them, the fast one moments.
    tokio::time::timeout(Duration::from_secs(10), async {
        while posted_apps(&fast.events()) != expected {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the fast subscriber was held up");
    assert!(slow.events().len() < 5, "{:?}", slow.types());
    let (_, status) = stride.get("/stride/v1/event-subscribers").await;
    let slow_status = status
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["callbackUrl"] == slow_url.as_str())
        .unwrap();
    assert!(slow_status["backlog"].as_u64().unwrap() > 10, "{status}");

    let (status, body) = stride
        .delete(&format!("/v2/eventSubscriptions?callbackUrl={fast_url}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["eventType"], "unsubscribe_event");
    let (_, list) = stride.get("/v2/eventSubscriptions").await;
    assert_eq!(list, json!({ "callbackUrls": [slow_url] }));
    let before = fast.events().len();
    stride.make_events("after", 2).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fast.events().len(), before, "{:?}", fast.types());
}

#[tokio::test]
async fn subscriptions_survive_a_restart_and_missed_deliveries_are_sent_after_it() {
    let mut stride = Stride::start().await;
    // Down for the whole first run (it keeps failing until well after the restart).
    let (receiver, url) = Receiver::failing(usize::MAX).start().await;
    subscribe(&stride, &url).await;
    stride.make_events("before", 3).await;
    eventually("a failed attempt", || async {
        (receiver.failed.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    stride.terminate();
    receiver.failures.store(0, Ordering::SeqCst);
    stride.launch().await;
    let (_, list) = stride.get("/v2/eventSubscriptions").await;
    assert_eq!(list, json!({ "callbackUrls": [url] }));
    stride.make_events("after", 1).await;
    let expected = ["/before-0", "/before-1", "/before-2", "/after-0"];
    eventually("the events of both runs, in order", || async {
        (posted_apps(&receiver.events()) == expected).then_some(())
    })
    .await;
    assert_eq!(
        receiver.types()[0],
        "subscribe_event",
        "{:?}",
        receiver.types()
    );
}

#[tokio::test]
async fn a_subscriber_that_stays_down_is_shown_then_dropped() {
    let stride = Stride::start_with(&[
        "--event-subscriber-drop-after-seconds",
        "3",
        "--event-callback-max-backoff-seconds",
        "0.5",
    ])
    .await;
    // Nothing listens on a port just closed.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/gone", listener.local_addr().unwrap())
    };
    let mut events = stride.events("?event_type=unsubscribe_event", None).await;
    subscribe(&stride, &dead).await;
    let failing = eventually("the failures shown", || async {
        let (_, status) = stride.get("/stride/v1/event-subscribers").await;
        status[0]["failingSince"]
            .is_string()
            .then(|| status[0].clone())
    })
    .await;
    assert!(failing["lastError"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(failing["dropsAt"].is_string());
    assert!(failing["backlog"].as_u64().unwrap() >= 1, "{failing}");
    let dropped = tokio::time::timeout(Duration::from_secs(15), async {
        use futures::StreamExt;
        events.next().await.expect("an event")
    })
    .await
    .expect("the subscriber was not dropped");
    let dropped: Value = serde_json::from_str(&dropped.data).unwrap();
    assert_eq!(dropped["callbackUrl"], dead.as_str());
    let (_, list) = stride.get("/v2/eventSubscriptions").await;
    assert_eq!(list, json!({ "callbackUrls": [] }));
}

#[tokio::test]
async fn bad_urls_are_refused_and_callbacks_can_be_turned_off() {
    let stride = Stride::start().await;
    for bad in ["not a url", "ftp://127.0.0.1/x", ""] {
        let (status, body) = stride
            .post(&format!("/v2/eventSubscriptions?callbackUrl={bad}"), "")
            .await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["details"][0]["path"], "/callbackUrl", "{body}");
    }
    let (status, _) = stride.post("/v2/eventSubscriptions", "").await;
    assert_eq!(status, 422);
    let (_, list) = stride.get("/v2/eventSubscriptions").await;
    assert_eq!(list, json!({ "callbackUrls": [] }), "nothing half-written");

    let off = Stride::start_with(&["--disable-event-callbacks"]).await;
    let (status, body) = off.get("/v2/eventSubscriptions").await;
    assert_eq!(status, 400);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("--event_subscriber http_callback"));
}

#[tokio::test]
async fn a_batch_subscriber_is_sent_arrays_of_events_in_order() {
    let stride = Stride::start().await;
    // Slow, so that events pile up behind each request.
    let (receiver, url) = Receiver {
        delay: Duration::from_millis(300),
        ..Receiver::default()
    }
    .start()
    .await;
    let (status, _) = stride
        .post(
            &format!("/v2/eventSubscriptions?callbackUrl={url}&batch=true"),
            "",
        )
        .await;
    assert_eq!(status, 200);
    stride.make_events("batched", 6).await;
    let expected: Vec<String> = (0..6).map(|i| format!("/batched-{i}")).collect();
    eventually("every event, in order", || async {
        (posted_apps(&receiver.events()) == expected).then_some(())
    })
    .await;
    let requests = receiver.batches.load(Ordering::SeqCst);
    assert!(
        requests < receiver.events().len() / 2,
        "{requests} requests for {} events",
        receiver.events().len()
    );
    let (_, status) = stride.get("/stride/v1/event-subscribers").await;
    assert_eq!(status[0]["batch"], true);
}
