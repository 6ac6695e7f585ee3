-- Telegram notifications waiting to be sent, queued by the event-log consumer `telegram` (its
-- position is in `event_consumers`) in the transaction that advances that position, so that
-- each event is turned into notifications once, whichever instance consumes it.
CREATE TABLE telegram_outbox (
    id            bigserial PRIMARY KEY,
    event_seq     bigint NOT NULL,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    task_id       uuid NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('assigned', 'unassigned', 'emergency')),
    -- The task as the event carried it.
    task          jsonb NOT NULL,
    committed_at  timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'skipped', 'failed')),
    attempts      integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_until timestamptz,
    last_error    text CHECK (char_length(last_error) <= 500),
    settled_at    timestamptz,
    UNIQUE (event_seq, user_id, kind)
);
CREATE INDEX telegram_outbox_due_idx ON telegram_outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX telegram_outbox_user_idx ON telegram_outbox (user_id);
-- Each user's notifications leave in order: the oldest pending one first.
CREATE INDEX telegram_outbox_user_pending_idx ON telegram_outbox (user_id, id) WHERE status = 'pending';
CREATE INDEX telegram_outbox_task_user_idx ON telegram_outbox (task_id, user_id);
