package payments_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/sandbox"
)

// refusingProcessor is a sandbox processor whose Authorize answers as its
// mode says: refused locally (never sent), or lost (unknown); Resolve is
// always lost, and counted.
type refusingProcessor struct {
	sandbox.Processor
	notSent  atomic.Bool
	lost     atomic.Bool
	resolves atomic.Int32
}

func (p *refusingProcessor) Authorize(ctx context.Context, a ivrpay.CardPayment) (ivrpay.ProcessorResult, error) {
	switch {
	case p.notSent.Load():
		return ivrpay.ProcessorResult{}, ivrpay.NotSent("test: a header Go refuses to send")
	case p.lost.Load():
		return ivrpay.ProcessorResult{}, ivrpay.UnknownOutcome("test: no answer")
	}
	return p.Processor.Authorize(ctx, a)
}

func (p *refusingProcessor) Resolve(ctx context.Context, a ivrpay.CardPayment) (ivrpay.ProcessorResult, error) {
	p.resolves.Add(1)
	return ivrpay.ProcessorResult{}, ivrpay.UnknownOutcome("test: the processor cannot be reached")
}

// TestChargeNeverSent: a charge whose first request was refused locally is
// FAILED with PROCESSING_ERROR at once (nothing was charged), its config
// stays usable, and nothing waits for the reconciler. The retry of a charge
// whose first attempt is unknown stays unknown when its own request is
// refused locally: the first attempt may have been sent.
func TestChargeNeverSent(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		proc := &refusingProcessor{}
		b := paymentstest.Setup(t, engine, func(o *paymentstest.Config) { o.Processor = proc })
		cfg := b.PayinConfig(t, 1000)

		proc.notSent.Store(true)
		res := paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.ChargeReq(cfg.ID, "CA-not-sent", paymentstest.VisaOK, 1000))
		if res.ErrorCode != ivrpay.RefusalProcessingError || res.Parameters["payin_id"] == "" {
			t.Fatalf("a charge refused before it was sent answered %+v; want PROCESSING_ERROR with its payin", res)
		}
		p, err := b.Store.FindPayin(b.AdminCtx, res.Parameters["payin_id"])
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != ivrpay.PayinStatusFailed || p.Processor == nil || p.Processor.Outcome == ivrpay.ProcessorOutcomeUnknown {
			t.Fatalf("payin of a request never sent: %+v", p)
		}
		proc.notSent.Store(false)
		paymentstest.MustSucceed(t, paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.ChargeReq(cfg.ID, "CA-after-not-sent", paymentstest.VisaOK, 1000)))

		// A retry of an unknown attempt, refused locally, is still pending.
		lostCfg := b.PayinConfig(t, 1000)
		proc.lost.Store(true)
		req := paymentstest.ChargeReq(lostCfg.ID, "CA-lost-then-not-sent", paymentstest.VisaOK, 1000)
		if res := paymentstest.Process(t, b.Pay, b.IVRCtx, req); res.ErrorCode != ivrpay.ConnPaymentPending {
			t.Fatalf("a lost charge answered %+v, want PAYMENT_PENDING", res)
		}
		proc.lost.Store(false)
		proc.notSent.Store(true)
		if res := paymentstest.Process(t, b.Pay, b.IVRCtx, req); res.ErrorCode != ivrpay.ConnPaymentPending {
			t.Fatalf("the retry of a lost charge, refused locally, answered %+v; want PAYMENT_PENDING (the first attempt may have charged)", res)
		}
	})
}

// TestReconcilerBacksOff: an unknown outcome the processor cannot be asked
// about is asked about again, and warned about, ever more rarely: after ten
// minutes unknown, not again at the end of the lease (13 s) but after a
// quarter of that time.
func TestReconcilerBacksOff(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		proc := &refusingProcessor{}
		clock := paymentstest.NewFakeClock(time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC))
		var logs paymentstest.LockedBuffer
		b := paymentstest.Setup(t, engine, func(o *paymentstest.Config) {
			o.Processor, o.Clock, o.Logger = proc, clock, slog.New(slog.NewTextHandler(&logs, nil))
		})
		proc.lost.Store(true)
		if res := paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.ChargeReq(b.PayinConfig(t, 1000).ID, "CA-backoff", paymentstest.VisaOK, 1000)); res.ErrorCode != ivrpay.ConnPaymentPending {
			t.Fatalf("a lost charge answered %+v", res)
		}
		reconcile := func() {
			t.Helper()
			if _, err := b.Pay.ReconcileDue(paymentstest.BoundedContext(t)); err != nil {
				t.Fatal(err)
			}
		}
		const warning = "reconciler could not resolve a payin yet"
		clock.Advance(10 * time.Minute)
		reconcile()
		if n, logged := proc.resolves.Load(), strings.Count(string(logs.Bytes()), warning); n != 1 || logged != 1 {
			t.Fatalf("after 10 minutes: %d questions, %d warnings; want 1 and 1", n, logged)
		}
		for range 5 { // a pass a second for a minute: the lease alone would allow four more questions
			clock.Advance(12 * time.Second)
			reconcile()
		}
		if n, logged := proc.resolves.Load(), strings.Count(string(logs.Bytes()), warning); n != 1 || logged != 1 {
			t.Fatalf("a minute later: %d questions, %d warnings; want no more", n, logged)
		}
		clock.Advance(2 * time.Minute)
		reconcile()
		if n := proc.resolves.Load(); n != 2 {
			t.Fatalf("after the back-off: %d questions, want 2", n)
		}
		if strings.Count(string(logs.Bytes()), "retry_in=") != 2 {
			t.Fatalf("the warnings do not say when the reconciler asks again:\n%s", logs.Bytes())
		}
	})
}
