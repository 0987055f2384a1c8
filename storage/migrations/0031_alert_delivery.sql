-- Alert delivery: who wants which alerts how, where to send them, and what was sent.

-- A person's preferences for one profile they manage or follow with the 'alerts' scope.
-- No row: every rule, every channel, no quiet hours.
CREATE TABLE notification_prefs (
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    profile_id       uuid NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    rules            text[],                 -- NULL: every rule
    channels         text[] NOT NULL DEFAULT ARRAY['stream', 'push', 'email', 'webhook'],
    quiet            jsonb NOT NULL DEFAULT '[]',  -- [{start_min, end_min, weekdays}]
    timezone         text NOT NULL DEFAULT 'UTC',
    escalation_only  boolean NOT NULL DEFAULT false,  -- only urgent alerts nobody acknowledged
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, profile_id)
);

CREATE TABLE webhooks (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url         text NOT NULL,
    secret      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_user ON webhooks (user_id);

CREATE TABLE push_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    platform    text NOT NULL CHECK (platform IN ('apns', 'fcm')),
    token       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (platform, token)
);
CREATE INDEX push_tokens_user ON push_tokens (user_id);

-- Every attempt to deliver an alert event to someone on some channel.
CREATE TABLE alert_deliveries (
    id            bigserial PRIMARY KEY,
    alert_id      uuid NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    event         text NOT NULL,          -- fired | repeated | escalated | cleared
    user_id       uuid REFERENCES users (id) ON DELETE SET NULL,
    channel       text NOT NULL,          -- stream | webhook | apns | fcm | email
    target        text,
    attempt       integer NOT NULL DEFAULT 1,
    status        text NOT NULL CHECK (status IN ('delivered', 'failed', 'retrying', 'gave_up')),
    detail        text,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id, at);

-- A share that stops being active (revoked, left) or changes scopes tells the live streams,
-- which re-check the follower's access and close what is no longer allowed.
CREATE FUNCTION vigil_share_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'active' AND OLD.follower_id IS NOT NULL
       AND (TG_OP = 'DELETE' OR NEW.state <> 'active' OR NEW.scopes <> OLD.scopes) THEN
        PERFORM pg_notify('vigil_live', json_build_object(
            'revoked', OLD.profile_id, 'f', OLD.follower_id)::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER shares_changed AFTER UPDATE OR DELETE ON shares
    FOR EACH ROW EXECUTE FUNCTION vigil_share_changed();

-- When an unacknowledged urgent alert was escalated (re-sent, and to escalation-only people).
ALTER TABLE alerts ADD COLUMN escalated_at timestamptz;
CREATE INDEX alerts_unacknowledged_urgent ON alerts (fired_at)
    WHERE severity = 'urgent' AND state = 'fired' AND escalated_at IS NULL;
