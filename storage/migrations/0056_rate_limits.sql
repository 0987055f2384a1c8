-- Rate limits on expensive work (issue 10, finding 9): one counter per key (limit name and
-- subject: a client address, a user id, a recipient, a report link) and fixed window, shared
-- by every API replica. UNLOGGED: counters are worth less than the WAL they would cost; a
-- crash forgets them (limits start afresh), which errs on the side of serving.
CREATE UNLOGGED TABLE rate_counters (
    key         text PRIMARY KEY,
    count       integer NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX rate_counters_expired ON rate_counters (expires_at);
