//! The last minutes of a few figures for the dashboard's sparklines: every
//! [`SAMPLE_INTERVAL`], the tasks launched, status updates received and API requests answered
//! since the previous sample, and the requests' latency.

use super::{registry, Name, Unit};
use app::model::MetricSample;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Samples kept: five minutes.
const SAMPLES: usize = 60;

static HISTORY: Mutex<VecDeque<MetricSample>> = Mutex::new(VecDeque::new());

/// The running totals a sample is the difference of.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Totals {
    launches: u64,
    status_updates: u64,
    requests: u64,
    /// Seconds spent answering them.
    latency_sum: f64,
}

fn totals() -> (Totals, f64) {
    let r = registry();
    let requests = r
        .timer(Name::in_unit("http.requests.duration", Unit::Seconds))
        .durations
        .distribution();
    (
        Totals {
            launches: r.counter(Name::new("tasks.launched")).get(),
            status_updates: r.counters_total("mesos.task-updates."),
            requests: requests.count,
            latency_sum: requests.sum,
        },
        requests.quantiles[4],
    )
}

/// The sample between two totals.
fn sample(at_ms: i64, before: Totals, now: Totals, p99_seconds: f64) -> MetricSample {
    let requests = now.requests.saturating_sub(before.requests);
    MetricSample {
        at_ms,
        launches: now.launches.saturating_sub(before.launches),
        status_updates: now.status_updates.saturating_sub(before.status_updates),
        requests,
        latency_mean_ms: if requests == 0 {
            0.0
        } else {
            (now.latency_sum - before.latency_sum) * 1000.0 / requests as f64
        },
        latency_p99_ms: p99_seconds * 1000.0,
    }
}

/// Samples until `shutdown` flips.
pub async fn run(mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut before, _) = totals();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let (now, p99) = totals();
        let taken = sample(chrono::Utc::now().timestamp_millis(), before, now, p99);
        before = now;
        let mut history = HISTORY.lock().unwrap_or_else(|e| e.into_inner());
        if history.len() == SAMPLES {
            history.pop_front();
        }
        history.push_back(taken);
    }
}

/// The samples taken, oldest first.
pub fn samples() -> Vec<MetricSample> {
    HISTORY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_the_difference_of_two_totals() {
        let before = Totals {
            launches: 3,
            status_updates: 10,
            requests: 100,
            latency_sum: 1.0,
        };
        let now = Totals {
            launches: 5,
            status_updates: 16,
            requests: 104,
            latency_sum: 1.02,
        };
        let s = sample(7, before, now, 0.03);
        assert_eq!((s.launches, s.status_updates, s.requests), (2, 6, 4));
        assert!((s.latency_mean_ms - 5.0).abs() < 1e-9);
        assert!((s.latency_p99_ms - 30.0).abs() < 1e-9);
        assert_eq!(sample(7, now, now, 0.0).latency_mean_ms, 0.0, "no requests");
    }
}
