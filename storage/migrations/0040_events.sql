-- Context events of a profile (meals, exercise, insulin, medication, sleep, notes, custom).
-- A client may send an idempotency key with a create: the same key for the same profile
-- returns the stored event instead of a second one.

CREATE TABLE events (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    profile_id      uuid NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (
        kind IN ('meal', 'exercise', 'insulin', 'medication', 'sleep', 'note', 'custom')),
    ts              timestamptz NOT NULL,
    end_ts          timestamptz CHECK (end_ts IS NULL OR end_ts >= ts),
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    note            text,
    idempotency_key text,
    created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_profile_ts ON events (profile_id, ts);
CREATE UNIQUE INDEX events_idempotency ON events (profile_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
