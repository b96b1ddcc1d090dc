package payments

import (
	"context"
	"errors"
	"time"

	"github.com/ivrpay/ivrpay"
)

// CapturePayin captures an AUTHORIZED payin, in full or in part, at the
// processor that authorized it, which moves it to PROCESSING (then
// settlement moves it to SUCCEEDED like any other). The capture is recorded
// on the payin before the processor is asked, by a conditional write: of two
// racing captures one is recorded, and the other, for the same amount,
// sends that capture again under its idempotency key (for another amount it
// is a conflict). When its answer is lost the payin stays AUTHORIZED with the
// capture in flight, and a retry of the request or the reconciler sends it
// again under the same key.
func (s *Service) CapturePayin(ctx context.Context, payinID string, in ivrpay.PayinCapture) (*ivrpay.Payin, error) {
	p, err := s.readable(ctx, "payin:update", payinID)
	if err != nil {
		return nil, err
	}
	v := ivrpay.VersionFromContext(ctx)
	if err := ivrpay.CheckCaptureVersion(v); err != nil {
		return nil, err
	}
	amount, err := in.Validate()
	if err != nil {
		return nil, err
	}
	for range 2 {
		if op := p.Operation; op != nil {
			if op.Kind != ivrpay.PayinOperationCapture || (amount != 0 && amount != op.Amount) {
				return nil, ivrpay.OperationInFlight(p)
			}
			// The same capture again: sent again under its key.
			return s.capture(ctx, p, *op, v)
		}
		if amount, err = ivrpay.PlanCapture(p, amount); err != nil {
			return nil, err
		}
		op := ivrpay.PayinOperation{Kind: ivrpay.PayinOperationCapture, Amount: amount, IdempotencyKey: "capture_" + p.ID}
		err = s.store.StartPayinOperation(context.WithoutCancel(ctx), ivrpay.PayinOperationStart{PayinID: p.ID,
			Status: ivrpay.PayinStatusAuthorized, Operation: op, At: s.now()})
		if errors.Is(err, ivrpay.ErrStateChanged) {
			// Captured, voided or being captured by another request meanwhile.
			if p, err = s.store.LoadPayin(ctx, payinID); err != nil {
				return nil, err
			}
			if p.Operation == nil && p.Status != ivrpay.PayinStatusAuthorized {
				return nil, ivrpay.CaptureConflict(p)
			}
			continue // decided again on the payin as it is now
		} else if err != nil {
			return nil, err
		}
		return s.capture(ctx, p, op, v)
	}
	return nil, ivrpay.OperationInFlight(p)
}

// capture sends the capture op in flight on p and answers the payin as it
// leaves it: PROCESSING, or AUTHORIZED while the outcome is unknown.
func (s *Service) capture(ctx context.Context, p *ivrpay.Payin, op ivrpay.PayinOperation, v ivrpay.APIVersion) (*ivrpay.Payin, error) {
	kind := ivrpay.OpCapture
	if op.Amount < p.AuthorizedAmount {
		kind = ivrpay.OpPartialCapture
	}
	proc, err := s.capable(ctx, p, kind)
	if err != nil {
		return nil, err
	}
	final, outcome, res, err := s.sendOperation(ctx, proc, p, op, false)
	if err != nil {
		return nil, err
	}
	if outcome == ivrpay.ProcessorOutcomeDeclined {
		return nil, processorRefused("capture", p.ID, res)
	}
	return ivrpay.ShapePayin(v, final), nil
}

// VoidOrRefund voids a payin that has not settled (in full: → CANCELED) or
// refunds a SUCCEEDED one (in full or in part: a PROCESSING refund), at the
// processor that made it. A refund reserves its amount in the database
// before the processor is asked (a conditional write requires enough left),
// so concurrent refunds, in one process or many, never exceed the refundable
// amount; a refused refund gives its amount back. The idempotency row is
// written with the void or the reservation, so only a request that did
// something uses up its key, and its retry re-sends the same processor
// idempotency key.
func (s *Service) VoidOrRefund(ctx context.Context, payinID string, in ivrpay.VoidOrRefund) (*ivrpay.VoidOrRefundResult, error) {
	caller := ivrpay.PrincipalFromContext(ctx)
	p, err := s.readable(ctx, "refund:create", payinID)
	if err != nil {
		return nil, err
	}
	amount, err := in.Validate()
	if err != nil {
		return nil, err
	}
	metadata, err := ivrpay.CompactJSON(in.Metadata)
	if err != nil {
		return nil, err
	}
	hash := ivrpay.RequestHash([]any{payinID, in.Reason, amount, in.Type, metadata})
	// Keys are the merchant's own: another merchant's key never replays or blocks this one.
	key := ivrpay.ScopedIdempotencyKey(p.MerchantID, in.IdempotencyKey)
	if res, err := s.store.ReplayVoidOrRefund(ctx, caller.PlatformID, key, hash); res != nil || err != nil {
		return res, err
	}
	// The processor's idempotency key follows the request's, so a retry of
	// the same request never voids or refunds twice.
	opKey := "vor_" + ivrpay.RequestHash([]string{caller.PlatformID, payinID, in.IdempotencyKey})[:40]
	// A conditional write that finds the payin changed since it was read
	// (settled, captured, refunded by another request) makes the decision
	// again on the new state.
	for range 10 {
		if p.Operation != nil {
			return nil, ivrpay.OperationInFlight(p)
		}
		plan, err := ivrpay.PlanVoidOrRefund(p, in.Type, amount)
		if err != nil {
			return nil, err
		}
		at := s.now()
		rec := ivrpay.VoidOrRefundRecord{PlatformID: caller.PlatformID, IdempotencyKey: key, RequestHash: hash,
			Payin: p, Plan: plan, Reason: in.Reason, Metadata: metadata, At: at,
			Result: ivrpay.VoidOrRefundResult{Type: plan.Kind, MerchantID: p.MerchantID, PayinID: p.ID, Amount: plan.Amount,
				CurrencyCode: p.CurrencyCode, Reason: in.Reason, IdempotencyKey: in.IdempotencyKey, Metadata: metadata,
				UpdatedAt: at.Truncate(time.Microsecond)}} // as stored
		if plan.Kind == ivrpay.VoidOrRefundTypeVoid {
			err = s.void(ctx, p, plan, opKey, &rec)
		} else {
			err = s.refund(ctx, p, plan, opKey, &rec)
		}
		switch {
		case errors.Is(err, ivrpay.ErrIdempotencyKeyTaken):
			return s.store.ReplayVoidOrRefund(ctx, caller.PlatformID, key, hash)
		case errors.Is(err, ivrpay.ErrStateChanged):
			if p, err = s.store.LoadPayin(ctx, payinID); err != nil {
				return nil, err
			}
			continue
		case err != nil:
			return nil, err
		}
		return &rec.Result, nil
	}
	return nil, ivrpay.Errorf(ivrpay.ECONFLICT, "payin %s kept changing while this request ran; try again", payinID)
}

// void records the void on the payin, with the request's idempotency row,
// then asks the processor. From the moment it is recorded the payin does not
// settle and no other operation starts on it, so the void is never turned
// into a refund after the processor acted: it ends CANCELED, refused (the
// payin as it was, the idempotency key given back), or unknown (answered
// with the payin's status unchanged; the reconciler sends it again).
func (s *Service) void(ctx context.Context, p *ivrpay.Payin, plan ivrpay.VoidOrRefundPlan, opKey string, rec *ivrpay.VoidOrRefundRecord) error {
	proc, err := s.capable(ctx, p, ivrpay.OpVoid)
	if err != nil {
		return err
	}
	op := ivrpay.PayinOperation{Kind: ivrpay.PayinOperationVoid, Amount: plan.Amount, IdempotencyKey: opKey, RequestKey: rec.IdempotencyKey}
	rec.Result.PayinStatus = p.Status // until the processor answers
	if err := s.store.StartPayinOperation(context.WithoutCancel(ctx), ivrpay.PayinOperationStart{PayinID: p.ID, Status: plan.Status,
		Operation: op, Request: rec, At: rec.At}); err != nil {
		return err // nothing was sent: the caller may decide again
	}
	final, outcome, res, err := s.sendOperation(ctx, proc, p, op, false)
	switch {
	case err != nil:
		return err
	case outcome == ivrpay.ProcessorOutcomeDeclined:
		return processorRefused("void", p.ID, res)
	case outcome == ivrpay.ProcessorOutcomeApproved:
		// As the replay now says: the payin as the void left it.
		rec.Result.PayinStatus, rec.Result.UpdatedAt = final.Status, final.UpdatedAt
	}
	return nil
}

// refund reserves the refund, asks the processor, and records its answer.
func (s *Service) refund(ctx context.Context, p *ivrpay.Payin, plan ivrpay.VoidOrRefundPlan, opKey string, rec *ivrpay.VoidOrRefundRecord) error {
	op := ivrpay.OpRefund
	if plan.Amount < p.CapturedAmount {
		op = ivrpay.OpPartialRefund
	}
	proc, err := s.capable(ctx, p, op)
	if err != nil {
		return err
	}
	rec.RefundID, rec.ProcessorIdempotencyKey = s.newID(ivrpay.PrefixRefund), opKey
	reserved, err := s.store.RecordVoidOrRefund(context.WithoutCancel(ctx), *rec)
	if err != nil {
		return err
	}
	final, err := s.sendRefund(ctx, proc, p, rec.RefundID, opKey, plan.Amount)
	if err != nil {
		return err
	}
	// The answer is what a repeat replays: the refund as reserved, or as it
	// failed (a failure rewrites the replay), never a settlement that
	// happened to win the race with this answer.
	if final.Status == ivrpay.RefundStatusFailed {
		reserved = final
	}
	rec.Result = ivrpay.RefundResult(reserved)
	return nil
}

// sendRefund asks the processor for a reserved refund under opKey and
// records its answer: approved, refused (the refund FAILED with the
// processor's normalized refusal, its amount given back, and the replayed
// answer of its request corrected), or unknown (it stays PROCESSING and is
// not settled; the reconciler asks again under the same key). It returns
// the refund as it then stands.
func (s *Service) sendRefund(ctx context.Context, proc ivrpay.Processor, p *ivrpay.Payin, refundID, opKey string, amount int64) (*ivrpay.Refund, error) {
	res, err := s.call(ctx, func(ctx context.Context) (ivrpay.ProcessorResult, error) {
		return proc.Refund(ctx, ivrpay.PaymentOperation{IdempotencyKey: opKey, Reference: string(p.Processor.Reference), PayinID: p.ID,
			Amount: amount, Currency: p.CurrencyCode, AccountRef: p.Processor.AccountRef(), PaymentAmount: p.Amount})
	})
	o := ivrpay.RefundOutcome{RefundID: refundID, Outcome: ivrpay.ProcessorOutcomeApproved, Result: res, At: s.now()}
	switch {
	case err != nil:
		s.opts.Logger.Warn("processor outcome of a refund unknown; the reconciler asks again", "refund_id", refundID, "error", err)
		o.Outcome = ivrpay.ProcessorOutcomeUnknown
	case !res.Approved:
		o.Outcome = ivrpay.ProcessorOutcomeDeclined
	}
	return s.store.RecordRefundOutcome(context.WithoutCancel(ctx), o)
}

// capable returns the processor that made p, or why it cannot do op.
func (s *Service) capable(ctx context.Context, p *ivrpay.Payin, op string) (ivrpay.Processor, error) {
	proc, err := s.router.Account(ctx, p.Processor.Account)
	if err != nil {
		return nil, err
	}
	return proc, proc.Capabilities().Check(proc.Kind(), op)
}

func processorRefused(what, payinID string, res ivrpay.ProcessorResult) error {
	return ivrpay.Errorf(ivrpay.ECONFLICT, "the processor refused the %s of payin %s: %s (%s)", what, payinID, res.RefusalCode, res.RefusalDesc)
}

// readable loads a payin and checks that the caller has permission on it.
func (s *Service) readable(ctx context.Context, permission, payinID string) (*ivrpay.Payin, error) {
	p, err := s.store.LoadPayin(ctx, payinID)
	if err != nil {
		return nil, err
	}
	if err := ivrpay.AuthorizeObject(ivrpay.PrincipalFromContext(ctx), permission, "payin", payinID, p.Object()); err != nil {
		return nil, err
	}
	return p, nil
}
