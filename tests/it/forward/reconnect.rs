//! A broker connection cut under a running worker (broker restart, network blip): the next
//! event still arrives, and so does the one before.

use audian_receiver::config::TargetSettings;

use super::{amqp_target, fast, post_ok, reaches_state, redis_target, typed_event};
use crate::fixtures::{AMQP_ADDR, AmqpQueue, Consumed, Proxy, REDIS_ADDR, RedisStream, TestApp};

/// Delivers one event, cuts every connection through `proxy`, delivers another.
async fn deliver_across_a_cut(proxy: &Proxy, target: TargetSettings) {
    let name = target.name.clone();
    let app = TestApp::spawn_with(|s| fast(&mut s.forward, vec![target])).await;
    post_ok(&app, &typed_event("evt_before_cut", "job.completed")).await;
    reaches_state(&app, "evt_before_cut", &name, "delivered").await;

    assert!(
        proxy.cut_all() > 0,
        "the {name} target should hold a live connection through the proxy"
    );
    post_ok(&app, &typed_event("evt_after_cut", "job.completed")).await;
    reaches_state(&app, "evt_after_cut", &name, "delivered").await;
}

fn sorted_ids(messages: Vec<Consumed>) -> Vec<String> {
    let mut ids: Vec<String> = messages.into_iter().map(|m| m.id).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_cut_redis_connection_recovers_and_the_stream_holds_both_events() {
    let redis = RedisStream::new().await;
    let proxy = Proxy::start(REDIS_ADDR).await;
    let target = redis_target("redis", &proxy.addr(), &redis.name);
    deliver_across_a_cut(&proxy, target).await;
    assert_eq!(
        sorted_ids(redis.entries().await),
        ["evt_after_cut", "evt_before_cut"]
    );
}

#[tokio::test]
async fn a_cut_amqp_connection_recovers_and_the_queue_holds_both_events() {
    let amqp = AmqpQueue::new("fwd.#").await;
    let proxy = Proxy::start(AMQP_ADDR).await;
    let target = amqp_target("amqp", &proxy.addr(), &amqp.exchange, "fwd.{type}");
    deliver_across_a_cut(&proxy, target).await;
    assert_eq!(
        sorted_ids(amqp.drain().await),
        ["evt_after_cut", "evt_before_cut"]
    );
}
