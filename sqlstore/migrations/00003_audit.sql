-- Audit records: who, what, when, from where, outcome. No card data, no secrets.

-- +goose Up
CREATE TABLE audit_events (
    id             TEXT PRIMARY KEY,
    occurred_at    TEXT NOT NULL,
    actor          TEXT NOT NULL,
    platform_id    TEXT NOT NULL DEFAULT '',
    action         TEXT NOT NULL,
    target         TEXT NOT NULL DEFAULT '',
    client_address TEXT NOT NULL DEFAULT '',
    outcome        TEXT NOT NULL,
    detail         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_time ON audit_events (occurred_at);

-- +goose Down
DROP TABLE audit_events;
