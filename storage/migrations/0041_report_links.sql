-- Read-only report links for a clinician: an unguessable token (only its hash is stored),
-- an expiry, revocation, and a record of every access.

CREATE TABLE report_links (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    profile_id  uuid NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    token_hash  bytea NOT NULL UNIQUE,
    days        integer NOT NULL CHECK (days BETWEEN 1 AND 90),
    window_end  timestamptz NOT NULL,
    label       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX report_links_profile ON report_links (profile_id);

CREATE TABLE report_link_accesses (
    id          bigserial PRIMARY KEY,
    link_id     uuid NOT NULL REFERENCES report_links (id) ON DELETE CASCADE,
    accessed_at timestamptz NOT NULL DEFAULT now(),
    format      text NOT NULL,
    client_ip   text,
    user_agent  text
);
CREATE INDEX report_link_accesses_link ON report_link_accesses (link_id, accessed_at);
