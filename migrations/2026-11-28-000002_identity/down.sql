DROP TABLE IF EXISTS ws_tickets;
DROP TABLE IF EXISTS revoked_access_tokens;
DROP TABLE IF EXISTS refresh_tokens;
DROP TABLE IF EXISTS refresh_token_families;
DROP TABLE IF EXISTS users;
DROP TYPE IF EXISTS user_role;
