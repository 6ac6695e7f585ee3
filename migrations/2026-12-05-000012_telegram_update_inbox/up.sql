-- The webhook answers once an update is stored: `telegram_processed_updates` becomes the inbox.
-- A row is pending (`processed_at` NULL, the update's JSON in `payload`) until an instance has
-- processed it; it then stays, without payload or chat, as the record that this `update_id` was
-- handled. Whoever holds the lease (`lease_owner` until `lease_until`) processes it; an
-- unfinished row whose lease ran out is taken over by the sweep of any instance.
ALTER TABLE telegram_processed_updates
    ADD COLUMN received_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN chat_id     bigint,
    -- The update as received (text: stored verbatim, whatever escapes it holds).
    ADD COLUMN payload     text,
    ADD COLUMN lease_owner uuid,
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN attempts    integer NOT NULL DEFAULT 0,
    ALTER COLUMN processed_at DROP NOT NULL,
    ALTER COLUMN processed_at DROP DEFAULT,
    -- What the update said about a person goes once it is processed.
    ADD CONSTRAINT telegram_processed_updates_forgotten
        CHECK (processed_at IS NULL OR (payload IS NULL AND chat_id IS NULL));
UPDATE telegram_processed_updates SET received_at = processed_at;
-- The sweep's search for abandoned updates, and the erasure's for a chat's pending ones.
CREATE INDEX telegram_processed_updates_pending_idx ON telegram_processed_updates (lease_until, update_id)
    WHERE processed_at IS NULL;
CREATE INDEX telegram_processed_updates_chat_idx ON telegram_processed_updates (chat_id)
    WHERE processed_at IS NULL;
