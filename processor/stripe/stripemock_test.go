package stripe

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/processor/processortest"
	"github.com/ivrpay/ivrpay/processor/stripe/stripetest"
)

// TestStripeMock runs every call of the adapter against stripe-mock, which
// checks each request against Stripe's OpenAPI description (400 on an invalid
// one), and checks the wire format through a recording proxy. stripe-mock
// answers canned objects (a PaymentIntent always reads
// requires_payment_method), so results are not checked here; the replaying
// fake covers them.
func TestStripeMock(t *testing.T) {
	base := stripetest.StartMock(t)
	rec := stripetest.NewRecorder(t, base, nil)
	proxyURL := rec.URL
	p, err := New(Config{SecretKey: testKey, APIBase: proxyURL, HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	type check func(t *testing.T, reqs []stripetest.Request)
	// want checks that one request to path (a prefix for paths with ids) was
	// made with these form values and headers.
	want := func(method, path, key, account string, form map[string]string) check {
		return func(t *testing.T, reqs []stripetest.Request) {
			t.Helper()
			for _, r := range reqs {
				if r.Method != method || !strings.HasPrefix(r.Path, path) {
					continue
				}
				if r.Key != key {
					t.Errorf("%s %s: Idempotency-Key %q, want %q", method, r.Path, r.Key, key)
				}
				if r.Account != account {
					t.Errorf("%s %s: Stripe-Account %q, want %q", method, r.Path, r.Account, account)
				}
				for k, v := range form {
					if got := r.Form.Get(k); got != v {
						t.Errorf("%s %s: %s = %q, want %q", method, r.Path, k, got, v)
					}
				}
				return
			}
			t.Errorf("no %s %s request", method, path)
		}
	}
	cit := processortest.Payment("pyi_mock_capture", 1000, true)
	held := processortest.Payment("pyi_mock_auth", 1500, false)
	held.AccountRef = "acct_1MockConnected"
	mit := processortest.Payment("pyi_mock_mit", 2500, true)
	mit.Card.CVV = ""
	mit.Stored = &ivrpay.StoredCredential{NetworkTransactionID: "104557651805572"}
	verify := processortest.Payment("mtd_mock_verify", 0, false)
	op := ivrpay.PaymentOperation{Reference: "pi_1MockIntent", PayinID: "pyi_mock_auth", Amount: 700, Currency: "USD"}
	withKey := func(key string) ivrpay.PaymentOperation { o := op; o.IdempotencyKey = key; return o }
	resolve := cit
	resolve.Card.CVV = ""
	connected := op
	connected.AccountRef = "acct_1MockConnected"

	for _, tc := range []struct {
		name   string
		call   func() (ivrpay.ProcessorResult, error)
		checks []check
	}{
		{"authorize, capture now", func() (ivrpay.ProcessorResult, error) { return p.Authorize(ctx, cit) }, []check{
			want("POST", "/v1/payment_methods", "pyi_mock_capture-pm", "", map[string]string{"type": "card",
				"card[number]": "4111111111111111", "card[cvc]": "123", "billing_details[address][postal_code]": "94111"}),
			want("POST", "/v1/payment_intents", "pyi_mock_capture", "", map[string]string{"confirm": "true",
				"capture_method": "automatic", "payment_method_options[card][moto]": "true", "amount": "1000",
				"currency": "usd", "metadata[ivrpay_reference]": "pyi_mock_capture"}),
		}},
		{"authorize only, connected account", func() (ivrpay.ProcessorResult, error) { return p.Authorize(ctx, held) }, []check{
			want("POST", "/v1/payment_methods", "pyi_mock_auth-pm", "acct_1MockConnected", nil),
			want("POST", "/v1/payment_intents", "pyi_mock_auth", "acct_1MockConnected", map[string]string{
				"capture_method": "manual", "payment_method_options[card][moto]": "true"}),
		}},
		{"stored card (MIT)", func() (ivrpay.ProcessorResult, error) { return p.Authorize(ctx, mit) }, []check{
			want("POST", "/v1/payment_methods", "pyi_mock_mit-pm", "", map[string]string{"card[cvc]": ""}),
			want("POST", "/v1/payment_intents", "pyi_mock_mit", "", map[string]string{"off_session": "true",
				"payment_method_options[card][mit_exemption][network_transaction_id]": "104557651805572",
				"payment_method_options[card][moto]":                                  ""}),
		}},
		{"verify", func() (ivrpay.ProcessorResult, error) { return p.Verify(ctx, verify) }, []check{
			want("POST", "/v1/payment_methods", "mtd_mock_verify-pm", "", nil),
			want("POST", "/v1/setup_intents", "mtd_mock_verify", "", map[string]string{"confirm": "true",
				"usage": "off_session", "payment_method_options[card][moto]": "true"}),
		}},
		{"capture", func() (ivrpay.ProcessorResult, error) { return p.Capture(ctx, withKey("cap_mock")) }, []check{
			want("POST", "/v1/payment_intents/pi_1MockIntent/capture", "cap_mock", "", map[string]string{"amount_to_capture": "700"}),
		}},
		{"void", func() (ivrpay.ProcessorResult, error) { return p.Void(ctx, withKey("void_mock")) }, []check{
			want("POST", "/v1/payment_intents/pi_1MockIntent/cancel", "void_mock", "", nil),
		}},
		{"refund", func() (ivrpay.ProcessorResult, error) { return p.Refund(ctx, withKey("rfd_mock")) }, []check{
			want("POST", "/v1/refunds", "rfd_mock", "", map[string]string{"payment_intent": "pi_1MockIntent", "amount": "700"}),
		}},
		{"resolve", func() (ivrpay.ProcessorResult, error) { return p.Resolve(ctx, resolve) }, []check{
			want("GET", "/v1/payment_intents/search", "", "", map[string]string{"query": "metadata['ivrpay_reference']:'pyi_mock_capture'"}),
		}},
		// The look-ups' answers are read by the fake's tests; here, only that
		// stripe-mock accepts the requests.
		{"look up a payment, connected account", func() (ivrpay.ProcessorResult, error) {
			_, err := p.LookupPayment(ctx, connected)
			return ivrpay.ProcessorResult{}, err
		}, []check{want("GET", "/v1/payment_intents/pi_1MockIntent", "", "acct_1MockConnected", map[string]string{"expand[0]": "latest_charge"})}},
		{"look up a refund", func() (ivrpay.ProcessorResult, error) {
			_, err := p.LookupRefund(ctx, op, "re_1MockRefund")
			return ivrpay.ProcessorResult{}, err
		}, []check{want("GET", "/v1/refunds/re_1MockRefund", "", "", nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.call()
			reqs := rec.Take()
			if err != nil {
				t.Errorf("error %v (stripe-mock answers every valid request)", err)
			}
			if strings.Contains(r.RefusalDesc, "invalid_request_error") || strings.Contains(r.RefusalDesc, "HTTP 4") {
				t.Errorf("stripe-mock refused the request: %s", r.RefusalDesc)
			}
			if len(reqs) == 0 {
				t.Fatal("no request reached stripe-mock")
			}
			for _, q := range reqs {
				if q.Status != http.StatusOK {
					t.Errorf("%s %s: stripe-mock answered %d: %s", q.Method, q.Path, q.Status, q.Body)
				}
			}
			for _, c := range tc.checks {
				c(t, reqs)
			}
		})
	}
}
