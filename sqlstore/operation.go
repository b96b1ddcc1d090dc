package sqlstore

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/ivrpay/ivrpay"
)

// clearOperation is the SET list that ends a payin's operation.
const clearOperation = `operation = '', operation_amount = 0, operation_key = '', operation_outcome = '', operation_request_key = ''`

// NoVoidInFlight is the condition, on the payins table, that no void of the
// payin is in flight: a processor event moves a payin anywhere but to
// CANCELED only under it, so that one decided before a void started waits
// for the void's outcome instead of settling a payin being canceled.
const NoVoidInFlight = `operation <> '` + ivrpay.PayinOperationVoid + `'`

// NoOperationInFlight is the condition, on the payins table, that no
// capture or void of the payin is in flight at the processor: whatever
// confirms a capture or settles a payin (settlement, a processor event)
// applies only under it, and waits otherwise (SPEC §4.2).
const NoOperationInFlight = `operation = ''`

// StartPayinOperation records a capture or void on its payin before the
// processor is asked, by a conditional UPDATE: the payin must still have the
// status it was planned on and no operation in flight, else ErrStateChanged.
// A void's request idempotency row is written in the same transaction
// (ivrpay.ErrIdempotencyKeyTaken when another request committed the key).
func (s *Store) StartPayinOperation(ctx context.Context, o ivrpay.PayinOperationStart) (err error) {
	defer wrap(&err, "Store.StartPayinOperation(%q)", o.PayinID)
	now := ivrpay.FormatTime(o.At)
	return s.inTx(ctx, func(tx querier) error {
		if r := o.Request; r != nil {
			if err := insertVoidOrRefundRequest(ctx, tx, *r, now); err != nil {
				return err
			}
		}
		op := o.Operation
		res, err := tx.ExecContext(ctx, `UPDATE payins SET operation = $2, operation_amount = $3, operation_key = $4, operation_outcome = '',
			operation_request_key = $5, updated_at = $6 WHERE id = $1 AND status = $7 AND `+NoOperationInFlight,
			o.PayinID, op.Kind, op.Amount, op.IdempotencyKey, op.RequestKey, now, o.Status)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ivrpay.ErrStateChanged
		}
		return nil
	})
}

// RecordPayinOperationOutcome stores the processor's answer to the payin's
// operation under o.IdempotencyKey (ErrStateChanged when that operation is
// no longer in flight: another process recorded it). UNKNOWN keeps it in
// flight for the reconciler. APPROVED moves the payin (a capture to
// PROCESSING with its captured amount, a void to CANCELED) with its event
// and the void's replayed answer; DECLINED leaves the payin as it was, and
// gives a void's idempotency key back unless o.KeepRequest.
func (s *Store) RecordPayinOperationOutcome(ctx context.Context, o ivrpay.PayinOperationOutcome) (final *ivrpay.Payin, err error) {
	defer wrap(&err, "Store.RecordPayinOperationOutcome(%q)", o.PayinID)
	now := ivrpay.FormatTime(o.At)
	err = s.inTx(ctx, func(tx querier) error {
		p, err := s.findPayin(ctx, tx, o.PayinID)
		if err != nil {
			return err
		}
		op := p.Operation
		if op == nil || op.IdempotencyKey != o.IdempotencyKey {
			return ivrpay.ErrStateChanged
		}
		inFlight := `id = $1 AND operation_key = $2 AND operation <> ''`
		if o.Outcome == ivrpay.ProcessorOutcomeUnknown {
			// Nothing the payin shows changes, so neither does its
			// updated_at: the void's answer and GET agree, and the
			// reconciler's back-off counts from the operation's start.
			_, err := tx.ExecContext(ctx, `UPDATE payins SET operation_outcome = $3 WHERE `+inFlight,
				o.PayinID, o.IdempotencyKey, ivrpay.ProcessorOutcomeUnknown)
			final = p
			return err
		}
		// An approval moves the payin from the statuses the operation
		// starts from; a payin an event moved meanwhile keeps the processor's
		// word.
		status, captured := p.Status, p.CapturedAmount
		if o.Outcome == ivrpay.ProcessorOutcomeApproved {
			switch {
			case op.Kind == ivrpay.PayinOperationCapture && p.Status == ivrpay.PayinStatusAuthorized:
				status, captured = ivrpay.PayinStatusProcessing, op.Amount
			case op.Kind == ivrpay.PayinOperationVoid && (p.Status == ivrpay.PayinStatusProcessing || p.Status == ivrpay.PayinStatusAuthorized):
				status = ivrpay.PayinStatusCanceled
			}
		}
		// Only a status change moves updated_at and restarts the settlement
		// clock (status_at): after a refusal the payin shows what it showed,
		// and waits no longer than it would have.
		res, err := tx.ExecContext(ctx, `UPDATE payins SET status = $3, captured_amount = $4,
			updated_at = CASE WHEN status = $3 THEN updated_at ELSE $5 END,
			status_at = CASE WHEN status = $3 THEN status_at ELSE $5 END, `+clearOperation+` WHERE `+inFlight,
			o.PayinID, o.IdempotencyKey, status, captured, now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ivrpay.ErrStateChanged
		}
		if final, err = s.findPayin(ctx, tx, o.PayinID); err != nil {
			return err
		}
		if op.RequestKey != "" {
			if err := s.settleVoidRequest(ctx, tx, final, op.RequestKey, o.Outcome == ivrpay.ProcessorOutcomeDeclined && !o.KeepRequest); err != nil {
				return err
			}
		}
		if status == p.Status {
			return nil
		}
		return s.emitPayinEvent(ctx, tx, final, "")
	})
	return final, err
}

// endOperationBy ends the operation in flight on p, in tx, when a processor
// event moved p to where the operation leads or past it: a void by its
// cancellation, a capture by the payment's capture, cancellation or
// failure. A void's replayed answer then shows the payin as it is. It
// returns p as it now stands.
func (s *Store) endOperationBy(ctx context.Context, tx querier, p *ivrpay.Payin) (*ivrpay.Payin, error) {
	op := p.Operation
	if op == nil {
		return p, nil
	}
	switch {
	case op.Kind == ivrpay.PayinOperationVoid && p.Status == ivrpay.PayinStatusCanceled:
	case op.Kind == ivrpay.PayinOperationCapture && slices.Contains([]string{ivrpay.PayinStatusSucceeded, ivrpay.PayinStatusCanceled,
		ivrpay.PayinStatusFailed}, p.Status):
	default:
		return p, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE payins SET `+clearOperation+` WHERE id = $1 AND operation_key = $2`, p.ID, op.IdempotencyKey); err != nil {
		return nil, err
	}
	ended := *p
	ended.Operation = nil
	if op.RequestKey != "" {
		if err := s.settleVoidRequest(ctx, tx, &ended, op.RequestKey, false); err != nil {
			return nil, err
		}
	}
	return &ended, nil
}

// settleVoidRequest makes the replayed answer of the void request key show
// the payin as its void left it (status and updated_at), or deletes the request (release) so that a
// void the processor refused uses up no key.
func (s *Store) settleVoidRequest(ctx context.Context, tx querier, p *ivrpay.Payin, key string, release bool) error {
	if release {
		_, err := tx.ExecContext(ctx, `DELETE FROM void_or_refund_requests WHERE platform_id = $1 AND idempotency_key = $2`, p.PlatformID, key)
		return err
	}
	var result string
	if err := s.queryRow(ctx, tx, `SELECT result FROM void_or_refund_requests WHERE platform_id = $1 AND idempotency_key = $2`,
		p.PlatformID, key).Scan(&result); err != nil {
		return err
	}
	var r ivrpay.VoidOrRefundResult
	if err := json.Unmarshal([]byte(result), &r); err != nil {
		return err
	}
	r.PayinStatus, r.UpdatedAt = p.Status, p.UpdatedAt
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE void_or_refund_requests SET result = $3 WHERE platform_id = $1 AND idempotency_key = $2`,
		p.PlatformID, key, string(b))
	return err
}

// ClaimPayinOperations leases, for the caller alone, up to limit payins
// whose capture or void has been in flight since before cutoff: its answer
// was lost, or the process that sent it died.
func (s *Store) ClaimPayinOperations(ctx context.Context, cutoff time.Time, lease time.Duration, limit int) (out []*ivrpay.Payin, err error) {
	defer wrap(&err, "Store.ClaimPayinOperations")
	return s.leasePayins(ctx, `operation <> ''`, cutoff, lease, limit)
}
