-- Payin lifecycle (settlement, capture, void, refunds) and webhooks: events are
-- written to a durable outbox in the same transaction as the state change that
-- caused them, with one delivery row per (event, matching endpoint). Written in
-- the SQL that SQLite and PostgreSQL share, like 00001.

-- +goose Up
-- When the payin entered its current status; settlement counts from it. NULL
-- on rows written before this column existed (updated_at is used instead).
ALTER TABLE payins ADD COLUMN status_at TEXT;
CREATE INDEX payins_processing ON payins (updated_at) WHERE status = 'PROCESSING';

CREATE TABLE refunds (
    id            TEXT PRIMARY KEY,
    platform_id   TEXT NOT NULL REFERENCES platforms (id),
    merchant_id   TEXT NOT NULL REFERENCES merchants (id),
    payin_id      TEXT NOT NULL REFERENCES payins (id),
    amount        BIGINT NOT NULL,
    currency_code TEXT NOT NULL,
    reason        TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX refunds_payin ON refunds (payin_id, id);
CREATE INDEX refunds_processing ON refunds (created_at) WHERE status = 'PROCESSING';

-- Idempotency of POST /v1/payins/{id}/void_or_refund, per platform. The row is
-- written in the transaction that voids or refunds, so a refused request never
-- uses up its key; result is the first answer, replayed to repeats.
CREATE TABLE void_or_refund_requests (
    platform_id     TEXT NOT NULL REFERENCES platforms (id),
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    payin_id        TEXT NOT NULL REFERENCES payins (id),
    result          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (platform_id, idempotency_key)
);

-- The signing secret is kept as is: the server needs it to sign, and it
-- authenticates nothing on this side.
CREATE TABLE webhook_endpoints (
    id          TEXT PRIMARY KEY,
    platform_id TEXT NOT NULL REFERENCES platforms (id),
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,
    secret      TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_platform ON webhook_endpoints (platform_id, id);

-- The outbox: payload is the exact body every delivery of the event sends.
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    platform_id TEXT NOT NULL REFERENCES platforms (id),
    type        TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX events_platform ON events (platform_id, id);

-- One row per (event, endpoint). A PENDING row is due when next_attempt_at has
-- passed; a worker claims it by moving next_attempt_at to the end of its lease
-- (a conditional UPDATE on the value it read) and setting lease_token, so a
-- crashed worker's claim simply expires.
CREATE TABLE webhook_deliveries (
    event_id         TEXT NOT NULL REFERENCES events (id),
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id),
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    lease_token      TEXT NOT NULL DEFAULT '',
    last_status_code INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, event_id);

CREATE TABLE webhook_delivery_attempts (
    id           TEXT PRIMARY KEY,
    event_id     TEXT NOT NULL,
    endpoint_id  TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    attempted_at TEXT NOT NULL,
    status_code  INTEGER NOT NULL,
    error        TEXT NOT NULL,
    duration_ms  BIGINT NOT NULL,
    FOREIGN KEY (event_id, endpoint_id) REFERENCES webhook_deliveries (event_id, endpoint_id)
);
CREATE INDEX webhook_delivery_attempts_delivery ON webhook_delivery_attempts (event_id, endpoint_id, attempt);

-- +goose Down
DROP TABLE webhook_delivery_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE events;
DROP TABLE webhook_endpoints;
DROP TABLE void_or_refund_requests;
DROP TABLE refunds;
DROP INDEX payins_processing;
ALTER TABLE payins DROP COLUMN status_at;
