-- Webhook secret rotation (Standard Webhooks): after a rotation the previous secret keeps
-- signing beside the new one until previous_secret_expires_at, so a receiver can switch
-- secrets without missing or rejecting a delivery.
ALTER TABLE webhooks
    ADD COLUMN previous_secret            text,
    ADD COLUMN previous_secret_expires_at timestamptz;
