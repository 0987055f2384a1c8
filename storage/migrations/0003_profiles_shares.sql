-- Profiles: whose body the readings come from. Every user has a 'self' profile and may
-- manage 'dependent' profiles (a child, an elderly parent) who have no login. Devices
-- belong to profiles; followers see a profile through an active share with scopes.

CREATE TABLE profiles (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    manager_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('self', 'dependent')),
    name       text NOT NULL,
    timezone   text NOT NULL DEFAULT 'UTC',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX profiles_one_self ON profiles (manager_id) WHERE kind = 'self';
CREATE INDEX profiles_manager ON profiles (manager_id);

INSERT INTO profiles (manager_id, kind, name) SELECT id, 'self', name FROM users;

ALTER TABLE devices ADD COLUMN profile_id uuid REFERENCES profiles (id) ON DELETE CASCADE;
UPDATE devices d SET profile_id = p.id
    FROM profiles p WHERE p.manager_id = d.owner_id AND p.kind = 'self';
ALTER TABLE devices ALTER COLUMN profile_id SET NOT NULL;
ALTER TABLE devices DROP COLUMN owner_id;
ALTER TABLE devices ADD CONSTRAINT devices_profile_serial_key UNIQUE (profile_id, serial);
CREATE INDEX devices_profile ON devices (profile_id);

CREATE TABLE shares (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    profile_id    uuid NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    invited_by    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    invited_email text NOT NULL,
    follower_id   uuid REFERENCES users (id) ON DELETE CASCADE,
    scopes        text[] NOT NULL CHECK (
        cardinality(scopes) > 0 AND scopes <@ ARRAY['readings', 'alerts', 'manage']::text[]),
    state         text NOT NULL DEFAULT 'pending' CHECK (
        state IN ('pending', 'active', 'declined', 'revoked', 'left')),
    code_hash     bytea UNIQUE,
    expires_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    accepted_at   timestamptz,
    ended_at      timestamptz
);
CREATE UNIQUE INDEX shares_one_active ON shares (profile_id, follower_id) WHERE state = 'active';
CREATE INDEX shares_follower ON shares (follower_id) WHERE state = 'active';
CREATE INDEX shares_profile ON shares (profile_id);
