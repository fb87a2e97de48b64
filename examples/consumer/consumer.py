#!/usr/bin/env python3
"""A sample consumer of the events audian-receiver forwards to NATS JetStream.

This is the code a downstream team copies: keep the three steps, replace `handle` with
your own work. For each message it

1. verifies X-Receiver-Signature, the hex HMAC-SHA256 of the exact body bytes keyed with
   FORWARD_SIGNING_SECRET, compared in constant time. A message that fails is terminated
   (never redelivered) and reported; it was not sent by the receiver.
2. deduplicates by event id. Delivery is at least once (a crash between send and record, a
   lost PubAck, a replay), so the same event can arrive again: its id (Nats-Msg-Id, also
   X-Audian-Event-Id) is recorded in this consumer's own store, here a SQLite file, in the
   same transaction as the work, and an id already there is acknowledged and skipped.
3. acknowledges only after that transaction has committed. A crash before the ack means a
   redelivery, which step 2 turns into a no-op; a failure in `handle` rolls back and asks
   for a redelivery later.

Environment:
    FORWARD_SIGNING_SECRET  required; the receiver's FORWARD_SIGNING_SECRET
    NATS_URL                default nats://127.0.0.1:4222
    STREAM                  default AUDIAN_EVENTS (created if missing, capturing SUBJECTS)
    SUBJECTS                default audian.events.> (the receiver's subject "audian.events.{type}")
    DURABLE                 default sample-consumer (the durable consumer's name: its place
                            in the stream survives restarts)
    STATE_DB                default processed.sqlite3 (the ids already processed)
"""

import asyncio
import datetime
import hashlib
import hmac
import json
import os
import signal
import sqlite3
import sys

import nats
from nats.errors import NoServersError
from nats.errors import TimeoutError as FetchTimeout
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from nats.js.errors import NotFoundError

SIGNATURE_HEADER = "x-receiver-signature"
# The receiver sets both to the event id; JetStream drops a repeat of Nats-Msg-Id within
# its duplicate window, this consumer's store catches the rest.
ID_HEADERS = ("nats-msg-id", "x-audian-event-id")


def signature_ok(key: bytes, body: bytes, signature: str | None) -> bool:
    """Recompute the HMAC over the bytes received and compare in constant time."""
    if not signature:
        return False
    expected = hmac.new(key, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


def event_id(headers: dict) -> str | None:
    for name in ID_HEADERS:
        if headers.get(name):
            return headers[name]
    return None


def open_store(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE IF NOT EXISTS processed ("
        " event_id TEXT PRIMARY KEY,"
        " processed_at TEXT NOT NULL)"
    )
    db.commit()
    return db


def handle(event_id: str, headers: dict, body: bytes) -> None:
    """Your work goes here. It runs inside the store's transaction: raise to roll back."""
    event = json.loads(body)
    print(
        f"event {event_id} type={headers.get('x-audian-event-type', '?')} "
        f"received_at={headers.get('x-audian-received-at', '?')} "
        # W3C trace context: pass it to your own tracer to continue the event's trace.
        f"traceparent={headers.get('traceparent', '-')} "
        f"body={json.dumps(event, separators=(',', ':'))}",
        flush=True,
    )


async def process(msg, key: bytes, db: sqlite3.Connection) -> None:
    # Header names compared case-insensitively, as in HTTP.
    headers = {name.lower(): value for name, value in (msg.headers or {}).items()}
    delivery = msg.metadata.num_delivered
    if not signature_ok(key, msg.data, headers.get(SIGNATURE_HEADER)):
        print(f"REJECTED message on {msg.subject}: bad or missing X-Receiver-Signature", flush=True)
        await msg.term()
        return
    eid = event_id(headers)
    if eid is None:
        print(f"REJECTED message on {msg.subject}: no event id header", flush=True)
        await msg.term()
        return
    try:
        with db:  # one transaction: the id and the work commit together, or neither
            now = datetime.datetime.now(datetime.timezone.utc).isoformat()
            inserted = db.execute(
                "INSERT OR IGNORE INTO processed (event_id, processed_at) VALUES (?, ?)",
                (eid, now),
            ).rowcount
            if inserted:
                handle(eid, headers, msg.data)
    except Exception as error:  # noqa: BLE001 - any failure of the work: try again later
        print(f"FAILED event {eid} (delivery {delivery}): {error}; redelivering in 10 s", flush=True)
        await msg.nak(delay=10)
        return
    if not inserted:
        print(f"duplicate {eid} (delivery {delivery}): already processed, skipped", flush=True)
    await msg.ack()


async def connect(url: str):
    """Wait for the server: at start in a compose stack it may not be up yet."""
    while True:
        try:
            return await nats.connect(url, name="audian-sample-consumer", max_reconnect_attempts=-1)
        except (NoServersError, OSError) as error:
            print(f"waiting for NATS at {url}: {error}", flush=True)
            await asyncio.sleep(2)


async def ensure_stream(js, name: str, subjects: list[str]) -> None:
    """The receiver publishes into a stream it does not create; make it here if missing."""
    try:
        info = await js.stream_info(name)
        print(f"stream {name} captures {info.config.subjects}", flush=True)
    except NotFoundError:
        await js.add_stream(StreamConfig(name=name, subjects=subjects))
        print(f"created stream {name} capturing {subjects}", flush=True)


async def main() -> int:
    secret = os.environ.get("FORWARD_SIGNING_SECRET")
    if not secret:
        print("FORWARD_SIGNING_SECRET is not set: nothing could be verified", file=sys.stderr)
        return 2
    key = secret.encode("utf-8")
    url = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")
    stream = os.environ.get("STREAM", "AUDIAN_EVENTS")
    subjects = os.environ.get("SUBJECTS", "audian.events.>").split(",")
    durable = os.environ.get("DURABLE", "sample-consumer")
    db = open_store(os.environ.get("STATE_DB", "processed.sqlite3"))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    nc = await connect(url)
    js = nc.jetstream()
    await ensure_stream(js, stream, subjects)
    subscription = await js.pull_subscribe(
        subjects[0],
        durable=durable,
        stream=stream,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=30),
    )
    print(f"consuming {stream} as {durable}", flush=True)
    while not stop.is_set():
        try:
            messages = await subscription.fetch(batch=32, timeout=2)
        except (FetchTimeout, asyncio.TimeoutError):  # nothing new within the timeout
            continue
        for msg in messages:
            await process(msg, key, db)
    # Every message fetched has been answered (ack, nak or term) by now.
    await nc.close()
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
