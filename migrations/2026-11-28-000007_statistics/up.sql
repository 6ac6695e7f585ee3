-- The version of the statistics is the newest event that can change them: every event except
-- officers' position reports, which are frequent and change no figure. This index answers
-- max(seq) over them at once, so that a cached figure costs one index probe to validate.
CREATE INDEX event_log_statistics_version_idx ON event_log (seq) WHERE event_type <> 'officer.location_updated';
