-- Readings on plain PostgreSQL: declarative range partitions of one week each, created
-- ahead of every write by vigil_ensure_readings_partitions (no default partition, so a
-- missing partition is an error, never a silent detour).

CREATE TABLE readings (
    device_id    uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    ts           timestamptz NOT NULL,
    value        double precision NOT NULL,
    rate_per_min real,
    direction    text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, ts)
) PARTITION BY RANGE (ts);

CREATE FUNCTION vigil_ensure_readings_partitions(first_ts timestamptz, last_ts timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    week_start timestamptz := date_bin('7 days', first_ts, timestamptz '2000-01-03 00:00+00');
    created integer := 0;
    part text;
BEGIN
    WHILE week_start <= last_ts LOOP
        part := 'readings_' || to_char(week_start AT TIME ZONE 'UTC', 'YYYYMMDD');
        IF to_regclass(part) IS NULL THEN
            PERFORM pg_advisory_xact_lock(hashtext(part));
            IF to_regclass(part) IS NULL THEN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF readings FOR VALUES FROM (%L) TO (%L)',
                    part, week_start, week_start + interval '7 days');
                created := created + 1;
            END IF;
        END IF;
        week_start := week_start + interval '7 days';
    END LOOP;
    RETURN created;
END;
$$;
