-- Nightscout v1 sites: one per profile that turns it on, addressed as /ns/<site_id>.
-- The API secret is kept as SHA-256 of its SHA-1 hex (what uploaders send), never itself.
-- Followers' apps get access tokens, kept the same way (a token may be sent as its SHA-1).
-- Nightscout documents Vigil has no table for (devicestatus, mbg and cal entries) are kept
-- as sent, upserted on (profile, collection, type, date) where a date identifies them.
-- Treatments become events; their Nightscout document is kept beside the event.

CREATE TABLE nightscout_sites (
    profile_id  uuid PRIMARY KEY REFERENCES profiles (id) ON DELETE CASCADE,
    site_id     text NOT NULL UNIQUE,
    secret_hash bytea NOT NULL,
    device_id   uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    rotated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE nightscout_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    profile_id  uuid NOT NULL REFERENCES nightscout_sites (profile_id) ON DELETE CASCADE,
    name        text NOT NULL,
    token_hash  bytea NOT NULL UNIQUE,
    can_write   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX nightscout_tokens_profile ON nightscout_tokens (profile_id);

CREATE TABLE nightscout_documents (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    profile_id  uuid NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    collection  text NOT NULL CHECK (collection IN ('entries', 'devicestatus')),
    type        text NOT NULL,
    date        timestamptz NOT NULL,
    doc         jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX nightscout_documents_key
    ON nightscout_documents (profile_id, collection, type, date) WHERE collection = 'entries';
CREATE INDEX nightscout_documents_time ON nightscout_documents (profile_id, collection, date);

ALTER TABLE events ADD COLUMN nightscout jsonb;
