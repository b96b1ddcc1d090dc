-- The card network's answer as a processor event states it (an Adyen
-- AUTHORISATION's additionalData, a Stripe PaymentIntent's charge): auth
-- code, AVS and CVC result codes, network transaction id, mapped by the
-- adapter; empty when the event does not carry them. Kept with the event so
-- that one applied later by a worker (its payin's unknown outcome recorded
-- after it arrived) still gives them to the payin it resolves
-- (docs/decisions.md). Written in the SQL that SQLite and PostgreSQL share.

-- +goose Up
ALTER TABLE processor_events ADD COLUMN auth_code TEXT NOT NULL DEFAULT '';
ALTER TABLE processor_events ADD COLUMN avs_result_code TEXT NOT NULL DEFAULT '';
ALTER TABLE processor_events ADD COLUMN cvc_result_code TEXT NOT NULL DEFAULT '';
ALTER TABLE processor_events ADD COLUMN network_transaction_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE processor_events DROP COLUMN network_transaction_id;
ALTER TABLE processor_events DROP COLUMN cvc_result_code;
ALTER TABLE processor_events DROP COLUMN avs_result_code;
ALTER TABLE processor_events DROP COLUMN auth_code;
