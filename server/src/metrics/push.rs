//! Push reporters: every interval, the whole report to StatsD over UDP and to Graphite over
//! TCP.
//!
//! StatsD datagrams are packed up to 508 bytes (the largest UDP payload that is never
//! fragmented), as Marathon's reporter does. The Graphite connection is opened on the first
//! report and again after it breaks; a report that cannot be sent is logged and skipped.

use super::render::{flat, graphite_lines, statsd_lines};
use super::Report;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;

/// The largest StatsD datagram.
const MAX_DATAGRAM: usize = 508;

/// Where and how often to push.
#[derive(Clone, Debug)]
pub struct PushSettings {
    pub prefix: String,
    pub statsd: Option<SocketAddr>,
    /// DataDog tags added to every StatsD line (`env:prod`).
    pub statsd_tags: Vec<String>,
    pub graphite: Option<SocketAddr>,
    pub interval: Duration,
}

/// Pushes `report()` to the configured sinks every interval until `shutdown` flips.
pub async fn run(
    settings: PushSettings,
    report: impl Fn() -> Report + Send + 'static,
    mut shutdown: watch::Receiver<bool>,
) {
    if settings.statsd.is_none() && settings.graphite.is_none() {
        return;
    }
    let statsd = match settings.statsd {
        Some(target) => match UdpSocket::bind(if target.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        })
        .await
        {
            Ok(socket) => Some((socket, target)),
            Err(e) => {
                tracing::error!(error = %e, "no UDP socket for StatsD; not reporting to it");
                None
            }
        },
        None => None,
    };
    let mut graphite: Option<TcpStream> = None;
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let values = flat(&report(), &settings.prefix);
        if let Some((socket, target)) = &statsd {
            for datagram in pack(&statsd_lines(&values, &settings.statsd_tags)) {
                if let Err(e) = socket.send_to(datagram.as_bytes(), target).await {
                    tracing::warn!(error = %e, %target, "sending metrics to StatsD failed");
                    break;
                }
            }
        }
        if let Some(target) = settings.graphite {
            let epoch = chrono::Utc::now().timestamp();
            let mut text = graphite_lines(&values, epoch).join("\n");
            text.push('\n');
            send_graphite(&mut graphite, target, text.as_bytes()).await;
        }
    }
}

/// Lines joined by newlines into datagrams of at most [`MAX_DATAGRAM`] bytes (a longer line
/// goes alone).
fn pack(lines: &[String]) -> Vec<String> {
    let mut datagrams = Vec::new();
    let mut current = String::new();
    for line in lines {
        if !current.is_empty() && current.len() + 1 + line.len() > MAX_DATAGRAM {
            datagrams.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(line);
    }
    if !current.is_empty() {
        datagrams.push(current);
    }
    datagrams
}

/// Writes to Graphite, connecting first if there is no connection; a failed write drops the
/// connection so that the next report connects again.
async fn send_graphite(connection: &mut Option<TcpStream>, target: SocketAddr, text: &[u8]) {
    if connection.is_none() {
        match TcpStream::connect(target).await {
            Ok(stream) => *connection = Some(stream),
            Err(e) => {
                tracing::warn!(error = %e, %target, "connecting to Graphite failed; trying again at the next report");
                return;
            }
        }
    }
    if let Some(stream) = connection {
        if let Err(e) = stream.write_all(text).await {
            tracing::warn!(error = %e, %target, "sending metrics to Graphite failed; reconnecting at the next report");
            *connection = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_stay_under_the_unfragmented_size() {
        let lines: Vec<String> = (0..100)
            .map(|i| format!("marathon.metric.{i}:1|g"))
            .collect();
        let datagrams = pack(&lines);
        assert!(datagrams.len() > 1);
        assert!(datagrams.iter().all(|d| d.len() <= MAX_DATAGRAM));
        let back: Vec<&str> = datagrams.iter().flat_map(|d| d.split('\n')).collect();
        assert_eq!(back, lines.iter().map(String::as_str).collect::<Vec<_>>());
    }
}
