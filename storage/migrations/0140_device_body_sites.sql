-- Where on the body a temperature device sits (a thermometer's Temperature Type, 0x2A1D),
-- as periods: a row holds from `since` until the device's next row. A body site changes
-- rarely (the patch is moved), so it is kept per device and period, not per reading; a
-- reading's site is the one in effect at its time (none before the first row).
CREATE TABLE device_body_sites (
    device_id   uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    since       timestamptz NOT NULL,
    body_site   text NOT NULL
                CHECK (body_site IN ('axilla', 'chest', 'forehead', 'wrist', 'ear', 'core')),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, since)
);
