package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
)

// CreatePortalSession stores a new signed-in session. In the same
// transaction it deletes the sessions expired by the given cutoffs (last
// seen before idleBefore, or created before createdBefore), and refuses with
// ERATELIMITED when max live sessions exist already.
func (s *Store) CreatePortalSession(ctx context.Context, ps ivrpay.PortalSession, max int, idleBefore, createdBefore time.Time) (err error) {
	defer wrap(&err, "Store.CreatePortalSession")
	return s.inTx(ctx, func(tx querier) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM portal_sessions WHERE seen_at < $1 OR created_at < $2`,
			ivrpay.FormatTime(idleBefore), ivrpay.FormatTime(createdBefore)); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM portal_sessions`).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return ivrpay.Errorf(ivrpay.ERATELIMITED, "too many portal sessions")
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO portal_sessions (id_hash, csrf, key_secret, created_at, seen_at, recent_configs)
			VALUES ($1, $2, $3, $4, $5, $6)`, ps.IDHash, ps.CSRF, ps.KeySecret, ivrpay.FormatTime(ps.Created),
			ivrpay.FormatTime(ps.Seen), strings.Join(ps.RecentConfigs, " "))
		return err
	})
}

// FindPortalSession returns the session with this id hash (ENOTFOUND when none).
func (s *Store) FindPortalSession(ctx context.Context, idHash string) (_ *ivrpay.PortalSession, err error) {
	defer wrap(&err, "Store.FindPortalSession")
	ps := &ivrpay.PortalSession{IDHash: idHash}
	var created, seen, recent string
	err = s.rdb.QueryRowContext(ctx, `SELECT csrf, key_secret, created_at, seen_at, recent_configs FROM portal_sessions WHERE id_hash = $1`,
		idHash).Scan(&ps.CSRF, &ps.KeySecret, &created, &seen, &recent)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "no such portal session")
	}
	if err != nil {
		return nil, err
	}
	ps.Created, ps.Seen, ps.RecentConfigs = parseTime(created), parseTime(seen), strings.Fields(recent)
	return ps, nil
}

// TouchPortalSession records that the session was used at seen.
func (s *Store) TouchPortalSession(ctx context.Context, idHash string, seen time.Time) (err error) {
	defer wrap(&err, "Store.TouchPortalSession")
	_, err = s.wdb.ExecContext(ctx, `UPDATE portal_sessions SET seen_at = $2 WHERE id_hash = $1 AND seen_at < $2`, idHash, ivrpay.FormatTime(seen))
	return err
}

// SetPortalSessionConfigs replaces the session's recent config ids.
func (s *Store) SetPortalSessionConfigs(ctx context.Context, idHash string, configs []string) (err error) {
	defer wrap(&err, "Store.SetPortalSessionConfigs")
	_, err = s.wdb.ExecContext(ctx, `UPDATE portal_sessions SET recent_configs = $2 WHERE id_hash = $1`, idHash, strings.Join(configs, " "))
	return err
}

// DeletePortalSession ends the session (sign-out, or its key was disabled).
func (s *Store) DeletePortalSession(ctx context.Context, idHash string) (err error) {
	defer wrap(&err, "Store.DeletePortalSession")
	_, err = s.wdb.ExecContext(ctx, `DELETE FROM portal_sessions WHERE id_hash = $1`, idHash)
	return err
}
