-- The console lists a target's retrying and dead deliveries most recently failed first,
-- paged by (updated_at, event_id): this index serves each page, and the overview's "last
-- error", without sorting every failure of the target. Retry rows are written only when a
-- delivery fails, so intake never pays for it.
CREATE INDEX forward_retries_recent_idx ON forward_retries (target, updated_at DESC, event_id DESC);
