-- The card network's answer of a payin resolved late (docs/decisions.md,
-- "The card network's answer of an outcome resolved late"): a payin whose
-- unknown outcome an event approved without the auth code or network
-- transaction id (a Stripe PaymentIntent event of a current API version
-- names its charge by id only) is marked here, and the card-answer pass
-- looks the payment up at its processor and fills the empty fields.
-- card_answer_due_at is when the next look-up may start (a pass claims the
-- row by moving it to the end of its lease, a conditional UPDATE), NULL once
-- nothing is due; card_answer_since is when the payin was marked (the pass's
-- back-off and its 24 h bound count from it). Written in the SQL that SQLite
-- and PostgreSQL share.

-- +goose Up
ALTER TABLE payins ADD COLUMN card_answer_due_at TEXT;
ALTER TABLE payins ADD COLUMN card_answer_since TEXT;
-- The pass reads the marked payins alone, in leaseDue's order.
CREATE INDEX payins_card_answer_due ON payins (updated_at) WHERE card_answer_due_at IS NOT NULL;

-- +goose Down
DROP INDEX payins_card_answer_due;
ALTER TABLE payins DROP COLUMN card_answer_since;
ALTER TABLE payins DROP COLUMN card_answer_due_at;
