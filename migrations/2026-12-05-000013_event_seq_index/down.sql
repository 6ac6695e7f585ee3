DROP INDEX event_log_seq_key;
CREATE UNIQUE INDEX event_log_seq_key ON event_log (seq);
