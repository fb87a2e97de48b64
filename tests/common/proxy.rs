//! A tiny TCP proxy that lets tests cut a connection to Postgres or a broker without touching
//! the shared service.
#![allow(dead_code)] // each test crate uses its own part of it

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

struct Shared {
    upstream: String,
    connections: Mutex<Vec<AbortHandle>>,
    refusing: AtomicBool,
}

pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            connections: Mutex::new(Vec::new()),
            refusing: AtomicBool::new(false),
        });
        let acceptor = tokio::spawn(accept_loop(listener, shared.clone()));
        Proxy {
            addr,
            shared,
            acceptor,
        }
    }

    /// `127.0.0.1:PORT`, to put in the target's URL instead of the broker's.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Drops every live connection, both sides, as a broker restart or network cut would.
    pub fn cut_all(&self) -> usize {
        let handles = std::mem::take(&mut *self.shared.connections.lock().unwrap());
        let live = handles.iter().filter(|h| !h.is_finished()).count();
        handles.iter().for_each(AbortHandle::abort);
        live
    }

    /// While refusing, new connections are accepted and closed at once, as a broker that is down.
    pub fn set_refusing(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
    }

    /// An outage: every live connection dropped, new ones refused until [`Proxy::restore`].
    pub fn cut(&self) {
        self.set_refusing(true);
        self.cut_all();
    }

    pub fn restore(&self) {
        self.set_refusing(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.cut_all();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((client, _)) = listener.accept().await {
        if shared.refusing.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let task = tokio::spawn(pipe(client, shared.upstream.clone()));
        let mut connections = shared.connections.lock().unwrap();
        connections.retain(|h| !h.is_finished());
        connections.push(task.abort_handle());
    }
}

async fn pipe(mut client: TcpStream, upstream: String) {
    if let Ok(mut server) = TcpStream::connect(&upstream).await {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    }
}
