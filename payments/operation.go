package payments

import (
	"context"
	"errors"

	"github.com/ivrpay/ivrpay"
)

// sendOperation sends p's capture or void op to proc under the operation's
// idempotency key and records the answer: APPROVED and DECLINED end the
// operation, UNKNOWN keeps it in flight for the reconciler. byReconciler
// keeps a refused void's request idempotency row (its caller was already
// answered). It returns the payin as recorded (by this call, or by another
// process that recorded the operation first) and this send's outcome.
func (s *Service) sendOperation(ctx context.Context, proc ivrpay.Processor, p *ivrpay.Payin, op ivrpay.PayinOperation, byReconciler bool) (*ivrpay.Payin, string, ivrpay.ProcessorResult, error) {
	res, err := s.call(ctx, func(ctx context.Context) (ivrpay.ProcessorResult, error) {
		po := ivrpay.PaymentOperation{IdempotencyKey: op.IdempotencyKey, Reference: string(p.Processor.Reference), PayinID: p.ID,
			Amount: op.Amount, Currency: p.CurrencyCode, AccountRef: p.Processor.AccountRef()}
		if op.Kind == ivrpay.PayinOperationCapture {
			return proc.Capture(ctx, po)
		}
		return proc.Void(ctx, po)
	})
	outcome := ivrpay.ProcessorOutcomeApproved
	switch {
	case err != nil:
		outcome = ivrpay.ProcessorOutcomeUnknown
		s.opts.Logger.Warn("processor outcome of a payin operation unknown; the reconciler sends it again", "payin_id", p.ID,
			"operation", op.Kind, "error", err)
		if op.Outcome == ivrpay.ProcessorOutcomeUnknown {
			return p, outcome, res, nil // recorded already; its age paces the reconciler's back-off
		}
	case !res.Approved:
		outcome = ivrpay.ProcessorOutcomeDeclined
	}
	final, err := s.store.RecordPayinOperationOutcome(context.WithoutCancel(ctx), ivrpay.PayinOperationOutcome{PayinID: p.ID,
		IdempotencyKey: op.IdempotencyKey, Outcome: outcome, KeepRequest: byReconciler, At: s.now()})
	if errors.Is(err, ivrpay.ErrStateChanged) {
		final, err = s.store.LoadPayin(ctx, p.ID)
	}
	return final, outcome, res, err
}
