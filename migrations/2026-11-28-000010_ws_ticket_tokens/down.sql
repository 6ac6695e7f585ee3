ALTER TABLE ws_tickets
    DROP COLUMN role,
    DROP COLUMN token_jti,
    DROP COLUMN session_id,
    DROP COLUMN token_issued_at,
    DROP COLUMN token_expires_at;
