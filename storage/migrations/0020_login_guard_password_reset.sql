-- Abuse resistance: failed logins per key ('account:<email>' or 'address:<ip>') within a
-- sliding window, temporary lockouts, and emailed one-time password-reset tokens.

CREATE TABLE login_failures (
    id  bigserial PRIMARY KEY,
    key text NOT NULL,
    at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_key_at ON login_failures (key, at);

CREATE TABLE login_lockouts (
    key          text PRIMARY KEY,
    locked_until timestamptz NOT NULL
);

-- Only the SHA-256 of a reset token is stored; a token works once, until it expires.
CREATE TABLE password_resets (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX password_resets_user ON password_resets (user_id);
