//! The webhook handler: headers, size, signature, media type, I-JSON, envelope, age,
//! durable record (with the request's trace context) — in that order, so no
//! unauthenticated byte is ever parsed.

mod body;
mod freshness;
pub mod ijson;
pub mod payload;
pub mod refusal;

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderName, Version, header};
use axum::response::Response;
use sha2::{Digest, Sha256};

use crate::signing;
pub use crate::signing::{Verified, Verifier};
use crate::store::{EventWriter, NewEvent, Recorded};
use crate::telemetry::Metrics;
use crate::telemetry::traces::TraceContext;
pub use body::BodyBudget;
pub use freshness::Freshness;
use refusal::{Drain, Refusal, accepted};

/// The client's address as the guard resolved it: the TCP peer, or behind a trusted proxy
/// the forwarded client. The guard puts it in the request extensions; the handler stores it
/// as `source_ip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The signature header Audian sends.
pub const SIGNATURE_HEADER: &str = "x-audian-signature";
const SIGNATURE: HeaderName = HeaderName::from_static(SIGNATURE_HEADER);

/// What the handler needs, shared by every request.
#[derive(Clone)]
pub struct Intake {
    pub verifier: Verifier,
    pub writer: EventWriter,
    pub max_body_bytes: usize,
    pub body_timeout: std::time::Duration,
    pub body_budget: BodyBudget,
    /// `intake.max_depth`: arrays and objects open at once in a body.
    pub max_depth: usize,
    /// `intake.timestamp_field`.
    pub timestamp_field: Arc<str>,
    pub freshness: Freshness,
    pub metrics: Arc<Metrics>,
}

/// `POST {server.path}`.
pub async fn receive(
    State(intake): State<Intake>,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    drain: Option<Extension<Drain>>,
    trace: Option<Extension<TraceContext>>,
    version: Version,
    headers: HeaderMap,
    mut body: Body,
) -> Response {
    let started = std::time::Instant::now();
    let trace = trace.map(|Extension(trace)| trace);
    let result = intake.handle(client, trace, &headers, &mut body).await;
    let outcome = match &result {
        Ok(Recorded::New) => "accepted",
        Ok(Recorded::Duplicate) => "duplicate",
        Ok(Recorded::DuplicateWithDifferentBody) => "duplicate_mismatch",
        Err(refusal) => refusal.label(),
    };
    intake.metrics.count_request(outcome);
    intake
        .metrics
        .request_duration
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(_) => accepted(),
        Err(refusal) => refusal.answer_unread(version, drain.as_ref().map(|Extension(d)| d), body),
    }
}

impl Intake {
    /// Refuses everything it can from the headers before reading a byte of the body, then
    /// reads, verifies, parses and records — in that order.
    async fn handle(
        &self,
        client: IpAddr,
        trace: Option<TraceContext>,
        headers: &HeaderMap,
        body: &mut Body,
    ) -> Result<Recorded, Refusal> {
        let (declared, claimed) = self.check_headers(headers)?;
        let read = body::read_limited(body, declared, self.max_body_bytes, &self.body_budget);
        let raw = tokio::time::timeout(self.body_timeout, read)
            .await
            .map_err(|_| Refusal::BodyTimeout)??;
        let verified = self
            .verifier
            .verify_digest(&claimed, raw.bytes.clone())
            .map_err(|reason| {
                tracing::debug!(%reason, "signature refused");
                Refusal::InvalidSignature
            })?;
        self.metrics.count_signature_match(verified.key().label());
        if let Some(media_type) = headers.get(header::CONTENT_TYPE)
            && !payload::is_json_media_type(media_type.as_bytes())
        {
            return Err(Refusal::UnsupportedMediaType);
        }
        ijson::validate(verified.body(), self.max_depth).map_err(Refusal::NotIJson)?;
        let envelope =
            payload::parse(&verified, &self.timestamp_field).ok_or(Refusal::InvalidPayload)?;
        tracing::Span::current().record("event_id", envelope.id.as_str());
        self.freshness
            .check(envelope.timestamp, time::OffsetDateTime::now_utc())?;
        let mut event = self.new_event(envelope, verified, client);
        event.trace_context = trace.map(|trace| trace.to_stored());
        let recorded = self.writer.record(event).await.map_err(|error| {
            tracing::warn!(%error, "event not recorded; answering 503");
            Refusal::Unavailable
        })?;
        if recorded == Recorded::DuplicateWithDifferentBody {
            self.metrics.duplicate_mismatches.inc();
            tracing::warn!("event id already recorded with a different body; kept the first");
        }
        Ok(recorded)
    }

    /// The header checks, in the contract's order: ambiguity (400), declared size (413), a
    /// signature header that cannot be one (401). Returns the declared body length and the
    /// digest the signature header claims.
    fn check_headers(&self, headers: &HeaderMap) -> Result<(Option<u64>, [u8; 32]), Refusal> {
        for name in [&header::CONTENT_TYPE, &header::CONTENT_LENGTH, &SIGNATURE] {
            if headers.get_all(name).iter().nth(1).is_some() {
                return Err(Refusal::InvalidRequest);
            }
        }
        let declared = match headers.get(header::CONTENT_LENGTH) {
            Some(value) => Some(
                value
                    .to_str()
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or(Refusal::InvalidRequest)?,
            ),
            None => None,
        };
        if declared.is_some_and(|len| len > self.max_body_bytes as u64) {
            return Err(Refusal::PayloadTooLarge);
        }
        let claimed = signing::decode_header(headers.get(SIGNATURE_HEADER).map(|v| v.as_bytes()))
            .map_err(|reason| {
            tracing::debug!(%reason, "signature refused before the body");
            Refusal::InvalidSignature
        })?;
        Ok((declared, claimed))
    }

    fn new_event(
        &self,
        envelope: payload::Envelope,
        verified: Verified,
        client: IpAddr,
    ) -> NewEvent {
        let payload = verified.into_body();
        NewEvent {
            sha256: Sha256::digest(&payload).into(),
            id: envelope.id,
            event_type: envelope.event_type,
            payload,
            source_ip: Some(client),
            trace_context: None,
        }
    }
}
