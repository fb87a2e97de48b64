//! Tracing (README "Tracing"): Audian's W3C trace context is taken from the request, stored
//! with the event, continued by every delivery attempt, and handed to every consumer; spans
//! are exported over OTLP/HTTP to a collector, and a collector that is down costs intake and
//! forwarding nothing but the spans it drops.

use crate::fixtures::{
    AMQP_ADDR, AmqpQueue, Binary, Collector, ExportedSpan, JsStream, KAFKA_ADDR, KafkaTopics,
    NATS_ADDR, REDIS_ADDR, RedisStream, SECRET, Served, Sink, TestApp, event, eventually,
    free_port,
};
use crate::forward::{amqp_target, fast, http_target, nats_target, redis_target};
use audian_receiver::signing::sign;

const AUDIAN_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const AUDIAN_SPAN: &str = "00f067aa0ba902b7";

fn audian_traceparent() -> String {
    format!("00-{AUDIAN_TRACE}-{AUDIAN_SPAN}-01")
}

/// Fast forwarding and a quick export round, so a test sees spans within its patience.
const FORWARD: &str = "[forward]\npoll_interval_ms = 100\nbackoff_initial_ms = 20\n\
                       backoff_max_ms = 200\n\
                       [telemetry.otlp]\ninterval_ms = 100\ntimeout_ms = 500\n";

fn http_section(name: &str, url: &str) -> String {
    section(name, "http", url, &[])
}

/// A `[[forward.targets]]` entry of the configuration file.
fn section(name: &str, kind: &str, url: &str, keys: &[(&str, &str)]) -> String {
    let mut toml =
        format!("[[forward.targets]]\nname = {name:?}\nkind = {kind:?}\nurl = {url:?}\n");
    for (key, value) in keys {
        toml.push_str(&format!("{key} = {value:?}\n"));
    }
    toml
}

/// The binary exporting to `endpoint` (set as `OTEL_EXPORTER_OTLP_ENDPOINT`).
async fn serve(endpoint: &str, targets: &str, log: &str) -> Served {
    let binary = Binary::new()
        .env("AUDIAN_WEBHOOK_SECRET", SECRET)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_SERVICE_NAME", "receiver-under-test")
        .env("AMQP_PASSWORD", "guest");
    let toml = format!("{FORWARD}[log]\nformat = \"json\"\nlevel = {log:?}\n{targets}");
    Served::start(binary, &toml).await
}

async fn post(served: &Served, body: &str, traceparent: Option<&str>) {
    let signature = sign(SECRET.as_bytes(), body.as_bytes());
    let headers: Vec<(&str, &str)> = traceparent
        .map(|t| ("traceparent", t))
        .into_iter()
        .collect();
    let response = served.post(body, &signature, &headers).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// Waits for the request span of `event_id` to reach the collector.
async fn request_span(collector: &Collector, event_id: &str) -> ExportedSpan {
    eventually(format!("the request span of {event_id}"), || async {
        collector
            .spans()
            .into_iter()
            .find(|s| s.name == "request" && s.attribute("event_id") == Some(event_id))
    })
    .await
}

/// Waits until `trace_id` holds delivery spans for each of `targets` that satisfy `done`.
async fn delivery_spans(
    collector: &Collector,
    trace_id: &str,
    targets: &[&str],
    done: impl Fn(&[ExportedSpan]) -> bool,
) -> Vec<ExportedSpan> {
    eventually(format!("delivery spans for {targets:?}"), || async {
        let sends: Vec<_> = collector
            .trace(trace_id)
            .into_iter()
            .filter(|s| s.name == "forward.send")
            .collect();
        let all = targets.iter().all(|t| {
            let mine: Vec<_> = sends
                .iter()
                .filter(|s| s.attribute("target") == Some(t))
                .cloned()
                .collect();
            done(&mine)
        });
        if all {
            Ok(sends)
        } else {
            Err(format!("{sends:#?}"))
        }
    })
    .await
}

fn delivered(spans: &[ExportedSpan]) -> bool {
    spans
        .iter()
        .any(|s| s.attribute("outcome") == Some("delivered"))
}

#[tokio::test]
async fn a_request_with_audians_traceparent_is_one_trace_from_request_to_every_target() {
    let collector = Collector::start().await;
    let (sink, js, amqp, redis, kafka) = (
        Sink::start().await,
        JsStream::new().await,
        AmqpQueue::new("#").await,
        RedisStream::new().await,
        KafkaTopics::new().await,
    );
    let kafka_topic = kafka.create("traced", 1).await;
    let nats = format!("nats://{NATS_ADDR}");
    // The password comes from the environment: the file may not hold one.
    let rabbit = format!("amqp://guest:${{AMQP_PASSWORD}}@{AMQP_ADDR}/%2f");
    let redis_url = format!("redis://{REDIS_ADDR}/");
    let targets = [
        http_section("web", &sink.url),
        section("bus", "nats", &nats, &[("subject", &js.subject("{type}"))]),
        section(
            "queue",
            "amqp",
            &rabbit,
            &[("exchange", &amqp.exchange), ("routing_key", "{type}")],
        ),
        section("stream", "redis", &redis_url, &[("stream", &redis.name)]),
        format!(
            "[[forward.targets]]\nname = \"log\"\nkind = \"kafka\"\n\
             brokers = [{KAFKA_ADDR:?}]\ntopic = {kafka_topic:?}\n"
        ),
    ]
    .concat();
    let served = serve(&collector.endpoint, &targets, "info").await;
    post(&served, &event("evt_traced"), Some(&audian_traceparent())).await;

    let request = request_span(&collector, "evt_traced").await;
    assert_eq!(request.trace_id, AUDIAN_TRACE);
    assert_eq!(request.parent_span_id, AUDIAN_SPAN);
    assert_eq!(request.service, "receiver-under-test");
    let finished = served.receiver.wait_for_log("request finished").await;
    assert_eq!(finished["span"]["trace_id"], AUDIAN_TRACE, "{finished}");
    assert_eq!(finished["span"]["span_id"], request.span_id.as_str());
    let kinds = ["web", "bus", "queue", "stream", "log"];
    let sends = delivery_spans(&collector, AUDIAN_TRACE, &kinds, delivered).await;
    for send in &sends {
        assert_eq!(send.parent_span_id, request.span_id, "{send:?}");
        assert_eq!(send.attribute("event_id"), Some("evt_traced"));
        assert_eq!(send.attribute("attempt"), Some("1"));
    }
    let consumed = [
        (
            "web",
            sink.received()
                .iter()
                .map(|r| r.header("traceparent"))
                .collect::<Vec<_>>(),
        ),
        (
            "bus",
            js.messages()
                .await
                .into_iter()
                .map(|m| m.traceparent)
                .collect(),
        ),
        (
            "queue",
            amqp.drain()
                .await
                .into_iter()
                .map(|m| m.traceparent)
                .collect(),
        ),
        (
            "stream",
            redis
                .entries()
                .await
                .into_iter()
                .map(|m| m.traceparent)
                .collect(),
        ),
        (
            "log",
            kafka
                .wait_for(&kafka_topic, 1)
                .await
                .into_iter()
                .map(|r| r.consumed().traceparent)
                .collect(),
        ),
    ];
    for (target, traceparents) in consumed {
        let send = sends
            .iter()
            .find(|s| s.attribute("target") == Some(target))
            .unwrap();
        let expected = format!("00-{AUDIAN_TRACE}-{}-01", send.span_id);
        assert_eq!(traceparents, [Some(expected)], "{target}");
    }
}

#[tokio::test]
async fn without_export_every_target_kind_still_carries_audians_trace_to_the_consumer() {
    let (sink, js, amqp, redis) = (
        Sink::start().await,
        JsStream::new().await,
        AmqpQueue::new("#").await,
        RedisStream::new().await,
    );
    let targets = vec![
        http_target("web", &sink.url),
        nats_target("bus", &js.subject("{type}")),
        amqp_target("queue", AMQP_ADDR, &amqp.exchange, "{type}"),
        redis_target("stream", REDIS_ADDR, &redis.name),
    ];
    let app = TestApp::spawn_with(|s| fast(&mut s.forward, targets)).await;
    let body = event("evt_untraced_export");
    let signature = sign(SECRET.as_bytes(), body.as_bytes());
    let traceparent = audian_traceparent();
    let response = app
        .post_with_headers(&body, &signature, &[("traceparent", &traceparent)])
        .await;
    assert_eq!(response.status(), 200);
    let same_trace = |t: &Option<String>| {
        let t = t.as_deref().unwrap_or_default();
        t.starts_with(&format!("00-{AUDIAN_TRACE}-")) && !t.contains(AUDIAN_SPAN) && t.len() == 55
    };
    eventually("every kind's message", || async {
        let web = sink.received().first().map(|r| r.header("traceparent"));
        let bus = js.messages().await.first().map(|m| m.traceparent.clone());
        let stream = redis.entries().await.first().map(|m| m.traceparent.clone());
        Some([web?, bus?, stream?])
    })
    .await
    .iter()
    .for_each(|t| assert!(same_trace(t), "{t:?}"));
    let queue = eventually("the AMQP message", || async { amqp.drain().await.pop() }).await;
    assert!(same_trace(&queue.traceparent), "{queue:?}");
}

#[tokio::test]
async fn a_retried_delivery_joins_the_original_trace() {
    let collector = Collector::start().await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let served = serve(&collector.endpoint, &http_section("later", &url), "info").await;
    post(&served, &event("evt_retried"), Some(&audian_traceparent())).await;
    let request = request_span(&collector, "evt_retried").await;
    let failed = |spans: &[ExportedSpan]| {
        spans
            .iter()
            .any(|s| s.attribute("outcome") == Some("failed"))
    };
    delivery_spans(&collector, AUDIAN_TRACE, &["later"], failed).await;
    let line = served.receiver.wait_for_log("forward failed").await;
    assert_eq!(line["span"]["trace_id"], AUDIAN_TRACE, "{line}");

    let _sink = Sink::start_on_port(port).await;
    let sends = delivery_spans(&collector, AUDIAN_TRACE, &["later"], delivered).await;
    let last = sends
        .iter()
        .find(|s| s.attribute("outcome") == Some("delivered"))
        .unwrap();
    assert_ne!(last.attribute("attempt"), Some("1"), "{last:?}");
    for send in &sends {
        assert_eq!(send.parent_span_id, request.span_id, "{send:?}");
    }
}

#[tokio::test]
async fn a_malformed_traceparent_is_answered_200_and_starts_a_new_trace_logged_at_debug() {
    let collector = Collector::start().await;
    let served = serve(&collector.endpoint, "", "info,audian_receiver=debug").await;
    let malformed = format!("00-{AUDIAN_TRACE}-{AUDIAN_SPAN}-1");
    post(&served, &event("evt_malformed"), Some(&malformed)).await;

    let request = request_span(&collector, "evt_malformed").await;
    assert_ne!(request.trace_id, AUDIAN_TRACE);
    assert_eq!(
        request.parent_span_id, "",
        "a new trace starts at the request"
    );
    let line = served
        .receiver
        .wait_for_log_containing("malformed traceparent")
        .await;
    assert_eq!(line["level"], "DEBUG", "{line}");
    let output = served.receiver.to_string();
    assert_eq!(
        output.matches("malformed traceparent").count(),
        1,
        "{output}"
    );
}

#[tokio::test]
async fn with_the_collector_down_intake_and_forwarding_carry_on_and_drops_are_counted() {
    let sink = Sink::start().await;
    let closed = format!("http://127.0.0.1:{}", free_port());
    let served = serve(&closed, &http_section("web", &sink.url), "info").await;
    for n in 0..5 {
        post(
            &served,
            &event(&format!("evt_unexported_{n}")),
            Some(&audian_traceparent()),
        )
        .await;
    }
    eventually("five deliveries", || async {
        (sink.received().len() == 5).then_some(())
    })
    .await;
    let metrics = format!("{}/metrics", served.admin);
    eventually("the drop counter to move", || async {
        let text = reqwest::get(&metrics).await.ok()?.text().await.ok()?;
        let line = text.lines().find(|l| {
            l.starts_with("audian_receiver_otlp_spans_dropped_total{reason=\"export_failed\"}")
        })?;
        let count: f64 = line.rsplit(' ').next()?.parse().ok()?;
        (count > 0.0).then_some(())
    })
    .await;
}
