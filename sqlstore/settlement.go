package sqlstore

import (
	"context"
	"time"

	"github.com/ivrpay/ivrpay"
)

// settleBatch bounds how many payins and refunds one settlement pass reads.
const settleBatch = 100

// settleDuePayins lists the payins due to settle, oldest first. Its filter
// and order are the index payins_settle_due's, word for word, so that a
// pass reads only what it settles (SQLite matches an index expression
// literally).
const settleDuePayins = `SELECT id FROM payins WHERE status = 'PROCESSING' AND COALESCE(status_at, updated_at) <= $1
	ORDER BY COALESCE(status_at, updated_at), id LIMIT $2`

// SettleDue settles what has been PROCESSING for at least settleAfter:
// payins and refunds move to SUCCEEDED, each in its own transaction with its
// event. Every row is claimed by a conditional UPDATE (WHERE status =
// 'PROCESSING'), so several server processes may settle the same database at
// once: each row settles, and emits its event, exactly once. It returns how
// many rows this call settled.
func (s *Store) SettleDue(ctx context.Context, settleAfter time.Duration) (n int, err error) {
	defer wrap(&err, "Store.SettleDue")
	cutoff := ivrpay.FormatTime(s.now().Add(-settleAfter))
	payins, err := s.dueIDs(ctx, settleDuePayins, cutoff)
	if err != nil {
		return 0, err
	}
	for _, id := range payins {
		settled, err := s.settlePayin(ctx, id)
		if err != nil {
			return n, err
		}
		if settled {
			n++
		}
	}
	refunds, err := s.dueIDs(ctx, `SELECT id FROM refunds WHERE status = 'PROCESSING' AND processor_outcome <> 'UNKNOWN' AND created_at <= $1 ORDER BY id LIMIT $2`, cutoff)
	if err != nil {
		return n, err
	}
	for _, id := range refunds {
		settled, err := s.settleRefund(ctx, id)
		if err != nil {
			return n, err
		}
		if settled {
			n++
		}
	}
	return n, nil
}

func (s *Store) dueIDs(ctx context.Context, query, cutoff string) ([]string, error) {
	rows, err := s.query(ctx, s.rdb, query, cutoff, settleBatch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func (s *Store) settlePayin(ctx context.Context, id string) (settled bool, err error) {
	now := ivrpay.FormatTime(s.now())
	err = s.inTx(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, `UPDATE payins SET status = $2, updated_at = $3, status_at = $3 WHERE id = $1 AND status = $4`,
			id, ivrpay.PayinStatusSucceeded, now, ivrpay.PayinStatusProcessing)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil // settled by another process, or voided meanwhile
		}
		settled = true
		p, err := s.findPayin(ctx, tx, id)
		if err != nil {
			return err
		}
		return s.emitPayinEvent(ctx, tx, p, "")
	})
	return settled, err
}

func (s *Store) settleRefund(ctx context.Context, id string) (settled bool, err error) {
	now := ivrpay.FormatTime(s.now())
	err = s.inTx(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, `UPDATE refunds SET status = $2, updated_at = $3 WHERE id = $1 AND status = $4 AND processor_outcome <> 'UNKNOWN'`,
			id, ivrpay.RefundStatusSucceeded, now, ivrpay.RefundStatusProcessing)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		settled = true
		r, err := s.findRefund(ctx, tx, id)
		if err != nil {
			return err
		}
		return s.emitRefundEvent(ctx, tx, r)
	})
	return settled, err
}

// RunSettlement runs SettleDue every poll until ctx is done. In sandbox,
// settleAfter is --sandbox-settle-after: the delay a real processor's
// settlement would take. Errors are logged and the next pass tries again.
// The same loop deletes expired sessions, at most once a minute.
func (s *Store) RunSettlement(ctx context.Context, settleAfter, poll time.Duration) {
	if poll <= 0 {
		poll = time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	var cleaned time.Time
	for {
		if _, err := s.SettleDue(ctx, settleAfter); err != nil && ctx.Err() == nil {
			s.opts.Logger.Error("settlement pass failed", "error", err)
		}
		// Expired sessions already answer 401; their rows go on this loop's
		// schedule, at most once a minute, so every process may run it.
		if now := s.now(); now.Sub(cleaned) >= sessionCleanupEvery {
			cleaned = now
			if _, err := s.DeleteExpiredSessions(ctx); err != nil && ctx.Err() == nil {
				s.opts.Logger.Error("expired session cleanup failed", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
