//! Gauges counted at report time: from a snapshot of the scheduler's state, the event bus,
//! the callback subscribers and `/proc/self`.

use super::{component, Name, Unit};
use crate::scheduler::instance::Condition;
use crate::service::{now, Service};
use std::sync::LazyLock;
use std::time::Instant;

/// When this process started, for `uptime`.
static STARTED: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Marks the process' start; called once at startup so that uptime counts from there.
pub fn mark_start() {
    LazyLock::force(&STARTED);
}

pub fn computed(service: &Service) -> Vec<(Name, f64)> {
    let snapshot = service.snapshot();
    let now = now();
    let mut gauges = Vec::new();
    let mut add = |path: &str, value: f64| gauges.push((Name::new(path), value));

    add("apps.active", snapshot.apps.len() as f64);
    add(
        "apps.suspended",
        snapshot.apps.values().filter(|a| a.instances == 0).count() as f64,
    );
    add(
        "apps.deploying",
        snapshot
            .apps
            .keys()
            .filter(|id| snapshot.deployments_of(id).next().is_some())
            .count() as f64,
    );
    add(
        "apps.delayed",
        snapshot
            .backoffs
            .iter()
            .filter(|(_, b)| b.deadline > now)
            .map(|((app, _), _)| app)
            .collect::<std::collections::BTreeSet<_>>()
            .len() as f64,
    );
    // The root group counts, as in Marathon.
    add("groups.active", snapshot.groups.len() as f64 + 1.0);
    add("pods.active", 0.0);
    add("deployments.active", snapshot.deployments.len() as f64);

    // Every condition gets a series, also while no instance is in it.
    let mut by_condition = [0usize; Condition::ALL.len()];
    let mut tasks_by_condition = [0usize; Condition::ALL.len()];
    for instance in snapshot.instances.values() {
        if let Some(i) = Condition::ALL.iter().position(|c| *c == instance.condition) {
            by_condition[i] += 1;
            if instance.placement.is_some() {
                tasks_by_condition[i] += 1;
            }
        }
    }
    for (i, condition) in Condition::ALL.iter().enumerate() {
        match condition {
            Condition::Running => add("instances.running", by_condition[i] as f64),
            Condition::Staging => add("instances.staged", by_condition[i] as f64),
            _ => {}
        }
        let name = component(condition.name());
        add(
            &format!("instances.condition.{name}"),
            by_condition[i] as f64,
        );
        add(
            &format!("tasks.condition.{name}"),
            tasks_by_condition[i] as f64,
        );
    }
    add(
        "instances.unhealthy",
        snapshot
            .health
            .values()
            .filter(|h| {
                h.checks
                    .iter()
                    .any(|c| c.last_failure.is_some() && !c.alive())
            })
            .count() as f64,
    );

    add("events.ring.size", service.events.capacity() as f64);
    add("events.published.newest", service.events.newest() as f64);
    if let Some(callbacks) = &service.callbacks {
        let subscribers = callbacks.status();
        add("events.subscribers.active", subscribers.len() as f64);
        add(
            "events.subscribers.failing",
            subscribers
                .iter()
                .filter(|s| s.failing_since.is_some())
                .count() as f64,
        );
        add(
            "events.subscribers.backlog",
            subscribers.iter().map(|s| s.backlog).sum::<u64>() as f64,
        );
    }

    let uptime = STARTED.elapsed().as_secs_f64();
    gauges.push((Name::in_unit("uptime", Unit::Seconds), uptime));
    gauges.push((
        Name::in_unit("leadership.duration", Unit::Seconds),
        service.leading_since.elapsed().as_secs_f64(),
    ));
    gauges.extend(process());
    gauges
}

/// The process' resident memory, CPU time and threads, from `/proc/self`.
fn process() -> Vec<(Name, f64)> {
    let mut gauges = Vec::new();
    // SAFETY: sysconf has no preconditions.
    let (page, ticks) = unsafe {
        (
            libc::sysconf(libc::_SC_PAGESIZE),
            libc::sysconf(libc::_SC_CLK_TCK),
        )
    };
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
        if let Some(resident) = statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<f64>().ok())
        {
            gauges.push((
                Name::in_unit("process.memory.resident", Unit::Bytes),
                resident * page as f64,
            ));
        }
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |n: usize| fields.get(n).and_then(|v| v.parse::<f64>().ok());
        // utime and stime are fields 14 and 15 of the whole line, num_threads 20.
        if let (Some(user), Some(system)) = (field(11), field(12)) {
            gauges.push((
                Name::in_unit("process.cpu.time", Unit::Seconds),
                (user + system) / ticks.max(1) as f64,
            ));
        }
        if let Some(threads) = field(17) {
            gauges.push((Name::new("process.threads"), threads));
        }
    }
    gauges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_is_measured() {
        let gauges = process();
        let value = |path: &str| {
            gauges
                .iter()
                .find(|(n, _)| n.path == path)
                .map(|(_, v)| *v)
                .unwrap_or_else(|| panic!("no {path}: {gauges:?}"))
        };
        assert!(value("process.memory.resident") > 1e6);
        assert!(value("process.cpu.time") >= 0.0);
        assert!(value("process.threads") >= 1.0);
    }
}
