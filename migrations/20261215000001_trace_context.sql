-- The W3C trace context of the request that brought each event (its request span's
-- `traceparent`, then a space and the `tracestate` when there is one), so every delivery
-- attempt, however late, joins Audian's trace. Older rows have none: their deliveries
-- start a trace of their own. Nullable with no default, so adding it rewrites nothing.
ALTER TABLE events ADD COLUMN trace_context text;
