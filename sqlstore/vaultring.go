package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
)

// The store keeps the vault's key ring for vault.Keeper (it implements
// vault.RingStore): key ids and states, the stable secrets as vault
// ciphertext, and what each server process reports.

// vaultMembersKeptFor is how long a member that stopped reporting stays in
// vault_members (a crashed process never removes its row).
const vaultMembersKeptFor = time.Hour

// reencryptBatch is how many ciphertexts one re-encryption transaction
// rewrites: small, so that a rotation under load never holds SQLite's write
// lock for long.
const reencryptBatch = 200

// vaultColumns are every column that holds vault ciphertext, by the kind of
// secret it is, with the table's key. A rotation re-encrypts exactly these:
// a new column of vault ciphertext belongs here.
var vaultColumns = []struct{ kind, table, key, column string }{
	{"payment_methods", "payment_methods", "id", "pan_ciphertext"},
	{"processor_accounts", "processor_accounts", "name", "secret_ciphertext"},
	{"processor_events_secrets", "processor_accounts", "name", "events_secret_ciphertext"},
	{"processor_previous_events_secrets", "processor_accounts", "name", "previous_events_secret_ciphertext"},
	{"portal_sessions", "portal_sessions", "id_hash", "key_secret"},
	{"vault_secrets", "vault_secrets", "name", "ciphertext"},
}

// VaultRing returns the ring's keys and its stable secrets.
func (s *Store) VaultRing(ctx context.Context) (keys []ivrpay.VaultKey, secrets map[string]string, err error) {
	defer wrap(&err, "Store.VaultRing")
	rows, err := s.rdb.QueryContext(ctx, `SELECT key_id, state, wrapped FROM vault_keys ORDER BY created_at, key_id`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k ivrpay.VaultKey
		if err := rows.Scan(&k.ID, &k.State, &k.Wrapped); err != nil {
			return nil, nil, err
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	srows, err := s.rdb.QueryContext(ctx, `SELECT name, ciphertext FROM vault_secrets`)
	if err != nil {
		return nil, nil, err
	}
	defer srows.Close()
	secrets = map[string]string{}
	for srows.Next() {
		var name, ct string
		if err := srows.Scan(&name, &ct); err != nil {
			return nil, nil, err
		}
		secrets[name] = ct
	}
	return keys, secrets, srows.Err()
}

// InitVaultRing writes the first ring, unless the database has one.
func (s *Store) InitVaultRing(ctx context.Context, keys []ivrpay.VaultKey, secrets map[string]string) (err error) {
	defer wrap(&err, "Store.InitVaultRing")
	err = s.inTx(ctx, func(tx querier) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM vault_keys`).Scan(&n); err != nil || n > 0 {
			return err
		}
		now := ivrpay.FormatTime(s.now())
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `INSERT INTO vault_keys (key_id, state, wrapped, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)`,
				k.ID, k.State, k.Wrapped, now); err != nil {
				return err
			}
		}
		for name, ct := range secrets {
			if _, err := tx.ExecContext(ctx, `INSERT INTO vault_secrets (name, ciphertext) VALUES ($1, $2)`, name, ct); err != nil {
				return err
			}
		}
		return nil
	})
	if isUniqueViolation(err) {
		return nil // another process wrote the first ring at the same time
	}
	return err
}

// AddVaultKey adds a key in state added, refused while a rotation is under
// way (a key added or retiring).
func (s *Store) AddVaultKey(ctx context.Context, k ivrpay.VaultKey) (err error) {
	defer wrap(&err, "Store.AddVaultKey(%q)", k.ID)
	err = s.inTx(ctx, func(tx querier) error {
		var busy string
		err := tx.QueryRowContext(ctx, `SELECT key_id FROM vault_keys WHERE state IN ('added', 'retiring') LIMIT 1`).Scan(&busy)
		if err == nil {
			return ivrpay.Errorf(ivrpay.ECONFLICT, "a vault key rotation is under way (key %s); run ivrpay admin vault rotate again to finish it", busy)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO vault_keys (key_id, state, wrapped, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)`,
			k.ID, ivrpay.VaultKeyAdded, k.Wrapped, ivrpay.FormatTime(s.now()))
		return err
	})
	if isUniqueViolation(err) {
		return ivrpay.Errorf(ivrpay.ECONFLICT, "another vault key rotation started at the same time; run ivrpay admin vault rotate again to finish it")
	}
	return err
}

// PromoteVaultKey makes the added key current and the current key retiring.
func (s *Store) PromoteVaultKey(ctx context.Context, id string) (err error) {
	defer wrap(&err, "Store.PromoteVaultKey(%q)", id)
	return s.inTx(ctx, func(tx querier) error {
		now := ivrpay.FormatTime(s.now())
		if _, err := tx.ExecContext(ctx, `UPDATE vault_keys SET state = 'retiring', updated_at = $1 WHERE state = 'current'`, now); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE vault_keys SET state = 'current', updated_at = $2 WHERE key_id = $1 AND state = 'added'`, id, now)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			if err == nil {
				err = fmt.Errorf("vault key %s is no longer waiting to become current: %w", id, ivrpay.ErrStateChanged)
			}
			return err
		}
		return nil
	})
}

// RetireVaultKeys retires the retiring keys, empties every wrapped key and
// audits the rotation, in one transaction.
func (s *Store) RetireVaultKeys(ctx context.Context) (retired []string, err error) {
	defer wrap(&err, "Store.RetireVaultKeys")
	err = s.inTx(ctx, func(tx querier) error {
		retired = nil
		rows, err := tx.QueryContext(ctx, `SELECT key_id FROM vault_keys WHERE state = 'retiring' ORDER BY key_id`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			retired = append(retired, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var current string
		if err := tx.QueryRowContext(ctx, `SELECT key_id FROM vault_keys WHERE state = 'current'`).Scan(&current); err != nil {
			return err
		}
		now := ivrpay.FormatTime(s.now())
		if _, err := tx.ExecContext(ctx, `UPDATE vault_keys SET state = 'retired', updated_at = $1 WHERE state = 'retiring'`, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE vault_keys SET wrapped = '', updated_at = $1 WHERE wrapped <> ''`, now); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, ivrpay.AuditEvent{Action: "vault.rotate", Target: current, Outcome: ivrpay.AuditSuccess,
			Detail: "retired=" + strings.Join(retired, ",")})
	})
	return retired, err
}

// SaveVaultMember records a server process's report, and forgets members
// that stopped reporting long ago.
func (s *Store) SaveVaultMember(ctx context.Context, m ivrpay.VaultMember) (err error) {
	defer wrap(&err, "Store.SaveVaultMember")
	return s.inTx(ctx, func(tx querier) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO vault_members (member_id, holds, encrypts, seen_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (member_id) DO UPDATE SET holds = excluded.holds, encrypts = excluded.encrypts, seen_at = excluded.seen_at`,
			m.ID, strings.Join(m.Holds, ","), m.Encrypts, ivrpay.FormatTime(m.SeenAt.UTC())); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM vault_members WHERE seen_at < $1`, ivrpay.FormatTime(m.SeenAt.UTC().Add(-vaultMembersKeptFor)))
		return err
	})
}

// RemoveVaultMember deletes a member's report (its process stops).
func (s *Store) RemoveVaultMember(ctx context.Context, id string) (err error) {
	defer wrap(&err, "Store.RemoveVaultMember")
	return s.inTx(ctx, func(tx querier) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM vault_members WHERE member_id = $1`, id)
		return err
	})
}

// VaultMembers returns every member's last report.
func (s *Store) VaultMembers(ctx context.Context) (out []ivrpay.VaultMember, err error) {
	defer wrap(&err, "Store.VaultMembers")
	rows, err := s.rdb.QueryContext(ctx, `SELECT member_id, holds, encrypts, seen_at FROM vault_members ORDER BY member_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var m ivrpay.VaultMember
		var holds, seen string
		if err := rows.Scan(&m.ID, &holds, &m.Encrypts, &seen); err != nil {
			return nil, err
		}
		if holds != "" {
			m.Holds = strings.Split(holds, ",")
		}
		m.SeenAt = parseTime(seen)
		out = append(out, m)
	}
	return out, rows.Err()
}

// ReencryptVault walks every vault ciphertext column in key order, batch by
// batch; each batch's changed ciphertexts are written in a transaction of
// their own, only where the row still holds what was read (a row changed
// meanwhile is left for the next pass).
func (s *Store) ReencryptVault(ctx context.Context, reencrypt func(string) (string, bool, error)) (moved map[string]int, err error) {
	defer wrap(&err, "Store.ReencryptVault")
	moved = map[string]int{}
	for _, c := range vaultColumns {
		after := ""
		for {
			type change struct{ key, old, new string }
			var batch []change
			n := 0
			rows, err := s.rdb.QueryContext(ctx, fmt.Sprintf(`SELECT %s, %s FROM %s WHERE %s > $1 ORDER BY %s LIMIT %d`,
				c.key, c.column, c.table, c.key, c.key, reencryptBatch), after)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var key, ct string
				if err := rows.Scan(&key, &ct); err != nil {
					rows.Close()
					return nil, err
				}
				n++
				after = key
				if ct == "" {
					continue // no secret (an optional one not set)
				}
				out, changed, err := reencrypt(ct)
				if err != nil {
					rows.Close()
					return nil, fmt.Errorf("%s %s: %w", c.table, key, err)
				}
				if changed {
					batch = append(batch, change{key, ct, out})
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, err
			}
			if len(batch) > 0 {
				written := 0
				err := s.inTx(ctx, func(tx querier) error {
					written = 0
					for _, ch := range batch {
						res, err := tx.ExecContext(ctx, fmt.Sprintf(`UPDATE %s SET %s = $3 WHERE %s = $1 AND %s = $2`, c.table, c.column, c.key, c.column),
							ch.key, ch.old, ch.new)
						if err != nil {
							return err
						}
						k, err := res.RowsAffected()
						if err != nil {
							return err
						}
						written += int(k)
					}
					return nil
				})
				if err != nil {
					return nil, err
				}
				moved[c.kind] += written
			}
			if n < reencryptBatch {
				break
			}
		}
	}
	return moved, nil
}
