-- Live streams end with the permission they were opened under (issue 10, finding 2).
-- The trigger tells every API replica (channel vigil_live, the path that already closes a
-- revoked follower's stream) when an account is disabled, deleted or changes its password;
-- they close that user's streams. Logging out everywhere NOTIFYs from
-- storage.sessions.revoke_all_logins.

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
    END IF;
    IF why IS NOT NULL THEN
        PERFORM pg_notify('vigil_live', json_build_object('account', OLD.id, 'why', why)::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER users_account_changed AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION vigil_account_changed();
