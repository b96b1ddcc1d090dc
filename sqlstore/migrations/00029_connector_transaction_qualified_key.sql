-- Connector transactions keyed by (platform_id, transaction_id) again, the
-- stored transaction_id qualified by its provider ("TELNYX:abc",
-- sqlstore.ConnectorTransactionID): provider names hold no colon, so the key
-- is still unique per platform and provider (SPEC §5.6), and the reference
-- server's statements (ivrpay's own before 00020, docs/decisions.md) run on
-- this schema. The provider column goes: it is the key's prefix.
-- Written in the SQL that SQLite and PostgreSQL share, like 00020.

-- +goose Up
-- SQLite cannot change a primary key in place, so the table is copied;
-- nothing references it.
CREATE TABLE connector_transactions_qualified (
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
INSERT INTO connector_transactions_qualified (platform_id, transaction_id, request_hash, config_id, status, response,
    lease_until, created_at, updated_at)
SELECT platform_id, provider || ':' || transaction_id, request_hash, config_id, status, response, lease_until, created_at, updated_at
FROM connector_transactions;
DROP TABLE connector_transactions;
ALTER TABLE connector_transactions_qualified RENAME TO connector_transactions;

-- +goose Down
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
-- The provider is the key's leading capitals, the provider's id what follows
-- the colon after them (both engines have ltrim with a set of characters,
-- neither has the other's instr/strpos). A key without that shape was not
-- written by ivrpay and has no provider to go back to.
INSERT INTO connector_transactions_by_provider (platform_id, provider, transaction_id, request_hash, config_id, status,
    response, lease_until, created_at, updated_at)
SELECT platform_id, substr(transaction_id, 1, length(transaction_id) - length(after_provider)), substr(after_provider, 2),
    request_hash, config_id, status, response, lease_until, created_at, updated_at
FROM (SELECT *, ltrim(transaction_id, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ') AS after_provider FROM connector_transactions) qualified
WHERE after_provider LIKE ':%' AND after_provider <> transaction_id;
DROP TABLE connector_transactions;
ALTER TABLE connector_transactions_by_provider RENAME TO connector_transactions;
