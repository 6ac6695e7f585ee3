CREATE TYPE consent_type AS ENUM ('data_processing', 'location_tracking', 'telegram_notifications', 'analytics');
CREATE TYPE audit_outcome AS ENUM ('success', 'failure', 'denied');

-- Append-only: a withdrawal is a new record with granted = false.
CREATE TABLE consents (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id),
    consent_type   consent_type NOT NULL,
    granted        boolean NOT NULL,
    policy_version text NOT NULL CHECK (char_length(policy_version) BETWEEN 1 AND 32),
    channel        text NOT NULL CHECK (channel IN ('api', 'telegram', 'import')),
    user_agent     text CHECK (char_length(user_agent) <= 512),
    ip             inet,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
-- The current state per type is the newest record: this index answers it without a sort.
CREATE INDEX consents_current_idx ON consents (user_id, consent_type, recorded_at DESC, id DESC);
CREATE TRIGGER consents_append_only BEFORE UPDATE OR DELETE ON consents
    FOR EACH ROW EXECUTE FUNCTION gad_forbid_rewrite();

-- Append-only record of every authentication event and every write.
CREATE TABLE audit_events (
    id            uuid PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    actor_id      uuid REFERENCES users (id),
    actor_role    user_role,
    action        text NOT NULL CHECK (action ~ '^[a-z_]+(\.[a-z_]+)+$'),
    resource_type text NOT NULL CHECK (char_length(resource_type) <= 64),
    resource_id   uuid,
    outcome       audit_outcome NOT NULL,
    request_id    text CHECK (char_length(request_id) <= 128),
    ip            inet,
    user_agent    text CHECK (char_length(user_agent) <= 512),
    details       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_at_idx ON audit_events (at DESC, id DESC);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, at DESC) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_events_resource_idx ON audit_events (resource_type, resource_id, at DESC);
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION gad_forbid_rewrite();
