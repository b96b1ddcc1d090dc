package httpapi_test

import (
	"testing"

	"github.com/ivrpay/ivrpay/payments/paymentstest"
)

// TestRefundOfZeroRefused: amount 0 on void_or_refund is a 400 naming
// amount, for a refund and for a void; it never means the whole payin
// (SPEC §9). An omitted amount still does.
func TestRefundOfZeroRefused(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		b := setup(t, engine)
		key := b.ivrKey("payin:create")
		succeeded := b.ivr(key, chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil))).wantOK(t, "charge")
		paymentstest.Settle(t, b.store)
		processing := b.ivr(key, chargeBody(b.payinConfig(b.admin, b.merchantID, 1000, nil))).wantOK(t, "charge")
		for _, c := range []struct{ name, payin, kind string }{
			{"refund", succeeded, "REFUND"}, {"void", processing, "VOID"}, {"either", succeeded, ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				b := b.on(t)
				before := b.count("refunds")
				body := map[string]any{"idempotency_key": "zero-" + c.name, "reason": "REQUESTED_BY_CUSTOMER", "amount": 0}
				if c.kind != "" {
					body["type"] = c.kind
				}
				want400(t, b.api("POST", "/v1/payins/"+c.payin+"/void_or_refund", b.admin, body), "amount")
				if n := b.count("refunds"); n != before {
					t.Fatalf("a refused refund of 0 made %d refunds", n-before)
				}
				if p := b.payin(c.payin); p["status"] == "CANCELED" || p["refundable_amount"] != float64(1000) && c.payin == succeeded {
					t.Fatalf("payin after a refused refund of 0: %v %v", p["status"], p["refundable_amount"])
				}
			})
		}
		r := b.api("POST", "/v1/payins/"+succeeded+"/void_or_refund", b.admin, map[string]any{"idempotency_key": "all", "reason": "DUPLICATE"})
		wantStatus(t, r, 200)
		if d := r.data(t); d["amount"] != float64(1000) || d["type"] != "REFUND" {
			t.Fatalf("refund without amount: %v", d)
		}
	})
}
