-- Risk controls for phone payments (SPEC §11, docs/risk.md).

-- +goose Up
-- A platform's thresholds and switches, as JSON (ivrpay.RiskSettings); empty
-- means the defaults.
ALTER TABLE platforms ADD COLUMN risk TEXT NOT NULL DEFAULT '';

-- Recent declines per subject (a card's fingerprint, a payin config, a
-- platform's caller, a merchant), shared by every process. marks holds at
-- most ivrpay.RiskMarksKept fixed-width marks ("<unix ms, 13 digits>:<card
-- key, 12 characters> "), oldest first: the append keeps the newest, so a
-- row never grows. A row expires (and is pruned) once its last decline is
-- older than the longest window its kind counts.
CREATE TABLE risk_counters (
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    marks      TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (kind, subject)
);
CREATE INDEX risk_counters_expiry ON risk_counters (expires_at);

-- Active refusals: one row per subject, until its time has passed (then it
-- is pruned) or an operator clears it (ivrpay admin risk clear).
CREATE TABLE risk_blocks (
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    platform_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL DEFAULT '',
    rule        TEXT NOT NULL,
    detail      TEXT NOT NULL,
    until       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (kind, subject)
);
CREATE INDEX risk_blocks_until ON risk_blocks (until);

-- The merchant breaker's rate counts a merchant's IVR attempts of the last
-- 10 minutes, read only once its declines reach the bar.
CREATE INDEX payins_merchant_ivr ON payins (merchant_id, created_at) WHERE source = 'IVR';

-- +goose Down
DROP INDEX payins_merchant_ivr;
DROP TABLE risk_blocks;
DROP TABLE risk_counters;
ALTER TABLE platforms DROP COLUMN risk;
