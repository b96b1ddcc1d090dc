package adyen

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay"
	"github.com/ivrpay/ivrpay/processor/adyen/adyentest"
	"github.com/ivrpay/ivrpay/processor/processortest"
)

// newProcessor returns an adapter pointed at f.
func newProcessor(t *testing.T, f *adyentest.Fake) *Processor {
	t.Helper()
	p, err := New(Config{APIKey: adyentest.APIKey, MerchantAccount: adyentest.MerchantAccount, APIBase: f.URL, HTTPClient: f.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestContract(t *testing.T) {
	processortest.Run(t, func(t *testing.T) ivrpay.Processor {
		return newProcessor(t, adyentest.NewFake(t))
	})
}

// TestPaymentRequest checks the /payments body for each kind of call.
func TestPaymentRequest(t *testing.T) {
	ctx := context.Background()
	stored := processortest.Payment("pyi_req_stored", 2500, true)
	stored.Card.CVV = "123" // a stray CVV must still not be sent
	stored.Stored = &ivrpay.StoredCredential{NetworkTransactionID: "583412345678901"}
	routed := processortest.Payment("pyi_req_routed", 1000, true)
	routed.AccountRef = "IvrpaySubMerchant_TEST"
	noPostal := processortest.Payment("pyi_req_nopostal", 1000, true)
	noPostal.Card.PostalCode = ""
	for _, tc := range []struct {
		name        string
		pay         ivrpay.CardPayment
		verify      bool
		interaction string
		merchant    string
		value       string
		manual      bool
		cvc         string
		ntr         string
		postal      string
	}{
		{"captured at once", processortest.Payment("pyi_req_capture", 1000, true), false, "Moto", adyentest.MerchantAccount, "1000", false, "123", "", "94111"},
		{"manual capture", processortest.Payment("pyi_req_manual", 1500, false), false, "Moto", adyentest.MerchantAccount, "1500", true, "123", "", "94111"},
		{"stored card", stored, false, "ContAuth", adyentest.MerchantAccount, "2500", false, "", "583412345678901", "94111"},
		{"merchant account from AccountRef", routed, false, "Moto", "IvrpaySubMerchant_TEST", "1000", false, "123", "", "94111"},
		{"no postal code, no billing address", noPostal, false, "Moto", adyentest.MerchantAccount, "1000", false, "123", "", ""},
		{"verify", processortest.Payment("mtd_req_verify", 0, false), true, "Moto", adyentest.MerchantAccount, "0", false, "123", "", "94111"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := adyentest.NewFake(t)
			p := newProcessor(t, f)
			call := p.Authorize
			if tc.verify {
				call = p.Verify
			}
			r, err := call(ctx, tc.pay)
			if err != nil || !r.Approved {
				t.Fatalf("got %+v, %v; want approved", r, err)
			}
			reqs := f.Received("/payments")
			if len(reqs) != 1 {
				t.Fatalf("%d /payments requests, want 1", len(reqs))
			}
			h, b := reqs[0].Header, reqs[0].Body
			for k, want := range map[string]string{"X-API-Key": adyentest.APIKey, "Idempotency-Key": tc.pay.IdempotencyKey, "Content-Type": "application/json"} {
				if got := h.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			v, _ := adyentest.Num(b, "amount", "value")
			for _, c := range []struct{ field, got, want string }{
				{"merchantAccount", adyentest.Str(b, "merchantAccount"), tc.merchant},
				{"reference", adyentest.Str(b, "reference"), tc.pay.Reference},
				{"shopperInteraction", adyentest.Str(b, "shopperInteraction"), tc.interaction},
				{"recurringProcessingModel", adyentest.Str(b, "recurringProcessingModel"), "UnscheduledCardOnFile"},
				{"amount.value", itoa(v), tc.value},
				{"amount.currency", adyentest.Str(b, "amount", "currency"), "USD"},
				{"paymentMethod.type", adyentest.Str(b, "paymentMethod", "type"), "scheme"},
				{"paymentMethod.number", adyentest.Str(b, "paymentMethod", "number"), tc.pay.Card.PAN},
				{"paymentMethod.expiryMonth", adyentest.Str(b, "paymentMethod", "expiryMonth"), "12"},
				{"paymentMethod.expiryYear", adyentest.Str(b, "paymentMethod", "expiryYear"), "2030"},
				{"paymentMethod.cvc", adyentest.Str(b, "paymentMethod", "cvc"), tc.cvc},
				{"additionalData.networkTxReference", adyentest.Str(b, "additionalData", "networkTxReference"), tc.ntr},
				{"billingAddress.postalCode", adyentest.Str(b, "billingAddress", "postalCode"), tc.postal},
				{"returnUrl", adyentest.Str(b, "returnUrl"), DefaultReturnURL},
			} {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
				}
			}
			if got := adyentest.Str(b, "additionalData", "manualCapture") == "true"; got != tc.manual {
				t.Errorf("additionalData.manualCapture set = %v, want %v", got, tc.manual)
			}
			if _, ok := b["storePaymentMethod"]; ok {
				t.Error("storePaymentMethod sent: ivrpay keeps the card itself")
			}
		})
	}
}

// TestAuthorisedResult checks what an Authorised answer becomes.
func TestAuthorisedResult(t *testing.T) {
	f := adyentest.NewFake(t)
	r, err := newProcessor(t, f).Authorize(context.Background(), processortest.Payment("pyi_result", 1000, true))
	if err != nil {
		t.Fatal(err)
	}
	pay, ok := f.Payment("pyi_result")
	if !ok {
		t.Fatal("the fake recorded no payment")
	}
	want := ivrpay.ProcessorResult{Approved: true, Reference: pay.PSPReference, AuthCode: "0" + pay.PSPReference[len(pay.PSPReference)-5:],
		NetworkTransactionID: "58" + pay.PSPReference[len(pay.PSPReference)-13:], AuthorizedAmount: 1000, AVSResultCode: "Y", CVCResultCode: "M"}
	if r != want {
		t.Errorf("result\n got %+v\nwant %+v", r, want)
	}
}

// TestRefusedResult checks the refusals the fake replays, with Adyen's own
// code and text kept in the description.
func TestRefusedResult(t *testing.T) {
	for _, tc := range []struct {
		amount   int64
		code     string
		descPart string
	}{
		{processortest.AmountDeclined, ivrpay.RefusalDeclined, "adyen 2: Refused"},
		{processortest.AmountInsufficientFunds, ivrpay.RefusalInsufficientFunds, "adyen 12: Not enough balance"},
		{processortest.AmountDoNotHonor, ivrpay.RefusalDoNotHonor, "adyen 2: Refused (raw 05 : Do not honor)"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			f := adyentest.NewFake(t)
			r, err := newProcessor(t, f).Authorize(context.Background(), processortest.Payment("pyi_refused", tc.amount, true))
			if err != nil {
				t.Fatal(err)
			}
			if r.Approved || r.RefusalCode != tc.code || !strings.Contains(r.RefusalDesc, tc.descPart) {
				t.Errorf("got %+v, want %s with %q in the description", r, tc.code, tc.descPart)
			}
			if r.Reference == "" || r.CVCResultCode != "M" || r.AVSResultCode != "Y" {
				t.Errorf("a refusal keeps its pspReference and check results: %+v", r)
			}
		})
	}
}

func TestRefusalCode(t *testing.T) {
	for _, tc := range []struct{ code, reason, raw, want string }{
		{"2", "Refused", "", ivrpay.RefusalDeclined},
		{"2", "Refused", "05 : Do not honor", ivrpay.RefusalDoNotHonor},
		{"27", "Declined Non Generic", "05 Do not honour", ivrpay.RefusalDoNotHonor},
		{"2", "Refused", "51 : Insufficient funds", ivrpay.RefusalInsufficientFunds},
		{"2", "Refused", "051", ivrpay.RefusalDeclined},
		{"3", "Referral", "", ivrpay.RefusalDeclined},
		{"4", "Acquirer Error", "", ivrpay.RefusalProcessingError},
		{"5", "Blocked Card", "", ivrpay.RefusalDeclined},
		{"6", "Expired Card", "", ivrpay.RefusalExpiredCard},
		{"7", "Invalid Amount", "", ivrpay.RefusalIncorrectPaymentInformation},
		{"8", "Invalid Card Number", "", ivrpay.RefusalIncorrectPaymentInformation},
		{"9", "Issuer Unavailable", "", ivrpay.RefusalProcessingError},
		{"12", "Not enough balance", "", ivrpay.RefusalInsufficientFunds},
		{"14", "Acquirer Fraud", "", ivrpay.RefusalRiskDecline},
		{"20", "FRAUD", "", ivrpay.RefusalRiskDecline},
		{"22", "FRAUD-CANCELLED", "", ivrpay.RefusalRiskDecline},
		{"24", "CVC Declined", "", ivrpay.RefusalInvalidCardSecurityCode},
		{"31", "Issuer Suspected Fraud", "", ivrpay.RefusalRiskDecline},
		{"32", "AVS Declined", "", ivrpay.RefusalIncorrectPaymentInformation},
		{"46", "Transaction blocked by Adyen to prevent excessive retry fees", "", ivrpay.RefusalDeclined},
		{"", "Not enough balance", "", ivrpay.RefusalInsufficientFunds},
		{"", "CVC Declined", "", ivrpay.RefusalInvalidCardSecurityCode},
		{"", "Something new", "", ivrpay.RefusalDeclined},
		{"", "", "05 : Do not honor", ivrpay.RefusalDoNotHonor},
	} {
		t.Run(tc.code+" "+tc.reason+" "+tc.raw, func(t *testing.T) {
			if got := refusalCode(tc.code, tc.reason, tc.raw); got != tc.want {
				t.Errorf("refusalCode(%q, %q, %q) = %s, want %s", tc.code, tc.reason, tc.raw, got, tc.want)
			}
		})
	}
}

func TestCheckResults(t *testing.T) {
	withCVV := processortest.Payment("k", 1, true)
	noCVV := withCVV
	noCVV.Card.CVV = ""
	for _, tc := range []struct{ avs, want string }{
		{"7 Both postal code and address match", "Y"},
		{"6 Postal code matches, address doesn't match", "Y"},
		{"14 Postal code matches, address unknown", "Y"},
		{"2 Neither postal code nor address match", "N"},
		{"17 Postal code doesn't match, address not checked", "N"},
		{"1 Address matches, postal code doesn't", "N"},
		{"0 Unknown", "U"},
		{"5 No AVS data provided", "U"},
		{"9 Address matches, postal code unknown", "U"},
		{"", "U"},
	} {
		t.Run("avs "+tc.avs, func(t *testing.T) {
			if got := avsResult(tc.avs); got != tc.want {
				t.Errorf("avsResult(%q) = %s, want %s", tc.avs, got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		cvc  string
		pay  ivrpay.CardPayment
		want string
	}{
		{"1 Matches", withCVV, "M"},
		{"2 Does not match", withCVV, "N"},
		{"3 Not checked", withCVV, "P"},
		{"6 No CVC/CVV provided", noCVV, "P"},
		{"0 Unknown", withCVV, "U"},
		{"5 Issuer not certified for CVC/CVV", withCVV, "U"},
		{"", withCVV, "U"},
		{"", noCVV, "P"},
		{"not a number", withCVV, "U"},
		{"not a number", noCVV, "P"},
	} {
		t.Run("cvc "+tc.cvc, func(t *testing.T) {
			if got := cvcResult(tc.cvc, tc.pay); got != tc.want {
				t.Errorf("cvcResult(%q) = %s, want %s", tc.cvc, got, tc.want)
			}
			// The shared reading of additionalData gives the same, for the
			// payment asked for (empty when the data has no result).
			n := networkAnswer(func(key string) string {
				if key == "cvcResult" {
					return tc.cvc
				}
				return ""
			}, tc.pay)
			if tc.cvc != "" && n.cvc != tc.want {
				t.Errorf("networkAnswer's cvc of %q = %s, want %s", tc.cvc, n.cvc, tc.want)
			}
		})
	}
}

// TestHTTPErrors checks which answers are definite refusals and which leave
// the outcome unknown.
func TestHTTPErrors(t *testing.T) {
	type answer struct {
		status    int
		body      string
		transient bool
	}
	for _, tc := range []struct {
		name    string
		answer  answer
		unknown bool
		desc    string
	}{
		{"401 unauthorized", answer{401, `{"status":401,"errorCode":"000","message":"HTTP Status Response - Unauthorized","errorType":"security"}`, false}, false, "adyen 000: HTTP Status Response - Unauthorized"},
		{"403 no PCI role", answer{403, `{"status":403,"errorCode":"010","message":"Not allowed","errorType":"security","pspReference":"FK1"}`, false}, false, "adyen 010: Not allowed"},
		{"422 validation", answer{422, `{"status":422,"errorCode":"101","message":"Invalid card number","errorType":"validation"}`, false}, false, "adyen 101: Invalid card number"},
		{"400 without a body", answer{400, ``, false}, false, "adyen HTTP 400: Bad Request"},
		{"422 704 in progress", answer{422, `{"status":422,"errorCode":"704","message":"request already processed or in progress","errorType":"validation"}`, false}, true, ""},
		{"409 704 in progress", answer{409, `{"status":409,"errorCode":"704","message":"request already processed or in progress","errorType":"validation"}`, true}, true, ""},
		{"transient error header", answer{422, `{"status":422,"errorCode":"999","message":"try again","errorType":"validation"}`, true}, true, ""},
		{"429", answer{429, `{"status":429,"errorCode":"000","message":"Too many requests","errorType":"security"}`, false}, true, ""},
		{"500", answer{500, `{"status":500,"errorCode":"905","message":"Internal error","errorType":"internal"}`, false}, true, ""},
		{"503 html", answer{503, `<html>unavailable</html>`, false}, true, ""},
		{"200 unreadable", answer{200, `{"resultCode":`, false}, true, ""},
		{"200 Received", answer{200, `{"resultCode":"Received","pspReference":"FK1"}`, false}, true, ""},
		{"200 Error", answer{200, `{"resultCode":"Error","pspReference":"FK1","refusalReason":"Acquirer Error","refusalReasonCode":"4"}`, false}, false, "adyen error: adyen 4: Acquirer Error"},
		{"200 RedirectShopper", answer{200, `{"resultCode":"RedirectShopper","action":{"type":"threeDS2"}}`, false}, false, "asks for shopper authentication"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.answer.transient {
					w.Header().Set("Transient-Error", "true")
				}
				w.WriteHeader(tc.answer.status)
				w.Write([]byte(tc.answer.body))
			}))
			defer srv.Close()
			p, err := New(Config{APIKey: adyentest.APIKey, MerchantAccount: adyentest.MerchantAccount, APIBase: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			r, err := p.Authorize(context.Background(), processortest.Payment("pyi_http", 1000, true))
			if tc.unknown {
				if !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
					t.Errorf("got %+v, %v; want an error wrapping ErrOutcomeUnknown", r, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("a definite answer is a result, not an error: %v", err)
			}
			if r.Approved || r.RefusalCode != ivrpay.RefusalProcessingError || !strings.Contains(r.RefusalDesc, tc.desc) {
				t.Errorf("got %+v, want PROCESSING_ERROR with %q in the description", r, tc.desc)
			}
		})
	}
}

func TestConnectionRefusedIsUnknown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	p, err := New(Config{APIKey: adyentest.APIKey, MerchantAccount: adyentest.MerchantAccount, APIBase: base})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Authorize(context.Background(), processortest.Payment("pyi_refused_conn", 1000, true))
	if !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
		t.Errorf("error = %v, want one wrapping ErrOutcomeUnknown", err)
	}
}

// TestDeadline: a call that gets no answer ends with the caller's context,
// as an unknown outcome, although the fake made the payment.
func TestDeadline(t *testing.T) {
	f := adyentest.NewFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := newProcessor(t, f).Authorize(ctx, processortest.Payment("pyi_hang", adyentest.AmountHang, true))
	if !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
		t.Fatalf("error = %v, want one wrapping ErrOutcomeUnknown", err)
	}
	if ctx.Err() == nil {
		t.Error("the call returned before the deadline without an answer")
	}
	if _, ok := f.Payment("pyi_hang"); !ok {
		t.Error("the fake recorded no payment: the test does not reach the lost-answer path")
	}
}

// TestResolve checks that Resolve really sends the technical cancel.
func TestResolve(t *testing.T) {
	ctx := context.Background()
	t.Run("lost answers: the payment is reversed", func(t *testing.T) {
		f := adyentest.NewFake(t)
		p := newProcessor(t, f)
		pay := processortest.Payment("pyi_resolve_lost", processortest.AmountLostAnswers, true)
		if _, err := p.Authorize(ctx, pay); !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
			t.Fatalf("authorize: %v, want an unknown outcome", err)
		}
		if got, ok := f.Payment(pay.Reference); !ok || got.Reversed {
			t.Fatalf("before Resolve the fake holds %+v (found %v), want an unreversed payment", got, ok)
		}
		pay.Card.CVV = ""
		r, err := p.Resolve(ctx, pay)
		if err != nil {
			t.Fatal(err)
		}
		if r.Approved || r.RefusalCode != ivrpay.RefusalProcessingError || !strings.Contains(r.RefusalDesc, "technical cancel") {
			t.Errorf("resolve = %+v, want PROCESSING_ERROR saying it was reversed by technical cancel", r)
		}
		if got, _ := f.Payment(pay.Reference); !got.Reversed {
			t.Error("the fake's payment was not reversed")
		}
		cancels := f.Received("/cancels")
		if len(cancels) != 1 {
			t.Fatalf("%d technical cancels, want 1", len(cancels))
		}
		b, h := cancels[0].Body, cancels[0].Header
		if adyentest.Str(b, "paymentReference") != pay.Reference || adyentest.Str(b, "merchantAccount") != adyentest.MerchantAccount || adyentest.Str(b, "reference") == "" {
			t.Errorf("technical cancel body %v", b)
		}
		if k := h.Get("Idempotency-Key"); k == "" || k == pay.IdempotencyKey {
			t.Errorf("technical cancel Idempotency-Key %q: want one derived from, not equal to, the payment's", k)
		}
	})
	t.Run("unavailable: nothing to reverse", func(t *testing.T) {
		f := adyentest.NewFake(t)
		p := newProcessor(t, f)
		pay := processortest.Payment("pyi_resolve_unavailable", processortest.AmountUnavailable, true)
		pay.AccountRef = "IvrpaySubMerchant_TEST"
		if _, err := p.Authorize(ctx, pay); !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
			t.Fatalf("authorize: %v, want an unknown outcome", err)
		}
		if _, ok := f.Payment(pay.Reference); ok {
			t.Fatal("the fake recorded a payment for a 503")
		}
		r, err := p.Resolve(ctx, pay)
		if err != nil || r.Approved || r.RefusalCode != ivrpay.RefusalProcessingError {
			t.Errorf("resolve = %+v, %v; want PROCESSING_ERROR", r, err)
		}
		cancels := f.Received("/cancels")
		if len(cancels) != 1 || adyentest.Str(cancels[0].Body, "merchantAccount") != "IvrpaySubMerchant_TEST" {
			t.Errorf("technical cancels %v, want one on the routed merchant account", cancels)
		}
	})
	t.Run("refused technical cancel stays unknown", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(422)
			w.Write([]byte(`{"status":422,"errorCode":"702","message":"nope","errorType":"validation"}`))
		}))
		defer srv.Close()
		p, err := New(Config{APIKey: adyentest.APIKey, MerchantAccount: adyentest.MerchantAccount, APIBase: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Resolve(ctx, processortest.Payment("pyi_resolve_refused", 1000, true)); !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
			t.Errorf("error = %v, want an unknown outcome (the payment may still exist)", err)
		}
	})
}

// TestModifications checks capture, void and refund requests and results.
func TestModifications(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		call      func(*Processor) func(context.Context, ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error)
		path      string
		amount    int64
		hasAmount bool
	}{
		{"capture", func(p *Processor) func(context.Context, ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error) {
			return p.Capture
		}, "captures", 1200, true},
		{"void", func(p *Processor) func(context.Context, ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error) {
			return p.Void
		}, "cancels", 1500, false},
		{"refund", func(p *Processor) func(context.Context, ivrpay.PaymentOperation) (ivrpay.ProcessorResult, error) {
			return p.Refund
		}, "refunds", 400, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := adyentest.NewFake(t)
			p := newProcessor(t, f)
			a, err := p.Authorize(ctx, processortest.Payment("pyi_mod", 1500, false))
			if err != nil || !a.Approved {
				t.Fatalf("authorize: %+v, %v", a, err)
			}
			op := ivrpay.PaymentOperation{IdempotencyKey: "op_" + tc.name, Reference: a.Reference, PayinID: "pyi_mod",
				Amount: tc.amount, Currency: "USD", AccountRef: "IvrpaySubMerchant_TEST"}
			r, err := tc.call(p)(ctx, op)
			if err != nil || !r.Approved || r.Reference == "" || r.Reference == a.Reference {
				t.Fatalf("got %+v, %v; want approved with the modification's own pspReference", r, err)
			}
			reqs := f.Received("/payments/" + a.Reference + "/" + tc.path)
			if len(reqs) != 1 {
				t.Fatalf("%d requests to %s, want 1", len(reqs), tc.path)
			}
			b := reqs[0].Body
			if reqs[0].Header.Get("Idempotency-Key") != op.IdempotencyKey || adyentest.Str(b, "merchantAccount") != op.AccountRef || adyentest.Str(b, "reference") != op.IdempotencyKey {
				t.Errorf("request %v %v", reqs[0].Header, b)
			}
			v, ok := adyentest.Num(b, "amount", "value")
			if ok != tc.hasAmount || (ok && v != tc.amount) {
				t.Errorf("amount.value = %d (sent %v), want %d (sent %v)", v, ok, tc.amount, tc.hasAmount)
			}
		})
	}
	t.Run("unknown pspReference is refused", func(t *testing.T) {
		f := adyentest.NewFake(t)
		r, err := newProcessor(t, f).Capture(ctx, ivrpay.PaymentOperation{IdempotencyKey: "cap_x", Reference: "NOPE", Amount: 100, Currency: "USD"})
		if err != nil || r.Approved || r.RefusalCode != ivrpay.RefusalProcessingError || !strings.Contains(r.RefusalDesc, "adyen 167") {
			t.Errorf("got %+v, %v; want PROCESSING_ERROR with adyen 167", r, err)
		}
	})
}

// TestNoCardDataInAnswers: whatever Adyen echoes, no result or error holds
// the PAN or the CVV.
func TestNoCardDataInAnswers(t *testing.T) {
	card := processortest.TestCard()
	echo := "card " + card.PAN + " cvc " + card.CVV + " expired"
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"validation error", 422, `{"status":422,"errorCode":"101","message":"` + echo + `","errorType":"validation"}`},
		{"server error", 500, `{"status":500,"errorCode":"905","message":"` + echo + `","errorType":"internal"}`},
		{"refusal", 200, `{"resultCode":"Refused","refusalReason":"` + echo + `","refusalReasonCode":"2","additionalData":{"refusalReasonRaw":"` + echo + `"}}`},
		{"error result", 200, `{"resultCode":"Error","refusalReason":"` + echo + `"}`},
		{"odd result code", 200, `{"resultCode":"` + echo + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			p, err := New(Config{APIKey: adyentest.APIKey, MerchantAccount: adyentest.MerchantAccount, APIBase: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			for _, call := range []func(context.Context, ivrpay.CardPayment) (ivrpay.ProcessorResult, error){p.Authorize, p.Verify, p.Resolve} {
				r, err := call(context.Background(), processortest.Payment("pyi_echo", 1000, true))
				text := r.RefusalDesc + " " + r.Reference
				if err != nil {
					text += " " + err.Error()
				}
				if text == " " {
					t.Fatal("nothing to check: the answer produced no text")
				}
				if strings.Contains(text, card.PAN) || strings.Contains(text, " "+card.CVV+" ") || strings.Contains(text, adyentest.APIKey) {
					t.Errorf("card data or key in %q", text)
				}
			}
		})
	}
}

func TestCheckEndpointMode(t *testing.T) {
	for _, tc := range []struct {
		base       string
		production bool
		ok         bool
	}{
		{"", false, true},
		{TestAPIBase, false, true},
		{"http://127.0.0.1:8123", false, true},
		{"https://1797a841fbb37ca7-AdyenDemo-checkout-live.adyenpayments.com/checkout/v71", false, false},
		{"https://1797a841fbb37ca7-AdyenDemo-checkout-live.adyenpayments.com/checkout/v71", true, true},
		{"http://1797a841fbb37ca7-AdyenDemo-checkout-live.adyenpayments.com/checkout/v71", true, false},
		{"https://-checkout-live.adyenpayments.com/checkout/v71", true, false},
		{TestAPIBase, true, false},
		{"", true, false},
		{"http://127.0.0.1:8123", true, false},
		{"not a url", false, false},
	} {
		t.Run(tc.base, func(t *testing.T) {
			err := CheckEndpointMode(tc.base, tc.production)
			if (err == nil) != tc.ok {
				t.Errorf("CheckEndpointMode(%q, production=%v) = %v, want ok=%v", tc.base, tc.production, err, tc.ok)
			}
		})
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"test endpoint by default", Config{APIKey: adyentest.APIKey, MerchantAccount: adyentest.MerchantAccount}, true},
		{"no key", Config{MerchantAccount: adyentest.MerchantAccount}, false},
		{"no merchant account", Config{APIKey: adyentest.APIKey}, false},
		{"live account on the test endpoint", Config{APIKey: adyentest.APIKey, MerchantAccount: adyentest.MerchantAccount, Live: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("New = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && tc.cfg.APIKey != "" && strings.Contains(err.Error(), tc.cfg.APIKey) {
				t.Errorf("the error shows the API key: %v", err)
			}
			if p != nil && (p.apiBase != TestAPIBase || p.Kind() != "adyen") {
				t.Errorf("apiBase %q, kind %q", p.apiBase, p.Kind())
			}
		})
	}
}

func TestNoIdempotencyKeyNothingSent(t *testing.T) {
	f := adyentest.NewFake(t)
	p := newProcessor(t, f)
	pay := processortest.Payment("", 1000, true)
	pay.Reference = "pyi_nokey"
	r, err := p.Authorize(context.Background(), pay)
	if err != nil || r.RefusalCode != ivrpay.RefusalProcessingError {
		t.Errorf("authorize = %+v, %v; want PROCESSING_ERROR", r, err)
	}
	r, err = p.Refund(context.Background(), ivrpay.PaymentOperation{Reference: "FK1", Amount: 100, Currency: "USD"})
	if err != nil || r.RefusalCode != ivrpay.RefusalProcessingError {
		t.Errorf("refund = %+v, %v; want PROCESSING_ERROR", r, err)
	}
	if _, err := p.Resolve(context.Background(), pay); !errors.Is(err, ivrpay.ErrOutcomeUnknown) {
		t.Errorf("resolve error = %v, want an unknown outcome", err)
	}
	if n := len(f.Received("/payments")) + len(f.Received("/cancels")); n != 0 {
		t.Errorf("%d requests sent without an idempotency key", n)
	}
}

func TestIdempotencyKey(t *testing.T) {
	short := "pyi_2Zc1TFkQo3cb4Wq8vDxS0RYk9mE"
	long := strings.Repeat("k", 80)
	if idempotencyKey(short) != short {
		t.Error("a key Adyen accepts is not sent as is")
	}
	if got := idempotencyKey(long); len(got) > 64 || got != idempotencyKey(long) || got == idempotencyKey(long+"x") {
		t.Errorf("a long key becomes %q: want a stable hash of at most 64 characters", got)
	}
	if derivedKey("technical-cancel", short) == derivedKey("technical-cancel", short+"x") {
		t.Error("derived keys collide")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestCheckAPIKey refuses what cannot be an Adyen API key, a line break
// above all (a key file with two lines), without quoting the key.
func TestCheckAPIKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, key string
		ok        bool
	}{
		{"documented shape", "AQEyhmfxK4.../n3Q5qf3VaY9UCJ14XWZE03G/k2NFitRvbe4N1XqH1eHaH2AksaEQwV1bDb7kfNy1WIxIIkxgBw==-y3qzswmlmALhxaVPNjYf74bqPotG12HroatrKA066yE=-W+t7NF;s4}%=kUSD", true},
		{"empty", "", false},
		{"second line", "AQEyhmfxSecret\nAQEother", false},
		{"carriage return", "AQEyhmfxSecret\r", false},
		{"space", "AQEyhmfx Secret", false},
		{"non-ASCII", "AQEyhmfxSecreté", false},
		{"too long", strings.Repeat("A", 2000), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckAPIKey(tc.key)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckAPIKey = %v, want ok %v", err, tc.ok)
			}
			if err != nil && tc.key != "" && strings.Contains(err.Error(), "Secret") {
				t.Fatalf("the error quotes the key: %v", err)
			}
			_, err = New(Config{APIKey: tc.key, MerchantAccount: adyentest.MerchantAccount})
			if (err == nil) != tc.ok {
				t.Fatalf("New = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
