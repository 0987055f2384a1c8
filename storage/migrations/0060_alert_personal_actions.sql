-- Who changed an alert's shared state, and what a follower did for themselves only.
--
-- An alert's shared state (acknowledged: no more repeats, no escalation; snoozed: repeats
-- held back) changes only with the profile's manager or a `manage` follower, and records
-- who. An `alerts`-only follower's acknowledge or snooze applies to their own notifications:
-- one row here per (alert, follower), read by the notifier before each repeat/escalation.

ALTER TABLE alerts ADD COLUMN snoozed_by uuid REFERENCES users (id) ON DELETE SET NULL;

CREATE TABLE alert_personal (
    alert_id        uuid NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    acknowledged_at timestamptz,
    snoozed_until   timestamptz,
    PRIMARY KEY (alert_id, user_id)
);
CREATE INDEX alert_personal_user ON alert_personal (user_id);
