-- The vault's key ring, shared by every process of the deployment (SPEC §9;
-- docs/operations.md, "Vault key rotation"). vault_keys names each key by
-- its id (never the key itself) with its state: added (every process
-- learns it; nothing is sealed with it yet), current (new ciphertexts), retiring
-- (still decrypts while re-encryption runs), retired (nothing stored uses
-- it). wrapped carries an added key sealed by the key that was current when
-- it was added, so that a process on another host learns it; it is emptied
-- when the rotation ends. vault_secrets holds what must outlive every key
-- (the fingerprint key, the shared secret) as vault ciphertext.
-- vault_members is each serve process's report: the keys it holds (saved in
-- its key file) and the key it seals with, so that a rotation waits for
-- every live process before each step.

-- +goose Up
CREATE TABLE vault_keys (
    key_id     TEXT PRIMARY KEY,
    state      TEXT NOT NULL CHECK (state IN ('added', 'current', 'retiring', 'retired')),
    wrapped    TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- One key seals at a time, and one rotation adds a key at a time.
CREATE UNIQUE INDEX vault_keys_one_current ON vault_keys (state) WHERE state = 'current';
CREATE UNIQUE INDEX vault_keys_one_added ON vault_keys (state) WHERE state = 'added';

CREATE TABLE vault_secrets (
    name       TEXT PRIMARY KEY,
    ciphertext TEXT NOT NULL
);

CREATE TABLE vault_members (
    member_id TEXT PRIMARY KEY,
    holds     TEXT NOT NULL,
    encrypts  TEXT NOT NULL,
    seen_at   TEXT NOT NULL
);

-- +goose Down
DROP TABLE vault_members;
DROP TABLE vault_secrets;
DROP TABLE vault_keys;
