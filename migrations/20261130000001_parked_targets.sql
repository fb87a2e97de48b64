-- A target that fails every event of a batch (and only retryably) is down, not choosy: its
-- cursor holds at the start of that batch instead of moving past it with a retry row per
-- event, and the batch is tried again (the probe) with the retry policy's backoff. So a dead
-- target writes one cursor update per probe, not a row per event that arrives meanwhile.
-- parked_txid/parked_seq end the held batch (its events have been tried parked_attempts
-- times, the last failure is parked_error); parked_until is when the next probe is due.
-- All NULL (attempts 0) while the target is healthy. Adding NULL columns is instant.
ALTER TABLE forward_cursors
    ADD COLUMN parked_txid     xid8,
    ADD COLUMN parked_seq      bigint,
    ADD COLUMN parked_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN parked_until    timestamptz,
    ADD COLUMN parked_error    text;

-- The operator's view again, with the held batch shown as what it is: pending, tried
-- parked_attempts times, next due at parked_until, with the last error. Events after the
-- held batch are pending with no attempt yet.
CREATE OR REPLACE VIEW deliveries AS
SELECT r.event_id, r.target,
       CASE r.state WHEN 'dead' THEN 'dead' ELSE 'pending' END AS state,
       r.attempts, r.next_attempt_at, r.last_error, e.txid, e.seq
FROM forward_retries AS r
JOIN events AS e USING (event_id)
UNION ALL
SELECT e.event_id, c.target,
       CASE WHEN ahead THEN 'pending' ELSE 'delivered' END,
       CASE WHEN NOT ahead THEN 1 WHEN held THEN c.parked_attempts ELSE 0 END,
       CASE WHEN held THEN c.parked_until END,
       CASE WHEN held THEN c.parked_error END,
       e.txid, e.seq
FROM forward_cursors AS c
JOIN events AS e ON (e.txid, e.seq) > (c.origin_txid, c.origin_seq) AND e.event_type ~ c.type_pattern
CROSS JOIN LATERAL (
    SELECT (e.txid, e.seq) > (c.txid, c.seq) AS ahead,
           (e.txid, e.seq) > (c.txid, c.seq) AND (e.txid, e.seq) <= (c.parked_txid, c.parked_seq)
               IS TRUE AS held
) AS place
WHERE NOT EXISTS (
    SELECT 1 FROM forward_retries AS r WHERE r.target = c.target AND r.event_id = e.event_id
);
