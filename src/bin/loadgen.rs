//! `audian-loadgen`: drives signed webhook traffic at the receiver so throughput and latency
//! claims in BENCHMARKS.md come from a repeatable tool rather than ad-hoc scripts.
//!
//! Every measured event is built and HMAC-signed before the clock starts, so the numbers
//! reflect the receiver (and the network), not the generator's signing cost.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clap::Parser;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::http::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::http::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

type HmacSha256 = Hmac<sha2::Sha256>;
type Sender = SendRequest<Full<Bytes>>;

const SECRET_ENV: &str = "AUDIAN_WEBHOOK_SECRET";
const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-audian-signature");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Load generator for the Audian webhook receiver (secret from AUDIAN_WEBHOOK_SECRET).
#[derive(Parser, Debug)]
#[command(name = "audian-loadgen", version, about)]
struct Args {
    /// Webhook endpoint; http:// is for a receiver running with tls.mode=off.
    #[arg(long, default_value = "https://127.0.0.1:8443/webhook")]
    url: String,
    /// Keep-alive HTTP/1.1 connections, each sending requests back to back.
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Measured requests to send (all pre-signed up front); the run stops when reached.
    #[arg(long, default_value_t = 100_000)]
    requests: usize,
    /// Stop measuring after this many seconds even if --requests is not reached.
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Seconds of uncounted traffic before measuring starts.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    warmup: f64,
    /// Per-request timeout in seconds; a timed-out request counts as an error.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    timeout: f64,
    /// PEM file with the CA (or the self-signed certificate) to trust.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    ca: Option<std::path::PathBuf>,
    /// Accept any server certificate (self-signed dev mode only).
    #[arg(long)]
    insecure: bool,
    /// Approximate size of each JSON body in bytes.
    #[arg(long, default_value_t = 575)]
    body_bytes: usize,
    /// Event types, cycled across requests.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "job.completed,audio.uploaded"
    )]
    types: Vec<String>,
    /// Event id prefix; ids are `{prefix}-{n}`. Defaults to a random run id.
    #[arg(long)]
    id_prefix: Option<String>,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    // Several dependencies link rustls; pinning the provider avoids an ambiguous-provider panic.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<ExitCode> {
    let plan = Plan::from_args(&args)?;
    let target = Arc::new(Target::resolve(&args).await?);
    let spec = EventSpec::new(&args)?;

    let generated_at = std::time::Instant::now();
    let events = pregenerate(&spec, args.requests);
    eprintln!(
        "pre-signed {} events (~{} bytes each, id prefix {}) in {:.2}s",
        events.len(),
        events.first().map_or(0, |e| e.body.len()),
        spec.prefix,
        generated_at.elapsed().as_secs_f64()
    );

    let senders = open_initial(&target, args.connections).await?;
    eprintln!("opened {} connections to {}", senders.len(), args.url);

    let ctx = Arc::new(RunCtx::new(target, spec, events, &plan));
    let mut tasks = JoinSet::new();
    // Each worker takes about an equal share from the shared counter; sizing its latency
    // Vec up front keeps reallocation out of the timed loop.
    let share = args.requests.div_ceil(args.connections) + 16;
    for sender in senders {
        tasks.spawn(run_worker(Arc::clone(&ctx), sender, share));
    }
    let mut totals = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        totals.merge(joined.context("worker task panicked")?);
    }
    let elapsed = ctx.measure_start.elapsed();

    let summary = Summary::build(&args, totals, elapsed);
    summary.print(args.json);
    Ok(if summary.accepted > 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("error: no request was accepted with 200");
        ExitCode::FAILURE
    })
}

/// Validated time limits, kept apart from `Args` so the worker context holds only durations.
struct Plan {
    warmup: Duration,
    duration: Option<Duration>,
    timeout: Duration,
}

impl Plan {
    fn from_args(args: &Args) -> Result<Self> {
        if args.connections == 0 || args.requests == 0 {
            bail!("--connections and --requests must be at least 1");
        }
        if args.types.iter().all(|t| t.trim().is_empty()) {
            bail!("--types needs at least one event type");
        }
        let secs = |name: &str, v: f64| {
            Duration::try_from_secs_f64(v)
                .map_err(|_| anyhow!("{name} must be a finite number >= 0"))
        };
        let duration = args.duration.map(|d| secs("--duration", d)).transpose()?;
        if duration.is_some_and(|d| d.is_zero()) {
            bail!("--duration must be greater than 0");
        }
        let timeout = secs("--timeout", args.timeout)?;
        if timeout.is_zero() {
            bail!("--timeout must be greater than 0");
        }
        Ok(Self {
            warmup: secs("--warmup", args.warmup)?,
            duration,
            timeout,
        })
    }
}

/// Where to connect and what to put on the request line; resolved once so reconnects skip DNS.
struct Target {
    addr: std::net::SocketAddr,
    authority: HeaderValue,
    path: Uri,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Target {
    async fn resolve(args: &Args) -> Result<Self> {
        let uri: Uri = args
            .url
            .parse()
            .with_context(|| format!("invalid --url {}", args.url))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => bail!("--url must start with http:// or https://"),
        };
        let authority = uri.authority().context("--url has no host")?;
        // Uri keeps IPv6 literals bracketed; sockets and SNI want them bare.
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .with_context(|| format!("cannot resolve {host}"))?
            .next()
            .with_context(|| format!("{host} resolved to no address"))?;
        let path = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse::<Uri>()?;
        let tls = if https {
            Some(tls_connector(args, host)?)
        } else {
            None
        };
        Ok(Self {
            addr,
            authority: HeaderValue::from_str(authority.as_str())?,
            path,
            tls,
        })
    }
}

fn tls_connector(args: &Args, host: String) -> Result<(TlsConnector, ServerName<'static>)> {
    let name = ServerName::try_from(host).context("host is not a valid TLS server name")?;
    let mut config = if args.insecure {
        eprintln!("warning: --insecure: server certificate is NOT verified (dev mode only)");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth()
    } else {
        let path = args
            .ca
            .as_ref()
            .context("https needs --ca FILE (or --insecure for dev)")?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(path)
            .with_context(|| format!("cannot read {}", path.display()))?
        {
            roots
                .add(cert.context("bad PEM certificate")?)
                .context("unusable CA certificate")?;
        }
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth()
    };
    // The receiver also speaks h2; pin HTTP/1.1 since that is what this tool drives.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsConnector::from(Arc::new(config)), name))
}

/// Certificate verifier for `--insecure`: trusts any certificate but still checks that the
/// handshake signatures are valid, so the TLS work the receiver does is the real one.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A ready-to-send event: body bytes and the signature header computed over exactly them.
struct Event {
    body: Bytes,
    signature: HeaderValue,
}

/// Everything needed to build event `n`; shared by the pre-generation threads and warmup.
/// Strings are stored already JSON-encoded so each body is one `format!` plus padding.
struct EventSpec {
    prefix: String,
    /// `"prefix` (encoded, closing quote omitted so the `-n` suffix can follow).
    prefix_open: String,
    types: Vec<String>,
    created_at: String,
    body_bytes: usize,
    mac: HmacSha256,
}

/// Closes the filler string, the `data` object and the event object.
const BODY_TAIL: &str = "\"}}";

impl EventSpec {
    fn new(args: &Args) -> Result<Self> {
        let secret = std::env::var(SECRET_ENV)
            .ok()
            .filter(|s| !s.is_empty())
            .with_context(|| {
                format!("{SECRET_ENV} must be set to the receiver's webhook secret")
            })?;
        // Keyed once; each event clones the keyed state instead of re-deriving the pads.
        let mac = HmacSha256::new_from_slice(secret.as_bytes()).context("HMAC key rejected")?;
        let prefix = args
            .id_prefix
            .clone()
            .unwrap_or_else(|| format!("evt_lg{:012x}", rand::random::<u64>() >> 16));
        let mut prefix_open = serde_json::to_string(&prefix)?;
        prefix_open.pop();
        let types = args
            .types
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty());
        let created_at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)?;
        Ok(Self {
            prefix,
            prefix_open,
            types: types.map(serde_json::to_string).collect::<Result<_, _>>()?,
            created_at: serde_json::to_string(&created_at)?,
            body_bytes: args.body_bytes,
            mac,
        })
    }

    /// Event with id `{prefix}-{tag}{n}`; `tag` must need no JSON escaping.
    fn event(&self, tag: &str, n: usize) -> Event {
        let head = format!(
            r#"{{"id":{}-{tag}{n}","type":{},"created_at":{},"data":{{"seq":{n},"generator":"audian-loadgen","filler":""#,
            self.prefix_open,
            self.types[n % self.types.len()],
            self.created_at,
        );
        // Pad with plain ASCII so the body lands on --body-bytes exactly (unless the fixed
        // fields are already longer).
        let pad = self.body_bytes.saturating_sub(head.len() + BODY_TAIL.len());
        let mut body = Vec::with_capacity(head.len() + pad + BODY_TAIL.len());
        body.extend_from_slice(head.as_bytes());
        body.resize(body.len() + pad, b'x');
        body.extend_from_slice(BODY_TAIL.as_bytes());
        let mut mac = self.mac.clone();
        mac.update(&body);
        let signature = hex::encode(mac.finalize().into_bytes());
        Event {
            body: Bytes::from(body),
            signature: HeaderValue::try_from(signature).expect("hex is a valid header value"),
        }
    }

    fn measured(&self, n: usize) -> Event {
        self.event("", n)
    }

    /// Warmup ids live in their own namespace so they can never collide with measured ones.
    fn warmup(&self, n: usize) -> Event {
        self.event("w", n)
    }
}

/// Builds and signs all measured events across the available cores before the clock starts.
fn pregenerate(spec: &EventSpec, count: usize) -> Vec<Event> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(count);
    let chunk = count.div_ceil(threads.max(1));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = t * chunk..((t + 1) * chunk).min(count);
                scope.spawn(move || range.map(|n| spec.measured(n)).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("event generator thread panicked"))
            .collect()
    })
}

/// Error from one attempt, classified so the summary can group them.
struct Failure {
    kind: &'static str,
    detail: String,
}

impl Failure {
    fn new(kind: &'static str, detail: impl std::fmt::Display) -> Self {
        Self {
            kind,
            detail: detail.to_string(),
        }
    }
}

async fn connect(target: &Target) -> Result<Sender, Failure> {
    let tcp = TcpStream::connect(target.addr)
        .await
        .map_err(|e| Failure::new("connect", e))?;
    // Requests are small and sent one at a time per connection; Nagle would only add delay.
    let _ = tcp.set_nodelay(true);
    match &target.tls {
        None => handshake(TokioIo::new(tcp)).await,
        Some((connector, name)) => {
            let tls = connector
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| Failure::new("tls", e))?;
            handshake(TokioIo::new(tls)).await
        }
    }
}

async fn handshake<T>(io: T) -> Result<Sender, Failure>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(io)
        .await
        .map_err(|e| Failure::new("handshake", e))?;
    // The connection future drives the socket; its errors surface through the sender.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Opens all connections before the clock starts so handshakes are not part of the
/// measurement. Fails only if none can be opened (then the error is a setup problem).
async fn open_initial(target: &Arc<Target>, count: usize) -> Result<Vec<Option<Sender>>> {
    let mut set = JoinSet::new();
    for _ in 0..count {
        let target = Arc::clone(target);
        set.spawn(async move { connect(&target).await });
    }
    let mut senders = Vec::with_capacity(count);
    let mut first_failure = None;
    while let Some(joined) = set.join_next().await {
        match joined.context("connect task panicked")? {
            Ok(sender) => senders.push(Some(sender)),
            Err(failure) => {
                first_failure.get_or_insert(failure);
                senders.push(None);
            }
        }
    }
    match first_failure {
        Some(f) if senders.iter().all(Option::is_none) => {
            bail!("cannot open any connection: {}: {}", f.kind, f.detail)
        }
        Some(f) => eprintln!(
            "warning: some connections failed ({}: {}); will retry",
            f.kind, f.detail
        ),
        None => {}
    }
    Ok(senders)
}

/// State shared by all workers for one run.
struct RunCtx {
    target: Arc<Target>,
    spec: EventSpec,
    events: Vec<Event>,
    next: AtomicUsize,
    warmup_next: AtomicUsize,
    measure_start: Instant,
    deadline: Option<Instant>,
    timeout: Duration,
}

impl RunCtx {
    fn new(target: Arc<Target>, spec: EventSpec, events: Vec<Event>, plan: &Plan) -> Self {
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
struct Tally {
    latencies_us: Vec<u64>,
    statuses: BTreeMap<u16, u64>,
    errors: BTreeMap<&'static str, (u64, String)>,
    connects: u64,
    warmup_sent: u64,
}

impl Tally {
    fn record_error(&mut self, failure: Failure) {
        let entry = self
            .errors
            .entry(failure.kind)
            .or_insert((0, failure.detail));
        entry.0 += 1;
    }

    fn merge(&mut self, other: Tally) {
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

async fn run_worker(ctx: Arc<RunCtx>, mut conn: Option<Sender>, share: usize) -> Tally {
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

async fn exchange(sender: &mut Sender, req: Request<Full<Bytes>>) -> Result<u16, Failure> {
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| Failure::new("send", e))?;
    let status = resp.status().as_u16();
    // Drain the body so the connection can carry the next request.
    resp.into_body()
        .collect()
        .await
        .map_err(|e| Failure::new("body", e))?;
    Ok(status)
}

/// Final numbers for one run, printable as text or JSON.
struct Summary {
    doc: Value,
    accepted: u64,
}

impl Summary {
    fn build(args: &Args, mut totals: Tally, elapsed: Duration) -> Self {
        totals.latencies_us.sort_unstable();
        let lat = &totals.latencies_us;
        let responses: u64 = totals.statuses.values().sum();
        let errors: u64 = totals.errors.values().map(|(n, _)| n).sum();
        let accepted = totals.statuses.get(&200).copied().unwrap_or(0);
        let secs = elapsed.as_secs_f64().max(f64::EPSILON);
        let ms = |us: u64| us as f64 / 1000.0;
        let doc = json!({
            "url": args.url,
            "connections": args.connections,
            "body_bytes": args.body_bytes,
            "warmup_sent": totals.warmup_sent,
            "sent": responses + errors,
            "responses": responses,
            "accepted": accepted,
            "status_counts": totals.statuses.iter().map(|(c, n)| (c.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "errors": totals.errors.iter().map(|(k, (n, d))| (k.to_string(), json!({"count": n, "example": d}))).collect::<serde_json::Map<_, _>>(),
            "connections_opened": totals.connects,
            "elapsed_s": secs,
            "accepted_per_s": accepted as f64 / secs,
            "total_per_s": (responses + errors) as f64 / secs,
            "latency_ms": {
                "p50": ms(percentile(lat, 500)),
                "p90": ms(percentile(lat, 900)),
                "p99": ms(percentile(lat, 990)),
                "p99_9": ms(percentile(lat, 999)),
                "max": ms(lat.last().copied().unwrap_or(0)),
            },
        });
        Self { doc, accepted }
    }

    fn print(&self, as_json: bool) {
        if as_json {
            println!("{}", self.doc);
            return;
        }
        let d = &self.doc;
        println!("target        {}", d["url"].as_str().unwrap_or_default());
        println!(
            "connections   {} (opened {})",
            d["connections"], d["connections_opened"]
        );
        println!("warmup sent   {} (not counted)", d["warmup_sent"]);
        println!("sent          {}", d["sent"]);
        for (code, n) in d["status_counts"].as_object().into_iter().flatten() {
            println!("  status {code}  {n}");
        }
        for (kind, e) in d["errors"].as_object().into_iter().flatten() {
            println!("  error {kind:<8} {}  (e.g. {})", e["count"], e["example"]);
        }
        let f = |key: &str| d[key].as_f64().unwrap_or(0.0);
        println!("elapsed       {:.3} s", f("elapsed_s"));
        println!("accepted/s    {:.1}", f("accepted_per_s"));
        println!("total/s       {:.1}", f("total_per_s"));
        let l = &d["latency_ms"];
        let g = |key: &str| l[key].as_f64().unwrap_or(0.0);
        println!(
            "latency ms    p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            g("p50"),
            g("p90"),
            g("p99"),
            g("p99_9"),
            g("max")
        );
    }
}

/// Nearest-rank percentile over sorted samples, `per_mille` in 1..=1000 (integer math so
/// p99.9 is exact); 0 when there are none.
fn percentile(sorted: &[u64], per_mille: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (per_mille * sorted.len()).div_ceil(1000);
    sorted[rank.clamp(1, sorted.len()) - 1]
}
