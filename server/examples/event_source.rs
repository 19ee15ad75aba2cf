//! The load of the events benchmark (`server/tests/bench_events.rs`): Stride's REST API with
//! its event bus, journal, SSE streams and callback subscribers, on a SQLite store in a temp
//! dir, publishing synthetic `status_update_event`s at a steady rate. Each event's `message`
//! is `bench <microseconds since the epoch>` of its publication, from which receivers tell
//! how late it arrived.
//!
//! `event_source ADDRESS RATE RING_SIZE STATUS_SHARE`: of every event, `STATUS_SHARE` (0 to 1)
//! are those numbered status updates, the rest `instance_changed_event`s (for readers that
//! filter). It prints `ready` once it serves, starts publishing when its standard input has a
//! line, and runs until killed.

use app::model::{MarathonEvent, TaskState, Timestamp};
use server::events::callbacks::{Callbacks, Settings};
use server::events::journal::journaled_bus;
use std::io::BufRead;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, address, rate, ring, share] = &args[..] else {
        anyhow::bail!("usage: event_source ADDRESS RATE RING_SIZE STATUS_SHARE");
    };
    let share: f64 = share.parse()?;
    let address: SocketAddr = address.parse()?;
    let rate: f64 = rate.parse()?;
    let ring: usize = ring.parse()?;
    let dir = tempfile::tempdir()?;
    let store =
        server::store::Store::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
            .await?;
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let (bus, _journal) = journaled_bus(ring, store.clone(), shutdown.clone()).await?;
    // Kept so that the scheduler waits for Mesos instead of stopping.
    let (_mesos, mesos) = tokio::sync::mpsc::unbounded_channel();
    let (service, _outgoing) = server::service::start(
        Default::default(),
        store.clone(),
        bus.clone(),
        mesos,
        None,
        shutdown.clone(),
    )
    .await?;
    let callbacks = Callbacks::start(
        bus.clone(),
        store,
        Settings {
            request_timeout: Duration::from_secs(10),
            max_backoff: Duration::from_secs(1),
            drop_after: Duration::from_secs(3600),
        },
        &[],
        shutdown,
    )
    .await?;
    let router = server::api::router().with_state(service.with_callbacks(callbacks));
    let listener = tokio::net::TcpListener::bind(address).await?;
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    println!("ready");
    tokio::task::spawn_blocking(|| std::io::stdin().lock().lines().next()).await?;

    let started = Instant::now();
    let mut published = 0u64;
    loop {
        let due = (started.elapsed().as_secs_f64() * rate) as u64;
        if due > published {
            let micros = chrono::Utc::now().timestamp_micros();
            bus.publish((published..due).map(|n| event(n, share, micros)));
            published = due;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The `n`th event: a status update numbered by how many came before it, or another event.
fn event(n: u64, share: f64, micros: i64) -> MarathonEvent {
    let status_updates_before = (n as f64 * share) as u64;
    let timestamp = Timestamp::from_millis(micros / 1000);
    if ((n + 1) as f64 * share) as u64 == status_updates_before {
        return MarathonEvent::InstanceChangedEvent {
            instance_id: format!("bench.other-{n}"),
            condition: "Running".into(),
            run_spec_id: "/bench".into(),
            agent_id: Some("bench-agent".into()),
            host: Some("127.0.0.1".into()),
            run_spec_version: Timestamp::from_millis(0),
            timestamp,
        };
    }
    MarathonEvent::StatusUpdateEvent {
        slave_id: "bench-agent".into(),
        task_id: format!("bench.instance-{status_updates_before}._app.1"),
        task_status: TaskState::Running,
        message: format!("bench {micros}"),
        app_id: "/bench".into(),
        host: "127.0.0.1".into(),
        ip_addresses: Vec::new(),
        ports: vec![31000],
        version: Timestamp::from_millis(0),
        timestamp,
    }
}
