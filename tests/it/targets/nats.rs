//! NATS target against the real JetStream server: PubAck, headers, deduplication, missing stream.

use audian_receiver::forward::targets::Target;
use audian_receiver::forward::targets::nats::NatsTarget;

use super::{RECEIVED_AT, expect_retryable, message, sample_payload};
use crate::fixtures::{JsStream, NATS_ADDR, install_crypto_provider, require_service, unique};

#[tokio::test]
async fn nats_delivers_to_jetstream_with_headers_and_deduplicates_a_repeated_event_id() {
    let stream = JsStream::new().await;
    let url = format!("nats://{NATS_ADDR}");
    let target = Target::Nats(NatsTarget::new(&url, &stream.subject("{type}")).unwrap());
    let payload = sample_payload();
    let ids = ["evt-n1", "evt-n2", "evt-n3"];
    for id in ids {
        target
            .deliver(&message(id, &payload, Some("sig-n")))
            .await
            .expect("PubAck");
    }
    target
        .deliver(&message("evt-n1", &payload, Some("sig-n")))
        .await
        .expect("duplicate is acked");
    assert_eq!(
        stream.count().await,
        3,
        "the repeated event id must be deduplicated"
    );

    for (sequence, id) in (1..).zip(ids) {
        let stored = stream.stored(sequence).await;
        assert_eq!(stored.subject.as_str(), stream.subject("call.completed"));
        assert_eq!(stored.payload, payload);
        let header = |name: &str| stored.headers.get(name).map(|v| v.as_str().to_owned());
        assert_eq!(header("Nats-Msg-Id").as_deref(), Some(id));
        assert_eq!(header("X-Audian-Event-Id").as_deref(), Some(id));
        assert_eq!(
            header("X-Audian-Event-Type").as_deref(),
            Some("call.completed")
        );
        assert_eq!(header("X-Audian-Received-At").as_deref(), Some(RECEIVED_AT));
        assert_eq!(header("X-Receiver-Signature").as_deref(), Some("sig-n"));
    }
}

#[tokio::test]
async fn nats_publish_to_a_subject_without_a_stream_is_retryable_and_says_so() {
    install_crypto_provider();
    require_service(NATS_ADDR, "NATS (JetStream)").await;
    let subject = format!("{}.{{type}}", unique("nostream_"));
    let target = Target::Nats(NatsTarget::new(&format!("nats://{NATS_ADDR}"), &subject).unwrap());
    let payload = sample_payload();
    let err = expect_retryable(target.deliver(&message("evt-x", &payload, None)).await);
    assert!(err.message.contains("no JetStream stream"), "{err}");
}

#[test]
fn nats_target_rejects_bad_subject_templates() {
    assert!(NatsTarget::new("nats://127.0.0.1:4222", "audian.{event}").is_err());
    assert!(NatsTarget::new("nats://127.0.0.1:4222", "audian.*.{type}").is_err());
    assert!(NatsTarget::new("nats://127.0.0.1:4222", "audian..{type}").is_err());
}
