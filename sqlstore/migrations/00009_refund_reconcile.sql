-- Refunds whose processor answer was lost (docs/processors.md): what the
-- reconciler needs to ask again under the same idempotency key, and to
-- correct the replayed answer of the request that made the refund.

-- +goose Up
ALTER TABLE refunds ADD COLUMN processor_idempotency_key TEXT NOT NULL DEFAULT '';
ALTER TABLE refunds ADD COLUMN request_idempotency_key TEXT NOT NULL DEFAULT '';
ALTER TABLE refunds ADD COLUMN reconcile_lease_until TEXT;

-- +goose Down
ALTER TABLE refunds DROP COLUMN reconcile_lease_until;
ALTER TABLE refunds DROP COLUMN request_idempotency_key;
ALTER TABLE refunds DROP COLUMN processor_idempotency_key;
