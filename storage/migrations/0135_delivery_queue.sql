-- Deliveries not yet done (issue 17 part 6): every webhook, push and email delivery is queued
-- here before its first attempt and leaves the queue when it is delivered, refused for good
-- or given up at the end of its retry horizon (alert_deliveries keeps every attempt). A
-- notifier that restarts picks up what is due, so a receiver down for an hour still gets
-- the alert, once, under the same delivery id (the Standard Webhooks webhook-id).
CREATE TABLE delivery_queue (
    id             bigserial PRIMARY KEY,
    delivery_id    text NOT NULL UNIQUE,   -- the webhook-id, the same on every attempt
    alert_id       uuid NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    event          text NOT NULL,          -- fired | repeated | escalated
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel        text NOT NULL CHECK (channel IN ('webhook', 'apns', 'fcm', 'email')),
    -- the endpoint, read again at every attempt (a rotated secret signs; a deleted webhook
    -- or token takes its deliveries with it)
    webhook_id     uuid REFERENCES webhooks (id) ON DELETE CASCADE,
    push_token_id  uuid REFERENCES push_tokens (id) ON DELETE CASCADE,
    target         text,                   -- as the delivery log shows it
    payload        jsonb NOT NULL,
    attempts       integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    next_at        timestamptz NOT NULL DEFAULT now(),  -- due, or claimed until
    CHECK ((channel = 'webhook') = (webhook_id IS NOT NULL)),
    CHECK ((channel IN ('apns', 'fcm')) = (push_token_id IS NOT NULL))
);
CREATE INDEX delivery_queue_due ON delivery_queue (next_at);
CREATE INDEX delivery_queue_alert ON delivery_queue (alert_id, created_at);
