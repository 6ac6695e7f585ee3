CREATE TYPE user_role AS ENUM ('admin', 'supervisor', 'operator', 'officer');

CREATE TABLE users (
    id                    uuid PRIMARY KEY,
    email                 text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254 AND email LIKE '%_@_%'),
    password_hash         text NOT NULL,
    first_name            text NOT NULL CHECK (char_length(first_name) BETWEEN 1 AND 100),
    last_name             text NOT NULL CHECK (char_length(last_name) BETWEEN 1 AND 100),
    national_id           text CHECK (national_id ~ '^[A-Za-z0-9-]{5,20}$'),
    phone                 text CHECK (phone ~ '^\+[0-9]{8,15}$'),
    role                  user_role NOT NULL,
    is_active             boolean NOT NULL DEFAULT true,
    failed_login_attempts integer NOT NULL DEFAULT 0 CHECK (failed_login_attempts >= 0),
    locked_until          timestamptz,
    last_login_at         timestamptz,
    -- Access tokens issued before this instant are rejected (role change, deactivation, erasure).
    tokens_valid_after    timestamptz,
    -- Set when the subject exercised the right to erasure; the row stays as a pseudonym.
    erased_at             timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
-- E-mail addresses are unique regardless of case.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE UNIQUE INDEX users_national_id_key ON users (upper(national_id)) WHERE national_id IS NOT NULL;
CREATE INDEX users_role_idx ON users (role, id);
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION gad_touch_updated_at();

-- Refresh tokens rotate inside a family; reuse of a spent token revokes the whole family.
CREATE TABLE refresh_token_families (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    revoke_reason text CHECK (revoke_reason IN ('logout', 'reuse_detected', 'user_changed', 'erasure'))
);
CREATE INDEX refresh_token_families_user_idx ON refresh_token_families (user_id) WHERE revoked_at IS NULL;

CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    family_id   uuid NOT NULL REFERENCES refresh_token_families (id) ON DELETE CASCADE,
    -- SHA-256 of the opaque token; the token itself is never stored.
    token_hash  bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

-- Access tokens revoked before their expiry (logout); the source of truth behind the shared denylist.
CREATE TABLE revoked_access_tokens (
    jti        uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revoked_access_tokens_expires_idx ON revoked_access_tokens (expires_at);
CREATE INDEX revoked_access_tokens_revoked_idx ON revoked_access_tokens (revoked_at);

-- Single-use, short-lived WebSocket tickets for browsers (hash of the ticket only).
CREATE TABLE ws_tickets (
    ticket_hash bytea PRIMARY KEY CHECK (octet_length(ticket_hash) = 32),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX ws_tickets_expires_idx ON ws_tickets (expires_at);
