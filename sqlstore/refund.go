package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/ivrpay/ivrpay"
)

const refundSelect = `SELECT id, platform_id, merchant_id, payin_id, amount, currency_code, reason, status,
	request_idempotency_key, metadata, refusal_code, refusal_desc, created_at, updated_at FROM refunds`

func scanRefund(row scanner) (*ivrpay.Refund, error) {
	var r ivrpay.Refund
	var key, refusalCode, refusalDesc, created, updated string
	var md sql.NullString
	if err := row.Scan(&r.ID, &r.PlatformID, &r.MerchantID, &r.PayinID, &r.Amount, &r.CurrencyCode, &r.Reason, &r.Status,
		&key, &md, &refusalCode, &refusalDesc, &created, &updated); err != nil {
		return nil, err
	}
	r.IdempotencyKey, r.Metadata = ivrpay.ClientIdempotencyKey(key), rawJSON(md)
	r.RefusalCode, r.RefusalDesc = ivrpay.OptString(refusalCode), ivrpay.OptString(refusalDesc)
	r.CreatedAt, r.UpdatedAt = parseTime(created), parseTime(updated)
	return &r, nil
}

func (s *Store) findRefund(ctx context.Context, q querier, id string) (*ivrpay.Refund, error) {
	r, err := scanRefund(s.queryRow(ctx, q, refundSelect+` WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ivrpay.Errorf(ivrpay.ENOTFOUND, "refund %s not found", id)
	}
	return r, err
}

// FindRefund returns a refund the caller may read.
func (s *Store) FindRefund(ctx context.Context, id string) (r *ivrpay.Refund, err error) {
	defer wrap(&err, "Store.FindRefund(%q)", id)
	if r, err = s.findRefund(ctx, s.rdb, id); err != nil {
		return nil, err
	}
	if err := authorizeRead(ctx, "refund:read", "refund", id, r.Object()); err != nil {
		return nil, err
	}
	return r, nil
}

// loadRefunds fills the refunds of payins, oldest first, with one query.
func (s *Store) loadRefunds(ctx context.Context, q querier, payins ...*ivrpay.Payin) error {
	if len(payins) == 0 {
		return nil
	}
	var lq listQuery
	byID := make(map[string]*ivrpay.Payin, len(payins))
	ph := make([]string, 0, len(payins))
	for _, p := range payins {
		byID[p.ID] = p
		ph = append(ph, lq.arg(p.ID))
	}
	query := refundSelect + ` WHERE payin_id IN (` + strings.Join(ph, ", ") + `) ORDER BY id`
	var rows *sql.Rows
	var err error
	if len(payins) == 1 {
		// One payin's query (findPayin's) is cached; a page's IN lists vary too much.
		rows, err = s.query(ctx, q, query, lq.args...)
	} else {
		rows, err = q.QueryContext(ctx, query, lq.args...)
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRefund(rows)
		if err != nil {
			return err
		}
		if p := byID[r.PayinID]; p != nil {
			p.Refunds = append(p.Refunds, *r)
		}
	}
	return rows.Err()
}

// ReplayVoidOrRefund returns the first result of an idempotency key, an
// ECONFLICT when the key was used for a different request, or nil, nil when
// the key is unused.
func (s *Store) ReplayVoidOrRefund(ctx context.Context, platformID, key, hash string) (res *ivrpay.VoidOrRefundResult, err error) {
	defer wrap(&err, "Store.ReplayVoidOrRefund")
	var firstHash, result string
	err = s.rdb.QueryRowContext(ctx, `SELECT request_hash, result FROM void_or_refund_requests WHERE platform_id = $1 AND idempotency_key = $2`,
		platformID, key).Scan(&firstHash, &result)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if firstHash != hash {
		return nil, &ivrpay.Error{Code: ivrpay.ECONFLICT, Field: "idempotency_key",
			Message: "idempotency_key " + ivrpay.ClientIdempotencyKey(key) + " was already used for a different void or refund; use a new key for a new request"}
	}
	res = &ivrpay.VoidOrRefundResult{}
	if err := json.Unmarshal([]byte(result), res); err != nil {
		return nil, err
	}
	return res, nil
}

// refundRefusingChargebacks is ivrpay.ChargebackStatusesRefusingRefunds as
// an SQL list (constants of ours, not input).
var refundRefusingChargebacks = "'" + strings.Join(ivrpay.ChargebackStatusesRefusingRefunds, "', '") + "'"

// RecordVoidOrRefund stores a PROCESSING refund, with the idempotency row,
// in one transaction (a void is a payin operation: StartPayinOperation).
// The refund adds to refunded_amount with an UPDATE whose WHERE requires
// enough left and no chargeback of the payin that refuses refunds, so
// concurrent refunds, in one process or many, never exceed it, and a
// refund decided on a payin read before its chargeback was recorded is
// refused (ErrStateChanged: the caller decides again on the payin as it
// is now). It returns the refund as reserved.
func (s *Store) RecordVoidOrRefund(ctx context.Context, r ivrpay.VoidOrRefundRecord) (refund *ivrpay.Refund, err error) {
	defer wrap(&err, "Store.RecordVoidOrRefund(%q)", r.Payin.ID)
	p := r.Payin
	now := ivrpay.FormatTime(r.At)
	err = s.inTx(ctx, func(tx querier) error {
		if err := insertVoidOrRefundRequest(ctx, tx, r, now); err != nil {
			return err
		}
		upd, err := tx.ExecContext(ctx, `UPDATE payins SET refunded_amount = refunded_amount + $2, updated_at = $3
			WHERE id = $1 AND status = $4 AND captured_amount - refunded_amount >= $2
				AND NOT EXISTS (SELECT 1 FROM chargebacks c WHERE c.payin_id = $1 AND c.status IN (`+refundRefusingChargebacks+`))`,
			p.ID, r.Plan.Amount, now, ivrpay.PayinStatusSucceeded)
		if err != nil {
			return err
		}
		if n, _ := upd.RowsAffected(); n != 1 {
			return ivrpay.ErrStateChanged
		}
		md, err := jsonText(r.Metadata)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO refunds (id, platform_id, merchant_id, payin_id, amount, currency_code, reason, status,
			processor_idempotency_key, request_idempotency_key, metadata, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)`,
			r.RefundID, p.PlatformID, p.MerchantID, p.ID, r.Plan.Amount, p.CurrencyCode, r.Reason, ivrpay.RefundStatusProcessing,
			r.ProcessorIdempotencyKey, r.IdempotencyKey, md, now); err != nil {
			return err
		}
		if refund, err = s.findRefund(ctx, tx, r.RefundID); err != nil {
			return err
		}
		if err := s.replaceRefundReplay(ctx, tx, refund); err != nil {
			return err
		}
		return s.emitRefundEvent(ctx, tx, refund)
	})
	return refund, err
}

// insertVoidOrRefundRequest writes the idempotency row of a void or refund
// request with the result it replays; ivrpay.ErrIdempotencyKeyTaken when
// another request committed the key first.
func insertVoidOrRefundRequest(ctx context.Context, tx querier, r ivrpay.VoidOrRefundRecord, now string) error {
	resJSON, err := json.Marshal(r.Result)
	if err != nil {
		return err
	}
	ins, err := tx.ExecContext(ctx, `INSERT INTO void_or_refund_requests (platform_id, idempotency_key, request_hash, payin_id, result, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (platform_id, idempotency_key) DO NOTHING`,
		r.PlatformID, r.IdempotencyKey, r.RequestHash, r.Payin.ID, string(resJSON), now)
	if err != nil {
		return err
	}
	if n, _ := ins.RowsAffected(); n != 1 {
		return ivrpay.ErrIdempotencyKeyTaken
	}
	return nil
}

// RecordRefundOutcome stores the processor's answer to a reserved refund
// and returns the refund as it now stands. A refused refund FAILED
// (failRefund), in the same transaction. An accepted or unknown answer
// changes nothing the refund shows, so its updated_at stays: the answer,
// GET and refund.processing agree.
func (s *Store) RecordRefundOutcome(ctx context.Context, o ivrpay.RefundOutcome) (final *ivrpay.Refund, err error) {
	defer wrap(&err, "Store.RecordRefundOutcome(%q)", o.RefundID)
	err = s.inTx(ctx, func(tx querier) error {
		if _, err := tx.ExecContext(ctx, `UPDATE refunds SET processor_outcome = $2, processor_reference = $3 WHERE id = $1`,
			o.RefundID, o.Outcome, o.Result.Reference); err != nil {
			return err
		}
		if o.Outcome == ivrpay.ProcessorOutcomeDeclined {
			final, err = s.failRefund(ctx, tx, ivrpay.RefundFailure{RefundID: o.RefundID, From: ivrpay.RefundStatusProcessing,
				RefusalCode: o.Result.RefusalCode, RefusalDesc: o.Result.RefusalDesc, At: o.At})
			return err
		}
		final, err = s.findRefund(ctx, tx, o.RefundID)
		return err
	})
	return final, err
}

// FailRefund marks a refund FAILED with its refusal (see failRefund) and
// returns it.
func (s *Store) FailRefund(ctx context.Context, f ivrpay.RefundFailure) (final *ivrpay.Refund, err error) {
	defer wrap(&err, "Store.FailRefund(%q)", f.RefundID)
	err = s.inTx(ctx, func(tx querier) error {
		final, err = s.failRefund(ctx, tx, f)
		return err
	})
	return final, err
}

// failRefund moves a refund from f.From to FAILED with its refusal_code and
// refusal_desc, by a conditional write (ErrStateChanged when it is no longer
// in f.From), gives its amount back to the payin, replaces the replayed
// answer of the request that made it, and emits refund.failed, all in tx.
func (s *Store) failRefund(ctx context.Context, tx querier, f ivrpay.RefundFailure) (*ivrpay.Refund, error) {
	now := ivrpay.FormatTime(f.At)
	code, desc := f.Refusal()
	upd, err := tx.ExecContext(ctx, `UPDATE refunds SET status = $2, refusal_code = $3, refusal_desc = $4, updated_at = $5
		WHERE id = $1 AND status = $6`, f.RefundID, ivrpay.RefundStatusFailed, code, desc, now, f.From)
	if err != nil {
		return nil, err
	}
	if n, _ := upd.RowsAffected(); n != 1 {
		return nil, ivrpay.ErrStateChanged
	}
	rf, err := s.findRefund(ctx, tx, f.RefundID)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE payins SET refunded_amount = refunded_amount - $2, updated_at = $3 WHERE id = $1`,
		rf.PayinID, rf.Amount, now); err != nil {
		return nil, err
	}
	if err := s.replaceRefundReplay(ctx, tx, rf); err != nil {
		return nil, err
	}
	return rf, s.emitRefundEvent(ctx, tx, rf)
}

// replaceRefundReplay makes the replayed answer of the void_or_refund request
// that made rf show rf as it now stands, so that a repeat of the request
// answers what the request answered (or, later, the refund's refusal).
func (s *Store) replaceRefundReplay(ctx context.Context, tx querier, rf *ivrpay.Refund) error {
	b, err := json.Marshal(ivrpay.RefundResult(rf))
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE void_or_refund_requests SET result = $3
		WHERE platform_id = $1 AND idempotency_key = (SELECT request_idempotency_key FROM refunds WHERE id = $2)`,
		rf.PlatformID, rf.ID, string(b))
	return err
}

// ClaimUnresolvedRefunds leases up to limit PROCESSING refunds whose
// processor answer was lost and that changed before cutoff.
func (s *Store) ClaimUnresolvedRefunds(ctx context.Context, cutoff time.Time, lease time.Duration, limit int) (out []ivrpay.UnresolvedRefund, err error) {
	defer wrap(&err, "Store.ClaimUnresolvedRefunds")
	ids, leaseErr := s.leaseDue(ctx, "refunds", "status = 'PROCESSING' AND processor_outcome = 'UNKNOWN'", cutoff, lease, limit)
	for _, id := range ids {
		u := ivrpay.UnresolvedRefund{}
		if u.Refund, err = s.findRefund(ctx, s.rdb, id); err != nil {
			return out, err
		}
		if err := s.rdb.QueryRowContext(ctx, `SELECT processor_idempotency_key FROM refunds WHERE id = $1`, id).
			Scan(&u.ProcessorIdempotencyKey); err != nil {
			return out, err
		}
		if u.Payin, err = s.findPayin(ctx, s.rdb, u.Refund.PayinID); err != nil {
			return out, err
		}
		out = append(out, u)
	}
	return out, leaseErr
}
