-- Instances catch up on revocations by time: user-wide ones (role change, deactivation,
-- erasure) and revoked sessions (logout, refresh-token reuse).
CREATE INDEX users_tokens_valid_after_idx ON users (tokens_valid_after) WHERE tokens_valid_after IS NOT NULL;
CREATE INDEX refresh_token_families_revoked_idx ON refresh_token_families (revoked_at) WHERE revoked_at IS NOT NULL;
