-- Events are numbered after they commit instead of while their transaction holds a lock.
--
-- Before: the insert trigger took the next number from `event_log_head` and kept that row locked
-- until the writer's commit, so every write in the system queued behind the previous one's
-- commit (its WAL flush included): a few hundred writes per second at most.
--
-- Now: a writer inserts its event without a number and commits without waiting for anyone.
-- `gad_event_log_number()` then gives every committed, unnumbered event the next numbers, in
-- the order of their ids (UUID v7: creation time). Numberers take turns under an advisory lock
-- and each reads with a snapshot taken after it holds the lock, so an event that commits late
-- is numbered after every event numbered before it: a reader that has seen `seq = n` never
-- meets a later event with a number <= n, and the numbers have no gaps (a rolled-back writer
-- never had one). Writers call it right after their commit; the relay calls it as well, so an
-- event whose writer died between commit and numbering is numbered all the same.
DROP TRIGGER event_log_take_seq ON event_log;
DROP FUNCTION gad_event_log_take_seq();
DROP TRIGGER event_log_notify ON event_log;
DROP FUNCTION gad_event_log_notify();

ALTER TABLE event_log DROP CONSTRAINT event_log_pkey;
ALTER TABLE event_log ALTER COLUMN seq DROP NOT NULL;
ALTER TABLE event_log DROP CONSTRAINT event_log_id_key;
ALTER TABLE event_log ADD PRIMARY KEY (id);
CREATE UNIQUE INDEX event_log_seq_key ON event_log (seq);
CREATE INDEX event_log_unnumbered_idx ON event_log (id) WHERE seq IS NULL;

-- Numbers the committed events that have none; returns how many. Wakes the relay when it did.
-- A call that finds nothing to number writes nothing, so it costs no WAL flush.
CREATE FUNCTION gad_event_log_number() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    pending uuid[];
    base bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM event_log WHERE seq IS NULL) THEN
        RETURN 0;
    END IF;
    -- One numberer at a time; the statements below see everything committed before this point.
    PERFORM pg_advisory_xact_lock(7305482461944137218);
    SELECT array_agg(id ORDER BY id) INTO pending FROM event_log WHERE seq IS NULL;
    IF pending IS NULL THEN
        RETURN 0;
    END IF;
    UPDATE event_log_head SET last_seq = last_seq + cardinality(pending)
        RETURNING last_seq - cardinality(pending) INTO base;
    UPDATE event_log e SET seq = base + numbered.position
        FROM unnest(pending) WITH ORDINALITY AS numbered (id, position)
        WHERE e.id = numbered.id;
    PERFORM pg_notify('gad_event_log', '');
    RETURN cardinality(pending);
END $$;
