-- Chargebacks (SPEC §4.3, docs/decisions.md issue 24): one row per dispute,
-- unique on the processor account and the processor's dispute id, so that
-- every event about one dispute, from any process, lands on the same row.
-- The card and metadata are the disputed payin's, read with it.

-- +goose Up
CREATE TABLE chargebacks (
    id                  TEXT PRIMARY KEY,
    platform_id         TEXT NOT NULL REFERENCES platforms (id),
    merchant_id         TEXT NOT NULL REFERENCES merchants (id),
    payin_id            TEXT NOT NULL REFERENCES payins (id),
    payin_config_id     TEXT NOT NULL,
    amount              BIGINT NOT NULL,
    currency_code       TEXT NOT NULL,
    status              TEXT NOT NULL,
    reason_code         TEXT NOT NULL DEFAULT '',
    reason_desc         TEXT NOT NULL DEFAULT '',
    processor_account   TEXT NOT NULL,
    processor_kind      TEXT NOT NULL,
    processor_reference TEXT NOT NULL,
    dashboard_url       TEXT NOT NULL DEFAULT '',
    respond_by          TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    UNIQUE (processor_account, processor_reference)
);
CREATE INDEX chargebacks_platform ON chargebacks (platform_id, id);
CREATE INDEX chargebacks_payin ON chargebacks (payin_id, id);

-- The sandbox processor's dispute triggers (ivrpay.SandboxChargebackAmount,
-- ivrpay.SandboxInquiryAmount): its pass reads only the settled payins of
-- these two amounts.
CREATE INDEX payins_sandbox_disputes ON payins (id) WHERE amount IN (5130, 5131) AND status = 'SUCCEEDED';

-- +goose Down
DROP INDEX payins_sandbox_disputes;
DROP TABLE chargebacks;
