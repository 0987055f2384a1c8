-- TimescaleDB: continuous aggregates of the readings in 5-minute and hourly buckets, which
-- long chart windows read instead of the raw rows (min, max, sum and count per bucket, so
-- coarser buckets are exact re-aggregations). Refreshed by policies; real-time aggregation
-- covers the not-yet-materialised tail.

CREATE MATERIALIZED VIEW readings_5m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT device_id, time_bucket(interval '5 minutes', ts) AS bucket,
       min(value) AS min_value, max(value) AS max_value,
       sum(value) AS sum_value, count(*) AS n
FROM readings GROUP BY device_id, bucket
WITH NO DATA;
SELECT add_continuous_aggregate_policy('readings_5m',
    start_offset => interval '7 days', end_offset => interval '5 minutes',
    schedule_interval => interval '5 minutes');

CREATE MATERIALIZED VIEW readings_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT device_id, time_bucket(interval '1 hour', ts) AS bucket,
       min(value) AS min_value, max(value) AS max_value,
       sum(value) AS sum_value, count(*) AS n
FROM readings GROUP BY device_id, bucket
WITH NO DATA;
SELECT add_continuous_aggregate_policy('readings_1h',
    start_offset => interval '30 days', end_offset => interval '1 hour',
    schedule_interval => interval '1 hour');
