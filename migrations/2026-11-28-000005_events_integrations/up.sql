-- The event log (outbox). `seq` is global, gap-free and in commit order: it is taken from the
-- single row of `event_log_head` by the insert trigger, and that row stays locked until the
-- writing transaction ends. A later writer therefore waits, and can only take a higher number
-- after every lower one is committed (or rolled back, giving its number back). A reader that
-- has seen `seq = n` never meets a later commit with a number <= n.
CREATE TABLE event_log_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_seq  bigint NOT NULL
);
INSERT INTO event_log_head (singleton, last_seq) VALUES (true, 0);

CREATE TABLE event_log (
    seq           bigint PRIMARY KEY,
    id            uuid NOT NULL UNIQUE,
    event_type    text NOT NULL CHECK (event_type IN (
        'task.created', 'task.updated', 'task.status_changed', 'task.assigned', 'task.unassigned',
        'task.deleted', 'officer.location_updated', 'officer.availability_changed', 'alert.emergency')),
    task_id       uuid,
    officer_id    uuid,
    -- Users who see the event on `tasks:mine` (the assigned officers' accounts).
    audience      uuid[] NOT NULL DEFAULT '{}',
    actor_id      uuid,
    request_id    text,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_log_created_idx ON event_log (created_at);

CREATE FUNCTION gad_event_log_take_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE event_log_head SET last_seq = last_seq + 1 RETURNING last_seq INTO NEW.seq;
    RETURN NEW;
END $$;
CREATE TRIGGER event_log_take_seq BEFORE INSERT ON event_log
    FOR EACH ROW EXECUTE FUNCTION gad_event_log_take_seq();

-- Wakes the relay at commit; the table, not the notification, is the truth.
CREATE FUNCTION gad_event_log_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gad_event_log', '');
    RETURN NULL;
END $$;
CREATE TRIGGER event_log_notify AFTER INSERT ON event_log
    FOR EACH STATEMENT EXECUTE FUNCTION gad_event_log_notify();

-- How far each consumer of the event log (WebSocket relay, Telegram notifier) has come.
CREATE TABLE event_consumers (
    name       text PRIMARY KEY,
    last_seq   bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Stored responses for `Idempotency-Key`; expire after 24 hours.
CREATE TABLE idempotency_keys (
    owner_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope            text NOT NULL,
    key              text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    request_hash     bytea NOT NULL CHECK (octet_length(request_hash) = 32),
    response_status  smallint CHECK (response_status BETWEEN 100 AND 599),
    response_headers jsonb,
    response_body    bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    PRIMARY KEY (owner_id, scope, key),
    -- A row without a response is a request still running.
    CHECK ((response_status IS NULL) = (response_body IS NULL))
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

-- Telegram: which chat belongs to which user.
CREATE TABLE telegram_links (
    user_id   uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    chat_id   bigint NOT NULL UNIQUE,
    username  text CHECK (char_length(username) <= 64),
    linked_at timestamptz NOT NULL DEFAULT now()
);

-- One-time codes for `/start <code>` (10 minutes, single use).
CREATE TABLE telegram_link_codes (
    code       text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_-]{16,64}$'),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX telegram_link_codes_user_idx ON telegram_link_codes (user_id);

-- Each Bot API update is processed once, whichever instance receives it.
CREATE TABLE telegram_processed_updates (
    update_id    bigint PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX telegram_processed_updates_at_idx ON telegram_processed_updates (processed_at);

-- State of guided bot conversations (/crear), per chat.
CREATE TABLE telegram_conversations (
    chat_id    bigint PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
