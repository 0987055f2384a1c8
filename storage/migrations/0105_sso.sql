-- Single sign-on with an organisation's OpenID Connect provider.
-- sso_logins: a started sign-in, until its callback (one use, ten minutes): the PKCE code
-- verifier and the ID token nonce, keyed by the SHA-256 of the state sent to the provider,
-- so any API replica can finish it.
CREATE TABLE sso_logins (
    state_hash    bytea PRIMARY KEY,
    provider      text NOT NULL,
    code_verifier text NOT NULL,
    nonce         text NOT NULL,
    expires_at    timestamptz NOT NULL
);
CREATE INDEX sso_logins_expiry ON sso_logins (expires_at);

-- user_identities: which provider account (issuer's subject) signs in as which user; made on
-- the first sign-in, which links by verified email.
CREATE TABLE user_identities (
    provider   text NOT NULL,
    subject    text NOT NULL,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject)
);
CREATE INDEX user_identities_user ON user_identities (user_id);
