//! Metrics in Marathon's scheme: `<prefix>.<component…>.<type>[.<unit>]`, Dropwizard's kinds.
//!
//! - this module: the process-wide [`registry`] of counters, gauges, meters, histograms and
//!   timers, get-or-created by name from wherever something is measured, and [`Report`], a
//!   snapshot of all of them plus the gauges computed from the scheduler's state.
//! - [`render`]: the snapshot as Marathon's `/metrics` JSON, the Prometheus text format,
//!   StatsD lines and Graphite lines.
//! - [`push`]: the StatsD (UDP) and Graphite (TCP) reporters.
//! - [`gauges`]: what is counted from a snapshot of the state at report time (apps,
//!   instances and tasks by state, deployments, subscribers, the process' memory and CPU).
//! - [`http`]: the middleware that measures every HTTP request.
//! - [`scheduler`]: counting Mesos inputs and calls, deployments, probes and store commits.
//! - [`history`]: the last minutes of a few figures, sampled for the dashboard's sparklines.

pub mod gauges;
pub mod history;
pub mod http;
pub mod push;
pub mod render;
pub mod scheduler;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Marathon's default name prefix (`--metrics-name-prefix`).
pub const DEFAULT_PREFIX: &str = "marathon";

/// What a metric measures in, appended to its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    Bytes,
    Seconds,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::Seconds => "seconds",
        }
    }
}

/// A metric's name without the prefix and the type: `mesos.offers.incoming`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Name {
    pub path: String,
    pub unit: Option<Unit>,
}

impl Name {
    pub fn new(path: impl Into<String>) -> Name {
        Name {
            path: path.into(),
            unit: None,
        }
    }

    pub fn in_unit(path: impl Into<String>, unit: Unit) -> Name {
        Name {
            path: path.into(),
            unit: Some(unit),
        }
    }

    /// The full name: `marathon.mesos.offers.incoming.counter`.
    pub fn full(&self, prefix: &str, kind: &str) -> String {
        match self.unit {
            Some(unit) => format!("{prefix}.{}.{kind}.{}", self.path, unit.name()),
            None => format!("{prefix}.{}.{kind}", self.path),
        }
    }
}

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (requests in flight, open event streams).
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts one in until the returned guard is dropped.
    pub fn track(self: &Arc<Self>) -> GaugeGuard {
        self.add(1);
        GaugeGuard(self.clone())
    }
}

pub struct GaugeGuard(Arc<Gauge>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

/// Dropwizard's meter: a count and exponentially weighted rates over 1, 5 and 15 minutes,
/// moved on every 5 seconds.
#[derive(Debug)]
pub struct Meter(Mutex<MeterState>);

#[derive(Debug)]
struct MeterState {
    started: Instant,
    last_tick: Instant,
    count: u64,
    uncounted: u64,
    /// m1, m5, m15 in events per second; `None` before the first tick.
    rates: Option<[f64; 3]>,
}

const METER_TICK: Duration = Duration::from_secs(5);
const METER_MINUTES: [f64; 3] = [1.0, 5.0, 15.0];

/// The rates of a meter when it is read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    pub count: u64,
    pub mean: f64,
    pub m1: f64,
    pub m5: f64,
    pub m15: f64,
}

impl Default for Meter {
    fn default() -> Self {
        let now = Instant::now();
        Meter(Mutex::new(MeterState {
            started: now,
            last_tick: now,
            count: 0,
            uncounted: 0,
            rates: None,
        }))
    }
}

impl MeterState {
    fn tick_until(&mut self, now: Instant) {
        while now.duration_since(self.last_tick) >= METER_TICK {
            self.last_tick += METER_TICK;
            let instant = self.uncounted as f64 / METER_TICK.as_secs_f64();
            self.uncounted = 0;
            self.rates = Some(match self.rates {
                None => [instant; 3],
                Some(rates) => {
                    let mut next = rates;
                    for (rate, minutes) in next.iter_mut().zip(METER_MINUTES) {
                        let alpha = 1.0 - (-METER_TICK.as_secs_f64() / 60.0 / minutes).exp();
                        *rate += alpha * (instant - *rate);
                    }
                    next
                }
            });
        }
    }
}

impl Meter {
    fn state(&self) -> std::sync::MutexGuard<'_, MeterState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn mark(&self, n: u64) {
        self.mark_at(n, Instant::now());
    }

    fn mark_at(&self, n: u64, now: Instant) {
        let mut state = self.state();
        state.tick_until(now);
        state.count += n;
        state.uncounted += n;
    }

    pub fn rates(&self) -> Rates {
        self.rates_at(Instant::now())
    }

    fn rates_at(&self, now: Instant) -> Rates {
        let mut state = self.state();
        state.tick_until(now);
        let elapsed = now.duration_since(state.started).as_secs_f64();
        let [m1, m5, m15] = state.rates.unwrap_or_default();
        Rates {
            count: state.count,
            mean: if elapsed > 0.0 {
                state.count as f64 / elapsed
            } else {
                0.0
            },
            m1,
            m5,
            m15,
        }
    }
}

/// The newest samples of a histogram (Dropwizard's sliding-window reservoir).
#[derive(Debug, Default)]
pub struct Histogram(Mutex<Reservoir>);

#[derive(Debug, Default)]
struct Reservoir {
    samples: VecDeque<f64>,
    count: u64,
    /// Of every value ever recorded.
    sum: f64,
}

/// Samples a histogram keeps.
const RESERVOIR: usize = 1028;

/// A histogram when it is read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Distribution {
    pub count: u64,
    /// Of every value ever recorded (not in Marathon's output; the dashboard's means use it).
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub stddev: f64,
    /// p50, p75, p95, p98, p99, p999.
    pub quantiles: [f64; 6],
}

/// The quantiles a [`Distribution`] holds, as Prometheus labels them.
pub const QUANTILES: [(f64, &str, &str); 6] = [
    (0.5, "0.5", "p50"),
    (0.75, "0.75", "p75"),
    (0.95, "0.95", "p95"),
    (0.98, "0.98", "p98"),
    (0.99, "0.99", "p99"),
    (0.999, "0.999", "p999"),
];

impl Histogram {
    pub fn record(&self, value: f64) {
        let mut reservoir = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if reservoir.samples.len() == RESERVOIR {
            reservoir.samples.pop_front();
        }
        reservoir.samples.push_back(value);
        reservoir.count += 1;
        reservoir.sum += value;
    }

    pub fn distribution(&self) -> Distribution {
        let reservoir = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut sorted: Vec<f64> = reservoir.samples.iter().copied().collect();
        let (count, sum) = (reservoir.count, reservoir.sum);
        drop(reservoir);
        Distribution {
            sum,
            ..distribution_of(&mut sorted, count)
        }
    }
}

/// The distribution of `samples` (sorted in place); `count` is every value ever recorded.
fn distribution_of(samples: &mut [f64], count: u64) -> Distribution {
    if samples.is_empty() {
        return Distribution {
            count,
            ..Distribution::default()
        };
    }
    samples.sort_by(f64::total_cmp);
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let variance = if samples.len() > 1 {
        samples.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    let quantile = |q: f64| {
        let rank = (q * n).ceil() as usize;
        samples[rank.clamp(1, samples.len()) - 1]
    };
    Distribution {
        count,
        sum: 0.0,
        min: samples[0],
        max: samples[samples.len() - 1],
        mean,
        stddev: variance.sqrt(),
        quantiles: QUANTILES.map(|(q, _, _)| quantile(q)),
    }
}

/// Durations (in seconds) and their rate.
#[derive(Debug, Default)]
pub struct Timer {
    pub durations: Histogram,
    pub rate: Meter,
}

impl Timer {
    pub fn record(&self, duration: Duration) {
        self.durations.record(duration.as_secs_f64());
        self.rate.mark(1);
    }
}

/// Every metric measured so far, by kind and name.
#[derive(Default)]
pub struct Registry {
    counters: Mutex<BTreeMap<Name, Arc<Counter>>>,
    gauges: Mutex<BTreeMap<Name, Arc<Gauge>>>,
    meters: Mutex<BTreeMap<Name, Arc<Meter>>>,
    histograms: Mutex<BTreeMap<Name, Arc<Histogram>>>,
    timers: Mutex<BTreeMap<Name, Arc<Timer>>>,
}

fn get_or_add<T: Default>(map: &Mutex<BTreeMap<Name, Arc<T>>>, name: Name) -> Arc<T> {
    map.lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(name)
        .or_default()
        .clone()
}

fn all<T>(map: &Mutex<BTreeMap<Name, Arc<T>>>) -> Vec<(Name, Arc<T>)> {
    map.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(name, metric)| (name.clone(), metric.clone()))
        .collect()
}

impl Registry {
    pub fn counter(&self, name: Name) -> Arc<Counter> {
        get_or_add(&self.counters, name)
    }

    pub fn gauge(&self, name: Name) -> Arc<Gauge> {
        get_or_add(&self.gauges, name)
    }

    pub fn meter(&self, name: Name) -> Arc<Meter> {
        get_or_add(&self.meters, name)
    }

    pub fn histogram(&self, name: Name) -> Arc<Histogram> {
        get_or_add(&self.histograms, name)
    }

    pub fn timer(&self, name: Name) -> Arc<Timer> {
        get_or_add(&self.timers, name)
    }

    /// The sum of the counters whose path starts with `prefix`.
    pub fn counters_total(&self, prefix: &str) -> u64 {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(name, _)| name.path.starts_with(prefix))
            .map(|(_, c)| c.get())
            .sum()
    }

    /// Everything measured, read now, with `computed` gauges added.
    pub fn report(&self, computed: Vec<(Name, f64)>) -> Report {
        let mut gauges: BTreeMap<Name, f64> = all(&self.gauges)
            .into_iter()
            .map(|(name, g)| (name, g.get() as f64))
            .collect();
        gauges.extend(computed);
        Report {
            counters: all(&self.counters)
                .into_iter()
                .map(|(name, c)| (name, c.get()))
                .collect(),
            gauges,
            meters: all(&self.meters)
                .into_iter()
                .map(|(name, m)| (name, m.rates()))
                .collect(),
            histograms: all(&self.histograms)
                .into_iter()
                .map(|(name, h)| (name, h.distribution()))
                .collect(),
            timers: all(&self.timers)
                .into_iter()
                .map(|(name, t)| (name, (t.durations.distribution(), t.rate.rates())))
                .collect(),
        }
    }
}

/// Every metric's value at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub counters: BTreeMap<Name, u64>,
    pub gauges: BTreeMap<Name, f64>,
    pub meters: BTreeMap<Name, Rates>,
    pub histograms: BTreeMap<Name, Distribution>,
    /// Durations in seconds, and their rate.
    pub timers: BTreeMap<Name, (Distribution, Rates)>,
}

/// Marathon's counters that dashboards expect even before the first count.
const MARATHON_COUNTERS: [&str; 9] = [
    "tasks.launched",
    "deployments",
    "deployments.dismissed",
    "mesos.calls.revive",
    "mesos.calls.suppress",
    "mesos.offer-operations.launch",
    "mesos.offers.incoming",
    "mesos.offers.used",
    "mesos.offers.declined",
];

/// Registers Marathon's well-known metrics at zero.
pub fn register_marathon_names() {
    let r = registry();
    for path in MARATHON_COUNTERS {
        r.counter(Name::new(path));
    }
    r.counter(Name::in_unit(
        "http.responses.event-stream.size",
        Unit::Bytes,
    ));
    r.gauge(Name::new("http.event-streams.active"));
    gauges::mark_start();
}

/// The process' registry.
pub fn registry() -> &'static Registry {
    static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::default);
    &REGISTRY
}

/// A name component from free text: lower case, anything but letters and digits a dash
/// (`TASK_RUNNING` → `task-running`, `/v2/apps/{*path}` → `v2-apps-path`).
pub fn component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("root");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn meters_move_their_rates_every_five_seconds() {
        let meter = Meter::default();
        let start = meter.state().started;
        meter.mark_at(50, start);
        let before = meter.rates_at(start + Duration::from_secs(1));
        assert_eq!((before.count, before.m1), (50, 0.0), "not ticked yet");
        let after = meter.rates_at(start + Duration::from_secs(5));
        assert_eq!(after.m1, 10.0, "the first tick takes the instant rate");
        let later = meter.rates_at(start + Duration::from_secs(65));
        assert!(
            later.m1 < 10.0 * 0.4,
            "a minute of silence decays m1: {later:?}"
        );
        assert!(later.m15 > later.m5 && later.m5 > later.m1, "{later:?}");
        assert!((later.mean - 50.0 / 65.0).abs() < 1e-9);
    }

    #[test]
    fn names_carry_the_prefix_type_and_unit() {
        assert_eq!(
            Name::in_unit("uptime", Unit::Seconds).full("marathon", "gauge"),
            "marathon.uptime.gauge.seconds"
        );
        assert_eq!(component("TASK_RUNNING"), "task-running");
        assert_eq!(component("/v2/apps/{*path}"), "v2-apps-path");
        assert_eq!(component("/"), "root");
    }

    proptest! {
        #[test]
        fn quantiles_are_ordered_and_within_the_samples(
            mut samples in proptest::collection::vec(0.0f64..1e6, 1..300)
        ) {
            let d = distribution_of(&mut samples, 300);
            prop_assert!(d.min <= d.quantiles[0]);
            prop_assert!(d.quantiles.windows(2).all(|w| w[0] <= w[1]));
            prop_assert!(d.quantiles[5] <= d.max);
            prop_assert!(d.min <= d.mean && d.mean <= d.max);
            prop_assert_eq!(d.count, 300);
        }
    }

    #[test]
    fn the_reservoir_keeps_the_newest_samples() {
        let h = Histogram::default();
        for v in 0..2000 {
            h.record(v as f64);
        }
        let d = h.distribution();
        assert_eq!(d.count, 2000);
        assert_eq!(d.min, (2000 - RESERVOIR) as f64);
        assert_eq!(d.max, 1999.0);
    }
}
