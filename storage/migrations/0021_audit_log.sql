-- Append-only log of every read of a person's health data: who (a user, or a device
-- token), whose (the profile), what (route and device), when, from where. No foreign keys:
-- entries outlive the accounts and profiles they name. Rows can be inserted, never
-- changed or removed (a trigger refuses UPDATE, DELETE and TRUNCATE even for the owner).

CREATE TABLE audit_log (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    actor_kind    text NOT NULL CHECK (actor_kind IN ('user', 'device_token', 'admin')),
    actor_id      uuid NOT NULL,
    profile_id    uuid NOT NULL,
    device_id     uuid,
    action        text NOT NULL,
    client_addr   text,
    user_agent    text
);
CREATE INDEX audit_log_profile_at ON audit_log (profile_id, at DESC, id DESC);
CREATE INDEX audit_log_actor_at ON audit_log (actor_id, at DESC);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);

CREATE FUNCTION vigil_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION vigil_audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_audit_log_append_only();
