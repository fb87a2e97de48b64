-- Retention and erasure (DESIGN §2): a payload can be dropped (NULL) while the row stays, so
-- that Audian's late retries of that id are still recognised as duplicates (payload_sha256
-- stays). Payloads are found by age through an index of the rows that still have one; rows
-- themselves are removed oldest first along the log index.
ALTER TABLE events ALTER COLUMN payload DROP NOT NULL;
CREATE INDEX events_payload_kept_idx ON events (received_at) WHERE payload IS NOT NULL;
DROP INDEX events_received_at_idx;
