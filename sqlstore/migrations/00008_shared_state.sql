-- State that every server process on the database must see alike (issue 16).

-- +goose Up
-- Authentication-failure limits: one row per limiter key (a client address,
-- or on the connector an address and an HMAC of the presented credential).
-- failures holds the times (Unix milliseconds, oldest first) of the key's
-- failures within the window, at most the key's limit; blocked_until is
-- empty or the time its block ends. Rows are pruned once their failures are
-- outside the window and their block is over, and capped in number.
CREATE TABLE auth_limits (
    limit_key     TEXT PRIMARY KEY,
    failures      TEXT NOT NULL DEFAULT '',
    blocked_until TEXT NOT NULL DEFAULT '',
    updated_at    TEXT NOT NULL
);
CREATE INDEX auth_limits_blocked ON auth_limits (blocked_until);
CREATE INDEX auth_limits_updated ON auth_limits (updated_at);

-- Portal sessions: the SHA-256 of the cookie's session id, the form token,
-- the signed-in key's secret encrypted by the vault, and the times that end
-- a session (seen_at for the idle timeout, created_at for the maximum age).
-- Expired rows are deleted when read and on every sign-in.
CREATE TABLE portal_sessions (
    id_hash        TEXT PRIMARY KEY,
    csrf           TEXT NOT NULL,
    key_secret     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    seen_at        TEXT NOT NULL,
    recent_configs TEXT NOT NULL DEFAULT ''
);
CREATE INDEX portal_sessions_seen ON portal_sessions (seen_at);
CREATE INDEX portal_sessions_created ON portal_sessions (created_at);

-- +goose Down
DROP TABLE portal_sessions;
DROP TABLE auth_limits;
