-- The mode (sandbox or production) of the deployment that first started on
-- this database, written once, so that production refuses a database a
-- sandbox made (and the other way round). One row at most.

-- +goose Up
CREATE TABLE deployment (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    mode       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- +goose Down
DROP TABLE deployment;
