package httpapi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/sandbox"
)

// faultTimeout is the processor call deadline of these tests: the sandbox's
// lost answers time out after it instead of after 6 s.
const faultTimeout = 300 * time.Millisecond

// faultSetup is a bundle whose processor calls get faultTimeout and whose
// reconciler may ask at once (after one processor call's time).
func faultSetup(t *testing.T, engine string) *bundle {
	return setup(t, engine, func(c *paymentstest.Config) {
		c.ProcessorTimeout, c.ReconcileAfter = faultTimeout, time.Millisecond
	})
}

// reconcile runs the reconciler once its wait (two processor calls' time and
// a second) has passed, and returns how many payins it resolved.
func (b *bundle) reconcile() int {
	b.t.Helper()
	time.Sleep(2*faultTimeout + 1100*time.Millisecond)
	n, err := b.pay.ReconcileDue(context.Background())
	if err != nil {
		b.t.Fatalf("reconcile: %v", err)
	}
	return n
}

// payin reads a payin with the admin key.
func (b *bundle) payin(id string) map[string]any {
	b.t.Helper()
	r := b.api("GET", "/v1/payins/"+id, b.admin, nil)
	wantStatus(b.t, r, 200)
	return r.data(b.t)
}

func processorOutcome(p map[string]any) any { return p["processor"].(map[string]any)["outcome"] }

// wantPending checks the connector's answer while the processor's outcome is
// unknown: PAYMENT_PENDING (never a refusal code) with the payin, which is
// CREATED with outcome UNKNOWN; it returns the payin id.
func (b *bundle) wantPending(r connResp) string {
	b.t.Helper()
	r.wantErr(b.t, "charge", ivrpay.ConnPaymentPending, 200)
	id := r.Params["payin_id"]
	if id == "" || r.Params["payin_status"] != ivrpay.PayinStatusCreated {
		b.t.Fatalf("PAYMENT_PENDING without the CREATED payin: %v", r.Params)
	}
	if p := b.payin(id); p["status"] != ivrpay.PayinStatusCreated || processorOutcome(p) != ivrpay.ProcessorOutcomeUnknown {
		b.t.Fatalf("payin while its outcome is unknown: status %v, outcome %v", p["status"], processorOutcome(p))
	}
	return id
}

// checkCardAnswer checks that a payin of chargeBody's card (CVV 123,
// postal code 94111) resolved after a lost answer shows what the sandbox
// answers that card synchronously: an auth code, AVS Y, CVC M and a
// network transaction id.
func checkCardAnswer(t *testing.T, p map[string]any) {
	t.Helper()
	proc, _ := p["processor"].(map[string]any)
	if code, _ := p["auth_code"].(string); len(code) != 6 || p["avs_result_code"] != sandbox.AVSMatch || p["cvc_result_code"] != sandbox.CVCMatch ||
		proc["network_transaction_id"] == nil || proc["network_transaction_id"] == "" {
		t.Fatalf("resolved payin shows auth_code %v, avs_result_code %v, cvc_result_code %v, network_transaction_id %v; want an auth code, Y, M and an id",
			p["auth_code"], p["avs_result_code"], p["cvc_result_code"], proc["network_transaction_id"])
	}
}

// checkNoLostMoney is what must hold after any fault: no payin of a trigger
// that charged (5120, 5121) is FAILED, and no config has two live payins.
func (b *bundle) checkNoLostMoney() {
	b.t.Helper()
	var n int
	if err := b.store.DB().QueryRow(`SELECT COUNT(*) FROM payins WHERE status = 'FAILED' AND amount IN ($1, $2)`,
		sandbox.TimeoutFirstAmount, sandbox.LostAnswersAmount).Scan(&n); err != nil || n != 0 {
		b.t.Fatalf("%d payins that the processor charged are FAILED (%v)", n, err)
	}
	if err := b.store.DB().QueryRow(`SELECT COUNT(*) FROM (SELECT payin_config_id FROM payins
		WHERE status IN ('CREATED', 'PROCESSING', 'AUTHORIZED', 'SUCCEEDED') GROUP BY payin_config_id HAVING COUNT(*) > 1) twice`).Scan(&n); err != nil || n != 0 {
		b.t.Fatalf("%d configs have two live payins (%v)", n, err)
	}
}

// TestFaultTriggersConnector: the sandbox's fault triggers through the
// connector. A first call that times out is followed, in the call, by one
// question to the processor; an answer still lost is PAYMENT_PENDING, never
// a decline; the config stays reserved; the retry of the same
// transaction_id or the reconciler finds the charge, or fails the payin when
// nothing was charged.
func TestFaultTriggersConnector(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := faultSetup(t, engine)
		key := b.ivrKey("payin:create")
		charge := func(amount int64) (cfg string, body map[string]any) {
			cfg = b.payinConfig(b.admin, b.merchantID, amount, nil)
			return cfg, with(chargeBody(cfg), "amount", ivrpay.FormatDollars(amount))
		}

		t.Run("5120: the first call times out, the processor asked once more during the call finds the charge", func(t *testing.T) {
			cfg, body := charge(sandbox.TimeoutFirstAmount)
			first := b.ivr(key, body)
			id := first.wantOK(t, "charge")
			p := b.payin(id)
			if p["status"] != ivrpay.PayinStatusProcessing || processorOutcome(p) != ivrpay.ProcessorOutcomeApproved {
				t.Fatalf("payin after the first exchange: %v / %v", p["status"], processorOutcome(p))
			}
			checkCardAnswer(t, p)
			// The config is used: another transaction cannot charge it.
			b.ivr(key, with(chargeBody(cfg), "amount", "51.20")).wantErr(t, "charge", ivrpay.ConnConfigAlreadyUsed, 200)
			if again := b.ivr(key, body); string(again.Raw) != string(first.Raw) {
				t.Fatalf("Twilio's retry answered %s, want %s", again.Raw, first.Raw)
			}
		})
		t.Run("5121: every answer lost, the reconciler finds the charge", func(t *testing.T) {
			_, body := charge(sandbox.LostAnswersAmount)
			id := b.wantPending(b.ivr(key, body))
			if again := b.wantPending(b.ivr(key, body)); again != id {
				t.Fatalf("the retry made payin %s, want %s", again, id)
			}
			if n := b.reconcile(); n < 1 {
				t.Fatalf("the reconciler resolved %d payins", n)
			}
			p := b.payin(id)
			if p["status"] != ivrpay.PayinStatusProcessing || processorOutcome(p) != ivrpay.ProcessorOutcomeApproved || p["payment_method_id"] == nil {
				t.Fatalf("payin after reconciliation: %v / %v / card %v", p["status"], processorOutcome(p), p["payment_method_id"])
			}
			// The card network's answer is the one the lost call had:
			// the CVC result too, though the CVV was never kept.
			checkCardAnswer(t, p)
			// A late retry of the transaction gets the resolved answer.
			if got := b.ivr(key, body).wantOK(t, "charge"); got != id {
				t.Fatalf("late retry answered payin %s, want %s", got, id)
			}
		})
		t.Run("5122: 503 without a charge, the reconciler fails the payin and frees the config", func(t *testing.T) {
			cfg, body := charge(sandbox.UnavailableAmount)
			id := b.wantPending(b.ivr(key, body))
			if n := b.reconcile(); n < 1 {
				t.Fatalf("the reconciler resolved %d payins", n)
			}
			p := b.payin(id)
			if p["status"] != ivrpay.PayinStatusFailed || p["refusal_code"] != ivrpay.RefusalProcessingError {
				t.Fatalf("payin after reconciliation: %v %v", p["status"], p["refusal_code"])
			}
			if c := b.api("GET", "/v1/payin_configs/"+cfg, b.admin, nil).data(t); c["payin"] != nil {
				t.Fatalf("the config still holds a payin: %v", c["payin"])
			}
			b.ivr(key, body).wantErr(t, "charge", ivrpay.RefusalProcessingError, 200)
		})
		b.checkNoLostMoney()
	})
}

// TestFaultTriggersStoredCard: the same triggers through the REST charge of a
// stored card: the payin answers CREATED with outcome UNKNOWN, the same
// request sent again re-sends under the same idempotency key, and the
// reconciler resolves what is left.
func TestFaultTriggersStoredCard(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := faultSetup(t, engine)
		pmc := b.paymentMethodConfig(b.admin, b.platformID, b.merchantID, nil)
		pmID := b.ivr(b.ivrKey("payment_method:create"), tokenizeBody(pmc)).wantOK(t, "tokenize")
		chargeStored := func(cfg string) map[string]any {
			t.Helper()
			r := b.api("POST", "/v1/payment_methods/"+pmID+"/payin", b.admin, map[string]any{"payin_config_id": cfg})
			wantStatus(t, r, 200)
			return r.data(t)
		}
		for _, tc := range []struct {
			amount      int64
			retryStatus string // after the same request is sent again
			finalStatus string // after the reconciler
		}{
			{sandbox.TimeoutFirstAmount, ivrpay.PayinStatusProcessing, ivrpay.PayinStatusProcessing},
			{sandbox.LostAnswersAmount, ivrpay.PayinStatusCreated, ivrpay.PayinStatusProcessing},
			{sandbox.UnavailableAmount, ivrpay.PayinStatusCreated, ivrpay.PayinStatusFailed},
		} {
			t.Run(fmt.Sprint(tc.amount), func(t *testing.T) {
				cfg := b.payinConfig(b.admin, b.merchantID, tc.amount, nil)
				first := chargeStored(cfg)
				if first["status"] != ivrpay.PayinStatusCreated || processorOutcome(first) != ivrpay.ProcessorOutcomeUnknown {
					t.Fatalf("first answer: %v / %v", first["status"], processorOutcome(first))
				}
				retry := chargeStored(cfg)
				if retry["payin_id"] != first["payin_id"] || retry["status"] != tc.retryStatus {
					t.Fatalf("retry answered payin %v %v, want %v %s", retry["payin_id"], retry["status"], first["payin_id"], tc.retryStatus)
				}
				if tc.retryStatus == ivrpay.PayinStatusCreated {
					if n := b.reconcile(); n < 1 {
						t.Fatalf("the reconciler resolved %d payins", n)
					}
				}
				if p := b.payin(first["payin_id"].(string)); p["status"] != tc.finalStatus {
					t.Fatalf("final status %v, want %s", p["status"], tc.finalStatus)
				}
			})
		}
		b.checkNoLostMoney()
	})
}

// TestRefundAnswerLost: a refund whose processor answer is lost (the
// sandbox's 51.20 times out on its first call) stays PROCESSING with its
// amount reserved and is not settled; the reconciler asks again under the
// same idempotency key, and then settlement completes it.
func TestRefundAnswerLost(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := faultSetup(t, engine)
		id := b.ivr(b.ivrKey("payin:create"), with(chargeBody(b.payinConfig(b.admin, b.merchantID, 10000, nil)), "amount", "100.00")).wantOK(t, "charge")
		paymentstest.Settle(t, b.store)
		r := b.api("POST", "/v1/payins/"+id+"/void_or_refund", b.admin, map[string]any{"idempotency_key": "lost-refund",
			"reason": "REQUESTED_BY_CUSTOMER", "amount": sandbox.TimeoutFirstAmount})
		wantStatus(t, r, 200)
		refundID := r.data(t)["refund_id"].(string)
		refund := func() map[string]any { return b.api("GET", "/v1/refunds/"+refundID, b.admin, nil).data(t) }
		paymentstest.Settle(t, b.store)
		if got := refund()["status"]; got != ivrpay.RefundStatusProcessing {
			t.Fatalf("a refund whose answer was lost is %v before the reconciler asked, want PROCESSING", got)
		}
		if p := b.payin(id); p["refundable_amount"] != float64(10000-sandbox.TimeoutFirstAmount) {
			t.Fatalf("refundable amount %v: the lost refund's amount is not reserved", p["refundable_amount"])
		}
		if n := b.reconcile(); n < 1 {
			t.Fatalf("the reconciler asked about %d refunds", n)
		}
		paymentstest.Settle(t, b.store)
		if got := refund()["status"]; got != ivrpay.RefundStatusSucceeded {
			t.Fatalf("refund after the reconciler and settlement: %v", got)
		}
	})
}
