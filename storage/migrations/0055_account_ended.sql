-- Live streams end with the permission they were opened under (issue 10, finding 2).
-- `sessions_ended_at`: when the user last logged out everywhere (also set by a password
-- reset and by an admin disabling the account); an access token issued before it no longer
-- opens a live stream. The trigger tells every API replica (channel vigil_live, the path
-- that already closes a revoked follower's stream) when an account is disabled, deleted,
-- changes its password or ends its sessions; they close that user's streams.
ALTER TABLE users ADD COLUMN sessions_ended_at timestamptz;

CREATE FUNCTION vigil_account_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    why text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        why := 'deleted';
    ELSIF NEW.disabled_at IS NOT NULL AND OLD.disabled_at IS NULL THEN
        why := 'disabled';
    ELSIF NEW.password_hash IS DISTINCT FROM OLD.password_hash THEN
        why := 'password';
    ELSIF NEW.sessions_ended_at IS DISTINCT FROM OLD.sessions_ended_at THEN
        why := 'logout';
    END IF;
    IF why IS NOT NULL THEN
        PERFORM pg_notify('vigil_live', json_build_object('account', OLD.id, 'why', why)::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER users_account_changed AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION vigil_account_changed();
