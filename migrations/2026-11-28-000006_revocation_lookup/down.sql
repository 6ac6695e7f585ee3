DROP INDEX IF EXISTS refresh_token_families_revoked_idx;
DROP INDEX IF EXISTS users_tokens_valid_after_idx;
