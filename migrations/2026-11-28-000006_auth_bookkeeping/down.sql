DROP TRIGGER users_touch ON users;
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION gad_touch_updated_at();
DROP INDEX IF EXISTS refresh_token_families_revoked_idx;
DROP INDEX IF EXISTS users_tokens_valid_after_idx;
