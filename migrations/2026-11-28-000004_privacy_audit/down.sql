DROP TABLE IF EXISTS audit_events;
DROP TABLE IF EXISTS consents;
DROP TYPE IF EXISTS audit_outcome;
DROP TYPE IF EXISTS consent_type;
