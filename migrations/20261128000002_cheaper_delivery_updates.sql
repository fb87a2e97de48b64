-- Claiming a delivery now only sets lease_until and attempts, which no index covers, so the
-- update can stay on its page (a HOT update, no index writes) when the page has room: leave
-- that room. The (state, target) index cost a write on every state change; operators look
-- up dead rows, which are few, so index only those.
ALTER TABLE deliveries SET (fillfactor = 70);
DROP INDEX deliveries_state_target_idx;
CREATE INDEX deliveries_dead_idx ON deliveries (target, event_id) WHERE state = 'dead';
