-- Fills the events table of the benchmark database with :rows stored events, in one
-- statement, for the "10M stored events" phases of bench/run.sh:
--   psql -h 127.0.0.1 -U postgres -d audian_bench -v rows=10000000 -f bench/prefill.sql
-- Run it on a freshly migrated database BEFORE the receiver first serves it: a forward
-- target's cursor starts at the end of the log when the target is new, so these rows are
-- history that is never forwarded. No delivery rows are written.
--
-- Each row looks like a loadgen event: a 575-byte JSON body, ids in increasing order, types
-- alternating, received one millisecond apart and ending a second ago. Only the columns
-- every schema version has are set (event_id, event_type, payload, payload_sha256,
-- received_at); the rest (source_ip, and any sequence or transaction-id column) take their
-- defaults.
\set ON_ERROR_STOP on
INSERT INTO events (event_id, event_type, payload, payload_sha256, received_at)
SELECT b.id, b.type, b.payload, sha256(b.payload), b.received_at
FROM generate_series(1, :rows) AS i
CROSS JOIN LATERAL (
    SELECT 'prefill-' || lpad(i::text, 10, '0') AS id,
           CASE WHEN i % 2 = 0 THEN 'job.completed' ELSE 'audio.uploaded' END AS type,
           now() - interval '1 second' - (:rows - i) * interval '1 millisecond' AS received_at
) AS h
CROSS JOIN LATERAL (
    SELECT h.id, h.type, h.received_at,
           convert_to(rpad(format('{"id":"%s","type":"%s","created_at":"%s","data":{"seq":%s,"generator":"bench/prefill.sql","filler":"',
                                  h.id, h.type, to_char(h.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), i),
                           572, 'x') || '"}}', 'UTF8') AS payload
) AS b;
-- What a long-running receiver's table would look like after autovacuum, so the benchmark
-- that follows does not share the machine with the first vacuum of millions of rows.
VACUUM (ANALYZE) events;
