//! A TCP proxy between the receiver and a broker, so the suite can cut the connection
//! without touching the shared broker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

pub struct Proxy {
    port: u16,
    refusing: Arc<AtomicBool>,
    connections: Arc<Mutex<JoinSet<()>>>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(port: u16, upstream: &str) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("binding the proxy");
        let refusing = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let acceptor = tokio::spawn(accept(
            listener,
            upstream.to_owned(),
            refusing.clone(),
            connections.clone(),
        ));
        Proxy {
            port,
            refusing,
            connections,
            acceptor,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every live connection dropped; new ones closed at once until [`Proxy::restore`].
    pub async fn cut(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        self.connections.lock().await.abort_all();
    }

    pub fn restore(&self) {
        self.refusing.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        if let Ok(mut connections) = self.connections.try_lock() {
            connections.abort_all();
        }
    }
}

async fn accept(
    listener: TcpListener,
    upstream: String,
    refusing: Arc<AtomicBool>,
    connections: Arc<Mutex<JoinSet<()>>>,
) {
    while let Ok((mut client, _)) = listener.accept().await {
        if refusing.load(Ordering::SeqCst) {
            continue;
        }
        let upstream = upstream.clone();
        let mut connections = connections.lock().await;
        while connections.try_join_next().is_some() {}
        connections.spawn(async move {
            if let Ok(mut server) = TcpStream::connect(&upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    }
}
