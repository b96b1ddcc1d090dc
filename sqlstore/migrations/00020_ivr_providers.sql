-- Telnyx and SignalWire beside Twilio (SPEC §5.6): a connector transaction_id
-- is unique per platform and provider, and a payin records its provider.
-- Written in the SQL that SQLite and PostgreSQL share, like 00001.

-- +goose Up
-- The provider joins the key of connector transactions. SQLite cannot change
-- a primary key in place, so the table is copied; nothing references it.
CREATE TABLE connector_transactions_by_provider (
    platform_id    TEXT NOT NULL REFERENCES platforms (id),
    provider       TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    request_hash   TEXT NOT NULL,
    config_id      TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL,
    response       TEXT,
    lease_until    TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (platform_id, provider, transaction_id)
);
INSERT INTO connector_transactions_by_provider (platform_id, provider, transaction_id, request_hash, config_id, status,
    response, lease_until, created_at, updated_at)
SELECT platform_id, 'TWILIO', transaction_id, request_hash, config_id, status, response, lease_until, created_at, updated_at
FROM connector_transactions;
DROP TABLE connector_transactions;
ALTER TABLE connector_transactions_by_provider RENAME TO connector_transactions;

-- payins: UNIQUE (platform_id, ivr_transaction_id) is part of the table's
-- definition, which SQLite cannot drop without rebuilding payins (which
-- refunds and void_or_refund_requests reference). The column is renamed with
-- its constraint, emptied, and kept only for that constraint; the
-- transaction id moves to a new ivr_transaction_id unique per provider.
ALTER TABLE payins RENAME COLUMN ivr_transaction_id TO ivr_transaction_id_unscoped;
ALTER TABLE payins ADD COLUMN ivr_provider TEXT;
ALTER TABLE payins ADD COLUMN ivr_transaction_id TEXT;
UPDATE payins SET ivr_provider = 'TWILIO', ivr_transaction_id = ivr_transaction_id_unscoped, ivr_transaction_id_unscoped = NULL
WHERE ivr_transaction_id_unscoped IS NOT NULL;
CREATE UNIQUE INDEX payins_ivr_transaction ON payins (platform_id, ivr_provider, ivr_transaction_id);

-- +goose Down
DROP INDEX payins_ivr_transaction;
-- Only Twilio's transactions fit the old per-platform key.
UPDATE payins SET ivr_transaction_id_unscoped = ivr_transaction_id WHERE ivr_provider = 'TWILIO';
ALTER TABLE payins DROP COLUMN ivr_transaction_id;
ALTER TABLE payins DROP COLUMN ivr_provider;
ALTER TABLE payins RENAME COLUMN ivr_transaction_id_unscoped TO ivr_transaction_id;

CREATE TABLE connector_transactions_unscoped (
    platform_id    TEXT NOT NULL REFERENCES platforms (id),
    transaction_id TEXT NOT NULL,
    request_hash   TEXT NOT NULL,
    config_id      TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL,
    response       TEXT,
    lease_until    TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (platform_id, transaction_id)
);
INSERT INTO connector_transactions_unscoped (platform_id, transaction_id, request_hash, config_id, status, response,
    lease_until, created_at, updated_at)
SELECT platform_id, transaction_id, request_hash, config_id, status, response, lease_until, created_at, updated_at
FROM connector_transactions WHERE provider = 'TWILIO';
DROP TABLE connector_transactions;
ALTER TABLE connector_transactions_unscoped RENAME TO connector_transactions;
