-- Instances catch up on revocations by time: user-wide ones (role change, deactivation,
-- erasure) and revoked sessions (logout, refresh-token reuse).
CREATE INDEX users_tokens_valid_after_idx ON users (tokens_valid_after) WHERE tokens_valid_after IS NOT NULL;
CREATE INDEX refresh_token_families_revoked_idx ON refresh_token_families (revoked_at) WHERE revoked_at IS NOT NULL;

-- `updated_at` tells when the user's record changed, not when they last tried to log in:
-- login bookkeeping (failure counts, locks, last login) no longer touches it.
DROP TRIGGER users_touch ON users;
CREATE TRIGGER users_touch BEFORE UPDATE OF email, first_name, last_name, national_id, phone, role, is_active,
    password_hash, erased_at ON users
    FOR EACH ROW EXECUTE FUNCTION gad_touch_updated_at();
