-- Webhook secret rotation (POST /v1/webhook_endpoints/{id}/rotate_secret):
-- the secret a rotation replaced keeps signing, beside the new one, until
-- previous_secret_expires_at (24 hours later). Empty when there is none.

-- +goose Up
ALTER TABLE webhook_endpoints ADD COLUMN previous_secret TEXT NOT NULL DEFAULT '';
ALTER TABLE webhook_endpoints ADD COLUMN previous_secret_expires_at TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE webhook_endpoints DROP COLUMN previous_secret_expires_at;
ALTER TABLE webhook_endpoints DROP COLUMN previous_secret;
