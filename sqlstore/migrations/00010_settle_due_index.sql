-- Settlement reads the payins due first, from an index that holds exactly
-- its filter and order: the old index (updated_at) did not match the
-- query's COALESCE(status_at, updated_at) nor its order, so every pass read
-- and sorted every PROCESSING payin (4 % of the server's CPU under load,
-- growing with the backlog).

-- +goose Up
DROP INDEX payins_processing;
CREATE INDEX payins_settle_due ON payins (COALESCE(status_at, updated_at), id) WHERE status = 'PROCESSING';

-- +goose Down
DROP INDEX payins_settle_due;
CREATE INDEX payins_processing ON payins (updated_at) WHERE status = 'PROCESSING';
