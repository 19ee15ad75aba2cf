//! A TCP gate in front of a server (Postgres, here) that a test opens and shuts: the
//! network between one Stride and its store, made controllable on loopback.
//!
//! - [`Mode::Open`]: bytes pass.
//! - [`Mode::Closed`]: every connection is cut and new ones refused at once, as when the
//!   server is stopped.
//! - [`Mode::Blackhole`]: connections stay open but nothing passes either way, as when the
//!   network between the two drops packets: the server sees a peer that is still there.

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Open,
    Closed,
    Blackhole,
}

pub struct Gate {
    pub port: u16,
    mode: Arc<watch::Sender<Mode>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Gate {
    /// A gate on a free loopback port, open, in front of `upstream`.
    pub async fn start(upstream: SocketAddr) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("address").port();
        let (mode, _) = watch::channel(Mode::Open);
        let mode = Arc::new(mode);
        let modes = mode.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mode = modes.subscribe();
                tokio::spawn(carry(client, upstream, mode));
            }
        });
        Gate {
            port,
            mode,
            accepting,
        }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// `url` (a `postgres://…@HOST:PORT/DB` URL) with this gate's address instead.
    pub fn url_for(&self, url: &str) -> String {
        let (scheme_user, rest) = url.split_once('@').expect("a URL with a user");
        let (_, db) = rest.split_once('/').expect("a URL with a database");
        format!("{scheme_user}@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.accepting.abort();
        self.mode.send_replace(Mode::Closed);
    }
}

/// The address of a `postgres://…@HOST:PORT/DB` URL.
pub fn address_of(url: &str) -> SocketAddr {
    let (_, rest) = url.split_once('@').expect("a URL with a user");
    let (host_port, _) = rest.split_once('/').expect("a URL with a database");
    host_port.parse().expect("HOST:PORT with an IP")
}

/// Waits while the gate is blackholed; whether it is open then.
async fn open_after_dark(mode: &mut watch::Receiver<Mode>) -> bool {
    mode.wait_for(|m| *m != Mode::Blackhole)
        .await
        .is_ok_and(|m| *m == Mode::Open)
}

async fn carry(client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    // A blackholed connection is held, not forwarded, until the gate opens or closes.
    if !open_after_dark(&mut mode).await {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        () = pump(client_read, server_write, mode.clone()) => {}
        () = pump(server_read, client_write, mode) => {}
    }
}

/// Copies bytes while the gate is open, holds them while it is blackholed, and returns (the
/// connection cut) when it closes or either side ends.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        if !open_after_dark(&mut mode).await {
            return;
        }
        tokio::select! {
            read = from.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if *mode.borrow() == Mode::Closed {
                        return;
                    }
                    // Bytes read as the gate went dark are held until it opens again.
                    if !open_after_dark(&mut mode).await {
                        return;
                    }
                    if to.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            },
            changed = mode.changed() => {
                if changed.is_err() || *mode.borrow() == Mode::Closed {
                    return;
                }
            }
        }
    }
}
