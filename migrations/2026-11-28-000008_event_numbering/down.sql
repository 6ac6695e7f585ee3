-- Back to numbering inside the writer's transaction. Unnumbered events are numbered first.
SELECT gad_event_log_number();
DROP FUNCTION gad_event_log_number();
DROP INDEX event_log_unnumbered_idx;
DROP INDEX event_log_seq_key;
ALTER TABLE event_log DROP CONSTRAINT event_log_pkey;
ALTER TABLE event_log ADD CONSTRAINT event_log_id_key UNIQUE (id);
ALTER TABLE event_log ALTER COLUMN seq SET NOT NULL;
ALTER TABLE event_log ADD PRIMARY KEY (seq);

CREATE FUNCTION gad_event_log_take_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE event_log_head SET last_seq = last_seq + 1 RETURNING last_seq INTO NEW.seq;
    RETURN NEW;
END $$;
CREATE TRIGGER event_log_take_seq BEFORE INSERT ON event_log
    FOR EACH ROW EXECUTE FUNCTION gad_event_log_take_seq();
CREATE FUNCTION gad_event_log_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gad_event_log', '');
    RETURN NULL;
END $$;
CREATE TRIGGER event_log_notify AFTER INSERT ON event_log
    FOR EACH STATEMENT EXECUTE FUNCTION gad_event_log_notify();
