-- Every verified Audian event, stored once by its id, with the exact body bytes so it can be
-- re-verified and forwarded byte-identical.
CREATE TABLE events (
    event_id       text        PRIMARY KEY CHECK (char_length(event_id) BETWEEN 1 AND 255),
    event_type     text        NOT NULL,
    payload        bytea       NOT NULL,
    payload_sha256 bytea       NOT NULL CHECK (octet_length(payload_sha256) = 32),
    received_at    timestamptz NOT NULL DEFAULT now(),
    source_ip      inet
);

CREATE INDEX events_received_at_idx ON events (received_at);

-- The outbox: one row per (event, forward target), written in the same commit as the event.
CREATE TABLE deliveries (
    event_id        text        NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    target          text        NOT NULL,
    state           text        NOT NULL DEFAULT 'pending'
                                CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, target)
);

-- Workers only ever scan due pending rows.
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_state_target_idx ON deliveries (state, target);
