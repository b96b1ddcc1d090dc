-- Processor events whose application fails (docs/decisions.md, "Events that
-- fail to apply"): each failed attempt is counted here, apart from attempts
-- (which also count the waits for an unknown object), and after
-- payments.MaxEventFailures of them the event's status is FAILED. The status
-- column has no CHECK constraint, so the new status needs no change to it;
-- processor_events_received (status, received_at) serves the --failed list.
-- Written in the SQL that SQLite and PostgreSQL share, like 00024.

-- +goose Up
ALTER TABLE processor_events ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;

-- +goose Down
-- FAILED events go back to waiting, as they did before the status existed.
UPDATE processor_events SET status = 'PENDING' WHERE status = 'FAILED';
ALTER TABLE processor_events DROP COLUMN failures;
