-- The processor events inbox (SPEC §4.2, docs/processors.md): every verified
-- event of a processor account, or of the built-in sandbox processor, is
-- stored here before it is acknowledged, once per (account, event id), and
-- applied exactly once by whichever process claims it first. Written in the
-- SQL that SQLite and PostgreSQL share, like 00001.

-- +goose Up
CREATE TABLE processor_events (
    account           TEXT NOT NULL,
    event_id          TEXT NOT NULL,
    kind              TEXT NOT NULL,
    type              TEXT NOT NULL,
    effect            TEXT NOT NULL,
    payment_reference TEXT NOT NULL DEFAULT '',
    reference         TEXT NOT NULL DEFAULT '',
    refund_reference  TEXT NOT NULL DEFAULT '',
    amount            BIGINT NOT NULL DEFAULT 0,
    currency          TEXT NOT NULL DEFAULT '',
    refusal_code      TEXT NOT NULL DEFAULT '',
    refusal_desc      TEXT NOT NULL DEFAULT '',
    -- ivrpay.DisputeDetails as JSON, for dispute events.
    dispute           TEXT,
    occurred_at       TEXT,
    received_at       TEXT NOT NULL,
    -- PENDING until applied; then APPLIED (it changed its object),
    -- NO_CHANGE (older news, or a confirmation), IGNORED (an event ivrpay
    -- does not act on) or UNMATCHED (no object of ivrpay's, after retries).
    status            TEXT NOT NULL,
    -- The payin or refund the event was matched to.
    object_id         TEXT NOT NULL DEFAULT '',
    -- Why the event is waiting, unmatched or changed nothing.
    note              TEXT NOT NULL DEFAULT '',
    attempts          INTEGER NOT NULL DEFAULT 0,
    -- While PENDING: when the event is due to be applied (again). A worker
    -- claims it by moving this to the end of its lease (a conditional
    -- UPDATE on the value it read), so a crashed worker's claim expires.
    next_attempt_at   TEXT NOT NULL,
    applied_at        TEXT,
    PRIMARY KEY (account, event_id)
);
CREATE INDEX processor_events_due ON processor_events (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX processor_events_received ON processor_events (status, received_at);
-- The events naming one of ivrpay's objects by its id (the sandbox's
-- confirmations, which its pass does not emit twice).
CREATE INDEX processor_events_reference ON processor_events (account, reference, effect) WHERE reference <> '';

-- Events name the processor's payment or refund (pi_…, re_…, pspReference).
CREATE INDEX payins_processor_reference ON payins (processor_reference) WHERE processor_reference <> '';
CREATE INDEX refunds_processor_reference ON refunds (processor_reference) WHERE processor_reference <> '';

-- No timer settles a real account's payins: only the built-in sandbox
-- processor confirms after --sandbox-settle-after, so its pass reads the
-- sandbox's PROCESSING payins alone (the query repeats this filter and
-- order word for word). The look-up fallback reads the others.
DROP INDEX payins_settle_due;
CREATE INDEX payins_sandbox_due ON payins (COALESCE(status_at, updated_at), id)
    WHERE status = 'PROCESSING' AND processor_account = 'sandbox';
CREATE INDEX payins_check_due ON payins (updated_at) WHERE status = 'PROCESSING' AND processor_account <> 'sandbox';
CREATE INDEX refunds_check_due ON refunds (updated_at) WHERE status = 'PROCESSING';

-- +goose Down
DROP INDEX refunds_check_due;
DROP INDEX payins_check_due;
DROP INDEX payins_sandbox_due;
CREATE INDEX payins_settle_due ON payins (COALESCE(status_at, updated_at), id) WHERE status = 'PROCESSING';
DROP INDEX refunds_processor_reference;
DROP INDEX payins_processor_reference;
DROP INDEX processor_events_reference;
DROP INDEX processor_events_received;
DROP INDEX processor_events_due;
DROP TABLE processor_events;
