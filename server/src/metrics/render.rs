//! A [`Report`] in the formats metrics leave Stride in.
//!
//! The JSON is Dropwizard's as Marathon serves it at `/metrics`; the Prometheus text and the
//! StatsD lines follow Marathon's reporters (names with every character outside
//! `[a-zA-Z0-9_]` as `_` for Prometheus; counters sent as StatsD gauges), with a `# HELP`
//! line per metric added for Prometheus' linter.

use super::{Distribution, Name, Rates, Report, QUANTILES};
use serde_json::{json, Map, Value};
use std::fmt::Write;

/// The registry format version Marathon reports.
const JSON_VERSION: &str = "4.0.0";

/// A finite number for JSON: NaN and infinities are reported as 0, as Marathon does.
fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

fn distribution_json(d: &Distribution, fields: &mut Map<String, Value>) {
    fields.insert("count".into(), json!(d.count));
    fields.insert("max".into(), json!(finite(d.max)));
    fields.insert("mean".into(), json!(finite(d.mean)));
    fields.insert("min".into(), json!(finite(d.min)));
    for ((_, _, key), value) in QUANTILES.iter().zip(d.quantiles) {
        fields.insert((*key).into(), json!(finite(value)));
    }
    fields.insert("stddev".into(), json!(finite(d.stddev)));
}

fn rates_json(r: &Rates, fields: &mut Map<String, Value>) {
    fields.insert("count".into(), json!(r.count));
    fields.insert("m15_rate".into(), json!(finite(r.m15)));
    fields.insert("m1_rate".into(), json!(finite(r.m1)));
    fields.insert("m5_rate".into(), json!(finite(r.m5)));
    fields.insert("mean_rate".into(), json!(finite(r.mean)));
}

/// Marathon's `/metrics` body.
pub fn json(report: &Report, prefix: &str) -> Value {
    let counters: Map<String, Value> = report
        .counters
        .iter()
        .map(|(name, count)| (name.full(prefix, "counter"), json!({ "count": count })))
        .collect();
    let gauges: Map<String, Value> = report
        .gauges
        .iter()
        .map(|(name, value)| {
            (
                name.full(prefix, "gauge"),
                json!({ "value": finite(*value) }),
            )
        })
        .collect();
    let histograms: Map<String, Value> = report
        .histograms
        .iter()
        .map(|(name, d)| {
            let mut fields = Map::new();
            distribution_json(d, &mut fields);
            (name.full(prefix, "histogram"), Value::Object(fields))
        })
        .collect();
    let meters: Map<String, Value> = report
        .meters
        .iter()
        .map(|(name, r)| {
            let mut fields = Map::new();
            rates_json(r, &mut fields);
            fields.insert("units".into(), json!("events/second"));
            (name.full(prefix, "meter"), Value::Object(fields))
        })
        .collect();
    let timers: Map<String, Value> = report
        .timers
        .iter()
        .map(|(name, (d, r))| {
            let mut fields = Map::new();
            distribution_json(d, &mut fields);
            rates_json(r, &mut fields);
            fields.insert("duration_units".into(), json!("seconds"));
            fields.insert("rate_units".into(), json!("calls/second"));
            (name.full(prefix, "timer"), Value::Object(fields))
        })
        .collect();
    json!({
        "version": JSON_VERSION,
        "counters": counters,
        "gauges": gauges,
        "histograms": histograms,
        "meters": meters,
        "timers": timers,
    })
}

/// A name as Prometheus allows it.
fn prometheus_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `# HELP` and `# TYPE` for a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn prometheus_summary(out: &mut String, name: &str, original: &str, d: &Distribution) {
    family(out, name, "summary", &format!("{original} (distribution)"));
    for ((_, label, _), value) in QUANTILES.iter().zip(d.quantiles) {
        let _ = writeln!(out, "{name}{{quantile=\"{label}\"}} {}", finite(value));
    }
    let _ = writeln!(out, "{name}_count {}", d.count);
    for (suffix, value) in [
        ("min", d.min),
        ("mean", d.mean),
        ("max", d.max),
        ("stddev", d.stddev),
    ] {
        let gauge = format!("{name}_{suffix}");
        family(out, &gauge, "gauge", &format!("{original} ({suffix})"));
        let _ = writeln!(out, "{gauge} {}", finite(value));
    }
}

fn prometheus_rates(out: &mut String, name: &str, original: &str, r: &Rates) {
    for (suffix, value) in [
        ("mean_rate", r.mean),
        ("m1_rate", r.m1),
        ("m5_rate", r.m5),
        ("m15_rate", r.m15),
    ] {
        let gauge = format!("{name}_{suffix}");
        family(
            out,
            &gauge,
            "gauge",
            &format!("{original} ({suffix}, per second)"),
        );
        let _ = writeln!(out, "{gauge} {}", finite(value));
    }
}

/// The Prometheus text exposition (format 0.0.4), family by family with a blank line after
/// each, as Marathon writes it.
pub fn prometheus(report: &Report, prefix: &str) -> String {
    let mut out = String::new();
    let mut each = |kind: &str, name: &Name, write: &mut dyn FnMut(&mut String, &str, &str)| {
        let original = name.full(prefix, kind);
        let sanitized = prometheus_name(&original);
        write(&mut out, &sanitized, &original);
        out.push('\n');
    };
    for (name, value) in &report.gauges {
        each("gauge", name, &mut |out, n, original| {
            family(out, n, "gauge", original);
            let _ = writeln!(out, "{n} {}", finite(*value));
        });
    }
    for (name, count) in &report.counters {
        each("counter", name, &mut |out, n, original| {
            family(out, n, "counter", original);
            let _ = writeln!(out, "{n} {count}");
        });
    }
    for (name, d) in &report.histograms {
        each("histogram", name, &mut |out, n, original| {
            prometheus_summary(out, n, original, d)
        });
    }
    for (name, r) in &report.meters {
        each("meter", name, &mut |out, n, original| {
            let count = format!("{n}_count");
            family(out, &count, "gauge", &format!("{original} (count)"));
            let _ = writeln!(out, "{count} {}", r.count);
            prometheus_rates(out, n, original, r);
        });
    }
    for (name, (d, r)) in &report.timers {
        each("timer", name, &mut |out, n, original| {
            prometheus_summary(out, n, original, d);
            prometheus_rates(out, n, original, r);
        });
    }
    out
}

/// `(name, value)` pairs as the push reporters send them: a gauge per value, histograms and
/// timers split into `.count`, `.min`, `.mean`, `.p50` … `.stddev`, meters into `.count` and
/// their rates.
pub fn flat(report: &Report, prefix: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (name, value) in &report.gauges {
        out.push((name.full(prefix, "gauge"), finite(*value)));
    }
    for (name, count) in &report.counters {
        out.push((name.full(prefix, "counter"), *count as f64));
    }
    let distribution = |out: &mut Vec<(String, f64)>, base: &str, d: &Distribution| {
        out.push((format!("{base}.count"), d.count as f64));
        out.push((format!("{base}.min"), finite(d.min)));
        out.push((format!("{base}.mean"), finite(d.mean)));
        for ((_, _, key), value) in QUANTILES.iter().zip(d.quantiles) {
            out.push((format!("{base}.{key}"), finite(value)));
        }
        out.push((format!("{base}.max"), finite(d.max)));
        out.push((format!("{base}.stddev"), finite(d.stddev)));
    };
    let rates = |out: &mut Vec<(String, f64)>, base: &str, r: &Rates, with_count: bool| {
        if with_count {
            out.push((format!("{base}.count"), r.count as f64));
        }
        out.push((format!("{base}.mean_rate"), finite(r.mean)));
        out.push((format!("{base}.m1_rate"), finite(r.m1)));
        out.push((format!("{base}.m5_rate"), finite(r.m5)));
        out.push((format!("{base}.m15_rate"), finite(r.m15)));
    };
    for (name, d) in &report.histograms {
        distribution(&mut out, &name.full(prefix, "histogram"), d);
    }
    for (name, r) in &report.meters {
        rates(&mut out, &name.full(prefix, "meter"), r, true);
    }
    for (name, (d, r)) in &report.timers {
        let base = name.full(prefix, "timer");
        distribution(&mut out, &base, d);
        rates(&mut out, &base, r, false);
    }
    out
}

/// StatsD gauge lines (`name:value|g`), with DataDog's tags (`|#k:v,…`) when there are any.
pub fn statsd_lines(values: &[(String, f64)], tags: &[String]) -> Vec<String> {
    let suffix = if tags.is_empty() {
        String::new()
    } else {
        format!("|#{}", tags.join(","))
    };
    values
        .iter()
        .map(|(name, value)| format!("{name}:{value}|g{suffix}"))
        .collect()
}

/// Graphite plaintext lines (`name value epoch-seconds`).
pub fn graphite_lines(values: &[(String, f64)], epoch_seconds: i64) -> Vec<String> {
    values
        .iter()
        .map(|(name, value)| format!("{name} {value} {epoch_seconds}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Registry, Unit};
    use std::time::Duration;

    fn sample() -> Report {
        let registry = Registry::default();
        registry.counter(Name::new("tasks.launched")).add(3);
        registry.meter(Name::new("http.responses.2xx.rate")).mark(2);
        registry
            .timer(Name::in_unit("http.requests.duration", Unit::Seconds))
            .record(Duration::from_millis(20));
        registry.histogram(Name::new("sizes")).record(5.0);
        registry.report(vec![(Name::new("apps.active"), 2.0)])
    }

    #[test]
    fn json_has_marathons_shape() {
        let body = json(&sample(), "marathon");
        assert_eq!(body["version"], "4.0.0");
        assert_eq!(
            body["counters"]["marathon.tasks.launched.counter"]["count"],
            3
        );
        assert_eq!(body["gauges"]["marathon.apps.active.gauge"]["value"], 2.0);
        let meter = &body["meters"]["marathon.http.responses.2xx.rate.meter"];
        assert_eq!(meter["units"], "events/second");
        assert_eq!(meter["count"], 2);
        let timer = &body["timers"]["marathon.http.requests.duration.timer.seconds"];
        assert_eq!(timer["duration_units"], "seconds");
        assert_eq!(timer["rate_units"], "calls/second");
        assert_eq!(timer["p99"], 0.02);
        for key in [
            "count", "min", "mean", "max", "p50", "p75", "p95", "p98", "p99", "p999", "stddev",
        ] {
            assert!(
                body["histograms"]["marathon.sizes.histogram"][key].is_number(),
                "{key}"
            );
        }
    }

    #[test]
    fn prometheus_names_and_families() {
        let text = prometheus(&sample(), "marathon");
        assert!(
            text.contains(
                "# TYPE marathon_apps_active_gauge gauge\nmarathon_apps_active_gauge 2\n\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "# TYPE marathon_tasks_launched_counter counter\nmarathon_tasks_launched_counter 3\n"
        ));
        assert!(text
            .contains("marathon_http_requests_duration_timer_seconds{quantile=\"0.99\"} 0.02\n"));
        assert!(text.contains("marathon_http_requests_duration_timer_seconds_count 1\n"));
        assert!(text.contains("marathon_http_responses_2xx_rate_meter_m1_rate "));
        assert!(
            text.lines().filter(|l| l.starts_with("# TYPE")).count()
                == text.lines().filter(|l| l.starts_with("# HELP")).count()
        );
    }

    #[test]
    fn push_lines() {
        let values = flat(&sample(), "stride");
        assert!(values.contains(&("stride.tasks.launched.counter".into(), 3.0)));
        assert!(values
            .iter()
            .any(|(n, _)| n == "stride.http.requests.duration.timer.seconds.p99"));
        let lines = statsd_lines(&values[..1], &["env:test".into()]);
        assert_eq!(lines, ["stride.apps.active.gauge:2|g|#env:test"]);
        assert_eq!(
            graphite_lines(&values[..1], 7),
            ["stride.apps.active.gauge 2 7"]
        );
    }
}
