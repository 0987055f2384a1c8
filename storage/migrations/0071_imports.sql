-- History imports: one row per uploaded file, its progress while it is being stored, and
-- the rows that were not (line and reason). Imported readings are ordinary readings.

CREATE TABLE imports (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    device_id   uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    format      text NOT NULL,
    filename    text,
    state       text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed')),
    total       integer NOT NULL,
    processed   integer NOT NULL DEFAULT 0,
    accepted    integer NOT NULL DEFAULT 0,
    duplicates  integer NOT NULL DEFAULT 0,
    ignored     integer NOT NULL DEFAULT 0,
    skipped     jsonb NOT NULL DEFAULT '[]'::jsonb,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX imports_device ON imports (device_id, created_at);
