//! NATS target against the real JetStream server: PubAck, headers, deduplication, missing stream.

use async_nats::jetstream::{self, stream::Stream};
use audian_receiver::forward::targets::Target;
use audian_receiver::forward::targets::nats::NatsTarget;

use crate::{
    NATS_ADDR, RECEIVED_AT, expect_retryable, init, message, require_service, sample_payload,
    unique,
};

pub async fn jetstream_context() -> jetstream::Context {
    init();
    require_service(NATS_ADDR, "NATS (JetStream)").await;
    let client = async_nats::connect(NATS_ADDR)
        .await
        .unwrap_or_else(|e| panic!("NATS is not usable on {NATS_ADDR}: {e}"));
    jetstream::new(client)
}

/// Creates a stream capturing `<prefix>.>`; returns it and its name for cleanup.
pub async fn create_stream(js: &jetstream::Context, prefix: &str) -> (Stream, String) {
    let name = prefix.to_uppercase();
    let stream = js
        .create_stream(jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![format!("{prefix}.>")],
            ..Default::default()
        })
        .await
        .expect("JetStream must be enabled on the NATS server");
    (stream, name)
}

pub async fn message_count(stream: &Stream) -> u64 {
    stream.get_info().await.expect("stream info").state.messages
}

#[tokio::test]
async fn nats_delivers_to_jetstream_with_headers_and_deduplicates_a_repeated_event_id() {
    let js = jetstream_context().await;
    let prefix = unique("test_");
    let (stream, name) = create_stream(&js, &prefix).await;
    let target = Target::Nats(
        NatsTarget::new(
            &format!("nats://{NATS_ADDR}"),
            &format!("{prefix}.{{type}}"),
        )
        .unwrap(),
    );
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
        message_count(&stream).await,
        3,
        "the repeated event id must be deduplicated"
    );

    for (sequence, id) in (1..).zip(ids) {
        let stored = stream
            .get_raw_message(sequence)
            .await
            .expect("stored message");
        assert_eq!(stored.subject.as_str(), format!("{prefix}.call.completed"));
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
    js.delete_stream(&name).await.expect("delete test stream");
}

#[tokio::test]
async fn nats_publish_to_a_subject_without_a_stream_is_retryable_and_says_so() {
    let _js = jetstream_context().await;
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
