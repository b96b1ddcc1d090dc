package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/httpapi"
	"github.com/ivrpay/ivrpay/payments"
	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/processor/adyen/adyentest"
	"github.com/ivrpay/ivrpay/processor/processortest"
	"github.com/ivrpay/ivrpay/processor/stripe/stripetest"
)

// eventDetailsCase is one processor whose signed event resolves a payin's
// unknown outcome with the card network's answer.
type eventDetailsCase struct {
	name  string
	open  func(t *testing.T) double
	whsec string // the events secret the account holds
	// event is the signed delivery (path under /vendor/, body, headers)
	// that approves the payment made under payinID at the fake.
	event func(t *testing.T, d double, payinID string) (path string, body []byte, headers map[string]string)
	// citedNTI is the network transaction id the fake received with the
	// latest merchant-initiated charge.
	citedNTI func(t *testing.T, d double) string
	// status is the payin's after the event: Stripe's succeeded also
	// confirms the capture.
	status string
	// lookedUp: the event names its charge by id only (Stripe's current API
	// versions), so the payin shows no card answer until the card-answer
	// pass has looked the payment up; authCode is the one it then shows.
	lookedUp bool
	authCode string
}

// The card network's answer the events below carry, and what the payin
// then shows.
const (
	eventAuthCode = "831000"
	eventNTI      = "104557651805572"
)

// stripeSucceeded is a signed payment_intent.succeeded of API version
// for the payment the Stripe fake made under payinID, carrying extra
// (the charge, in a version's shape).
func stripeSucceeded(d double, version, eventID, payinID string, extra map[string]any) (string, []byte, map[string]string) {
	pi, _ := d.payment(payinID)
	intent := map[string]any{"id": pi, "object": "payment_intent", "amount": processortest.AmountLostAnswers,
		"amount_received": processortest.AmountLostAnswers, "amount_capturable": 0, "currency": "usd", "status": "succeeded",
		"metadata": map[string]any{"ivrpay_reference": payinID}}
	for k, v := range extra {
		intent[k] = v
	}
	body := stripetest.EventOfVersion(version, eventID, "payment_intent.succeeded", intent)
	return "/vendor/stripe/events/stripe-test", body, map[string]string{"Stripe-Signature": stripetest.Sign(body, time.Now(), eventsWhsec)}
}

// stripeCitedNTI is the network transaction id the Stripe fake received
// with the latest merchant-initiated charge.
func stripeCitedNTI(t *testing.T, d double) string {
	got := d.stripe.Recorded("POST", "/v1/payment_intents")
	return got[len(got)-1].Form.Get("payment_method_options[card][mit_exemption][network_transaction_id]")
}

// TestUnknownOutcomeResolvedByEventShowsCardAnswer: a charge whose
// processor answer was lost (the fakes' 5121: charged, then a 500) is
// PAYMENT_PENDING; a signed event approving it, posted to the processor
// events endpoint over HTTP, resolves it, and GET /v1/payins/{id} then
// shows the auth code, AVS and CVC result codes and the network transaction
// id the event carried, as the synchronous answer would have. The card
// stored with the payin keeps the network transaction id: its later
// merchant-initiated charge cites it at the processor (Adyen's fake refuses
// a ContAuth charge without one). A Stripe event of a current API version
// names its charge by id only: the payin is approved with no card answer,
// and one card-answer pass (FillCardAnswersDue, which serve runs) looks
// the PaymentIntent up with its charge expanded and fills it, and the
// stored card's NTI with it. The pass finds nothing to do for the others.
func TestUnknownOutcomeResolvedByEventShowsCardAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []eventDetailsCase{{
		name: "adyen AUTHORISATION", open: adyenDouble, whsec: adyentest.HMACKey, status: ivrpay.PayinStatusProcessing, authCode: eventAuthCode,
		event: func(t *testing.T, d double, payinID string) (string, []byte, map[string]string) {
			psp, _ := d.payment(payinID)
			body := adyentest.Notification(adyentest.HMACKey, adyentest.Item{EventCode: "AUTHORISATION", Success: true, PSPReference: psp,
				MerchantReference: payinID, Value: processortest.AmountLostAnswers, Currency: "USD",
				AdditionalData: map[string]string{"authCode": eventAuthCode, "avsResult": "7 Both postal code and address match", "avsResultRaw": "Y",
					"cvcResult": "1 Matches", "cvcResultRaw": "M", "networkTxReference": eventNTI, "cardSummary": "1111", "expiryDate": "8/2030"}})
			return "/vendor/adyen/notifications/adyen-test", body, nil
		},
		citedNTI: func(t *testing.T, d double) string {
			got := d.adyen.Received("/payments")
			return adyentest.Str(got[len(got)-1].Body, "additionalData", "networkTxReference")
		},
	}, {
		name: "stripe payment_intent.succeeded of API version 2020-08-27", open: stripeDouble, whsec: eventsWhsec, status: ivrpay.PayinStatusSucceeded,
		authCode: eventAuthCode,
		event: func(t *testing.T, d double, payinID string) (string, []byte, map[string]string) {
			pi, _ := d.payment(payinID)
			charge := map[string]any{"id": "ch_" + pi[3:], "object": "charge", "amount": processortest.AmountLostAnswers, "captured": true,
				"currency": "usd", "paid": true, "payment_intent": pi, "status": "succeeded",
				"payment_method_details": map[string]any{"type": "card", "card": map[string]any{"brand": "visa", "last4": "1111", "exp_month": 8,
					"exp_year": 2030, "network": "visa", "authorization_code": eventAuthCode, "network_transaction_id": eventNTI,
					"checks": map[string]any{"address_line1_check": nil, "address_postal_code_check": "pass", "cvc_check": "pass"}}}}
			return stripeSucceeded(d, "2020-08-27", "evt_1LostAnswerResolved", payinID, map[string]any{
				"charges": map[string]any{"object": "list", "data": []any{charge}, "has_more": false, "total_count": 1}})
		},
		citedNTI: stripeCitedNTI,
	}, {
		name: "stripe payment_intent.succeeded of API version 2024-06-20, then the card-answer pass", open: stripeDouble, whsec: eventsWhsec,
		status: ivrpay.PayinStatusSucceeded, lookedUp: true, authCode: stripetest.FakeAuthCode,
		event: func(t *testing.T, d double, payinID string) (string, []byte, map[string]string) {
			pi, _ := d.payment(payinID)
			return stripeSucceeded(d, "2024-06-20", "evt_1LostAnswerCurrent", payinID, map[string]any{"latest_charge": "ch_" + pi[3:]})
		},
		citedNTI: stripeCitedNTI,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachEngine(t, func(t *testing.T, engine string) {
				d := tc.open(t)
				var opts *paymentstest.Config
				b := setup(t, engine, func(c *paymentstest.Config) { c.Router, opts = d.router, c })
				events := b.serveEvents(t, opts, d.router.ref, tc.whsec)

				cfg := b.payinConfig(b.admin, b.merchantID, processortest.AmountLostAnswers, nil)
				id := b.wantPending(b.ivr(b.ivrKey("payin:create"), with(chargeBody(cfg), "amount", ivrpay.FormatDollars(processortest.AmountLostAnswers))))
				path, body, headers := tc.event(t, d, id)
				if status, _ := postEvent(t, events+path, body, headers); status != http.StatusOK {
					t.Fatalf("the event answered HTTP %d", status)
				}
				p := b.payin(id)
				if p["status"] != tc.status || processorOutcome(p) != ivrpay.ProcessorOutcomeApproved {
					t.Fatalf("payin after the event: %v / %v", p["status"], processorOutcome(p))
				}
				if tc.lookedUp {
					// Approved by the event, which carried no card answer.
					proc, _ := p["processor"].(map[string]any)
					if p["auth_code"] != nil || p["avs_result_code"] != nil || p["cvc_result_code"] != nil || proc["network_transaction_id"] != nil {
						t.Fatalf("before the look-up the payin shows auth_code %v, avs_result_code %v, cvc_result_code %v, network_transaction_id %v; want none",
							p["auth_code"], p["avs_result_code"], p["cvc_result_code"], proc["network_transaction_id"])
					}
				} else {
					wantCardAnswer(t, "resolved by the event", p, tc.authCode)
				}

				// The card-answer pass looks up only the payin whose event lacked the answer.
				want := 0
				if tc.lookedUp {
					want = 1
				}
				if n, err := b.pay.FillCardAnswersDue(context.Background()); err != nil || n != want {
					t.Fatalf("card-answer pass filled %d payins (%v), want %d", n, err, want)
				}
				if n, err := b.pay.FillCardAnswersDue(context.Background()); err != nil || n != 0 {
					t.Fatalf("a second card-answer pass filled %d payins (%v), want none", n, err)
				}
				wantCardAnswer(t, "after the card-answer pass", b.payin(id), tc.authCode)
				if tc.lookedUp {
					pi, _ := d.payment(id)
					got := d.stripe.Recorded("GET", "/v1/payment_intents/"+pi)
					if len(got) != 1 || got[0].Form.Get("expand[0]") != "latest_charge" || got[0].Key != "" {
						t.Fatalf("the look-up's requests: %+v; want one GET expanding latest_charge, without an idempotency key", got)
					}
				}

				// The stored card's later merchant-initiated charge cites the NTI.
				pm, _ := p["payment_method_id"].(string)
				next := b.payinConfig(b.admin, b.merchantID, 1200, map[string]any{"idempotency_key": "after-the-event"})
				r := b.api("POST", "/v1/payment_methods/"+pm+"/payin", b.admin, map[string]any{"payin_config_id": next})
				wantStatus(t, r, 200)
				if got := r.data(t); got["status"] != ivrpay.PayinStatusProcessing {
					t.Fatalf("the stored card's charge is %v (%v)", got["status"], got["refusal_code"])
				}
				if got := tc.citedNTI(t, d); got != eventNTI {
					t.Fatalf("the stored card's charge cited network transaction id %q, want %q", got, eventNTI)
				}
			})
		})
	}
}

// wantCardAnswer checks the card network's answer payin p shows: authCode,
// AVS Y, CVC M and the network transaction id eventNTI (the Stripe fake's
// charges carry the same one).
func wantCardAnswer(t *testing.T, when string, p map[string]any, authCode string) {
	t.Helper()
	proc, _ := p["processor"].(map[string]any)
	if p["auth_code"] != authCode || p["avs_result_code"] != "Y" || p["cvc_result_code"] != "M" || proc["network_transaction_id"] != eventNTI {
		t.Fatalf("payin %s shows auth_code %v, avs_result_code %v, cvc_result_code %v, network_transaction_id %v; want %s, Y, M, %s",
			when, p["auth_code"], p["avs_result_code"], p["cvc_result_code"], proc["network_transaction_id"], authCode, eventNTI)
	}
}

// serveEvents serves the processor events endpoints on the bundle's store
// and service, as cmd/ivrpay wires them, for an account named as ref whose
// events secret is whsec; it returns the server's URL.
func (b *bundle) serveEvents(t *testing.T, opts *paymentstest.Config, ref ivrpay.ProcessorAccountRef, whsec string) string {
	t.Helper()
	encrypt := func(s string) string {
		ct, err := opts.Vault.Encrypt(s)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	a := ivrpay.ProcessorAccount{Name: ref.Name, Kind: ref.Kind, SecretCiphertext: encrypt("the API secret"), EventsSecretCiphertext: encrypt(whsec)}
	if ref.Kind == ivrpay.ProcessorKindAdyen {
		a.MerchantAccount = adyentest.MerchantAccount
	}
	if err := b.store.CreateProcessorAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	services := httpapi.NewServices(b.store, b.pay)
	services.EventSecrets, services.ProcessorEvents = &payments.AccountRouter{Store: b.store, Vault: opts.Vault}, b.pay
	srv := httptest.NewServer((&httpapi.Server{Services: services, Logger: b.logger}).Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// postEvent delivers a processor's event and returns the HTTP status and
// the answer's body.
func postEvent(t *testing.T, url string, body []byte, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(raw)
}
