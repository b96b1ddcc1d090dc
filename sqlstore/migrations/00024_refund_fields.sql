-- A refund's own fields (SPEC §3, issue 27): the metadata of the
-- void_or_refund request that made it, and why it FAILED. Its idempotency_key
-- is request_idempotency_key (00009). Written in the SQL both engines share.

-- +goose Up
ALTER TABLE refunds ADD COLUMN metadata TEXT;
ALTER TABLE refunds ADD COLUMN refusal_code TEXT NOT NULL DEFAULT '';
ALTER TABLE refunds ADD COLUMN refusal_desc TEXT NOT NULL DEFAULT '';
-- Refunds that failed before these columns existed: the processor's reason
-- was not kept, which is what PROCESSING_ERROR says.
UPDATE refunds SET refusal_code = 'PROCESSING_ERROR', refusal_desc = 'Processing error' WHERE status = 'FAILED';

-- +goose Down
ALTER TABLE refunds DROP COLUMN refusal_desc;
ALTER TABLE refunds DROP COLUMN refusal_code;
ALTER TABLE refunds DROP COLUMN metadata;
