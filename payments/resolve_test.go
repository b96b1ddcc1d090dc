package payments_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/sandbox"
)

// TestIVRResolveOnceBeforePending: when the first processor call of a
// connector charge times out with time left before the provider must have
// its answer, the processor is asked once (Resolve) in the same exchange.
// The sandbox's 51.20 (the first call times out, the charge went through) is
// then approved in the first exchange; 51.21 (Resolve lost too) and a
// request with no time left still answer PAYMENT_PENDING; a 503 (51.22) is
// no timeout and is not asked about.
func TestIVRResolveOnceBeforePending(t *testing.T) {
	paymentstest.ForEngine(t, func(t *testing.T, engine string) {
		b, rec, _ := operationSetup(t, engine, sandbox.New())
		for i, row := range []struct {
			name     string
			amount   int64
			provider ivrpay.IVRProvider
			// receivedAgo is how long before ProcessIVR the provider's request arrived.
			receivedAgo time.Duration
			resolves    int
			status      string // the payin's after the first exchange
		}{
			{"51.20 from Twilio, time left: approved in the first exchange", sandbox.TimeoutFirstAmount, ivrpay.ProviderTwilio, 0, 1, ivrpay.PayinStatusProcessing},
			{"51.20 from Telnyx (5 s), time left: approved in the first exchange", sandbox.TimeoutFirstAmount, ivrpay.ProviderTelnyx, 0, 1, ivrpay.PayinStatusProcessing},
			{"51.21: Resolve lost too, PAYMENT_PENDING", sandbox.LostAnswersAmount, ivrpay.ProviderTwilio, 0, 1, ivrpay.PayinStatusCreated},
			{"51.20 with no time left: PAYMENT_PENDING without a Resolve", sandbox.TimeoutFirstAmount, ivrpay.ProviderTwilio, 9 * time.Second, 0, ivrpay.PayinStatusCreated},
			{"51.22, a 503 and no timeout: PAYMENT_PENDING without a Resolve", sandbox.UnavailableAmount, ivrpay.ProviderTwilio, 0, 0, ivrpay.PayinStatusCreated},
		} {
			t.Run(row.name, func(t *testing.T) {
				req := paymentstest.FromProvider(row.provider, paymentstest.ChargeReq(b.PayinConfig(t, row.amount).ID, fmt.Sprint("CA-resolve-once-", i),
					paymentstest.VisaOK, row.amount))
				req.ReceivedAt = time.Now().Add(-row.receivedAgo)
				res := paymentstest.Process(t, b.Pay, b.IVRCtx, req)
				id := res.Parameters["payin_id"]
				if id == "" {
					t.Fatalf("answer names no payin: %+v", res)
				}
				if got := len(rec.Calls("resolve", id)); got != row.resolves {
					t.Fatalf("%d Resolve calls in the exchange, want %d", got, row.resolves)
				}
				if row.resolves == 1 && !rec.Calls("resolve", id)[0].DuringCall {
					t.Fatal("the Resolve asked in the exchange is not marked DuringCall")
				}
				p := loadPayin(t, b, id)
				if p.Status != row.status {
					t.Fatalf("payin after the first exchange: %s, want %s", p.Status, row.status)
				}
				if row.status == ivrpay.PayinStatusCreated {
					if res.ErrorCode != ivrpay.ConnPaymentPending || p.Processor.Outcome != ivrpay.ProcessorOutcomeUnknown {
						t.Fatalf("answer %+v, processor outcome %s: want PAYMENT_PENDING and UNKNOWN", res, p.Processor.Outcome)
					}
					return
				}
				if res.ErrorCode != "" || res.ID != id || p.Processor.Outcome != ivrpay.ProcessorOutcomeApproved {
					t.Fatalf("answer %+v, processor outcome %s: want the approved payin", res, p.Processor.Outcome)
				}
				if a := rec.Calls("authorize", id); len(a) != 1 {
					t.Fatalf("%d authorizations, want 1 (the charge is found, not made again)", len(a))
				}
			})
		}
	})
}
