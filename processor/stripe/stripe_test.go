package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/processor/processortest"
	"github.com/ivrpay/ivrpay/processor/stripe/stripetest"
)

const testKey = "sk_test_4eC39HqLyjWDarjtT1zdp7dcFAKE"

func setup(t *testing.T) (*Processor, *stripetest.Fake) {
	t.Helper()
	f := stripetest.NewFake(t)
	p, err := New(Config{SecretKey: testKey, APIBase: f.URL, HTTPClient: &http.Client{Timeout: 3 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return p, f
}

func TestContract(t *testing.T) {
	t.Parallel()
	processortest.Run(t, func(t *testing.T) ivrpay.Processor {
		p, _ := setup(t)
		return p
	})
}

func TestNewAndKind(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}); err == nil {
		t.Error("New without a secret key succeeded")
	}
	p, err := New(Config{SecretKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind() != "stripe" {
		t.Errorf("Kind = %q", p.Kind())
	}
}

func TestCheckKeyMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key        string
		production bool
		ok         bool
	}{
		{"sk_live_abc", true, true},
		{"rk_live_abc", true, true},
		{"sk_test_abc", true, false},
		{"rk_test_abc", true, false},
		{"sk_test_abc", false, true},
		{"rk_test_abc", false, true},
		{"sk_live_abc", false, false},
		{"rk_live_abc", false, false},
		{"pk_test_abc", false, false},
		{"", true, false},
	} {
		t.Run(tc.key+map[bool]string{true: " production", false: " sandbox"}[tc.production], func(t *testing.T) {
			err := CheckKeyMode(tc.key, tc.production)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckKeyMode = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && tc.key != "" && strings.Contains(err.Error(), tc.key) {
				t.Errorf("the error repeats the key: %v", err)
			}
		})
	}
}

// TestAuthorizeWire checks what the adapter sends: the MOTO flag, capture
// method, idempotency keys, connected account, reference, and the MIT fields
// of a stored card.
func TestAuthorizeWire(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		capture bool
		account string
		stored  bool
	}{
		{"capture now", true, "", false},
		{"authorize only", false, "", false},
		{"connected account", true, "acct_1Fake", false},
		{"stored card", true, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, f := setup(t)
			pay := processortest.Payment("pyi_wire", 1999, tc.capture)
			pay.AccountRef = tc.account
			pay.Description = "Order 42"
			if tc.stored {
				pay.Card.CVV = ""
				pay.Stored = &ivrpay.StoredCredential{NetworkTransactionID: "104557651805572"}
			}
			r, err := p.Authorize(context.Background(), pay)
			if err != nil || !r.Approved {
				t.Fatalf("authorize = %+v, %v", r, err)
			}
			pms := f.Recorded("POST", "/v1/payment_methods")
			pis := f.Recorded("POST", "/v1/payment_intents")
			if len(pms) != 1 || len(pis) != 1 {
				t.Fatalf("%d payment methods and %d intents created, want 1 and 1", len(pms), len(pis))
			}
			pm, pi := pms[0], pis[0]
			if pm.Key != "pyi_wire-pm" || pi.Key != "pyi_wire" {
				t.Errorf("idempotency keys %q and %q, want pyi_wire-pm and pyi_wire", pm.Key, pi.Key)
			}
			if pm.Account != tc.account || pi.Account != tc.account {
				t.Errorf("Stripe-Account %q and %q, want %q", pm.Account, pi.Account, tc.account)
			}
			wantPM := map[string]string{"type": "card", "card[number]": "4111111111111111", "card[exp_month]": "12",
				"card[exp_year]": "2030", "billing_details[address][postal_code]": "94111", "card[cvc]": "123"}
			if tc.stored {
				wantPM["card[cvc]"] = ""
			}
			for k, v := range wantPM {
				if got := pm.Form.Get(k); got != v {
					t.Errorf("payment method %s = %q, want %q", k, got, v)
				}
			}
			want := map[string]string{"amount": "1999", "currency": "usd", "confirm": "true",
				"capture_method":             map[bool]string{true: "automatic", false: "manual"}[tc.capture],
				"payment_method_types[0]":    "card",
				"metadata[ivrpay_reference]": "pyi_wire", "description": "Order 42", "expand[0]": "latest_charge",
				"payment_method_options[card][moto]": "true", "off_session": "",
				"payment_method_options[card][mit_exemption][network_transaction_id]": ""}
			if tc.stored {
				want["payment_method_options[card][moto]"] = ""
				want["off_session"] = "true"
				want["payment_method_options[card][mit_exemption][network_transaction_id]"] = "104557651805572"
			}
			for k, v := range want {
				if got := pi.Form.Get(k); got != v {
					t.Errorf("payment intent %s = %q, want %q", k, got, v)
				}
			}
			if !strings.HasPrefix(pi.Form.Get("payment_method"), "pm_") {
				t.Errorf("payment intent payment_method = %q", pi.Form.Get("payment_method"))
			}
		})
	}
}

func TestAuthorizeApprovedResult(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		capture  bool
		cvv      string
		wantCVC  string
		wantAmt  int64
		wantStat string
	}{
		{"captured", true, "123", "M", 2500, "succeeded"},
		{"held", false, "123", "M", 2500, "requires_capture"},
		{"no cvc sent", true, "", "P", 2500, "succeeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, f := setup(t)
			pay := processortest.Payment("pyi_result", 2500, tc.capture)
			pay.Card.CVV = tc.cvv
			r, err := p.Authorize(context.Background(), pay)
			if err != nil {
				t.Fatal(err)
			}
			want := ivrpay.ProcessorResult{Approved: true, Reference: f.IntentID(0), NetworkTransactionID: "104557651805572",
				AuthorizedAmount: tc.wantAmt, AuthCode: "A1B2C3", AVSResultCode: "Y", CVCResultCode: tc.wantCVC}
			if r != want {
				t.Errorf("result = %+v\nwant     %+v", r, want)
			}
			if f.IntentStatus(0) != tc.wantStat {
				t.Errorf("intent status %s, want %s", f.IntentStatus(0), tc.wantStat)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		amount   int64
		code     string
		desc     string
		avs, cvc string
	}{
		{"generic decline", 5101, ivrpay.RefusalDeclined, "stripe card_declined/generic_decline: Your card was declined.", "", ""},
		{"insufficient funds", 5102, ivrpay.RefusalInsufficientFunds, "stripe card_declined/insufficient_funds: Your card has insufficient funds.", "", ""},
		{"do not honor", 5103, ivrpay.RefusalDoNotHonor, "stripe card_declined/do_not_honor: Your card was declined.", "", ""},
		{"incorrect cvc", stripetest.AmountIncorrectCVC, ivrpay.RefusalInvalidCardSecurityCode, "stripe incorrect_cvc: Your card's security code is incorrect.", "", "N"},
		{"expired card", stripetest.AmountExpiredCard, ivrpay.RefusalExpiredCard, "stripe expired_card: Your card has expired.", "", ""},
		{"processing error", stripetest.AmountProcessingError, ivrpay.RefusalProcessingError, "stripe processing_error: An error occurred while processing your card. Try again in a little bit.", "", ""},
		{"fraudulent", stripetest.AmountFraudulent, ivrpay.RefusalRiskDecline, "stripe card_declined/fraudulent: Your card was declined.", "", ""},
		{"lost card", stripetest.AmountLostCard, ivrpay.RefusalRiskDecline, "stripe card_declined/lost_card: Your card was declined.", "", ""},
		{"incorrect zip", stripetest.AmountIncorrectZip, ivrpay.RefusalIncorrectPaymentInformation, "stripe incorrect_zip: Your card's zip code failed validation.", "N", ""},
		{"other decline code", stripetest.AmountOtherDecline, ivrpay.RefusalDeclined, "stripe card_declined/transaction_not_allowed: Your card does not support this type of purchase.", "", ""},
		{"invalid request", stripetest.AmountInvalidRequest, ivrpay.RefusalProcessingError, "stripe amount_too_small (HTTP 400): Amount must be at least $0.50 usd", "", ""},
		{"bad api key", stripetest.AmountBadKey, ivrpay.RefusalProcessingError, "stripe invalid_request_error (HTTP 401): Invalid API Key provided: [redacted]", "", ""},
		{"requires action", stripetest.AmountRequiresAction, ivrpay.RefusalProcessingError, "stripe: payment intent pi_3Fake00000002xYz is requires_action", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, f := setup(t)
			r, err := p.Authorize(context.Background(), processortest.Payment("pyi_refused", tc.amount, true))
			if err != nil {
				t.Fatalf("a definite refusal came back as an error: %v", err)
			}
			if r.Approved || r.RefusalCode != tc.code || r.RefusalDesc != tc.desc {
				t.Errorf("got approved=%v %s %q\nwant %s %q", r.Approved, r.RefusalCode, r.RefusalDesc, tc.code, tc.desc)
			}
			if r.AVSResultCode != tc.avs || r.CVCResultCode != tc.cvc {
				t.Errorf("avs/cvc = %q/%q, want %q/%q", r.AVSResultCode, r.CVCResultCode, tc.avs, tc.cvc)
			}
			if tc.amount < 5112 && !strings.HasPrefix(r.Reference, "pi_") {
				t.Errorf("a card decline has no payment intent reference: %q", r.Reference)
			}
			if tc.amount == stripetest.AmountRequiresAction && !f.Cancelled(r.Reference) {
				t.Errorf("the intent left in requires_action was not cancelled")
			}
		})
	}
}

func TestUnknownOutcomes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		amount int64
	}{
		{"500 after charging", processortest.AmountLostAnswers},
		{"503", processortest.AmountUnavailable},
		{"429 rate limited", stripetest.AmountRateLimited},
		{"timeout", stripetest.AmountHang},
		{"idempotency_error", stripetest.AmountIdempotencyErr},
		{"502 html", stripetest.AmountBadGateway},
		{"409 key in use", stripetest.AmountConflict},
		{"still processing", stripetest.AmountProcessing},
		{"requires_action behind a 500", stripetest.AmountLostPending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, _ := setup(t)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			r, err := p.Authorize(ctx, processortest.Payment("pyi_unknown", tc.amount, true))
			if !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
				t.Fatalf("Authorize = %+v, %v; want an error wrapping ErrOutcomeUnknown", r, err)
			}
			if r.Approved || r.RefusalCode != "" {
				t.Errorf("an unknown outcome also answered a result: %+v", r)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		f := stripetest.NewFake(t)
		base := f.URL
		f.Close()
		p, err := New(Config{SecretKey: testKey, APIBase: base})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Authorize(context.Background(), processortest.Payment("pyi_down", 1000, true)); !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
			t.Fatalf("error = %v, want ErrOutcomeUnknown", err)
		}
	})
}

// TestNoCardDataInErrors drives every failure through an upstream that
// echoes the card and the key back, and checks none reaches an error or a
// refusal description.
func TestNoCardDataInErrors(t *testing.T) {
	t.Parallel()
	amounts := []int64{stripetest.AmountEchoCard, stripetest.AmountEchoCardHTML, stripetest.AmountBadKey, stripetest.AmountIdempotencyErr, stripetest.AmountInvalidRequest,
		5101, 5102, 5103, stripetest.AmountIncorrectCVC, stripetest.AmountHang, processortest.AmountUnavailable}
	for _, amount := range amounts {
		t.Run(strconv.FormatInt(amount, 10), func(t *testing.T) {
			t.Parallel()
			p, f := setup(t)
			pay := processortest.Payment("pyi_secret", amount, true)
			pay.Card.CVV = "987"
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			r, err := p.Authorize(ctx, pay)
			text := r.RefusalDesc
			if err != nil {
				text += " " + err.Error()
			}
			if text == "" {
				t.Fatal("neither an error nor a refusal description")
			}
			for _, secret := range []string{pay.Card.PAN, "987", testKey} {
				if strings.Contains(text, secret) {
					t.Errorf("%q leaks %q", text, secret)
				}
			}
			if len(f.Recorded("POST", "/v1/payment_methods")) != 1 {
				t.Error("the card never reached the fake, so nothing was checked")
			}
		})
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	t.Run("approved", func(t *testing.T) {
		t.Parallel()
		p, f := setup(t)
		pay := processortest.Payment("mtd_verify", 0, false)
		pay.AccountRef = "acct_1Fake"
		r, err := p.Verify(context.Background(), pay)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Approved || !strings.HasPrefix(r.Reference, "seti_") || r.NetworkTransactionID != "586214590330745" ||
			r.AVSResultCode != "Y" || r.CVCResultCode != "M" {
			t.Errorf("verify = %+v", r)
		}
		sis := f.Recorded("POST", "/v1/setup_intents")
		if len(sis) != 1 {
			t.Fatalf("%d setup intents", len(sis))
		}
		si := sis[0]
		for k, v := range map[string]string{"confirm": "true", "usage": "off_session", "payment_method_options[card][moto]": "true",
			"payment_method_types[0]": "card", "metadata[ivrpay_reference]": "mtd_verify", "expand[0]": "latest_attempt"} {
			if got := si.Form.Get(k); got != v {
				t.Errorf("setup intent %s = %q, want %q", k, got, v)
			}
		}
		if si.Key != "mtd_verify" || si.Account != "acct_1Fake" {
			t.Errorf("setup intent key %q account %q", si.Key, si.Account)
		}
		if pm := f.Recorded("POST", "/v1/payment_methods"); len(pm) != 1 || pm[0].Key != "mtd_verify-pm" {
			t.Errorf("payment method requests %+v", pm)
		}
	})
	t.Run("declined", func(t *testing.T) {
		t.Parallel()
		p, _ := setup(t)
		pay := processortest.Payment("mtd_declined", 0, false)
		pay.Card.PAN = "4000000000000002"
		r, err := p.Verify(context.Background(), pay)
		if err != nil {
			t.Fatal(err)
		}
		if r.Approved || r.RefusalCode != ivrpay.RefusalDeclined || !strings.HasPrefix(r.Reference, "seti_") {
			t.Errorf("verify = %+v", r)
		}
	})
	t.Run("network transaction id from the raw answer", func(t *testing.T) {
		t.Parallel()
		for body, want := range map[string]string{
			`{"latest_attempt":{"payment_method_details":{"card":{"network_transaction_id":"42"}}}}`: "42",
			`{"latest_attempt":"setatt_123"}`: "",
			`{"latest_attempt":null}`:         "",
			`not json`:                        "",
		} {
			if got := setupNetworkTransactionID([]byte(body)); got != want {
				t.Errorf("%s: got %q, want %q", body, got, want)
			}
		}
	})
}

func TestCaptureVoidRefund(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	op := func(key, ref string, amount int64) ivrpay.PaymentOperation {
		return ivrpay.PaymentOperation{IdempotencyKey: key, Reference: ref, PayinID: "pyi_ops", Amount: amount, Currency: "USD"}
	}
	t.Run("partial capture", func(t *testing.T) {
		t.Parallel()
		p, f := setup(t)
		a, _ := p.Authorize(ctx, processortest.Payment("pyi_ops", 1500, false))
		r, err := p.Capture(ctx, op("cap_1", a.Reference, 1000))
		if err != nil || !r.Approved || r.Reference != a.Reference || r.AuthorizedAmount != 1000 {
			t.Fatalf("capture = %+v, %v", r, err)
		}
		c := f.Recorded("POST", "/v1/payment_intents/"+a.Reference+"/capture")
		if len(c) != 1 || c[0].Form.Get("amount_to_capture") != "1000" || c[0].Key != "cap_1" {
			t.Errorf("capture requests %+v", c)
		}
		// A second capture is a definite refusal, not an unknown outcome.
		r, err = p.Capture(ctx, op("cap_2", a.Reference, 500))
		if err != nil || r.Approved || r.RefusalCode != ivrpay.RefusalProcessingError ||
			!strings.Contains(r.RefusalDesc, "could not be captured") {
			t.Errorf("second capture = %+v, %v", r, err)
		}
	})
	t.Run("void", func(t *testing.T) {
		t.Parallel()
		p, f := setup(t)
		a, _ := p.Authorize(ctx, processortest.Payment("pyi_ops", 1500, false))
		r, err := p.Void(ctx, op("void_1", a.Reference, 1500))
		if err != nil || !r.Approved || r.Reference != a.Reference || !f.Cancelled(a.Reference) {
			t.Fatalf("void = %+v, %v", r, err)
		}
		if c := f.Recorded("POST", "/v1/payment_intents/"+a.Reference+"/cancel"); len(c) != 1 || c[0].Key != "void_1" {
			t.Errorf("cancel requests %+v", c)
		}
	})
	t.Run("void of a missing payment", func(t *testing.T) {
		t.Parallel()
		p, _ := setup(t)
		r, err := p.Void(ctx, op("void_2", "pi_missing", 1500))
		if err != nil || r.Approved || r.RefusalCode != ivrpay.RefusalProcessingError || !strings.Contains(r.RefusalDesc, "resource_missing") {
			t.Errorf("void = %+v, %v", r, err)
		}
	})
	t.Run("partial and repeated refunds", func(t *testing.T) {
		t.Parallel()
		p, f := setup(t)
		a, _ := p.Authorize(ctx, processortest.Payment("pyi_ops", 1000, true))
		r1, err1 := p.Refund(ctx, op("rfd_1", a.Reference, 300))
		r2, err2 := p.Refund(ctx, op("rfd_2", a.Reference, 400))
		again, err3 := p.Refund(ctx, op("rfd_1", a.Reference, 300))
		if err1 != nil || err2 != nil || err3 != nil || !r1.Approved || !r2.Approved {
			t.Fatalf("refunds = %+v %v, %+v %v, %v", r1, err1, r2, err2, err3)
		}
		if r1.Reference == r2.Reference || again.Reference != r1.Reference || f.RefundCount() != 2 {
			t.Errorf("refund references %s %s %s; %d refunds made, want 2", r1.Reference, r2.Reference, again.Reference, f.RefundCount())
		}
		reqs := f.Recorded("POST", "/v1/refunds")
		if reqs[0].Form.Get("payment_intent") != a.Reference || reqs[0].Form.Get("amount") != "300" || reqs[0].Key != "rfd_1" {
			t.Errorf("refund request %+v", reqs[0])
		}
	})
	t.Run("5xx is unknown", func(t *testing.T) {
		t.Parallel()
		p, f := setup(t)
		f.FailPath("/v1/refunds", 500)
		f.FailPath("/v1/payment_intents/pi_x/capture", 503)
		f.FailPath("/v1/payment_intents/pi_x/cancel", 502)
		if _, err := p.Refund(ctx, op("rfd_x", "pi_x", 100)); !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
			t.Errorf("refund error = %v", err)
		}
		if _, err := p.Capture(ctx, op("cap_x", "pi_x", 100)); !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
			t.Errorf("capture error = %v", err)
		}
		if _, err := p.Void(ctx, op("void_x", "pi_x", 100)); !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
			t.Errorf("void error = %v", err)
		}
	})
}

func TestResolve(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lost := func(key string, amount int64) ivrpay.CardPayment {
		pay := processortest.Payment(key, amount, true)
		pay.Card.CVV = ""
		return pay
	}
	t.Run("found by search", func(t *testing.T) {
		t.Parallel()
		p, f := setup(t)
		_, err := p.Authorize(ctx, processortest.Payment("pyi_lost", processortest.AmountLostAnswers, true))
		if !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
			t.Fatal(err)
		}
		r, err := p.Resolve(ctx, lost("pyi_lost", processortest.AmountLostAnswers))
		if err != nil || !r.Approved || r.Reference != f.IntentID(0) || r.NetworkTransactionID == "" {
			t.Fatalf("resolve = %+v, %v", r, err)
		}
		s := f.Recorded("GET", "/v1/payment_intents/search")
		if len(s) != 1 || s[0].Form.Get("query") != "metadata['ivrpay_reference']:'pyi_lost'" {
			t.Errorf("search requests %+v", s)
		}
		if len(f.Recorded("GET", "/v1/payment_intents")) != 0 {
			t.Error("listed although search found the intent")
		}
	})
	t.Run("search lags, list finds it", func(t *testing.T) {
		t.Parallel()
		p, f := setup(t)
		f.SetSearchLag(true)
		pay := processortest.Payment("pyi_lag", processortest.AmountLostAnswers, true)
		pay.AccountRef = "acct_1Fake"
		_, _ = p.Authorize(ctx, pay)
		// Another intent of the same account must not be taken for it.
		_, _ = p.Authorize(ctx, func() ivrpay.CardPayment {
			o := processortest.Payment("pyi_other", 1000, true)
			o.AccountRef = "acct_1Fake"
			return o
		}())
		pay.Card.CVV = ""
		r, err := p.Resolve(ctx, pay)
		if err != nil || !r.Approved || r.Reference != f.IntentID(0) {
			t.Fatalf("resolve = %+v, %v", r, err)
		}
		if l := f.Recorded("GET", "/v1/payment_intents"); len(l) != 1 || l[0].Account != "acct_1Fake" {
			t.Errorf("list requests %+v", l)
		}
	})
	t.Run("left requires_action: cancelled and refused", func(t *testing.T) {
		t.Parallel()
		p, f := setup(t)
		_, _ = p.Authorize(ctx, processortest.Payment("pyi_pending", stripetest.AmountLostPending, true))
		r, err := p.Resolve(ctx, lost("pyi_pending", stripetest.AmountLostPending))
		if err != nil || r.Approved || r.RefusalCode != ivrpay.RefusalProcessingError {
			t.Fatalf("resolve = %+v, %v", r, err)
		}
		if !f.Cancelled(f.IntentID(0)) {
			t.Error("the pending intent was not cancelled")
		}
	})
	t.Run("nothing charged", func(t *testing.T) {
		t.Parallel()
		p, _ := setup(t)
		r, err := p.Resolve(ctx, lost("pyi_none", processortest.AmountUnavailable))
		if err != nil || r.Approved || r.RefusalCode != ivrpay.RefusalProcessingError {
			t.Fatalf("resolve = %+v, %v", r, err)
		}
	})
	t.Run("search unavailable is unknown", func(t *testing.T) {
		t.Parallel()
		p, f := setup(t)
		f.FailPath("/v1/payment_intents/search", 500)
		if _, err := p.Resolve(ctx, lost("pyi_x", 1000)); !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("quotes in the reference are escaped", func(t *testing.T) {
		t.Parallel()
		p, f := setup(t)
		_, _ = p.Resolve(ctx, lost(`pyi_'x\`, 1000))
		s := f.Recorded("GET", "/v1/payment_intents/search")
		if len(s) != 1 || s[0].Form.Get("query") != `metadata['ivrpay_reference']:'pyi_\'x\\'` {
			t.Errorf("search requests %+v", s)
		}
	})
}

func TestCodeMaps(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ check, avs, cvc string }{
		{"pass", "Y", "M"}, {"fail", "N", "N"}, {"unavailable", "U", "U"}, {"unchecked", "U", "P"}, {"", "U", "P"},
	} {
		t.Run("check "+tc.check, func(t *testing.T) {
			if avsCode(tc.check) != tc.avs || cvcCode(tc.check) != tc.cvc {
				t.Errorf("avs %q cvc %q, want %q %q", avsCode(tc.check), cvcCode(tc.check), tc.avs, tc.cvc)
			}
		})
	}
	for _, tc := range []struct{ code, decline, want string }{
		{"card_declined", "generic_decline", ivrpay.RefusalDeclined},
		{"card_declined", "", ivrpay.RefusalDeclined},
		{"card_declined", "insufficient_funds", ivrpay.RefusalInsufficientFunds},
		{"card_declined", "do_not_honor", ivrpay.RefusalDoNotHonor},
		{"expired_card", "", ivrpay.RefusalExpiredCard},
		{"incorrect_cvc", "", ivrpay.RefusalInvalidCardSecurityCode},
		{"invalid_cvc", "", ivrpay.RefusalInvalidCardSecurityCode},
		{"incorrect_zip", "", ivrpay.RefusalIncorrectPaymentInformation},
		{"card_declined", "fraudulent", ivrpay.RefusalRiskDecline},
		{"card_declined", "stolen_card", ivrpay.RefusalRiskDecline},
		{"card_declined", "pickup_card", ivrpay.RefusalRiskDecline},
		{"card_declined", "merchant_blacklist", ivrpay.RefusalRiskDecline},
		{"processing_error", "", ivrpay.RefusalProcessingError},
		{"card_declined", "try_again_later", ivrpay.RefusalDeclined},
		{"incorrect_number", "", ivrpay.RefusalDeclined},
	} {
		t.Run(tc.code+"/"+tc.decline, func(t *testing.T) {
			if got := RefusalCode(tc.code, tc.decline); got != tc.want {
				t.Errorf("RefusalCode = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestCheckSecretKey refuses what cannot be a Stripe key, a second line
// above all (a key file with two lines), without quoting the key.
func TestCheckSecretKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, key string
		ok        bool
	}{
		{"secret", testKey, true},
		{"restricted live", "rk_live_51AbcDEF0123", true},
		{"second line", testKey + "\nsk_test_other", false},
		{"carriage return", testKey + "\r", false},
		{"space", "sk_test_abc def", false},
		{"tab", "sk_test_abc\tdef", false},
		{"nul", "sk_test_abc\x00", false},
		{"no body", "sk_test_", false},
		{"publishable", "pk_test_abc", false},
		{"non-ASCII", "sk_test_abcé", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckSecretKey(tc.key)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckSecretKey = %v, want ok %v", err, tc.ok)
			}
			if err != nil && strings.Contains(err.Error(), "abc") {
				t.Fatalf("the error quotes the key: %v", err)
			}
			if _, err := New(Config{SecretKey: tc.key}); (err == nil) != tc.ok {
				t.Fatalf("New = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// TestRequestRefusedLocally sends a charge whose Stripe-Account header Go
// refuses to send (a newline in the merchant's account ref): the error says
// that nothing was sent, still as an unknown outcome (a retry's earlier
// attempt may have been sent), and Stripe saw nothing.
func TestRequestRefusedLocally(t *testing.T) {
	t.Parallel()
	p, f := setup(t)
	pay := processortest.Payment("pyi_not_sent", 1000, true)
	pay.AccountRef = "acct_1Fake\nX-Injected: 1"
	_, err := p.Authorize(context.Background(), pay)
	if !errors.Is(err, ivrpay.ErrNotSent) || !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
		t.Fatalf("Authorize = %v; want an error wrapping ErrNotSent and ErrOutcomeUnknown", err)
	}
	if n := len(f.Recorded("POST", "/v1/payment_methods")) + len(f.Recorded("POST", "/v1/payment_intents")); n != 0 {
		t.Fatalf("Stripe received %d requests", n)
	}
	// A request that left and got no answer is not "not sent".
	f.Close()
	_, err = p.Authorize(context.Background(), processortest.Payment("pyi_refused_conn", 1000, true))
	if err == nil || errors.Is(err, ivrpay.ErrNotSent) || !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
		t.Fatalf("Authorize to a closed port = %v; want an unknown outcome that may have been sent", err)
	}
}

// TestCheckAPIBase: production sends a live key and card numbers only to an
// https API base; a sandbox may use a plain-http double.
func TestCheckAPIBase(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		base       string
		production bool
		ok         bool
	}{
		{"", true, true},
		{"https://api.stripe.com", true, true},
		{"https://127.0.0.1:12111", true, true},
		{"http://127.0.0.1:12111", true, false},
		{"http://127.0.0.1:12111", false, true},
		{"ftp://127.0.0.1", false, false},
		{"127.0.0.1:12111", false, false},
	} {
		t.Run(fmt.Sprintf("%s production=%v", tc.base, tc.production), func(t *testing.T) {
			if err := CheckAPIBase(tc.base, tc.production); (err == nil) != tc.ok {
				t.Fatalf("CheckAPIBase = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// TestLookup: the look-up fallback reads a PaymentIntent or a Refund as
// the event that would report it, from the states a real Stripe moves
// them through after the first answer.
func TestLookup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, f := setup(t)
	captured, _ := p.Authorize(ctx, processortest.Payment("pyi_look_1", 1000, true))
	held, _ := p.Authorize(ctx, processortest.Payment("pyi_look_2", 1500, false))
	op := func(ref string) ivrpay.PaymentOperation {
		return ivrpay.PaymentOperation{Reference: ref, PayinID: "pyi_look", Currency: "USD"}
	}
	refund, err := p.Refund(ctx, ivrpay.PaymentOperation{IdempotencyKey: "rfd_look", Reference: captured.Reference, Amount: 400, Currency: "USD"})
	if err != nil || !refund.Approved {
		t.Fatalf("refund = %+v, %v", refund, err)
	}
	for _, tc := range []struct {
		name    string
		set     func()
		lookup  func() (ivrpay.ProcessorEvent, error)
		effect  ivrpay.EventEffect
		amount  int64
		refusal string
	}{
		{"payment still processing", func() { f.SetIntentStatus(captured.Reference, "processing") },
			func() (ivrpay.ProcessorEvent, error) { return p.LookupPayment(ctx, op(captured.Reference)) }, ivrpay.EffectNone, 1000, ""},
		{"payment succeeded", func() { f.SetIntentStatus(captured.Reference, "succeeded") },
			func() (ivrpay.ProcessorEvent, error) { return p.LookupPayment(ctx, op(captured.Reference)) }, ivrpay.EffectPaymentCaptured, 1000, ""},
		{"payment authorized", func() {},
			func() (ivrpay.ProcessorEvent, error) { return p.LookupPayment(ctx, op(held.Reference)) }, ivrpay.EffectPaymentAuthorized, 1500, ""},
		{"payment canceled", func() { f.SetIntentStatus(held.Reference, "canceled") },
			func() (ivrpay.ProcessorEvent, error) { return p.LookupPayment(ctx, op(held.Reference)) }, ivrpay.EffectPaymentCanceled, 1500, ""},
		{"payment refused", func() { f.SetIntentStatus(held.Reference, "requires_payment_method") },
			func() (ivrpay.ProcessorEvent, error) { return p.LookupPayment(ctx, op(held.Reference)) }, ivrpay.EffectPaymentFailed, 1500,
			ivrpay.RefusalProcessingError},
		{"refund pending", func() { f.SetRefundStatus(refund.Reference, "pending") },
			func() (ivrpay.ProcessorEvent, error) {
				return p.LookupRefund(ctx, op(captured.Reference), refund.Reference)
			}, ivrpay.EffectNone, 400, ""},
		{"refund succeeded", func() { f.SetRefundStatus(refund.Reference, "succeeded") },
			func() (ivrpay.ProcessorEvent, error) {
				return p.LookupRefund(ctx, op(captured.Reference), refund.Reference)
			},
			ivrpay.EffectRefundSucceeded, 400, ""},
		{"refund failed", func() { f.SetRefundStatus(refund.Reference, "failed") },
			func() (ivrpay.ProcessorEvent, error) {
				return p.LookupRefund(ctx, op(captured.Reference), refund.Reference)
			},
			ivrpay.EffectRefundFailed, 400, ivrpay.RefusalProcessingError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.set()
			e, err := tc.lookup()
			if err != nil {
				t.Fatal(err)
			}
			if e.Effect != tc.effect || e.Amount != tc.amount || e.RefusalCode != tc.refusal || e.Currency != "USD" || e.PaymentReference == "" {
				t.Fatalf("look-up = %+v, want effect %s, amount %d, refusal %q", e, tc.effect, tc.amount, tc.refusal)
			}
		})
	}
	t.Run("a payment's look-up carries its charge's card answer", func(t *testing.T) {
		// The synchronous answer of the same payment is what the look-up must repeat.
		e, err := p.LookupPayment(ctx, op(captured.Reference))
		if err != nil {
			t.Fatal(err)
		}
		if captured.AuthCode == "" || captured.NetworkTransactionID == "" {
			t.Fatalf("the fake's synchronous answer has no card answer: %+v", captured)
		}
		if e.AuthCode != captured.AuthCode || e.NetworkTransactionID != captured.NetworkTransactionID ||
			e.AVSResultCode != captured.AVSResultCode || e.CVCResultCode != captured.CVCResultCode {
			t.Errorf("look-up's card answer %q/%q/%q/%q, want the charge's %q/%q/%q/%q", e.AuthCode, e.NetworkTransactionID, e.AVSResultCode,
				e.CVCResultCode, captured.AuthCode, captured.NetworkTransactionID, captured.AVSResultCode, captured.CVCResultCode)
		}
		got := f.Recorded("GET", "/v1/payment_intents/"+captured.Reference)
		if len(got) == 0 || got[len(got)-1].Form.Get("expand[0]") != "latest_charge" {
			t.Errorf("the look-up did not expand latest_charge: %+v", got)
		}
	})
	t.Run("a missing object or a 5xx is an error, not an answer", func(t *testing.T) {
		if _, err := p.LookupPayment(ctx, op("pi_missing")); err == nil || !strings.Contains(err.Error(), "resource_missing") {
			t.Errorf("missing intent: %v", err)
		}
		f.FailPath("/v1/refunds/"+refund.Reference, 500)
		if _, err := p.LookupRefund(ctx, op(captured.Reference), refund.Reference); err == nil {
			t.Error("a 500 answered a look-up")
		}
	})
}
