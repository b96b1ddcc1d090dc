-- The schema is written in the SQL that SQLite and PostgreSQL share, so that one
-- migration and one code path serve both engines. Times are fixed-width RFC 3339
-- UTC strings (they sort as text), booleans are 0/1 integers, JSON is text.

-- +goose Up
CREATE TABLE platforms (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    ivr_payments    INTEGER NOT NULL DEFAULT 0,
    min_api_version TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE TABLE merchants (
    id          TEXT PRIMARY KEY,
    platform_id TEXT NOT NULL REFERENCES platforms (id),
    name        TEXT NOT NULL,
    dba_name    TEXT NOT NULL DEFAULT '',
    email       TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX merchants_platform ON merchants (platform_id, id);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    platform_id TEXT NOT NULL REFERENCES platforms (id),
    secret_hash TEXT NOT NULL UNIQUE,
    masked      TEXT NOT NULL,
    statements  TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX api_keys_platform ON api_keys (platform_id, id);

CREATE TABLE payin_configs (
    id              TEXT PRIMARY KEY,
    platform_id     TEXT NOT NULL REFERENCES platforms (id),
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    currency_code   TEXT NOT NULL,
    billing_contact TEXT,
    metadata        TEXT,
    method_metadata TEXT,
    processing_mode TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    UNIQUE (platform_id, idempotency_key)
);

CREATE TABLE payment_method_configs (
    id              TEXT PRIMARY KEY,
    platform_id     TEXT NOT NULL REFERENCES platforms (id),
    merchant_id     TEXT REFERENCES merchants (id),
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    billing_contact TEXT,
    metadata        TEXT,
    created_at      TEXT NOT NULL,
    UNIQUE (platform_id, idempotency_key)
);

-- The PAN is kept only as vault ciphertext plus a keyed fingerprint; the CVV has no column.
CREATE TABLE payment_methods (
    id                       TEXT PRIMARY KEY,
    platform_id              TEXT NOT NULL REFERENCES platforms (id),
    merchant_id              TEXT REFERENCES merchants (id),
    payment_method_config_id TEXT UNIQUE REFERENCES payment_method_configs (id),
    status                   TEXT NOT NULL,
    brand                    TEXT NOT NULL,
    last4                    TEXT NOT NULL,
    exp_month                INTEGER NOT NULL,
    exp_year                 INTEGER NOT NULL,
    pan_ciphertext           TEXT NOT NULL,
    fingerprint              TEXT NOT NULL,
    billing_contact          TEXT,
    metadata                 TEXT,
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL
);
CREATE INDEX payment_methods_platform ON payment_methods (platform_id, id);

CREATE TABLE payins (
    id                 TEXT PRIMARY KEY,
    platform_id        TEXT NOT NULL REFERENCES platforms (id),
    merchant_id        TEXT NOT NULL REFERENCES merchants (id),
    payin_config_id    TEXT NOT NULL REFERENCES payin_configs (id),
    payment_method_id  TEXT REFERENCES payment_methods (id),
    amount             BIGINT NOT NULL,
    currency_code      TEXT NOT NULL,
    status             TEXT NOT NULL,
    authorized_amount  BIGINT NOT NULL DEFAULT 0,
    captured_amount    BIGINT NOT NULL DEFAULT 0,
    refunded_amount    BIGINT NOT NULL DEFAULT 0,
    refusal_code       TEXT NOT NULL DEFAULT '',
    refusal_desc       TEXT NOT NULL DEFAULT '',
    auth_code          TEXT NOT NULL DEFAULT '',
    avs_result_code    TEXT NOT NULL DEFAULT '',
    cvc_result_code    TEXT NOT NULL DEFAULT '',
    brand              TEXT NOT NULL DEFAULT '',
    last4              TEXT NOT NULL DEFAULT '',
    exp_month          INTEGER NOT NULL DEFAULT 0,
    exp_year           INTEGER NOT NULL DEFAULT 0,
    billing_contact    TEXT,
    metadata           TEXT,
    source             TEXT NOT NULL,
    ivr_transaction_id TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    UNIQUE (platform_id, ivr_transaction_id)
);
CREATE INDEX payins_platform ON payins (platform_id, id);
-- One payin config gives at most one live payin: a CREATED row reserves the
-- config while the processor answers; declined (FAILED) and voided payins free it.
CREATE UNIQUE INDEX payins_one_live_per_config ON payins (payin_config_id)
    WHERE status IN ('CREATED', 'PROCESSING', 'AUTHORIZED', 'SUCCEEDED');

-- Connector idempotency: one row per (platform, Twilio transaction_id). The
-- first request claims it (RUNNING, with a lease) and stores its answer (DONE);
-- retries wait for and replay that answer.
CREATE TABLE connector_transactions (
    platform_id    TEXT NOT NULL REFERENCES platforms (id),
    transaction_id TEXT NOT NULL,
    request_hash   TEXT NOT NULL,
    status         TEXT NOT NULL,
    response       TEXT,
    lease_until    TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (platform_id, transaction_id)
);

-- +goose Down
DROP TABLE connector_transactions;
DROP TABLE payins;
DROP TABLE payment_methods;
DROP TABLE payment_method_configs;
DROP TABLE payin_configs;
DROP TABLE api_keys;
DROP TABLE merchants;
DROP TABLE platforms;
