//! A recording HTTP endpoint standing in for a downstream service.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tokio::task::JoinHandle;

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header").to_owned())
    }

    pub fn event_id(&self) -> String {
        self.header("x-audian-event-id")
            .expect("every forwarded request carries X-Audian-Event-Id")
    }
}

#[derive(Clone, Default)]
struct Shared {
    seen: Arc<Mutex<Vec<Received>>>,
    /// Answer 500 to this many requests before answering 200.
    failures_left: Arc<AtomicUsize>,
}

pub struct Sink {
    /// `http://127.0.0.1:PORT/hook`
    pub url: String,
    shared: Shared,
    task: JoinHandle<()>,
}

impl Sink {
    pub async fn start() -> Sink {
        Self::serve("127.0.0.1:0".parse().unwrap(), 0).await
    }

    /// Answers 500 to the first `failures` requests, then 200.
    pub async fn failing_first(failures: usize) -> Sink {
        Self::serve("127.0.0.1:0".parse().unwrap(), failures).await
    }

    /// On a given port (one a target was already configured with).
    pub async fn start_on_port(port: u16) -> Sink {
        Self::serve(SocketAddr::from(([127, 0, 0, 1], port)), 0).await
    }

    async fn serve(addr: SocketAddr, failures: usize) -> Sink {
        let shared = Shared::default();
        shared.failures_left.store(failures, Ordering::SeqCst);
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(record))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("binding the HTTP sink on {addr}: {e}"));
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Sink {
            url: format!("http://{addr}/hook"),
            shared,
            task,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// How many requests carried this event id.
    pub fn count(&self, event_id: &str) -> usize {
        self.received()
            .iter()
            .filter(|r| r.event_id() == event_id)
            .count()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    shared.seen.lock().unwrap().push(Received { headers, body });
    let fail = shared
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}
