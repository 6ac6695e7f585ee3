-- Updates still pending are lost with their payload: they had been acknowledged to Telegram.
DELETE FROM telegram_processed_updates WHERE processed_at IS NULL;
DROP INDEX telegram_processed_updates_chat_idx;
DROP INDEX telegram_processed_updates_pending_idx;
ALTER TABLE telegram_processed_updates
    DROP CONSTRAINT telegram_processed_updates_forgotten,
    DROP COLUMN received_at,
    DROP COLUMN chat_id,
    DROP COLUMN payload,
    DROP COLUMN lease_owner,
    DROP COLUMN lease_until,
    DROP COLUMN attempts,
    ALTER COLUMN processed_at SET DEFAULT now(),
    ALTER COLUMN processed_at SET NOT NULL;
