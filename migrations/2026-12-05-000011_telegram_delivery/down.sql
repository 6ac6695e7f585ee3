DROP TABLE telegram_outbox;
DELETE FROM event_consumers WHERE name = 'telegram';
