-- Processor events (SPEC §4.2, docs/processors.md): each processor account's
-- events secret (Stripe's endpoint signing secret whsec_…, Adyen's HMAC key)
-- as vault ciphertext only, empty while none is set. When the secret is
-- replaced, the one it replaces is still accepted until
-- previous_events_secret_until (Adyen signs a notification with the key it
-- was queued under, so retries of older ones carry the old key), unless the
-- operator forgot it at once. Both ciphertexts are re-encrypted by vault
-- rotate. Written in the SQL that SQLite and PostgreSQL share.

-- +goose Up
ALTER TABLE processor_accounts ADD COLUMN events_secret_ciphertext TEXT NOT NULL DEFAULT '';
ALTER TABLE processor_accounts ADD COLUMN previous_events_secret_ciphertext TEXT NOT NULL DEFAULT '';
ALTER TABLE processor_accounts ADD COLUMN previous_events_secret_until TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE processor_accounts DROP COLUMN previous_events_secret_until;
ALTER TABLE processor_accounts DROP COLUMN previous_events_secret_ciphertext;
ALTER TABLE processor_accounts DROP COLUMN events_secret_ciphertext;
