//! The HTTP forward target: records every event id it accepts, and can answer 503, go away
//! (connection refused) and come back on the same port. `Backlog::Small` is a server like
//! Python's `http.server`: one connection at a time, closed after each answer, accept
//! backlog 5.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinSet;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backlog {
    /// Concurrent, keep-alive, a backlog of 1024.
    Normal,
    /// Serial, `Connection: close`, a backlog of 5.
    Small,
}

#[derive(Default)]
struct Shared {
    received: Mutex<HashMap<String, u32>>,
    failing: AtomicBool,
}

pub struct Sink {
    addr: SocketAddr,
    backlog: Backlog,
    shared: Arc<Shared>,
    server: Option<JoinSet<()>>,
}

impl Sink {
    pub async fn start(port: u16, backlog: Backlog) -> Sink {
        let mut sink = Sink {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            backlog,
            shared: Arc::default(),
            server: None,
        };
        sink.up();
        sink
    }

    pub fn url(&self) -> String {
        format!("http://{}/events", self.addr)
    }

    /// Listening again (after [`Sink::down`]), answering 200.
    pub fn up(&mut self) {
        self.shared.failing.store(false, Ordering::SeqCst);
        if self.server.is_some() {
            return;
        }
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket.bind(self.addr).expect("binding the sink's port");
        let backlog = match self.backlog {
            Backlog::Normal => 1024,
            Backlog::Small => 5,
        };
        let listener = socket.listen(backlog).expect("listen");
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(listener, self.backlog, self.shared.clone()));
        self.server = Some(tasks);
    }

    /// Up, but every request answered 503 (a target that is overloaded or deploying).
    pub fn fail_with_503(&self) {
        self.shared.failing.store(true, Ordering::SeqCst);
    }

    /// Gone: the listener closed (new connections refused) and every open one dropped.
    pub fn down(&mut self) {
        if let Some(mut tasks) = self.server.take() {
            tasks.abort_all();
        }
    }

    /// How many times each event id was accepted (answered 200).
    pub fn received(&self) -> HashMap<String, u32> {
        self.shared.received.lock().unwrap().clone()
    }
}

async fn accept_loop(listener: TcpListener, backlog: Backlog, shared: Arc<Shared>) {
    // Connections live in this set so that aborting the accept task drops them all.
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        let service = service_fn(move |request| handle(request, shared.clone()));
        let io = TokioIo::new(stream);
        match backlog {
            Backlog::Normal => {
                connections.spawn(async move {
                    let _ = http1::Builder::new().serve_connection(io, service).await;
                });
                while connections.try_join_next().is_some() {}
            }
            Backlog::Small => {
                let _ = http1::Builder::new()
                    .keep_alive(false)
                    .serve_connection(io, service)
                    .await;
            }
        }
    }
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let id = request
        .headers()
        .get("x-audian-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Read the whole body, as a real consumer would, before answering.
    let complete = request.into_body().collect().await.is_ok();
    let status = match (id, complete) {
        _ if shared.failing.load(Ordering::SeqCst) => StatusCode::SERVICE_UNAVAILABLE,
        (Some(id), true) => {
            *shared.received.lock().unwrap().entry(id).or_default() += 1;
            StatusCode::OK
        }
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    Ok(response)
}
