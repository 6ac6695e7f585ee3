-- Extensions and helpers every later migration relies on.
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Keeps `updated_at` truthful whatever code path writes the row.
CREATE FUNCTION gad_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;

-- Guards append-only tables. Only the privacy maintenance paths (erasure, retention purge) may
-- change or remove rows, and they must say so explicitly inside their own transaction with
-- `SET LOCAL gad.privacy_maintenance = 'on'`.
CREATE FUNCTION gad_forbid_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('gad.privacy_maintenance', true) = 'on' THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
