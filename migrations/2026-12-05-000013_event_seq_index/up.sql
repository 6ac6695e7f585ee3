-- The unique index on event numbers also held an entry (NULL) for every event not yet numbered;
-- numbering reads "seq IS NULL", and the planner could pick that index over the partial
-- `event_log_unnumbered_idx`, walking every NULL entry a numbered event left behind until the
-- next vacuum (hundreds of milliseconds per numbering round on a busy log). Numbers are unique
-- only once given: the index now covers those alone, and every reader filters on `seq > n`,
-- which implies it.
DROP INDEX event_log_seq_key;
CREATE UNIQUE INDEX event_log_seq_key ON event_log (seq) WHERE seq IS NOT NULL;
