//! Health checks the built-in agent runs next to a task, as Mesos' executors do for
//! `TaskInfo.health_check`: a command in the task's sandbox and environment, an HTTP GET or a TCP
//! connection to the task's port on 127.0.0.1.
//!
//! Mesos' rules: the first check after `delay`, then one per `interval`; failures before the
//! first success are ignored during `grace`; every change of health is reported (as TASK_RUNNING
//! with `healthy` set); after `consecutive_failures` failures in a row (0: never) the task is
//! killed. The check's definition is part of the launch, kept in the sandbox's `task.json`, so a
//! re-adopted task is checked again after a restart of Stride.

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckKind {
    Command {
        shell: String,
    },
    Http {
        port: u16,
        path: String,
        https: bool,
    },
    Tcp {
        port: u16,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckSpec {
    pub kind: CheckKind,
    #[serde(with = "super::agent::duration_ms")]
    pub delay: Duration,
    #[serde(with = "super::agent::duration_ms")]
    pub interval: Duration,
    #[serde(with = "super::agent::duration_ms")]
    pub timeout: Duration,
    #[serde(with = "super::agent::duration_ms")]
    pub grace: Duration,
    pub consecutive_failures: u32,
}

/// What the checks of one task say, for the agent to pass on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Health changed.
    Healthy(bool),
    /// Too many failures in a row: kill the task.
    Kill,
}

/// The state of a task's checks between two probes (Mesos' health checker).
#[derive(Debug, Default)]
struct Tracker {
    healthy: Option<bool>,
    succeeded_once: bool,
    failures: u32,
}

impl Tracker {
    fn record(&mut self, spec: &HealthCheckSpec, ok: bool, in_grace: bool) -> Vec<Verdict> {
        let mut out = Vec::new();
        if ok {
            self.succeeded_once = true;
            self.failures = 0;
            if self.healthy != Some(true) {
                self.healthy = Some(true);
                out.push(Verdict::Healthy(true));
            }
            return out;
        }
        if !self.succeeded_once && in_grace {
            return out;
        }
        self.failures += 1;
        if self.healthy != Some(false) {
            self.healthy = Some(false);
            out.push(Verdict::Healthy(false));
        }
        if spec.consecutive_failures > 0 && self.failures >= spec.consecutive_failures {
            out.push(Verdict::Kill);
        }
        out
    }
}

/// Checks a task until `running` says it no longer runs (or a kill is asked for), reporting
/// each verdict through `report`.
pub async fn run(
    spec: HealthCheckSpec,
    sandbox: &Path,
    env: Vec<(String, String)>,
    running: impl Fn() -> bool,
    report: impl Fn(Verdict),
) {
    let started = Instant::now();
    let mut tracker = Tracker::default();
    tokio::time::sleep(spec.delay).await;
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .ok();
    while running() {
        let ok = match &spec.kind {
            CheckKind::Command { shell } => command(shell, sandbox, &env, spec.timeout).await,
            CheckKind::Tcp { port } => matches!(
                tokio::time::timeout(
                    spec.timeout,
                    tokio::net::TcpStream::connect(("127.0.0.1", *port))
                )
                .await,
                Ok(Ok(_))
            ),
            CheckKind::Http { port, path, https } => {
                let scheme = if *https { "https" } else { "http" };
                let url = format!("{scheme}://127.0.0.1:{port}{path}");
                match &client {
                    Some(client) => client
                        .get(&url)
                        .timeout(spec.timeout)
                        .send()
                        .await
                        .is_ok_and(|r| (200..400).contains(&r.status().as_u16())),
                    None => false,
                }
            }
        };
        let in_grace = started.elapsed() < spec.grace;
        for verdict in tracker.record(&spec, ok, in_grace) {
            report(verdict);
            if verdict == Verdict::Kill {
                return;
            }
        }
        tokio::time::sleep(spec.interval.max(Duration::from_millis(100))).await;
    }
}

/// Runs a check command with `/bin/sh -c` in the sandbox, in its own process group, killed
/// with its group when it outlasts `timeout`.
async fn command(shell: &str, sandbox: &Path, env: &[(String, String)], timeout: Duration) -> bool {
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(shell)
        .current_dir(sandbox)
        .env("MESOS_SANDBOX", sandbox)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let Ok(mut child) = cmd.spawn() else {
        return false;
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status.success(),
        Ok(Err(_)) => false,
        Err(_) => {
            if let Some(pid) = child.id() {
                // SAFETY: kill(2) of the check's own process group.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
            let _ = child.wait().await;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(failures: u32) -> HealthCheckSpec {
        HealthCheckSpec {
            kind: CheckKind::Tcp { port: 1 },
            delay: Duration::ZERO,
            interval: Duration::ZERO,
            timeout: Duration::ZERO,
            grace: Duration::ZERO,
            consecutive_failures: failures,
        }
    }

    #[test]
    fn health_changes_are_told_once_and_kills_follow_the_threshold() {
        let s = spec(2);
        let mut t = Tracker::default();
        assert_eq!(
            t.record(&s, false, true),
            vec![],
            "ignored in the grace period"
        );
        assert_eq!(t.record(&s, true, true), vec![Verdict::Healthy(true)]);
        assert_eq!(t.record(&s, true, false), vec![]);
        assert_eq!(
            t.record(&s, false, true),
            vec![Verdict::Healthy(false)],
            "the grace ends with a success"
        );
        assert_eq!(t.record(&s, false, false), vec![Verdict::Kill]);
        let mut never = Tracker::default();
        for _ in 0..5 {
            assert!(!never
                .record(&spec(0), false, false)
                .contains(&Verdict::Kill));
        }
    }

    #[tokio::test]
    async fn a_command_check_runs_in_the_sandbox_and_times_out() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ok"), "").unwrap();
        let env = vec![("WANTED".to_string(), "ok".to_string())];
        assert!(
            command(
                "test -f \"$MESOS_SANDBOX/$WANTED\"",
                dir.path(),
                &env,
                Duration::from_secs(5)
            )
            .await
        );
        assert!(!command("exit 3", dir.path(), &env, Duration::from_secs(5)).await);
        let started = std::time::Instant::now();
        assert!(!command("sleep 30", dir.path(), &env, Duration::from_millis(200)).await);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
