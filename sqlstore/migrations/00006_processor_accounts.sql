-- Processor accounts (docs/processors.md): the operator's accounts at Stripe
-- and Adyen, their secrets as vault ciphertext only, and which account each
-- platform (by default) and merchant uses.

-- +goose Up
CREATE TABLE processor_accounts (
    name              TEXT PRIMARY KEY,
    kind              TEXT NOT NULL,
    secret_ciphertext TEXT NOT NULL,
    merchant_account  TEXT NOT NULL DEFAULT '',
    api_base          TEXT NOT NULL DEFAULT '',
    created_at        TEXT NOT NULL
);
ALTER TABLE platforms ADD COLUMN processor_account TEXT NOT NULL DEFAULT '';
ALTER TABLE merchants ADD COLUMN processor_account TEXT NOT NULL DEFAULT '';
ALTER TABLE merchants ADD COLUMN processor_account_ref TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE merchants DROP COLUMN processor_account_ref;
ALTER TABLE merchants DROP COLUMN processor_account;
ALTER TABLE platforms DROP COLUMN processor_account;
DROP TABLE processor_accounts;
