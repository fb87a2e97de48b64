-- Forwarding as a log with a cursor per target (DESIGN §3). The events table is the log,
-- ordered by (txid, seq); each target reads it through its own cursor, and only events that
-- failed a target get a row of their own. The happy path writes nothing per event per target.

-- The position of each event in the log: the transaction that wrote it and a sequence number.
-- Existing rows all get this migration's transaction id, so they sit below any cursor made
-- here. (Adding the columns rewrites the table once.)
ALTER TABLE events
    ADD COLUMN seq  bigint GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN txid xid8   NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX events_log_idx ON events (txid, seq);

-- One row per target: how far it has read (txid, seq), from where it started (origin: events
-- at or before it were never meant for this target), which event types it takes (an anchored
-- regular expression made from its globs, for the operator's view), and who holds its lease.
CREATE TABLE forward_cursors (
    target       text        PRIMARY KEY,
    txid         xid8        NOT NULL,
    seq          bigint      NOT NULL,
    origin_txid  xid8        NOT NULL,
    origin_seq   bigint      NOT NULL,
    type_pattern text        NOT NULL DEFAULT '.*',
    lease_owner  text,
    lease_until  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Events that failed a target: retried with backoff until delivered (then deleted) or dead.
-- `claim` grows with every claim and every replay; an outcome is recorded only by the
-- attempt holding the current claim, so a stale worker can never overwrite a newer attempt.
-- A claimed row is leased by moving next_attempt_at past the lease.
CREATE TABLE forward_retries (
    target          text        NOT NULL,
    event_id        text        NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    state           text        NOT NULL DEFAULT 'retrying' CHECK (state IN ('retrying', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    claim           bigint      NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target, event_id)
);
CREATE INDEX forward_retries_due_idx ON forward_retries (target, next_attempt_at)
    WHERE state = 'retrying';
CREATE INDEX forward_retries_event_idx ON forward_retries (event_id);

-- The outbox's rows move over: pending and dead deliveries become retry rows (due as they
-- were, attempts kept); delivered ones need nothing. Each target's cursor starts at the end
-- of the log, so nothing is sent twice and nothing waiting is lost.
INSERT INTO forward_retries (target, event_id, state, attempts, next_attempt_at, last_error, created_at)
SELECT target, event_id,
       CASE state WHEN 'dead' THEN 'dead' ELSE 'retrying' END,
       attempts, next_attempt_at, last_error, created_at
FROM deliveries
WHERE state IN ('pending', 'dead');

-- Each origin is just before the target's first outbox row: the outbox's history stays
-- visible (as delivered), and older events, from before the target existed, do not show.
INSERT INTO forward_cursors (target, txid, seq, origin_txid, origin_seq)
SELECT d.target, pg_current_xact_id(), (SELECT coalesce(max(seq), 0) FROM events),
       pg_current_xact_id(), min(e.seq) - 1
FROM deliveries AS d
JOIN events AS e USING (event_id)
GROUP BY d.target;

DROP TABLE deliveries;

-- The operator's view of (event, target) deliveries, one state each: a retry row's own state
-- (retrying shows as pending); otherwise pending when the cursor has not reached the event
-- yet, delivered when it has.
CREATE VIEW deliveries AS
SELECT r.event_id, r.target,
       CASE r.state WHEN 'dead' THEN 'dead' ELSE 'pending' END AS state,
       r.attempts, r.next_attempt_at, r.last_error, e.txid, e.seq
FROM forward_retries AS r
JOIN events AS e USING (event_id)
UNION ALL
SELECT e.event_id, c.target,
       CASE WHEN (e.txid, e.seq) > (c.txid, c.seq) THEN 'pending' ELSE 'delivered' END,
       CASE WHEN (e.txid, e.seq) > (c.txid, c.seq) THEN 0 ELSE 1 END,
       NULL::timestamptz, NULL::text, e.txid, e.seq
FROM forward_cursors AS c
JOIN events AS e ON (e.txid, e.seq) > (c.origin_txid, c.origin_seq) AND e.event_type ~ c.type_pattern
WHERE NOT EXISTS (
    SELECT 1 FROM forward_retries AS r WHERE r.target = c.target AND r.event_id = e.event_id
);
