-- A WebSocket ticket stands for the access token that requested it: the socket it opens is
-- closed when that token is revoked or expires, so the ticket keeps the token's identity.
-- The table has never held rows (tickets arrive with this migration), so the columns are
-- required from the start.
ALTER TABLE ws_tickets
    ADD COLUMN role             user_role NOT NULL,
    ADD COLUMN token_jti        uuid NOT NULL,
    ADD COLUMN session_id       uuid NOT NULL,
    ADD COLUMN token_issued_at  timestamptz NOT NULL,
    ADD COLUMN token_expires_at timestamptz NOT NULL;
