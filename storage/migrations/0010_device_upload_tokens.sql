-- Device upload tokens: an opaque credential (stored only as its SHA-256) that can write
-- the readings of one device and nothing else, for gateways and uploaders that should not
-- hold a user's password. One per device: issuing a new one replaces the old.

CREATE TABLE device_upload_tokens (
    device_id  uuid PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
