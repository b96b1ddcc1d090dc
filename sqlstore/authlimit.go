package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
)

// RecordAuthFailure counts one authentication failure of key at now, in one
// transaction that every server process on the database serializes on (a
// row lock on PostgreSQL, the write lock on SQLite). The failures within
// window are kept; when limit of them fall within it, key is blocked until
// now+block and its count starts again. It returns when key's block ends:
// the new block, a block another process set that is still running, or the
// zero time.
func (s *Store) RecordAuthFailure(ctx context.Context, key string, limit int, now time.Time, window, block time.Duration) (blockedUntil time.Time, err error) {
	defer wrap(&err, "Store.RecordAuthFailure")
	now = now.UTC()
	forUpdate := ""
	if s.engine == EnginePostgres {
		forUpdate = " FOR UPDATE"
	}
	err = s.inTx(ctx, func(tx querier) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO auth_limits (limit_key, updated_at) VALUES ($1, $2)
			ON CONFLICT (limit_key) DO NOTHING`, key, ivrpay.FormatTime(now)); err != nil {
			return err
		}
		var failures, blocked string
		if err := tx.QueryRowContext(ctx, `SELECT failures, blocked_until FROM auth_limits WHERE limit_key = $1`+forUpdate,
			key).Scan(&failures, &blocked); err != nil {
			return err
		}
		if b := parseTime(blocked); blocked != "" && b.After(now) {
			blockedUntil = b
		}
		recent := recentFailures(failures, now, window)
		recent = append(recent, now.UnixMilli())
		if len(recent) >= limit {
			recent = nil
			if b := now.Add(block); b.After(blockedUntil) {
				blockedUntil = b
			}
		}
		until := ""
		if !blockedUntil.IsZero() {
			until = ivrpay.FormatTime(blockedUntil)
		}
		_, err := tx.ExecContext(ctx, `UPDATE auth_limits SET failures = $2, blocked_until = $3, updated_at = $4 WHERE limit_key = $1`,
			key, formatFailures(recent), until, ivrpay.FormatTime(now))
		return err
	})
	if err != nil {
		return time.Time{}, err
	}
	return blockedUntil, nil
}

// recentFailures parses a failures column and keeps the times within window of now.
func recentFailures(text string, now time.Time, window time.Duration) []int64 {
	var out []int64
	for _, f := range strings.Fields(text) {
		ms, err := strconv.ParseInt(f, 10, 64)
		if err == nil && now.Sub(time.UnixMilli(ms)) < window {
			out = append(out, ms)
		}
	}
	return out
}

func formatFailures(ms []int64) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = strconv.FormatInt(m, 10)
	}
	return strings.Join(parts, " ")
}

// ActiveAuthBlocks returns the limiter keys blocked at now and when each
// block ends (an indexed read of the blocked rows only).
func (s *Store) ActiveAuthBlocks(ctx context.Context, now time.Time) (out map[string]time.Time, err error) {
	defer wrap(&err, "Store.ActiveAuthBlocks")
	rows, err := s.rdb.QueryContext(ctx, `SELECT limit_key, blocked_until FROM auth_limits WHERE blocked_until > $1`, ivrpay.FormatTime(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out = map[string]time.Time{}
	for rows.Next() {
		var key, until string
		if err := rows.Scan(&key, &until); err != nil {
			return nil, err
		}
		out[key] = parseTime(until)
	}
	return out, rows.Err()
}

// PruneAuthFailures deletes the rows whose failures are all older than
// window and whose block is over, then, if more than maxRows remain, the
// least recently updated beyond maxRows (rows not blocked first).
func (s *Store) PruneAuthFailures(ctx context.Context, now time.Time, window time.Duration, maxRows int) (err error) {
	defer wrap(&err, "Store.PruneAuthFailures")
	nowText := ivrpay.FormatTime(now)
	if _, err := s.wdb.ExecContext(ctx, `DELETE FROM auth_limits WHERE updated_at < $1 AND blocked_until <= $2`,
		ivrpay.FormatTime(now.Add(-window)), nowText); err != nil {
		return err
	}
	return s.capRows(ctx, "auth_limits", "limit_key", "(blocked_until > $1), updated_at", maxRows, nowText)
}

// capRows deletes the first rows of table in order (an ORDER BY list, whose
// placeholders are args) beyond maxRows, by its primary key column key.
func (s *Store) capRows(ctx context.Context, table, key, order string, maxRows int, args ...any) error {
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		return err
	}
	if n <= maxRows {
		return nil
	}
	_, err := s.wdb.ExecContext(ctx, `DELETE FROM `+table+` WHERE `+key+` IN (
		SELECT `+key+` FROM `+table+` ORDER BY `+order+` LIMIT $`+strconv.Itoa(len(args)+1)+`)`, append(args, n-maxRows)...)
	return err
}

// RecordKnownGood notes that the limiter's credential key authenticated at
// at (a later time already noted is kept).
func (s *Store) RecordKnownGood(ctx context.Context, key string, at time.Time) (err error) {
	defer wrap(&err, "Store.RecordKnownGood")
	_, err = s.wdb.ExecContext(ctx, `INSERT INTO auth_known_good (credential_key, seen_at) VALUES ($1, $2)
		ON CONFLICT (credential_key) DO UPDATE SET seen_at = excluded.seen_at WHERE auth_known_good.seen_at < excluded.seen_at`,
		key, ivrpay.FormatTime(at))
	return err
}

// KnownGoodSince returns when the credential key last authenticated, if
// that is after since, or the zero time.
func (s *Store) KnownGoodSince(ctx context.Context, key string, since time.Time) (seen time.Time, err error) {
	defer wrap(&err, "Store.KnownGoodSince")
	var at string
	err = s.rdb.QueryRowContext(ctx, `SELECT seen_at FROM auth_known_good WHERE credential_key = $1 AND seen_at > $2`,
		key, ivrpay.FormatTime(since)).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return parseTime(at), nil
}

// PruneKnownGood deletes the credentials last seen at or before before,
// then, if more than maxRows remain, the least recently seen beyond maxRows.
func (s *Store) PruneKnownGood(ctx context.Context, before time.Time, maxRows int) (err error) {
	defer wrap(&err, "Store.PruneKnownGood")
	if _, err := s.wdb.ExecContext(ctx, `DELETE FROM auth_known_good WHERE seen_at <= $1`, ivrpay.FormatTime(before)); err != nil {
		return err
	}
	return s.capRows(ctx, "auth_known_good", "credential_key", "seen_at", maxRows)
}
