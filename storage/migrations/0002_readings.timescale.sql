-- Readings on TimescaleDB: a hypertable with weekly chunks, compressed by device after 30 days.

CREATE TABLE readings (
    device_id    uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    ts           timestamptz NOT NULL,
    value        double precision NOT NULL,
    rate_per_min real,
    direction    text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, ts)
);
SELECT create_hypertable('readings', 'ts', chunk_time_interval => interval '7 days');
ALTER TABLE readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id');
SELECT add_compression_policy('readings', interval '30 days');

-- Timescale creates chunks itself; the writer calls this on both backends.
CREATE FUNCTION vigil_ensure_readings_partitions(first_ts timestamptz, last_ts timestamptz)
RETURNS integer LANGUAGE sql AS $$ SELECT 0 $$;
