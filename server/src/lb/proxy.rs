//! The balancer's sockets: one TCP listener per service port, each connection forwarded to
//! the backend in the rotation with the fewest open connections (ties taken in turn); UDP
//! ports are relayed per client by [`super::udp`]. A
//! backend that refuses or does not answer within [`CONNECT_TIMEOUT`] is skipped for that
//! connection and the next is tried. A new [`RouteTable`] is applied in place: listeners of
//! ports that stay keep listening, removed ports stop accepting, and established connections
//! are never touched (each runs in a task of its own until one side closes).

use super::routes::{Backend, Listen, Rotation, Route, RouteTable};
use app::model::Protocol;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a backend has to accept a connection before the next one is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a port that could not be bound waits before it is tried again.
const BIND_RETRY: Duration = Duration::from_secs(10);

/// How a backend's host is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Every agent is this machine (the built-in master): the task listens on loopback.
    Loopback,
    /// The agent's hostname is looked up.
    Hostname,
}

/// Open connections (or UDP sessions) per task, shared by a listener and its connections.
#[derive(Default)]
pub(super) struct Open(Mutex<HashMap<String, usize>>);

impl Open {
    fn count(&self, task_id: &str) -> usize {
        self.lock().get(task_id).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One open connection to a task: counted while it lives.
pub(super) struct Counted {
    open: Arc<Open>,
    task_id: String,
}

impl Counted {
    pub(super) fn new(open: Arc<Open>, task_id: &str) -> Counted {
        *open.lock().entry(task_id.to_string()).or_default() += 1;
        Counted {
            open,
            task_id: task_id.to_string(),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut open = self.open.lock();
        if let Some(n) = open.get_mut(&self.task_id) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.task_id);
            }
        }
    }
}

struct Listening {
    backends: watch::Sender<Arc<Vec<Backend>>>,
    accepting: JoinHandle<()>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// The listeners for one route table at a time.
pub struct Balancer {
    address: IpAddr,
    reach: Reach,
    listening: HashMap<Listen, Listening>,
    /// Addresses that could not be bound, with why and when it was last tried.
    refused: BTreeMap<Listen, (String, Instant)>,
}

impl Balancer {
    pub fn new(address: IpAddr, reach: Reach) -> Balancer {
        Balancer {
            address,
            reach,
            listening: HashMap::new(),
            refused: BTreeMap::new(),
        }
    }

    /// Listens on every address of `table`, routing to its backends, and on nothing else.
    pub async fn apply(&mut self, table: &RouteTable) {
        self.listening.retain(|key, _| table.contains_key(key));
        self.refused.retain(|key, _| table.contains_key(key));
        for (key, route) in table {
            if let Some(listening) = self.listening.get(key) {
                listening.backends.send_if_modified(|current| {
                    let changed = **current != route.backends;
                    if changed {
                        *current = Arc::new(route.backends.clone());
                    }
                    changed
                });
                continue;
            }
            if self
                .refused
                .get(key)
                .is_some_and(|(_, at)| at.elapsed() < BIND_RETRY)
            {
                continue;
            }
            let ip = key.ip.unwrap_or(self.address);
            match self.listen(ip, key.protocol, key.port, route).await {
                Ok(listening) => {
                    self.refused.remove(key);
                    self.listening.insert(*key, listening);
                }
                Err(e) => {
                    tracing::warn!(
                        "the load balancer cannot listen on {ip}:{} for {}: {e}",
                        key.port,
                        route.owner
                    );
                    self.refused.insert(*key, (e.to_string(), Instant::now()));
                }
            }
        }
    }

    async fn listen(
        &self,
        ip: IpAddr,
        protocol: Protocol,
        port: u32,
        route: &Route,
    ) -> std::io::Result<Listening> {
        let port = u16::try_from(port).map_err(std::io::Error::other)?;
        let address = SocketAddr::new(ip, port);
        let (backends, watched) = watch::channel(Arc::new(route.backends.clone()));
        let open = Arc::new(Open::default());
        let accepting = match protocol {
            Protocol::Tcp => {
                let listener = TcpListener::bind(address).await?;
                tokio::spawn(accept(listener, watched, open, self.reach))
            }
            Protocol::Udp => {
                let socket = UdpSocket::bind(address).await?;
                tokio::spawn(super::udp::relay(socket, watched, open, self.reach))
            }
        };
        Ok(Listening {
            backends,
            accepting,
        })
    }
}

async fn accept(
    listener: TcpListener,
    backends: watch::Receiver<Arc<Vec<Backend>>>,
    open: Arc<Open>,
    reach: Reach,
) {
    let turn = Arc::new(AtomicUsize::new(0));
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                tracing::warn!("the load balancer could not accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let candidates = in_order(
            &backends.borrow(),
            &open,
            turn.fetch_add(1, Ordering::Relaxed),
        );
        tokio::spawn(forward(client, candidates, open.clone(), reach));
    }
}

/// The backends in the rotation, fewest open connections first; among equals, starting at
/// `turn`, so that they take turns.
pub(super) fn in_order(backends: &[Backend], open: &Open, turn: usize) -> Vec<Backend> {
    let mut candidates: Vec<Backend> = backends
        .iter()
        .filter(|b| b.rotation == Rotation::In)
        .cloned()
        .collect();
    if !candidates.is_empty() {
        let shift = turn % candidates.len();
        candidates.rotate_left(shift);
    }
    candidates.sort_by_key(|b| open.count(&b.task_id));
    candidates
}

async fn forward(mut client: TcpStream, candidates: Vec<Backend>, open: Arc<Open>, reach: Reach) {
    for backend in &candidates {
        let Some(address) = address_of(backend, reach).await else {
            continue;
        };
        let upstream =
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
                Ok(Ok(upstream)) => upstream,
                Ok(Err(e)) => {
                    tracing::debug!("backend {} at {address} refused: {e}", backend.task_id);
                    continue;
                }
                Err(_) => {
                    tracing::debug!("backend {} at {address} timed out", backend.task_id);
                    continue;
                }
            };
        let _counted = Counted::new(open.clone(), &backend.task_id);
        let _ = client.set_nodelay(true);
        let mut upstream = upstream;
        let _ = upstream.set_nodelay(true);
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            tracing::debug!("connection to {} ended: {e}", backend.task_id);
        }
        return;
    }
    tracing::debug!("no backend took a connection; closing it");
}

pub(super) async fn address_of(backend: &Backend, reach: Reach) -> Option<SocketAddr> {
    let port = u16::try_from(backend.port).ok()?;
    match reach {
        Reach::Loopback => Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)),
        Reach::Hostname => tokio::net::lookup_host((backend.host.as_str(), port))
            .await
            .ok()?
            .next(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(id: &str, rotation: Rotation) -> Backend {
        Backend {
            task_id: id.into(),
            host: "h".into(),
            port: 1,
            rotation,
        }
    }

    #[test]
    fn the_least_busy_backend_in_the_rotation_comes_first_and_equals_take_turns() {
        let backends = vec![
            backend("a", Rotation::In),
            backend("b", Rotation::In),
            backend("c", Rotation::Draining),
            backend("d", Rotation::Unhealthy),
        ];
        let open = Arc::new(Open::default());
        let ids = |turn| -> Vec<String> {
            in_order(&backends, &open, turn)
                .into_iter()
                .map(|b| b.task_id)
                .collect()
        };
        assert_eq!(ids(0), ["a", "b"]);
        assert_eq!(ids(1), ["b", "a"]);
        let _busy = Counted::new(open.clone(), "a");
        assert_eq!(ids(0), ["b", "a"], "fewest connections first");
        drop(_busy);
        assert_eq!(open.count("a"), 0);
    }
}
