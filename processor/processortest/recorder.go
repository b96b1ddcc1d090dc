package processortest

import (
	"context"
	"sync"
	"time"

	"github.com/ivrpay/ivrpay"
)

// Call is one call a Recorder passed on.
type Call struct {
	// Kind is the method: "authorize", "verify", "capture", "void", "refund" or "resolve".
	Kind           string
	PayinID        string // the payment's reference for authorize, verify and resolve
	IdempotencyKey string
	Amount         int64
	// DuringCall is the Resolve's CardPayment.DuringCall.
	DuringCall bool
}

// Recorder is a processor that records every call before passing it on to
// Processor, so that a test can count what reached the processor (a cancel
// and a refund of one payin, say).
type Recorder struct {
	ivrpay.Processor
	// OperationDelay holds every Capture, Void and Refund that long before
	// it is passed on: a slow processor, which widens a race's window.
	OperationDelay time.Duration

	mu    sync.Mutex
	calls []Call
}

var _ ivrpay.Processor = (*Recorder)(nil)

// Calls returns the recorded calls of kind for payinID (every payin's when empty).
func (r *Recorder) Calls(kind, payinID string) []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Call
	for _, c := range r.calls {
		if c.Kind == kind && (payinID == "" || c.PayinID == payinID) {
			out = append(out, c)
		}
	}
	return out
}

func (r *Recorder) record(c Call) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

func (r *Recorder) Authorize(ctx context.Context, a ivrpay.CardPayment) (ivrpay.ProcessorResult, error) {
	r.record(Call{Kind: "authorize", PayinID: a.Reference, IdempotencyKey: a.IdempotencyKey, Amount: a.Amount})
	return r.Processor.Authorize(ctx, a)
}

func (r *Recorder) Verify(ctx context.Context, a ivrpay.CardPayment) (ivrpay.ProcessorResult, error) {
	r.record(Call{Kind: "verify", PayinID: a.Reference, IdempotencyKey: a.IdempotencyKey})
	return r.Processor.Verify(ctx, a)
}

func (r *Recorder) Resolve(ctx context.Context, a ivrpay.CardPayment) (ivrpay.ProcessorResult, error) {
	r.record(Call{Kind: "resolve", PayinID: a.Reference, IdempotencyKey: a.IdempotencyKey, Amount: a.Amount, DuringCall: a.DuringCall})
	return r.Processor.Resolve(ctx, a)
}

func (r *Recorder) Capture(ctx context.Context, op ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error) {
	return r.operate(ctx, "capture", op, r.Processor.Capture)
}

func (r *Recorder) Void(ctx context.Context, op ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error) {
	return r.operate(ctx, "void", op, r.Processor.Void)
}

func (r *Recorder) Refund(ctx context.Context, op ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error) {
	return r.operate(ctx, "refund", op, r.Processor.Refund)
}

func (r *Recorder) operate(ctx context.Context, kind string, op ivrpay.PaymentOperation,
	pass func(context.Context, ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error)) (ivrpay.ProcessorResult, error) {
	r.record(Call{Kind: kind, PayinID: op.PayinID, IdempotencyKey: op.IdempotencyKey, Amount: op.Amount})
	if r.OperationDelay > 0 {
		select {
		case <-time.After(r.OperationDelay):
		case <-ctx.Done():
			return ivrpay.ProcessorResult{}, ivrpay.UnknownOutcome("processortest: no answer: %v", ctx.Err())
		}
	}
	return pass(ctx, op)
}
