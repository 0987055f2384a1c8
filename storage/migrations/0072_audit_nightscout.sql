-- Reads through a profile's Nightscout site are audited too: the actor is the access token
-- (its id), or the site's API secret (the actor id is then the site's uploader device).

ALTER TABLE audit_log DROP CONSTRAINT audit_log_actor_kind_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_actor_kind_check
    CHECK (actor_kind IN ('user', 'device_token', 'admin', 'nightscout'));
