package httpapi_test

// An Adyen dispute end to end (SPEC §4.2, §4.3): a payin charged over IVR
// through the Adyen fake and settled by its CAPTURE notification, then the
// dispute's signed notifications posted to POST /vendor/adyen/notifications/{NAME},
// and the chargeback read back through the REST API and the webhooks a
// platform receives.

import (
	"bytes"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/adyen"
	"github.com/ivrpay/ivrpay/processor/adyen/adyentest"
)

// adyenDisputeStep is one dispute notification and the chargeback status
// it leads to.
type adyenDisputeStep struct {
	code, disputeStatus string
	want                string
}

// TestAdyenDisputeOverHTTP: every step of a dispute is a signed
// notification that answers [accepted] and moves the payin's chargeback
// (GET /v1/chargebacks/{id} and the payin's chargebacks show it, with
// Adyen's amount, reason code, defence deadline and dispute pspReference),
// announced by one signed chargeback.<status> delivery. The payin stays
// SUCCEEDED, unrefundable (refundable_amount 0, HAS_CHARGEBACKS, a refund
// refused 409 naming the chargeback) until the dispute is WON. Before each
// step the same notification signed with another key, or altered after
// signing, is refused 400 and applies nothing; after it, Adyen's retry of
// it (the same pspReference:eventCode:success) is accepted and changes
// nothing.
func TestAdyenDisputeOverHTTP(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		d := adyenDouble(t)
		var opts *paymentstest.Config
		b := setup(t, engine, func(c *paymentstest.Config) { c.Router, opts = d.router, c })
		notifications := b.serveEvents(t, opts, d.router.ref, adyentest.HMACKey) + "/vendor/adyen/notifications/" + d.router.ref.Name
		hooks := b.subscribe(t, ivrpay.ChargebackEventTypes()...)
		ivrKey := b.ivrKey("payin:create")
		const captured = 1000
		for _, tc := range []struct {
			name   string
			amount int64 // what Adyen disputes
			// echoes: the notifications carry the payment's merchantReference
			// (the payin id), as Adyen's do; without it the dispute is
			// matched by originalReference alone.
			echoes bool
			steps  []adyenDisputeStep
		}{{
			name: "defended and won", amount: captured, echoes: true, steps: []adyenDisputeStep{
				{"NOTIFICATION_OF_CHARGEBACK", "Undefended", ivrpay.ChargebackStatusDisputeActionRequired},
				{"CHARGEBACK", "Pending", ivrpay.ChargebackStatusChargebackProcessing},
				{"CHARGEBACK_REVERSED", "Pending", ivrpay.ChargebackStatusProvisionalWin},
				{"ISSUER_RESPONSE_TIMEFRAME_EXPIRED", "Won", ivrpay.ChargebackStatusWon},
			},
		}, {
			name: "partial, undefended and lost", amount: 600, steps: []adyenDisputeStep{
				{"NOTIFICATION_OF_CHARGEBACK", "Undefended", ivrpay.ChargebackStatusDisputeActionRequired},
				{"DISPUTE_DEFENSE_PERIOD_ENDED", "Expired", ivrpay.ChargebackStatusLost},
			},
		}} {
			t.Run(tc.name, func(t *testing.T) {
				b := b.on(t)
				payinID, psp := b.settledAdyenPayin(d, notifications, ivrKey, captured)
				settled := b.payin(payinID)
				disputePSP := "DP" + psp[2:] // every event of one dispute shares it
				merchantRef := ""
				if tc.echoes {
					merchantRef = payinID
				}
				respondBy := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second)
				item := func(s adyenDisputeStep) adyentest.Item {
					return adyentest.Item{EventCode: s.code, Success: true, PSPReference: disputePSP, OriginalReference: psp,
						MerchantReference: merchantRef, Value: tc.amount, Currency: "USD", Reason: "Other Fraud-Card Absent Environment",
						AdditionalData: map[string]string{"chargebackReasonCode": "10.4", "chargebackSchemeCode": "visa", "disputeStatus": s.disputeStatus,
							"defensePeriodEndsAt": respondBy.In(time.FixedZone("CET", 3600)).Format(time.RFC3339)}}
				}

				var cbID string
				summary := []map[string]any{}               // the payin's chargebacks, as they should read
				delivered := b.deliveries(hooks.endpointID) // the endpoint's deliveries so far (the rows before this one made some)
				unchanged := func(b *bundle, what string) {
					t := b.t
					t.Helper()
					if p := b.payin(payinID); !reflect.DeepEqual(chargebacksOf(p), summary) {
						t.Fatalf("%s: the payin's chargebacks are %v, want %v", what, p["chargebacks"], summary)
					}
					if n := b.deliveries(hooks.endpointID); n != delivered {
						t.Fatalf("%s: %d chargeback deliveries, want %d", what, n, delivered)
					}
				}
				for i, step := range tc.steps {
					signed := adyentest.Notification(adyentest.HMACKey, item(step))
					for _, bad := range []struct {
						name string
						body []byte
					}{
						{"signed with another key", adyentest.Notification(strings.Repeat("AB", 32), item(step))},
						{"amount altered after signing", bytes.Replace(signed, []byte(`"value":`+strconv.FormatInt(tc.amount, 10)), []byte(`"value":1`), 1)},
					} {
						if !t.Run(step.code+" "+bad.name, func(t *testing.T) {
							if bytes.Equal(bad.body, signed) {
								t.Fatal("the body was not altered")
							}
							if status, body := postEvent(t, notifications, bad.body, nil); status != http.StatusBadRequest || body == adyen.Accepted {
								t.Fatalf("HTTP %d %q, want 400", status, body)
							}
							unchanged(b.on(t), "refused")
						}) {
							t.FailNow()
						}
					}

					if status, body := postEvent(t, notifications, signed, nil); status != http.StatusOK || body != adyen.Accepted {
						t.Fatalf("%s: HTTP %d %q, want 200 %s", step.code, status, body, adyen.Accepted)
					}
					p := b.payin(payinID)
					cbs := chargebacksOf(p)
					if len(cbs) != 1 {
						t.Fatalf("after %s the payin's chargebacks are %v, want one", step.code, p["chargebacks"])
					}
					if i == 0 {
						cbID, _ = cbs[0]["chargeback_id"].(string)
						wantID(t, cbID, "chb_")
					}
					summary = []map[string]any{{"chargeback_id": cbID, "status": step.want, "amount": float64(tc.amount)}}
					if !reflect.DeepEqual(cbs, summary) {
						t.Fatalf("after %s the payin's chargebacks are %v, want %v", step.code, cbs, summary)
					}

					got := b.api("GET", "/v1/chargebacks/"+cbID, b.admin, nil)
					wantStatus(t, got, 200)
					cb := got.data(t)
					want := map[string]any{"chargeback_id": cbID, "payin_id": payinID, "merchant_id": b.merchantID, "platform_id": b.platformID,
						"amount": float64(tc.amount), "currency_code": "USD", "status": step.want, "reason_code": "10.4",
						"reason_desc": "Other Fraud-Card Absent Environment", "method_type": "CARD",
						"card": map[string]any{"brand": "VISA", "last_4": "1111"}, "metadata": settled["metadata"],
						"processor":  map[string]any{"account": d.router.ref.Name, "kind": "adyen", "reference": disputePSP, "dashboard_url": nil},
						"respond_by": respondBy.UTC().Format(time.RFC3339), "created_at": cb["created_at"], "updated_at": cb["updated_at"]}
					if !reflect.DeepEqual(cb, want) {
						t.Fatalf("after %s GET chargeback =\n%v\nwant\n%v", step.code, cb, want)
					}

					// One signed delivery for the change, carrying the chargeback as GET shows it.
					delivered++
					ev := hooks.wait(t, ivrpay.ChargebackEventType(step.want), "chargeback_id", cbID)
					if !reflect.DeepEqual(ev.Data, cb) {
						t.Fatalf("%s webhook data =\n%v\nGET =\n%v", ev.Type, ev.Data, cb)
					}
					unchanged(b, step.code)

					// Adyen's retry of the same notification changes nothing.
					if status, body := postEvent(t, notifications, signed, nil); status != http.StatusOK || body != adyen.Accepted {
						t.Fatalf("%s again: HTTP %d %q, want 200 %s", step.code, status, body, adyen.Accepted)
					}
					unchanged(b, step.code+" again")
					if again := b.api("GET", "/v1/chargebacks/"+cbID, b.admin, nil).data(t); !reflect.DeepEqual(again, cb) {
						t.Fatalf("%s again changed the chargeback:\n%v\nwas\n%v", step.code, again, cb)
					}

					// The payin stays SUCCEEDED, untouched; its refund waits for WON.
					p = b.payin(payinID)
					if p["status"] != ivrpay.PayinStatusSucceeded || p["updated_at"] != settled["updated_at"] {
						t.Fatalf("after %s the payin is %v updated at %v, want SUCCEEDED untouched since %v", step.code, p["status"], p["updated_at"], settled["updated_at"])
					}
					if step.want == ivrpay.ChargebackStatusWon {
						if p["refundable_amount"] != float64(captured) || p["non_refundable_reason_code"] != nil {
							t.Fatalf("after WON refundable_amount %v, non_refundable_reason_code %v; want %d and null", p["refundable_amount"], p["non_refundable_reason_code"], captured)
						}
						r := b.api("POST", "/v1/payins/"+payinID+"/void_or_refund", b.admin, map[string]any{"idempotency_key": newIdempotencyKey(), "reason": "REQUESTED_BY_CUSTOMER"})
						wantStatus(t, r, 200)
						if got := r.data(t); got["type"] != "REFUND" || got["refund_status"] != ivrpay.RefundStatusProcessing || got["amount"] != float64(captured) {
							t.Fatalf("refund after WON: %s", r.Raw)
						}
						if n := len(d.adyen.Received("/payments/" + psp + "/refunds")); n != 1 {
							t.Fatalf("the refund after WON reached Adyen %d times, want once", n)
						}
						continue
					}
					if p["refundable_amount"] != float64(0) || p["non_refundable_reason_code"] != ivrpay.NonRefundableHasChargebacks {
						t.Fatalf("after %s refundable_amount %v, non_refundable_reason_code %v; want 0 and %s", step.code, p["refundable_amount"], p["non_refundable_reason_code"], ivrpay.NonRefundableHasChargebacks)
					}
					r := b.api("POST", "/v1/payins/"+payinID+"/void_or_refund", b.admin, map[string]any{"idempotency_key": newIdempotencyKey(), "reason": "REQUESTED_BY_CUSTOMER"})
					wantStatus(t, r, 409)
					if msg := r.err().Message; !strings.Contains(msg, cbID) || !strings.Contains(msg, step.want) {
						t.Fatalf("refund during %s: %q does not name chargeback %s and its status", step.want, msg, cbID)
					}
					if n := len(d.adyen.Received("/payments/" + psp + "/refunds")); n != 0 {
						t.Fatalf("a refused refund reached Adyen %d times", n)
					}
				}

				// One delivery per change, in order, all about this chargeback.
				var types []string
				for _, ev := range hooks.events(t) {
					if ev.Data["chargeback_id"] == cbID {
						types = append(types, ev.Type)
					}
				}
				var want []string
				for _, s := range tc.steps {
					want = append(want, ivrpay.ChargebackEventType(s.want))
				}
				if !reflect.DeepEqual(types, want) {
					t.Fatalf("chargeback deliveries %v, want %v", types, want)
				}
			})
		}
	})
}

// settledAdyenPayin charges cents over IVR through the Adyen fake and posts
// the payment's signed CAPTURE notification, which settles it; it returns
// the payin id and the payment's pspReference.
func (b *bundle) settledAdyenPayin(d double, notifications, ivrKey string, cents int64) (payinID, psp string) {
	t := b.t
	t.Helper()
	cfg := b.payinConfig(b.admin, b.merchantID, cents, nil)
	payinID = b.ivr(ivrKey, with(chargeBody(cfg), "amount", ivrpay.FormatDollars(cents))).wantOK(t, "charge")
	psp, _ = d.payment(payinID)
	if p := b.payin(payinID); p["status"] != ivrpay.PayinStatusProcessing || psp == "" {
		t.Fatalf("the Adyen charge is %v at the fake's payment %q, want PROCESSING", p["status"], psp)
	}
	capture := adyentest.Notification(adyentest.HMACKey, adyentest.Item{EventCode: "CAPTURE", Success: true, PSPReference: "CP" + psp[2:],
		OriginalReference: psp, MerchantReference: payinID, Value: cents, Currency: "USD"})
	if status, body := postEvent(t, notifications, capture, nil); status != http.StatusOK || body != adyen.Accepted {
		t.Fatalf("CAPTURE: HTTP %d %q", status, body)
	}
	if p := b.payin(payinID); p["status"] != ivrpay.PayinStatusSucceeded || p["refundable_amount"] != float64(cents) || chargebacksOf(p) == nil {
		t.Fatalf("after CAPTURE the payin is %v, refundable %v, chargebacks %v; want SUCCEEDED, %d, []", p["status"], p["refundable_amount"], p["chargebacks"], cents)
	}
	return payinID, psp
}

// deliveries counts an endpoint's deliveries, which are written with the
// change that emits them.
func (b *bundle) deliveries(endpointID string) int {
	b.t.Helper()
	r := b.api("GET", "/v1/webhook_endpoints/"+endpointID+"/deliveries?limit=100", b.admin, nil)
	wantStatus(b.t, r, 200)
	total, _ := r.list(b.t)
	return total
}
