-- Sessions (SPEC §3): short-lived keys made by an API key. Only a hash of the
-- secret is stored; expired rows are deleted by the settlement loop.

-- +goose Up
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    platform_id   TEXT NOT NULL REFERENCES platforms (id),
    api_key_id    TEXT NOT NULL REFERENCES api_keys (id),
    secret_hash   TEXT NOT NULL UNIQUE,
    statements    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    first_used_at TEXT
);
CREATE INDEX sessions_platform_expiry ON sessions (platform_id, expires_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- +goose Down
DROP TABLE sessions;
