-- Platform operators: an admin may list and search users, profiles and devices, disable
-- and re-enable users, move devices between profiles and read the audit log.

ALTER TABLE users ADD COLUMN is_admin boolean NOT NULL DEFAULT false;
CREATE INDEX users_admins ON users (id) WHERE is_admin;
