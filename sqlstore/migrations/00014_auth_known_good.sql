-- The authentication limiter's known-good list (issue 23): a credential that
-- authenticated from an address still gets through while that address is
-- blocked by other people's failures, on every process and after a restart.

-- +goose Up
-- credential_key is the limiter's key of a client address (an IPv4 address
-- or an IPv6 /64) and an HMAC of the presented credential, never the
-- credential; seen_at is when it last authenticated there, written at most
-- once an hour per process. Rows not seen for 24 hours are pruned, and the
-- table is capped in number.
CREATE TABLE auth_known_good (
    credential_key TEXT PRIMARY KEY,
    seen_at        TEXT NOT NULL
);
CREATE INDEX auth_known_good_seen ON auth_known_good (seen_at);

-- +goose Down
DROP TABLE auth_known_good;
