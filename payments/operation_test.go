package payments_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/processortest"
	"github.com/ivrpay/ivrpay/processor/sandbox"
)

// operationSetup is a fixture whose processor is the sandbox behind a
// recorder, whose calls get 200 ms, and whose clock (store and service)
// moves only when the test says.
func operationSetup(t *testing.T, engine string, proc ivrpay.Processor) (*paymentstest.Fixture, *processortest.Recorder, *paymentstest.FakeClock) {
	t.Helper()
	clock := paymentstest.NewFakeClock(time.Now())
	rec := &processortest.Recorder{Processor: proc}
	b := paymentstest.Setup(t, engine, func(c *paymentstest.Config) {
		c.Clock, c.Processor, c.ProcessorTimeout = clock, rec, 200*time.Millisecond
	})
	return b, rec, clock
}

// ivrPayin charges amount over IVR on a new config (adjusted by adjust) and
// returns the approved payin's id.
func ivrPayin(t *testing.T, b *paymentstest.Fixture, txID string, amount int64, adjust ...func(*ivrpay.PayinConfigCreate)) string {
	t.Helper()
	res := paymentstest.Process(t, b.Pay, b.IVRCtx, paymentstest.ChargeReq(b.PayinConfig(t, amount, adjust...).ID, txID, paymentstest.VisaOK, amount))
	paymentstest.MustSucceed(t, res)
	return res.ID
}

func authorizeOnly(in *ivrpay.PayinConfigCreate) { in.ProcessingMode = ivrpay.ProcessingModeAuthorize }

func loadPayin(t *testing.T, b *paymentstest.Fixture, id string) *ivrpay.Payin {
	t.Helper()
	p, err := b.Store.LoadPayin(paymentstest.BoundedContext(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// reconcile runs one reconciler pass and returns how much it resolved.
func reconcile(t *testing.T, b *paymentstest.Fixture) int {
	t.Helper()
	n, err := b.Pay.ReconcileDue(paymentstest.BoundedContext(t))
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	return n
}

// settle sends the sandbox processor's confirmations of everything due (the
// capture confirmed) through the inbox, as settlement does.
func settle(t *testing.T, b *paymentstest.Fixture) {
	t.Helper()
	if _, err := b.Pay.ConfirmSandboxDue(paymentstest.BoundedContext(t), 0); err != nil {
		t.Fatal(err)
	}
}

func events(t *testing.T, b *paymentstest.Fixture, objectID, eventType string) int {
	t.Helper()
	return paymentstest.Count(t, b.Store.DB(), `SELECT COUNT(*) FROM events WHERE object_id = $1 AND type = $2`, objectID, eventType)
}

// wantOperation fails the test unless p has kind in flight with outcome.
func wantOperation(t *testing.T, p *ivrpay.Payin, kind, outcome string) {
	t.Helper()
	if op := p.Operation; op == nil || op.Kind != kind || op.Outcome != outcome {
		t.Fatalf("payin %s (%s): operation in flight %+v, want %s with outcome %q", p.ID, p.Status, p.Operation, kind, outcome)
	}
}

// sameJSON reports whether a and b answer the same JSON, as a replay must.
func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

// sameKey fails the test unless calls are n sends of one idempotency key.
func sameKey(t *testing.T, calls []processortest.Call, n int) {
	t.Helper()
	if len(calls) != n {
		t.Fatalf("%d calls reached the processor, want %d: %+v", len(calls), n, calls)
	}
	for _, c := range calls[1:] {
		if c.IdempotencyKey != calls[0].IdempotencyKey || c.IdempotencyKey == "" {
			t.Fatalf("the operation was sent under different idempotency keys: %+v", calls)
		}
	}
}

// TestCaptureAnswerLost: a capture whose processor answer is lost (the
// sandbox's 51.20 times out on its first call, the capture is made) is
// answered with the payin still AUTHORIZED and the capture in flight; no
// other capture or void starts on it; the same request sent again, or the
// reconciler once --reconcile-after has passed, sends it again under the
// same idempotency key and records the capture once.
func TestCaptureAnswerLost(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		b, rec, clock := operationSetup(t, engine, sandbox.New())
		for i, row := range []struct {
			name    string
			resolve func(t *testing.T, id string)
		}{
			{"the reconciler sends it again", func(t *testing.T, id string) {
				if n := reconcile(t, b); n != 0 {
					t.Fatalf("the reconciler resolved %d before --reconcile-after", n)
				}
				clock.Advance(3 * time.Minute)
				if n := reconcile(t, b); n != 1 {
					t.Fatalf("the reconciler resolved %d, want the capture", n)
				}
			}},
			{"the same request sent again", func(t *testing.T, id string) {
				p, err := b.Pay.CapturePayin(b.AdminCtx, id, ivrpay.PayinCapture{})
				if err != nil || p.Status != ivrpay.PayinStatusProcessing {
					t.Fatalf("the capture sent again: %+v, %v", p, err)
				}
			}},
		} {
			t.Run(row.name, func(t *testing.T) {
				id := ivrPayin(t, b, "CA-capture-lost-"+string(rune('a'+i)), sandbox.TimeoutFirstAmount, authorizeOnly)
				p, err := b.Pay.CapturePayin(b.AdminCtx, id, ivrpay.PayinCapture{})
				if err != nil {
					t.Fatalf("a capture whose answer was lost: %v, want the payin as it stands", err)
				}
				if p.Status != ivrpay.PayinStatusAuthorized || p.CapturedAmount != 0 {
					t.Fatalf("answer while the capture's outcome is unknown: %s, captured %d", p.Status, p.CapturedAmount)
				}
				wantOperation(t, loadPayin(t, b, id), ivrpay.PayinOperationCapture, ivrpay.ProcessorOutcomeUnknown)

				_, err = b.Pay.VoidOrRefund(b.AdminCtx, id, ivrpay.VoidOrRefund{IdempotencyKey: "void-during-capture-" + id, Reason: "REQUESTED_BY_CUSTOMER"})
				paymentstest.WantCode(t, err, ivrpay.ECONFLICT)
				_, err = b.Pay.CapturePayin(b.AdminCtx, id, ivrpay.PayinCapture{Amount: "1000"})
				paymentstest.WantCode(t, err, ivrpay.ECONFLICT)
				if v := rec.Calls("void", id); len(v) != 0 {
					t.Fatalf("a void reached the processor while the capture was in flight: %+v", v)
				}

				row.resolve(t, id)
				p = loadPayin(t, b, id)
				if p.Status != ivrpay.PayinStatusProcessing || p.CapturedAmount != sandbox.TimeoutFirstAmount || p.Operation != nil {
					t.Fatalf("payin after the capture's outcome: %s, captured %d, in flight %+v", p.Status, p.CapturedAmount, p.Operation)
				}
				sameKey(t, rec.Calls("capture", id), 2)
				clock.Advance(3 * time.Minute)
				reconcile(t, b)
				sameKey(t, rec.Calls("capture", id), 2)
				if n := events(t, b, id, "payin.processing"); n != 1 {
					t.Fatalf("%d payin.processing events, want 1", n)
				}
			})
		}
	})
}

// TestVoidAnswerLost: a void whose answer is lost is answered with the
// payin's status unchanged (as a refund whose answer was lost is answered
// PROCESSING), and its replay says the same; settlement waits for it; no
// other void or refund starts; the reconciler sends it again under the same
// key, the payin is CANCELED and the replay says so. No refund is ever sent.
func TestVoidAnswerLost(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		b, rec, clock := operationSetup(t, engine, sandbox.New())
		id := ivrPayin(t, b, "CA-void-lost", sandbox.TimeoutFirstAmount)
		req := ivrpay.VoidOrRefund{IdempotencyKey: "void-lost", Reason: "REQUESTED_BY_CUSTOMER"}
		res, err := b.Pay.VoidOrRefund(b.AdminCtx, id, req)
		if err != nil {
			t.Fatalf("a void whose answer was lost: %v, want the request accepted", err)
		}
		if res.Type != ivrpay.VoidOrRefundTypeVoid || res.PayinStatus != ivrpay.PayinStatusProcessing {
			t.Fatalf("answer while the void's outcome is unknown: %+v", res)
		}
		settle(t, b)
		p := loadPayin(t, b, id)
		if p.Status != ivrpay.PayinStatusProcessing {
			t.Fatalf("settlement moved a payin with a void in flight to %s", p.Status)
		}
		wantOperation(t, p, ivrpay.PayinOperationVoid, ivrpay.ProcessorOutcomeUnknown)
		if again, err := b.Pay.VoidOrRefund(b.AdminCtx, id, req); err != nil || !sameJSON(t, again, res) {
			t.Fatalf("replay while unknown: %+v, %v; want %+v", again, err, res)
		}
		for _, other := range []ivrpay.VoidOrRefund{
			{IdempotencyKey: "void-other", Reason: "DUPLICATE"},
			{IdempotencyKey: "refund-other", Reason: "DUPLICATE", Type: ivrpay.VoidOrRefundTypeRefund},
		} {
			_, err := b.Pay.VoidOrRefund(b.AdminCtx, id, other)
			paymentstest.WantCode(t, err, ivrpay.ECONFLICT)
		}

		clock.Advance(3 * time.Minute)
		if n := reconcile(t, b); n != 1 {
			t.Fatalf("the reconciler resolved %d, want the void", n)
		}
		settle(t, b)
		p = loadPayin(t, b, id)
		if p.Status != ivrpay.PayinStatusCanceled || p.Operation != nil {
			t.Fatalf("payin after the void's outcome: %s, in flight %+v", p.Status, p.Operation)
		}
		if again, err := b.Pay.VoidOrRefund(b.AdminCtx, id, req); err != nil || again.PayinStatus != ivrpay.PayinStatusCanceled {
			t.Fatalf("replay after the outcome: %+v, %v; want payin_status CANCELED", again, err)
		}
		sameKey(t, rec.Calls("void", id), 2)
		if r := rec.Calls("refund", id); len(r) != 0 {
			t.Fatalf("a refund reached the processor for a voided payin: %+v", r)
		}
		if n, m := events(t, b, id, "payin.canceled"), events(t, b, id, "payin.succeeded"); n != 1 || m != 0 {
			t.Fatalf("%d payin.canceled and %d payin.succeeded events, want 1 and 0", n, m)
		}
	})
}

// scriptedVoids is the sandbox whose voids are refused (a payment that has
// already settled at the processor) when refuse is set, and whose first void
// is lost when lostFirst is set.
type scriptedVoids struct {
	*sandbox.Processor
	refuse    bool
	lostFirst atomic.Bool
}

func (p *scriptedVoids) Void(ctx context.Context, op ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error) {
	if p.lostFirst.CompareAndSwap(true, false) {
		return ivrpay.ProcessorResult{}, ivrpay.UnknownOutcome("test: no answer")
	}
	if p.refuse {
		return ivrpay.ProcessorResult{RefusalCode: ivrpay.RefusalProcessingError, RefusalDesc: "payment already settled"}, nil
	}
	return p.Processor.Void(ctx, op)
}

// TestVoidRefused: a void the processor refuses leaves the payin as it was
// and free to settle, and never becomes a refund. Refused at once, the
// request answers 409 and uses up no idempotency key; refused when the
// reconciler sends it again, the caller's first answer stands and its
// replay shows the payin as it is.
func TestVoidRefused(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		proc := &scriptedVoids{Processor: sandbox.New(), refuse: true}
		b, rec, clock := operationSetup(t, engine, proc)

		t.Run("refused at once", func(t *testing.T) {
			id := ivrPayin(t, b, "CA-void-refused", 1000)
			req := ivrpay.VoidOrRefund{IdempotencyKey: "void-refused", Reason: "REQUESTED_BY_CUSTOMER"}
			for range 2 {
				_, err := b.Pay.VoidOrRefund(b.AdminCtx, id, req)
				paymentstest.WantCode(t, err, ivrpay.ECONFLICT)
			}
			sameKey(t, rec.Calls("void", id), 2) // the key was given back: the same request is sent again
			if p := loadPayin(t, b, id); p.Status != ivrpay.PayinStatusProcessing || p.Operation != nil {
				t.Fatalf("payin after a refused void: %s, in flight %+v", p.Status, p.Operation)
			}
			settle(t, b)
			if p := loadPayin(t, b, id); p.Status != ivrpay.PayinStatusSucceeded {
				t.Fatalf("a payin whose void was refused did not settle: %s", p.Status)
			}
			if r := rec.Calls("refund", id); len(r) != 0 {
				t.Fatalf("a refused void became a refund: %+v", r)
			}
		})
		t.Run("lost, then refused to the reconciler", func(t *testing.T) {
			id := ivrPayin(t, b, "CA-void-lost-refused", 1000)
			proc.lostFirst.Store(true)
			req := ivrpay.VoidOrRefund{IdempotencyKey: "void-lost-refused", Reason: "REQUESTED_BY_CUSTOMER"}
			first, err := b.Pay.VoidOrRefund(b.AdminCtx, id, req)
			if err != nil || first.PayinStatus != ivrpay.PayinStatusProcessing {
				t.Fatalf("a void whose answer was lost: %+v, %v", first, err)
			}
			clock.Advance(3 * time.Minute)
			if n := reconcile(t, b); n != 1 {
				t.Fatalf("the reconciler resolved %d, want the void", n)
			}
			if p := loadPayin(t, b, id); p.Status != ivrpay.PayinStatusProcessing || p.Operation != nil {
				t.Fatalf("payin after a refused void: %s, in flight %+v", p.Status, p.Operation)
			}
			if again, err := b.Pay.VoidOrRefund(b.AdminCtx, id, req); err != nil || !sameJSON(t, again, first) {
				t.Fatalf("replay after the refusal: %+v, %v; want %+v", again, err, first)
			}
			sameKey(t, rec.Calls("void", id), 2)
		})
	})
}

// TestOperationOfACrashedProcess: a void recorded on its payin by a process
// that died before it asked the processor blocks settlement until the
// reconciler sends it, once the processor call's time has passed.
func TestOperationOfACrashedProcess(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		b, rec, clock := operationSetup(t, engine, sandbox.New())
		id := ivrPayin(t, b, "CA-void-crashed", 1000)
		err := b.Store.StartPayinOperation(paymentstest.BoundedContext(t), ivrpay.PayinOperationStart{PayinID: id, Status: ivrpay.PayinStatusProcessing,
			Operation: ivrpay.PayinOperation{Kind: ivrpay.PayinOperationVoid, Amount: 1000, IdempotencyKey: "vor_crashed"}, At: clock.Now()})
		if err != nil {
			t.Fatal(err)
		}
		settle(t, b)
		if p := loadPayin(t, b, id); p.Status != ivrpay.PayinStatusProcessing {
			t.Fatalf("settlement moved a payin with a void in flight to %s", p.Status)
		}
		wantOperation(t, loadPayin(t, b, id), ivrpay.PayinOperationVoid, "")
		clock.Advance(3 * time.Minute)
		if n := reconcile(t, b); n != 1 {
			t.Fatalf("the reconciler resolved %d, want the void", n)
		}
		if p := loadPayin(t, b, id); p.Status != ivrpay.PayinStatusCanceled {
			t.Fatalf("payin after the reconciler: %s", p.Status)
		}
		if v := rec.Calls("void", id); len(v) != 1 || v[0].IdempotencyKey != "vor_crashed" {
			t.Fatalf("voids sent: %+v", v)
		}
	})
}

// TestRiskVoidAnswerLost: an approval the platform's CVC policy refuses is
// voided at once; when that void's answer is lost the approval stands (money
// may have moved) with the void in flight: the payin does not settle, and
// the reconciler sends the void again under its key until it is CANCELED.
func TestRiskVoidAnswerLost(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		proc := &scriptedVoids{Processor: sandbox.New()}
		b, rec, clock := operationSetup(t, engine, proc)
		settings := ivrpay.DefaultRiskSettings
		settings.RequireCVCMatch = true
		if _, err := b.Store.SetPlatformRisk(paymentstest.BoundedContext(t), b.Platform.ID, settings); err != nil {
			t.Fatal(err)
		}
		ivrKey := paymentstest.Authenticate(t, b.Store, b.IVRKey.Secret) // with the platform's new settings
		proc.lostFirst.Store(true)
		req := paymentstest.ChargeReq(b.PayinConfig(t, 1000).ID, "CA-risk-void-lost", paymentstest.VisaOK, 1000)
		req.CVV = sandbox.ApproveMismatchCVC
		res := paymentstest.Process(t, b.Pay, ivrpay.NewContextWithPrincipal(paymentstest.BoundedContext(t), ivrKey), req)
		paymentstest.MustSucceed(t, res)
		p := loadPayin(t, b, res.ID)
		if p.Status != ivrpay.PayinStatusProcessing {
			t.Fatalf("payin whose policy void was lost: %s, want the approval (PROCESSING)", p.Status)
		}
		wantOperation(t, p, ivrpay.PayinOperationVoid, ivrpay.ProcessorOutcomeUnknown)
		settle(t, b)
		if p := loadPayin(t, b, res.ID); p.Status != ivrpay.PayinStatusProcessing {
			t.Fatalf("settlement moved a payin with a void in flight to %s", p.Status)
		}
		clock.Advance(3 * time.Minute)
		if n := reconcile(t, b); n != 1 {
			t.Fatalf("the reconciler resolved %d, want the void", n)
		}
		if p := loadPayin(t, b, res.ID); p.Status != ivrpay.PayinStatusCanceled || p.Operation != nil {
			t.Fatalf("payin after the reconciler: %s, in flight %+v", p.Status, p.Operation)
		}
		sameKey(t, rec.Calls("void", res.ID), 2)
	})
}

// TestProcessorEventsWaitForAVoid: while a void of a payin is in flight, a
// processor event confirming its capture waits (PENDING), and applies on
// the state the void's outcome leaves: dropped once the payin is CANCELED,
// applied once the processor refused the void. The processor's own word
// that the payment was canceled ends the void at once.
func TestProcessorEventsWaitForAVoid(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		proc := &scriptedVoids{Processor: sandbox.New()}
		b, rec, clock := operationSetup(t, engine, proc)
		ctx := paymentstest.BoundedContext(t)
		// voidLost voids a new payin whose void's answer is lost (refused
		// when it is sent again, with refuse).
		voidLost := func(t *testing.T, name string, refuse bool) (*ivrpay.Payin, ivrpay.VoidOrRefund) {
			t.Helper()
			proc.refuse = refuse
			id := ivrPayin(t, b, "CA-wait-"+name, 1000)
			proc.lostFirst.Store(true)
			req := ivrpay.VoidOrRefund{IdempotencyKey: "void-wait-" + name, Reason: "REQUESTED_BY_CUSTOMER"}
			if _, err := b.Pay.VoidOrRefund(b.AdminCtx, id, req); err != nil {
				t.Fatal(err)
			}
			p := loadPayin(t, b, id)
			wantOperation(t, p, ivrpay.PayinOperationVoid, ivrpay.ProcessorOutcomeUnknown)
			return p, req
		}
		receive := func(t *testing.T, e ivrpay.ProcessorEvent) {
			t.Helper()
			if err := b.Pay.ReceiveProcessorEvent(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		eventStatus := func(t *testing.T, e ivrpay.ProcessorEvent) string {
			t.Helper()
			stored, err := b.Store.FindProcessorEvent(ctx, e.Account, e.ID)
			if err != nil {
				t.Fatal(err)
			}
			return stored.Status
		}
		event := func(p *ivrpay.Payin, effect ivrpay.EventEffect) ivrpay.ProcessorEvent {
			return ivrpay.ProcessorEvent{Account: p.Processor.Account, Kind: p.Processor.Kind, ID: "evt_" + string(effect) + "_" + p.ID,
				Type: "test." + string(effect), Effect: effect, PaymentReference: string(p.Processor.Reference), Reference: p.ID,
				Amount: p.Amount, Currency: p.CurrencyCode}
		}
		// later lets the reconciler and the event's retry come due.
		later := func(t *testing.T) {
			t.Helper()
			clock.Advance(10 * time.Minute)
			reconcile(t, b)
			if _, err := b.Pay.ApplyDueProcessorEvents(ctx); err != nil {
				t.Fatal(err)
			}
		}

		for _, row := range []struct {
			name   string
			refuse bool
			// status is the payin's in the end, event the capture confirmation's.
			status, event string
		}{
			{"the void goes through: the confirmation is dropped", false, ivrpay.PayinStatusCanceled, ivrpay.ProcessorEventNoChange},
			{"the void is refused: the confirmation applies", true, ivrpay.PayinStatusSucceeded, ivrpay.ProcessorEventApplied},
		} {
			t.Run(row.name, func(t *testing.T) {
				p, _ := voidLost(t, fmt.Sprint(row.refuse), row.refuse)
				captured := event(p, ivrpay.EffectPaymentCaptured)
				receive(t, captured)
				if got := eventStatus(t, captured); got != ivrpay.ProcessorEventPending {
					t.Fatalf("a capture confirmation with a void in flight is %s, want PENDING", got)
				}
				if got := loadPayin(t, b, p.ID).Status; got != ivrpay.PayinStatusProcessing {
					t.Fatalf("payin with a void in flight moved to %s", got)
				}
				later(t)
				if got := loadPayin(t, b, p.ID); got.Status != row.status || got.Operation != nil {
					t.Fatalf("payin in the end: %s, in flight %+v; want %s", got.Status, got.Operation, row.status)
				}
				if got := eventStatus(t, captured); got != row.event {
					t.Fatalf("the capture confirmation ended %s, want %s", got, row.event)
				}
				if n := events(t, b, p.ID, "payin.succeeded") + events(t, b, p.ID, "payin.canceled"); n != 1 {
					t.Fatalf("%d payin.succeeded and payin.canceled events, want 1", n)
				}
			})
		}
		t.Run("the processor's cancellation ends the void", func(t *testing.T) {
			p, req := voidLost(t, "canceled", false)
			canceled := event(p, ivrpay.EffectPaymentCanceled)
			receive(t, canceled)
			if got := loadPayin(t, b, p.ID); got.Status != ivrpay.PayinStatusCanceled || got.Operation != nil {
				t.Fatalf("payin after the processor's cancellation: %s, in flight %+v", got.Status, got.Operation)
			}
			if again, err := b.Pay.VoidOrRefund(b.AdminCtx, p.ID, req); err != nil || again.PayinStatus != ivrpay.PayinStatusCanceled {
				t.Fatalf("the void's replay: %+v, %v; want payin_status CANCELED", again, err)
			}
			clock.Advance(10 * time.Minute)
			reconcile(t, b)
			if v := rec.Calls("void", p.ID); len(v) != 1 {
				t.Fatalf("%d voids sent; the processor's word ended the void, so the reconciler sends none", len(v))
			}
		})
	})
}
