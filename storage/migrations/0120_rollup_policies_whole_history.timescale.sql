-- TimescaleDB: the refresh policies of 0042 looked back only 7 days (5-minute rollup) and
-- 30 days (hourly), so once older buckets were dropped from the refresh window a late upload,
-- an import or a deletion there was never materialised and long charts disagreed with the raw
-- readings. A NULL start_offset makes each policy's window the whole history; a refresh only
-- re-materialises the buckets invalidated since the last run, so the cost follows the
-- changes, not the history. Both run every 5 minutes; real-time aggregation
-- (materialized_only = false) covers everything after the watermark, and charts read whole
-- rollup buckets only inside their window (storage/history.bucketed).
SELECT remove_continuous_aggregate_policy('readings_5m', if_exists => true);
SELECT add_continuous_aggregate_policy('readings_5m',
    start_offset => NULL, end_offset => interval '5 minutes',
    schedule_interval => interval '5 minutes');

SELECT remove_continuous_aggregate_policy('readings_1h', if_exists => true);
SELECT add_continuous_aggregate_policy('readings_1h',
    start_offset => NULL, end_offset => interval '1 hour',
    schedule_interval => interval '5 minutes');
