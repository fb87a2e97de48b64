-- Forwarding figures for BENCHMARKS.md, per target: how many deliveries, how many are
-- delivered, the forwarding rate over the run, and the time from receipt to delivery.
-- Run after a load run against a receiver with targets:
--   psql -h 127.0.0.1 -U postgres -d audian_receiver -f bench/forwarding.sql
SELECT d.target,
       count(*)                                                        AS deliveries,
       count(*) FILTER (WHERE d.state = 'delivered')                   AS delivered,
       count(*) FILTER (WHERE d.state = 'pending')                     AS pending,
       round((count(*) FILTER (WHERE d.state = 'delivered')
              / greatest(extract(epoch FROM max(d.delivered_at) - min(e.received_at)), 0.001))::numeric)
                                                                       AS forwarded_per_s,
       round((1000 * extract(epoch FROM percentile_cont(0.5) WITHIN GROUP
              (ORDER BY d.delivered_at - e.received_at)))::numeric, 1) AS p50_ms,
       round((1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP
              (ORDER BY d.delivered_at - e.received_at)))::numeric, 1) AS p99_ms
FROM deliveries AS d
JOIN events AS e USING (event_id)
GROUP BY d.target
ORDER BY d.target;

-- Intake over the same run, for comparison.
SELECT count(*) AS events,
       round((count(*) / greatest(extract(epoch FROM max(received_at) - min(received_at)), 0.001))::numeric)
         AS received_per_s
FROM events;
