-- The credential (API key or session id) each payin and payment method was
-- made through, written with the row: a payer's browser credential
-- (group#payment_component) reads only what it made itself (SPEC §1.1).
-- Rows made before this migration record none, so no browser credential
-- reaches them (docs/decisions.md).

-- +goose Up
ALTER TABLE payins ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE payment_methods ADD COLUMN created_by TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE payment_methods DROP COLUMN created_by;
ALTER TABLE payins DROP COLUMN created_by;
