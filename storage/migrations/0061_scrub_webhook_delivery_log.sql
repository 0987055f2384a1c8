-- Webhook deliveries logged before the destination check: the log showed full URLs (with
-- user:password and ?token=) and the text of network errors, which told the owner what an
-- internal address answered. Keep the scheme, host, port and path; keep only Vigil's own
-- reasons ("receiver answered ...", "APNs ...") and replace any other text by a category.
UPDATE alert_deliveries
SET target = regexp_replace(regexp_replace(target, '^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#]*@', '\1'),
                            '[?#].*$', '')
WHERE channel = 'webhook' AND target ~ '(@|[?#])';

UPDATE alert_deliveries
SET detail = 'delivery failed'
WHERE channel = 'webhook' AND detail IS NOT NULL AND detail !~ '^receiver answered (HTTP )?[0-9]+$';
