//! UDP service ports: each client (source address) is a session with one backend, chosen as a
//! TCP connection is (fewest sessions first, among the tasks in the rotation). Datagrams from
//! the client go to that backend from a socket of the session's own, and its replies come back
//! from the service port. A session ends after [`IDLE`] without traffic, or when its backend
//! refuses (ICMP port unreachable): the next datagram then picks a backend again.

use super::proxy::{address_of, in_order, Counted, Open, Reach};
use super::routes::Backend;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// How long a session lives without a datagram either way.
const IDLE: Duration = Duration::from_secs(30);
/// The largest datagram relayed.
const MAX_DATAGRAM: usize = 65_535;

type Sessions = Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>>;

/// Relays datagrams arriving on `socket` to the backends, until aborted.
pub(super) async fn relay(
    socket: UdpSocket,
    backends: watch::Receiver<Arc<Vec<Backend>>>,
    open: Arc<Open>,
    reach: Reach,
) {
    let socket = Arc::new(socket);
    let sessions: Sessions = Arc::default();
    let turn = AtomicUsize::new(0);
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, client) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(e) => {
                tracing::debug!("the load balancer's UDP socket: {e}");
                continue;
            }
        };
        let existing = sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&client)
            .cloned();
        let upstream = match existing {
            Some(upstream) => upstream,
            None => {
                let candidates = in_order(
                    &backends.borrow(),
                    &open,
                    turn.fetch_add(1, Ordering::Relaxed),
                );
                let Some((upstream, task_id)) = connect(&candidates, reach).await else {
                    continue;
                };
                let upstream = Arc::new(upstream);
                sessions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(client, upstream.clone());
                tokio::spawn(answer(
                    upstream.clone(),
                    socket.clone(),
                    client,
                    sessions.clone(),
                    Counted::new(open.clone(), &task_id),
                ));
                upstream
            }
        };
        if let Err(e) = upstream.send(&buffer[..n]).await {
            tracing::debug!("a datagram for {client} could not be relayed: {e}");
        }
    }
}

/// A socket connected to the first candidate that resolves.
async fn connect(candidates: &[Backend], reach: Reach) -> Option<(UdpSocket, String)> {
    for backend in candidates {
        let Some(address) = address_of(backend, reach).await else {
            continue;
        };
        let local: SocketAddr = if address.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let Ok(upstream) = UdpSocket::bind(local).await else {
            continue;
        };
        if upstream.connect(address).await.is_ok() {
            return Some((upstream, backend.task_id.clone()));
        }
    }
    None
}

/// Sends the backend's replies to `client` until the session is idle or refused.
async fn answer(
    upstream: Arc<UdpSocket>,
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    sessions: Sessions,
    _counted: Counted,
) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    while let Ok(Ok(n)) = tokio::time::timeout(IDLE, upstream.recv(&mut buffer)).await {
        if socket.send_to(&buffer[..n], client).await.is_err() {
            break;
        }
    }
    sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&client);
}
