//! AMQP 0-9-1 forward target: publishes mandatory, persistent messages and waits for the publisher confirm.

use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::timeout;

use super::{
    Checks, DeliveryError, Message, Redactor, check_metadata, error_chain, install_crypto_provider,
    render_template, rfc3339, validate_template,
};
use crate::secret_url::SecretUrl;

/// Bounds connect and confirm waits so a dead broker fails a delivery instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(5);
const PERSISTENT: u8 = 2;

/// The keys of a `kind = "amqp"` target.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpConfig {
    pub url: SecretUrl,
    /// Declared as a durable topic exchange when missing.
    pub exchange: String,
    /// Routing-key template; `{type}` is replaced by the event type.
    pub routing_key: String,
}

impl AmqpConfig {
    pub(super) fn check(&self, checks: &mut Checks<'_>) {
        if checks.url_scheme(&self.url, &["amqp://", "amqps://"]) {
            checks.key("url", parse_url(self.url.expose()));
        }
        checks.key("exchange", exchange_name(&self.exchange).map(drop));
        checks.key("routing_key", validate_template(&self.routing_key));
    }

    pub fn build(&self) -> Result<AmqpTarget, String> {
        AmqpTarget::new(self.url.expose(), &self.exchange, &self.routing_key)
    }
}

/// A connection and the one confirm-mode channel we publish on.
struct Link {
    connection: Connection,
    channel: Channel,
}

impl Link {
    fn is_usable(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

pub struct AmqpTarget {
    url: String,
    exchange: ShortString,
    routing_key_template: String,
    redactor: Redactor,
    /// The current connection; held only while checking or replacing it.
    link: Mutex<Option<Link>>,
}

impl AmqpTarget {
    pub fn new(url: &str, exchange: &str, routing_key_template: &str) -> Result<Self, String> {
        parse_url(url)?;
        validate_template(routing_key_template)?;
        Ok(Self {
            url: url.to_owned(),
            exchange: exchange_name(exchange)?,
            routing_key_template: routing_key_template.to_owned(),
            redactor: Redactor::for_url(url),
            link: Mutex::new(None),
        })
    }

    pub async fn deliver(&self, msg: &Message<'_>) -> Result<(), DeliveryError> {
        check_metadata(msg)?;
        let routing_key = short(
            render_template(&self.routing_key_template, msg.event_type),
            "routing key",
        )?;
        let properties = properties(msg)?;
        // The lock only guards (re)connecting: publishes share the channel and run
        // concurrently, lapin pairing each confirm (and any return) with its own publish.
        let channel = self.usable_channel(&mut *self.link.lock().await).await?;
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let exchange = self.exchange.clone();
        let publish = async {
            let payload = msg.payload.as_ref();
            let rk = routing_key.clone();
            channel
                .basic_publish(exchange, rk, options, payload, properties)
                .await?
                .await
        };
        let failure = match timeout(TIMEOUT, publish).await {
            Ok(Ok(Confirmation::NotRequested)) => "AMQP channel is not in confirm mode".to_owned(),
            Ok(Ok(confirmation)) => return self.settle(confirmation, routing_key.as_str()),
            Ok(Err(e)) => format!(
                "AMQP publish failed: {}",
                self.redactor.scrub(error_chain(&e))
            ),
            Err(_) => "AMQP publisher confirm timed out".to_owned(),
        };
        // Unknown channel state after a timeout or error: start from a fresh connection next
        // time (unless another delivery already replaced this channel).
        let mut link = self.link.lock().await;
        if link
            .as_ref()
            .is_some_and(|l| l.channel.id() == channel.id())
        {
            *link = None;
        }
        Err(DeliveryError::retryable(failure))
    }

    /// Reuses the open channel, or replaces a missing or dead one (the broker closed it, the socket dropped).
    async fn usable_channel(&self, link: &mut Option<Link>) -> Result<Channel, DeliveryError> {
        if let Some(usable) = link.as_ref().filter(|l| l.is_usable()) {
            return Ok(usable.channel.clone());
        }
        *link = None;
        let fresh = self.connect().await?;
        let channel = fresh.channel.clone();
        *link = Some(fresh);
        Ok(channel)
    }

    /// Only a plain Ack is delivered; a mandatory publish can be acked *and* returned as unroutable.
    fn settle(&self, confirmation: Confirmation, routing_key: &str) -> Result<(), DeliveryError> {
        match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) => Err(DeliveryError::retryable(format!(
                "unroutable: no queue is bound to exchange {} for routing key {} ({} {})",
                self.exchange, routing_key, returned.reply_code, returned.reply_text
            ))),
            Confirmation::Nack(_) => {
                Err(DeliveryError::retryable("AMQP broker nacked the message"))
            }
            Confirmation::NotRequested => Err(DeliveryError::retryable(
                "AMQP channel is not in confirm mode",
            )),
        }
    }

    async fn connect(&self) -> Result<Link, DeliveryError> {
        install_crypto_provider();
        let attempt = async {
            let properties =
                ConnectionProperties::default().with_connection_name("audian-receiver".into());
            let connection = Connection::connect(&self.url, properties).await?;
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            // Idempotent, and keeps a freshly restarted broker routable without operator action.
            let options = ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            };
            channel
                .exchange_declare(
                    self.exchange.clone(),
                    ExchangeKind::Topic,
                    options,
                    FieldTable::default(),
                )
                .await?;
            Ok::<_, lapin::Error>(Link {
                connection,
                channel,
            })
        };
        let link = match timeout(TIMEOUT, attempt).await {
            Ok(Ok(link)) => link,
            Ok(Err(e)) => {
                let text = self.redactor.scrub(error_chain(&e));
                return Err(DeliveryError::retryable(format!(
                    "AMQP connect failed: {text}"
                )));
            }
            Err(_) => return Err(DeliveryError::retryable("AMQP connect timed out")),
        };
        tracing::info!(target_kind = "amqp", exchange = %self.exchange, "connected to AMQP broker");
        Ok(link)
    }
}

fn parse_url(url: &str) -> Result<(), String> {
    url.parse::<lapin::uri::AMQPUri>()
        .map(drop)
        .map_err(|e| Redactor::for_url(url).scrub(format!("invalid AMQP URL: {e}")))
}

/// An exchange we may declare: not empty, not a reserved `amq.*` name, a short string.
fn exchange_name(exchange: &str) -> Result<ShortString, String> {
    if exchange.is_empty() || exchange.starts_with("amq.") {
        return Err(format!(
            "AMQP exchange {exchange:?} cannot be declared (empty or reserved amq.* name)"
        ));
    }
    ShortString::try_new(exchange).map_err(|e| format!("AMQP exchange: {e}"))
}

fn properties(msg: &Message<'_>) -> Result<BasicProperties, DeliveryError> {
    let received_at = rfc3339(msg.received_at)?;
    let mut headers = FieldTable::default();
    let mut put = |name: &str, value: &str| {
        headers.insert(name.into(), AMQPValue::LongString(LongString::from(value)));
    };
    put("x-audian-event-id", msg.event_id);
    put("x-audian-received-at", &received_at);
    if let Some(signature) = msg.signature {
        put("x-receiver-signature", signature);
    }
    put("traceparent", msg.traceparent);
    if let Some(state) = msg.tracestate {
        put("tracestate", state);
    }
    let timestamp = u64::try_from(msg.received_at.unix_timestamp()).unwrap_or(0);
    Ok(BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(PERSISTENT)
        .with_message_id(short(msg.event_id.to_owned(), "event id")?)
        .with_type(short(msg.event_type.to_owned(), "event type")?)
        .with_timestamp(timestamp)
        .with_headers(headers))
}

/// AMQP short strings hold at most 255 bytes; longer values would panic inside lapin's `From`.
fn short(value: String, what: &str) -> Result<ShortString, DeliveryError> {
    ShortString::try_new(value)
        .map_err(|e| DeliveryError::permanent(format!("AMQP {what} too long: {e}")))
}
