-- Processors (docs/processors.md): which processor account made a payin, its
-- reference there, the network transaction id that later merchant-initiated
-- charges of the card cite, and whether the outcome is known. Written in the
-- SQL that SQLite and PostgreSQL share, like 00001.

-- +goose Up
ALTER TABLE payins ADD COLUMN processor_account TEXT NOT NULL DEFAULT '';
ALTER TABLE payins ADD COLUMN processor_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE payins ADD COLUMN processor_sub_account TEXT NOT NULL DEFAULT '';
ALTER TABLE payins ADD COLUMN processor_reference TEXT NOT NULL DEFAULT '';
ALTER TABLE payins ADD COLUMN network_transaction_id TEXT NOT NULL DEFAULT '';
-- APPROVED, DECLINED, UNKNOWN, or '' before the processor was asked.
ALTER TABLE payins ADD COLUMN processor_outcome TEXT NOT NULL DEFAULT '';
-- The reconciler's lease on an unresolved (CREATED) payin.
ALTER TABLE payins ADD COLUMN reconcile_lease_until TEXT;
CREATE INDEX payins_unresolved ON payins (updated_at) WHERE status = 'CREATED';
-- Every payin made before processors were accounts was the sandbox's.
UPDATE payins SET processor_account = 'sandbox', processor_kind = 'sandbox',
    processor_outcome = CASE WHEN status = 'FAILED' THEN 'DECLINED' WHEN status = 'CREATED' THEN '' ELSE 'APPROVED' END;

ALTER TABLE payment_methods ADD COLUMN network_transaction_id TEXT NOT NULL DEFAULT '';

ALTER TABLE refunds ADD COLUMN processor_reference TEXT NOT NULL DEFAULT '';
ALTER TABLE refunds ADD COLUMN processor_outcome TEXT NOT NULL DEFAULT '';

-- The config a connector transaction named, so that a replay is answered
-- only to a key that may act on it.
ALTER TABLE connector_transactions ADD COLUMN config_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE connector_transactions DROP COLUMN config_id;
ALTER TABLE refunds DROP COLUMN processor_outcome;
ALTER TABLE refunds DROP COLUMN processor_reference;
ALTER TABLE payment_methods DROP COLUMN network_transaction_id;
DROP INDEX payins_unresolved;
ALTER TABLE payins DROP COLUMN reconcile_lease_until;
ALTER TABLE payins DROP COLUMN processor_outcome;
ALTER TABLE payins DROP COLUMN network_transaction_id;
ALTER TABLE payins DROP COLUMN processor_reference;
ALTER TABLE payins DROP COLUMN processor_sub_account;
ALTER TABLE payins DROP COLUMN processor_kind;
ALTER TABLE payins DROP COLUMN processor_account;
