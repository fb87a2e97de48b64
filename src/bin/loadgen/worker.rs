//! The per-connection load loop: shared run state, the warmup phase, the measured phase
//! with reconnects and timeouts, and the per-worker tally of what came back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::http::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::http::{Method, Request};
use tokio::time::Instant;

use crate::Plan;
use crate::conn::{Failure, Sender, Target, connect, exchange};
use crate::events::{Event, EventSpec};

const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-audian-signature");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// State shared by all workers for one run.
pub(super) struct RunCtx {
    target: Arc<Target>,
    spec: EventSpec,
    events: Vec<Event>,
    next: AtomicUsize,
    warmup_next: AtomicUsize,
    pub(super) measure_start: Instant,
    deadline: Option<Instant>,
    timeout: Duration,
}

impl RunCtx {
    pub(super) fn new(
        target: Arc<Target>,
        spec: EventSpec,
        events: Vec<Event>,
        plan: &Plan,
    ) -> Self {
        let measure_start = Instant::now() + plan.warmup;
        Self {
            target,
            spec,
            events,
            next: AtomicUsize::new(0),
            warmup_next: AtomicUsize::new(0),
            measure_start,
            deadline: plan.duration.map(|d| measure_start + d),
            timeout: plan.timeout,
        }
    }

    fn request(&self, event: &Event) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(event.body.clone()));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.target.path.clone();
        let headers = req.headers_mut();
        headers.insert(HOST, self.target.authority.clone());
        headers.insert(CONTENT_TYPE, APPLICATION_JSON);
        headers.insert(SIGNATURE_HEADER, event.signature.clone());
        req
    }
}

/// Per-worker results, merged after the run; plain Vecs keep the hot path lock-free.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) latencies_us: Vec<u64>,
    pub(super) statuses: BTreeMap<u16, u64>,
    pub(super) errors: BTreeMap<&'static str, (u64, String)>,
    pub(super) connects: u64,
    pub(super) warmup_sent: u64,
}

impl Tally {
    fn record_error(&mut self, failure: Failure) {
        let entry = self
            .errors
            .entry(failure.kind)
            .or_insert((0, failure.detail));
        entry.0 += 1;
    }

    pub(super) fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        for (code, n) in other.statuses {
            *self.statuses.entry(code).or_default() += n;
        }
        for (kind, (n, detail)) in other.errors {
            self.errors.entry(kind).or_insert((0, detail)).0 += n;
        }
        self.connects += other.connects;
        self.warmup_sent += other.warmup_sent;
    }
}

pub(super) async fn run_worker(ctx: Arc<RunCtx>, mut conn: Option<Sender>, share: usize) -> Tally {
    let mut tally = Tally {
        latencies_us: Vec::with_capacity(share),
        connects: u64::from(conn.is_some()),
        ..Tally::default()
    };
    run_warmup(&ctx, &mut conn, &mut tally).await;
    tokio::time::sleep_until(ctx.measure_start).await;
    loop {
        if ctx.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let Some(event) = ctx.events.get(ctx.next.fetch_add(1, Ordering::Relaxed)) else {
            break;
        };
        match send_one(&ctx, &mut conn, &mut tally, event).await {
            Ok((status, latency)) => {
                *tally.statuses.entry(status).or_default() += 1;
                tally
                    .latencies_us
                    .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
            }
            Err(failure) => tally.record_error(failure),
        }
    }
    tally
}

/// Uncounted traffic until the measure start. Warmup events are signed here, which is fine
/// because this loop is not timed, and it means the warmup needs no pre-sized pool.
/// A request in flight at the boundary is allowed to finish (rather than abandoned, which
/// would force a reconnect inside the measured window), so the windows overlap by at most
/// one request per connection.
async fn run_warmup(ctx: &RunCtx, conn: &mut Option<Sender>, tally: &mut Tally) {
    while Instant::now() < ctx.measure_start {
        let event = ctx
            .spec
            .warmup(ctx.warmup_next.fetch_add(1, Ordering::Relaxed));
        let _ = send_one(ctx, conn, tally, &event).await;
        tally.warmup_sent += 1;
    }
}

/// Sends one event on the worker's connection, reconnecting first if it was closed.
/// Latency covers request write through full response body; connect time is excluded
/// (it still counts against elapsed time and therefore throughput).
async fn send_one(
    ctx: &RunCtx,
    conn: &mut Option<Sender>,
    tally: &mut Tally,
    event: &Event,
) -> Result<(u16, Duration), Failure> {
    let sender = ready_sender(ctx, conn, tally).await?;
    let started = Instant::now();
    let outcome = tokio::time::timeout(ctx.timeout, exchange(sender, ctx.request(event))).await;
    let result = match outcome {
        Ok(Ok(status)) => return Ok((status, started.elapsed())),
        Ok(Err(failure)) => Err(failure),
        Err(_) => Err(Failure::new(
            "timeout",
            format!("no response within {:?}", ctx.timeout),
        )),
    };
    *conn = None;
    result
}

/// Returns a sender ready for a request. A connection the server closed between requests
/// (e.g. keep-alive limit) is replaced silently; only a failed reconnect is an error.
async fn ready_sender<'a>(
    ctx: &RunCtx,
    conn: &'a mut Option<Sender>,
    tally: &mut Tally,
) -> Result<&'a mut Sender, Failure> {
    let usable = match conn.as_mut() {
        Some(sender) => sender.ready().await.is_ok(),
        None => false,
    };
    if !usable {
        *conn = None;
        let fresh = tokio::time::timeout(ctx.timeout, connect(&ctx.target))
            .await
            .map_err(|_| Failure::new("connect", "connect timed out"))??;
        tally.connects += 1;
        *conn = Some(fresh);
    }
    Ok(conn.as_mut().expect("connection was just ensured"))
}
