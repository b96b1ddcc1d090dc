-- A capture or void in flight at the processor (ivrpay.PayinOperation,
-- docs/processors.md): written before the processor is asked, cleared with
-- its outcome. While operation is set the payin does not settle, and the
-- reconciler re-sends the operation under operation_key until the processor
-- answers for certain (it leases the payin with reconcile_lease_until).

-- +goose Up
ALTER TABLE payins ADD COLUMN operation TEXT NOT NULL DEFAULT '';
ALTER TABLE payins ADD COLUMN operation_amount BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payins ADD COLUMN operation_key TEXT NOT NULL DEFAULT '';
ALTER TABLE payins ADD COLUMN operation_outcome TEXT NOT NULL DEFAULT '';
ALTER TABLE payins ADD COLUMN operation_request_key TEXT NOT NULL DEFAULT '';
CREATE INDEX payins_operation_due ON payins (updated_at) WHERE operation <> '';

-- +goose Down
DROP INDEX payins_operation_due;
ALTER TABLE payins DROP COLUMN operation_request_key;
ALTER TABLE payins DROP COLUMN operation_outcome;
ALTER TABLE payins DROP COLUMN operation_key;
ALTER TABLE payins DROP COLUMN operation_amount;
ALTER TABLE payins DROP COLUMN operation;
