-- Alerts: each profile's alert settings, the per-device evaluator state written in the same
-- group-commit transaction as the readings, and the alerts themselves.

-- Per-profile settings: {"glucose": [rule, ...], "temperature": [...]} (algorithms.rules
-- Rule.to_dict); no row means the clinical defaults.
CREATE TABLE alert_settings (
    profile_id      uuid PRIMARY KEY REFERENCES profiles (id) ON DELETE CASCADE,
    rules           jsonb NOT NULL,
    escalation_min  integer NOT NULL DEFAULT 15 CHECK (escalation_min BETWEEN 1 AND 1440),
    version         bigint NOT NULL DEFAULT 1,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- What a device actor must not forget across a shard restart: the evaluator state (alert
-- episodes, last notification per rule) and the stream algorithm state (filter).
CREATE TABLE device_state (
    device_id   uuid PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    state       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alerts (
    id               uuid PRIMARY KEY,
    profile_id       uuid NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    device_id        uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    rule             text NOT NULL,
    severity         text NOT NULL CHECK (severity IN ('warning', 'urgent')),
    value            double precision,
    threshold        double precision NOT NULL,
    state            text NOT NULL DEFAULT 'fired'
                     CHECK (state IN ('fired', 'acknowledged', 'cleared')),
    reading_ts       timestamptz NOT NULL,   -- when the sensor measured the reading
    received_at      timestamptz NOT NULL,   -- when the shard received the reading's batch
    fired_at         timestamptz NOT NULL,   -- when the alert was decided (committed with it)
    notified_at      timestamptz[] NOT NULL DEFAULT '{}',  -- fired and each repeat
    acknowledged_at  timestamptz,
    acknowledged_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    snoozed_until    timestamptz,
    cleared_at       timestamptz,
    clear_value      double precision
);
CREATE INDEX alerts_profile_fired ON alerts (profile_id, fired_at DESC);
CREATE UNIQUE INDEX alerts_one_open ON alerts (device_id, rule) WHERE state <> 'cleared';
