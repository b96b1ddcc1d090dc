package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"

	"github.com/ivrpay/ivrpay"
)

var _ ivrpay.PayinLifecycleService = (*Store)(nil)

const refundSelect = `SELECT id, platform_id, merchant_id, payin_id, amount, currency_code, reason, status, created_at FROM refunds`

func scanRefund(row scanner) (*ivrpay.Refund, error) {
	var r ivrpay.Refund
	var created string
	if err := row.Scan(&r.ID, &r.PlatformID, &r.MerchantID, &r.PayinID, &r.Amount, &r.CurrencyCode, &r.Reason, &r.Status, &created); err != nil {
		return nil, err
	}
	r.CreatedAt = parseTime(created)
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

// CapturePayin captures an AUTHORIZED payin, in full or in part, which moves
// it to PROCESSING (then settlement moves it to SUCCEEDED like any other).
// The status change is a conditional UPDATE, so of two racing captures one
// wins and the other is a conflict.
func (s *Store) CapturePayin(ctx context.Context, payinID string, in ivrpay.PayinCapture) (p *ivrpay.Payin, err error) {
	defer wrap(&err, "Store.CapturePayin(%q)", payinID)
	if p, err = s.findPayin(ctx, s.rdb, payinID); err != nil {
		return nil, err
	}
	if err := authorizeRead(ctx, "payin:update", "payin", payinID, p.Object()); err != nil {
		return nil, err
	}
	v := ivrpay.VersionFromContext(ctx)
	if !v.SupportsAuthorize() {
		return nil, ivrpay.FieldErrorf("Rainforest-Api-Version", "capture is available from API version 2024-10-16 (with processing_mode AUTHORIZE); this request runs at %s", v)
	}
	amount, err := in.Validate()
	if err != nil {
		return nil, err
	}
	if p.Status != ivrpay.PayinStatusAuthorized {
		return nil, captureConflict(p)
	}
	if amount == 0 {
		amount = p.AuthorizedAmount
	}
	if amount > p.AuthorizedAmount {
		return nil, &ivrpay.Error{Code: ivrpay.ECONFLICT, Field: "amount",
			Message: "amount " + ivrpay.FormatDollars(amount) + " is more than the authorized amount " + ivrpay.FormatDollars(p.AuthorizedAmount) + " of payin " + p.ID}
	}
	now := ivrpay.FormatTime(s.now())
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE payins SET status = $2, captured_amount = $3, updated_at = $4, status_at = $4
			WHERE id = $1 AND status = $5 AND authorized_amount >= $3`,
			payinID, ivrpay.PayinStatusProcessing, amount, now, ivrpay.PayinStatusAuthorized)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errStateChanged
		}
		final, err := s.findPayin(ctx, tx, payinID)
		if err != nil {
			return err
		}
		return s.emitPayinEvent(ctx, tx, final)
	})
	if errors.Is(err, errStateChanged) {
		if p, err = s.findPayin(ctx, s.rdb, payinID); err != nil {
			return nil, err
		}
		return nil, captureConflict(p)
	} else if err != nil {
		return nil, err
	}
	if p, err = s.findPayin(ctx, s.rdb, payinID); err != nil {
		return nil, err
	}
	return ivrpay.ShapePayin(v, p), nil
}

func captureConflict(p *ivrpay.Payin) error {
	return ivrpay.Errorf(ivrpay.ECONFLICT, "payin %s is %s; only AUTHORIZED payins (made with processing_mode AUTHORIZE) can be captured, once", p.ID, p.Status)
}

// errStateChanged rolls back a transaction whose conditional UPDATE found the
// payin in another state than the one the decision was made on.
var errStateChanged = errors.New("payin state changed")

// errKeyTaken rolls back a transaction whose idempotency key another request committed first.
var errKeyTaken = errors.New("idempotency key taken")

// voidOrRefundPlan is what a void_or_refund request does to a payin in a given state.
type voidOrRefundPlan struct {
	kind   string // VOID or REFUND
	amount int64
	status string // the status the decision was made on
}

// planVoidOrRefund decides, from the payin's state, what a request does, or
// why the state forbids it (ECONFLICT with a message that says why).
func planVoidOrRefund(p *ivrpay.Payin, kind string, amount int64) (voidOrRefundPlan, error) {
	conflict := func(field, format string, args ...any) (voidOrRefundPlan, error) {
		e := ivrpay.Errorf(ivrpay.ECONFLICT, format, args...)
		e.Field = field
		return voidOrRefundPlan{}, e
	}
	switch p.Status {
	case ivrpay.PayinStatusCreated:
		return conflict("", "payin %s is still being processed; try again once it is PROCESSING", p.ID)
	case ivrpay.PayinStatusFailed:
		return conflict("", "payin %s FAILED (%s): no money moved, so there is nothing to void or refund", p.ID, p.RefusalCode)
	case ivrpay.PayinStatusCanceled:
		return conflict("", "payin %s was voided (CANCELED): no money moves, so there is nothing left to void or refund", p.ID)
	case ivrpay.PayinStatusProcessing, ivrpay.PayinStatusAuthorized:
		if kind == ivrpay.VoidOrRefundTypeRefund {
			return conflict("type", "payin %s has not settled yet (it is %s): void it in full now (type VOID, or no type), or refund it once it is SUCCEEDED", p.ID, p.Status)
		}
		full := p.CapturedAmount
		if p.Status == ivrpay.PayinStatusAuthorized {
			full = p.AuthorizedAmount
		}
		if amount != 0 && amount != full {
			return conflict("amount", "a payin cannot be partially voided: payin %s is %s, so only its full amount %s can be voided (omit amount); once it is SUCCEEDED it can be partially refunded",
				p.ID, p.Status, ivrpay.FormatDollars(full))
		}
		return voidOrRefundPlan{kind: ivrpay.VoidOrRefundTypeVoid, amount: full, status: p.Status}, nil
	case ivrpay.PayinStatusSucceeded:
		if kind == ivrpay.VoidOrRefundTypeVoid {
			return conflict("type", "payin %s has settled (SUCCEEDED) and can no longer be voided; use a refund instead (type REFUND, or no type) for all or part of its refundable amount %s",
				p.ID, ivrpay.FormatDollars(p.RefundableAmount))
		}
		if p.RefundableAmount == 0 {
			return conflict("", "payin %s is already fully refunded: its refundable amount is 0.00", p.ID)
		}
		if amount == 0 {
			amount = p.RefundableAmount
		}
		if amount > p.RefundableAmount {
			return conflict("amount", "amount %s is more than the refundable amount %s of payin %s",
				ivrpay.FormatDollars(amount), ivrpay.FormatDollars(p.RefundableAmount), p.ID)
		}
		return voidOrRefundPlan{kind: ivrpay.VoidOrRefundTypeRefund, amount: amount, status: p.Status}, nil
	}
	return conflict("", "payin %s is %s and cannot be voided or refunded", p.ID, p.Status)
}

// VoidOrRefund voids a payin that has not settled (in full: → CANCELED) or
// refunds a SUCCEEDED one (in full or in part: a PROCESSING refund). The
// refundable amount is enforced by the database: the refund's transaction
// adds to refunded_amount with an UPDATE whose WHERE requires enough left,
// so concurrent refunds, in one process or many, never exceed it. The
// idempotency row is written in the same transaction, so only a request
// that did something uses up its key.
func (s *Store) VoidOrRefund(ctx context.Context, payinID string, in ivrpay.VoidOrRefund) (res *ivrpay.VoidOrRefundResult, err error) {
	defer wrap(&err, "Store.VoidOrRefund(%q)", payinID)
	caller := ivrpay.PrincipalFromContext(ctx)
	p, err := s.findPayin(ctx, s.rdb, payinID)
	if err != nil {
		return nil, err
	}
	if err := authorizeRead(ctx, "refund:create", "payin", payinID, p.Object()); err != nil {
		return nil, err
	}
	amount, err := in.Validate()
	if err != nil {
		return nil, err
	}
	hash := requestHash([]any{payinID, in.Reason, amount, in.Type})
	if res, err := s.replayVoidOrRefund(ctx, caller.PlatformID, in.IdempotencyKey, hash); res != nil || err != nil {
		return res, err
	}
	// A conditional UPDATE that finds the payin changed since it was read
	// (settled, captured, refunded by another request) makes the decision
	// again on the new state.
	for range 10 {
		plan, err := planVoidOrRefund(p, in.Type, amount)
		if err != nil {
			return nil, err
		}
		res, err := s.applyVoidOrRefund(ctx, caller.PlatformID, p, plan, in, hash)
		switch {
		case errors.Is(err, errKeyTaken):
			return s.replayVoidOrRefund(ctx, caller.PlatformID, in.IdempotencyKey, hash)
		case errors.Is(err, errStateChanged):
			if p, err = s.findPayin(ctx, s.rdb, payinID); err != nil {
				return nil, err
			}
			continue
		case err != nil:
			return nil, err
		}
		return res, nil
	}
	return nil, ivrpay.Errorf(ivrpay.ECONFLICT, "payin %s kept changing while this request ran; try again", payinID)
}

// replayVoidOrRefund returns the first result of an idempotency key, an
// ECONFLICT when the key was used for a different request, or nil, nil when
// the key is unused.
func (s *Store) replayVoidOrRefund(ctx context.Context, platformID, key, hash string) (*ivrpay.VoidOrRefundResult, error) {
	var firstHash, firstPayin, result string
	err := s.rdb.QueryRowContext(ctx, `SELECT request_hash, payin_id, result FROM void_or_refund_requests WHERE platform_id = $1 AND idempotency_key = $2`,
		platformID, key).Scan(&firstHash, &firstPayin, &result)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if firstHash != hash {
		return nil, &ivrpay.Error{Code: ivrpay.ECONFLICT, Field: "idempotency_key",
			Message: "idempotency_key " + key + " was already used for a different void or refund (of payin " + firstPayin + "); use a new key for a new request"}
	}
	var res ivrpay.VoidOrRefundResult
	if err := json.Unmarshal([]byte(result), &res); err != nil {
		return nil, err
	}
	return &res, nil
}

func (s *Store) applyVoidOrRefund(ctx context.Context, platformID string, p *ivrpay.Payin, plan voidOrRefundPlan, in ivrpay.VoidOrRefund, hash string) (*ivrpay.VoidOrRefundResult, error) {
	now := ivrpay.FormatTime(s.now())
	res := &ivrpay.VoidOrRefundResult{Type: plan.kind, MerchantID: p.MerchantID, PayinID: p.ID, Amount: plan.amount,
		CurrencyCode: p.CurrencyCode, Reason: in.Reason}
	var refundID string
	if plan.kind == ivrpay.VoidOrRefundTypeVoid {
		res.PayinStatus = ivrpay.PayinStatusCanceled
	} else {
		refundID = s.newID(ivrpay.PrefixRefund)
		res.PayinStatus = ivrpay.PayinStatusSucceeded
		res.RefundID, res.RefundStatus = ivrpay.OptString(refundID), ivrpay.RefundStatusProcessing
	}
	resJSON, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		ins, err := tx.ExecContext(ctx, `INSERT INTO void_or_refund_requests (platform_id, idempotency_key, request_hash, payin_id, result, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (platform_id, idempotency_key) DO NOTHING`,
			platformID, in.IdempotencyKey, hash, p.ID, string(resJSON), now)
		if err != nil {
			return err
		}
		if n, _ := ins.RowsAffected(); n != 1 {
			return errKeyTaken
		}
		if plan.kind == ivrpay.VoidOrRefundTypeVoid {
			upd, err := tx.ExecContext(ctx, `UPDATE payins SET status = $2, updated_at = $3, status_at = $3 WHERE id = $1 AND status = $4`,
				p.ID, ivrpay.PayinStatusCanceled, now, plan.status)
			if err != nil {
				return err
			}
			if n, _ := upd.RowsAffected(); n != 1 {
				return errStateChanged
			}
			final, err := s.findPayin(ctx, tx, p.ID)
			if err != nil {
				return err
			}
			return s.emitPayinEvent(ctx, tx, final)
		}
		upd, err := tx.ExecContext(ctx, `UPDATE payins SET refunded_amount = refunded_amount + $2, updated_at = $3
			WHERE id = $1 AND status = $4 AND captured_amount - refunded_amount >= $2`,
			p.ID, plan.amount, now, ivrpay.PayinStatusSucceeded)
		if err != nil {
			return err
		}
		if n, _ := upd.RowsAffected(); n != 1 {
			return errStateChanged
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO refunds (id, platform_id, merchant_id, payin_id, amount, currency_code, reason, status, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`,
			refundID, p.PlatformID, p.MerchantID, p.ID, plan.amount, p.CurrencyCode, in.Reason, ivrpay.RefundStatusProcessing, now); err != nil {
			return err
		}
		r, err := s.findRefund(ctx, tx, refundID)
		if err != nil {
			return err
		}
		return s.emitRefundEvent(ctx, tx, r)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}
