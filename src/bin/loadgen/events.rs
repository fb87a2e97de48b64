//! Webhook event bodies and their HMAC signatures, built from the command line and all
//! pre-generated before the clock starts so signing cost stays out of the measurement.

use anyhow::{Context, Result};
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use hyper::http::header::HeaderValue;

use crate::Args;

type HmacSha256 = Hmac<sha2::Sha256>;

const SECRET_ENV: &str = "AUDIAN_WEBHOOK_SECRET";

/// A ready-to-send event: body bytes and the signature header computed over exactly them.
pub(super) struct Event {
    pub(super) body: Bytes,
    pub(super) signature: HeaderValue,
}

/// Everything needed to build event `n`; shared by the pre-generation threads and warmup.
/// Strings are stored already JSON-encoded so each body is one `format!` plus padding.
pub(super) struct EventSpec {
    pub(super) prefix: String,
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
    pub(super) fn new(args: &Args) -> Result<Self> {
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
    pub(super) fn warmup(&self, n: usize) -> Event {
        self.event("w", n)
    }
}

/// Builds and signs all measured events across the available cores before the clock starts.
pub(super) fn pregenerate(spec: &EventSpec, count: usize) -> Vec<Event> {
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
