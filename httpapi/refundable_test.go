package httpapi_test

// A payin's refundable_amount and non_refundable_reason_code over real HTTP
// on every engine: what GET, the list and the payin's webhook say, and that
// a refund gets exactly what they promise.

import (
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
)

// TestRefundableAmountAndReason: refundable_amount is what a refund may take
// now, 0 while a chargeback refuses refunds, and non_refundable_reason_code
// (null when something is refundable) says why it is 0. A refund of more
// than the amount shown is refused, of the amount shown is accepted, and of
// a payin showing 0 is refused with the reason's own message.
func TestRefundableAmountAndReason(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := lcSetup(t, engine, time.Hour) // settlement only when a row asks
		rcv := lcNewReceiver(t)
		e.createEndpoint(rcv)
		reason := "REQUESTED_BY_CUSTOMER"
		settled := func(cents int64) string {
			t.Helper()
			id := e.approvedPayin(cents, nil)
			paymentstest.Settle(t, e.store)
			e.waitPayinStatus(id, ivrpay.PayinStatusSucceeded)
			return id
		}
		// dispute moves one dispute of payin id through statuses.
		dispute := func(id string, statuses ...string) string {
			t.Helper()
			ref := "du_" + lcKey("refundable")
			for _, st := range statuses {
				if cb, changed := e.apply(disputeEvent(id, "", ref, st)); !changed || cb.Status != st {
					t.Fatalf("dispute event %s: changed %v, %+v", st, changed, cb)
				}
			}
			return id
		}
		refund := func(id string, cents int64) string {
			t.Helper()
			if r := e.voidOrRefund(id, map[string]any{"idempotency_key": lcKey("rf"), "reason": reason, "amount": cents}); r.status != 200 {
				t.Fatalf("refund of %d: HTTP %d %s", cents, r.status, r.raw)
			}
			return id
		}
		type row struct {
			name       string
			payin      func() string // makes the payin, returns its id
			refundable int64
			reason     string // "" for null
			event      string // the payin's last webhook, which must say the same; "" when its last change sent none
		}
		var rows []row
		for _, st := range ivrpay.ChargebackStatuses {
			r := row{name: "chargeback " + st, payin: func() string { return dispute(settled(2000), st) }, refundable: 2000}
			switch st {
			case ivrpay.ChargebackStatusDisputeActionRequired, ivrpay.ChargebackStatusChargebackProcessing,
				ivrpay.ChargebackStatusProvisionalWin, ivrpay.ChargebackStatusLost:
				r.refundable, r.reason = 0, ivrpay.NonRefundableHasChargebacks
			}
			rows = append(rows, r)
		}
		rows = append(rows,
			row{"inquiry escalated to a dispute", func() string {
				return dispute(settled(2000), ivrpay.ChargebackStatusInquiryActionRequired, ivrpay.ChargebackStatusDisputeActionRequired)
			}, 0, ivrpay.NonRefundableHasChargebacks, ""},
			row{"dispute WON: refundable again", func() string {
				return dispute(settled(2000), ivrpay.ChargebackStatusDisputeActionRequired, ivrpay.ChargebackStatusWon)
			}, 2000, "", ""},
			row{"partially refunded, then disputed", func() string {
				return dispute(refund(settled(2000), 500), ivrpay.ChargebackStatusDisputeActionRequired)
			}, 0, ivrpay.NonRefundableHasChargebacks, ""},
			// Both apply; the chargeback is named, as the refusal names it.
			row{"fully refunded, then LOST", func() string {
				return dispute(refund(settled(2000), 2000), ivrpay.ChargebackStatusLost)
			}, 0, ivrpay.NonRefundableHasChargebacks, ""},
			row{"settled", func() string { return settled(2000) }, 2000, "", ivrpay.EventPayinSucceeded},
			row{"partially refunded", func() string { return refund(settled(2000), 500) }, 1500, "", ""},
			row{"fully refunded", func() string { return refund(refund(settled(2000), 500), 1500) }, 0, ivrpay.NonRefundableFullyRefunded, ""},
			row{"declined", func() string {
				p := e.chargeIVR(e.payinConfig(5101, nil), 5101)
				if p["payin_status"] != ivrpay.PayinStatusFailed {
					t.Fatalf("5101 cents was not declined: %v", p)
				}
				return p["payin_id"]
			}, 0, ivrpay.NonRefundableFailed, ivrpay.EventPayinFailed},
			row{"voided", func() string {
				id := e.approvedPayin(1000, nil)
				if r := e.voidOrRefund(id, map[string]any{"idempotency_key": lcKey("v"), "reason": reason}); r.status != 200 {
					t.Fatalf("void: HTTP %d %s", r.status, r.raw)
				}
				return id
			}, 0, ivrpay.NonRefundableVoided, ivrpay.EventPayinCanceled},
			// Settled by the next row that settles, once its own checks are done.
			row{"processing", func() string { return e.approvedPayin(1000, nil) }, 0, ivrpay.NonRefundableInSettlementWindow, ivrpay.EventPayinProcessing},
			row{"authorized", func() string {
				return e.approvedPayin(1000, map[string]any{"processing_mode": "AUTHORIZE"})
			}, 0, ivrpay.NonRefundableInSettlementWindow, ivrpay.EventPayinAuthorized},
		)
		for _, tc := range rows {
			t.Run(tc.name, func(t *testing.T) {
				id := tc.payin()
				var want any // what JSON null decodes to
				if tc.reason != "" {
					want = tc.reason
				}
				check := func(where string, p lcObj) {
					t.Helper()
					if _, ok := p["non_refundable_reason_code"]; !ok || p.num("refundable_amount") != tc.refundable || p["non_refundable_reason_code"] != want {
						t.Fatalf("%s: refundable_amount %v, non_refundable_reason_code %v; want %d and %v", where,
							p["refundable_amount"], p["non_refundable_reason_code"], tc.refundable, want)
					}
				}
				p := e.payin(id)
				check("GET /v1/payins/"+id, p)
				listed := false
				for _, x := range e.ok("GET", "/v1/payins?limit=100&status="+p.str("status"), e.admin, nil)["results"].([]any) {
					if q := lcObj(x.(map[string]any)); q.str("payin_id") == id {
						check("GET /v1/payins", q)
						listed = true
					}
				}
				if !listed {
					t.Fatalf("payin %s is not in the list of %s payins", id, p.str("status"))
				}
				if tc.event != "" {
					check(tc.event+" webhook", rcv.wait(t, tc.event, "payin_id", id).Data)
				}
				if p.str("status") != ivrpay.PayinStatusSucceeded {
					return
				}
				// The field does not lie: a refund gets what it promises.
				body := func(cents int64) map[string]any {
					return map[string]any{"idempotency_key": lcKey("r"), "reason": reason, "amount": cents}
				}
				if tc.refundable == 0 {
					msg := e.refused(409, ivrpay.ECONFLICT, "POST", "/v1/payins/"+id+"/void_or_refund", e.admin, body(1))
					if wantIn := map[string]string{ivrpay.NonRefundableHasChargebacks: "chargeback", ivrpay.NonRefundableFullyRefunded: "fully refunded"}[tc.reason]; !strings.Contains(msg, wantIn) {
						t.Fatalf("refund of a payin showing %s: %q, want it to say %q", tc.reason, msg, wantIn)
					}
					return
				}
				if msg := e.refused(409, ivrpay.ECONFLICT, "POST", "/v1/payins/"+id+"/void_or_refund", e.admin, body(tc.refundable+1)); !strings.Contains(msg, "more than the refundable amount") {
					t.Fatalf("refund of more than refundable_amount: %q", msg)
				}
				if r := e.voidOrRefund(id, body(tc.refundable)); r.status != 200 || r.obj(t).num("amount") != tc.refundable {
					t.Fatalf("refund of refundable_amount %d: HTTP %d %s", tc.refundable, r.status, r.raw)
				}
				if p := e.payin(id); p.num("refundable_amount") != 0 || p.str("non_refundable_reason_code") != ivrpay.NonRefundableFullyRefunded {
					t.Fatalf("after refunding all that was refundable: %v (%v)", p["refundable_amount"], p["non_refundable_reason_code"])
				}
			})
		}
	})
}
