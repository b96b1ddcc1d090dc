// Package adyentest is a local fake of Adyen's Checkout API v71 for tests:
// NewFake serves it on a loopback port, answers Adyen's documented bodies
// for the processortest trigger amounts, checks every request the adyen
// adapter sends (a request that breaks a rule is answered 422 and fails the
// test) and records payments and technical cancels, so that a test can
// assert what reached Adyen and whether a payment was reversed.
package adyentest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ivrpay/ivrpay/processor/processortest"
)

// APIKey and MerchantAccount are what the fake accepts: the adapter under
// test must be configured with them.
const (
	APIKey          = "AQE_test_key_for_the_fake"
	MerchantAccount = "IvrpayMOTO_TEST"
)

// AmountHang is the fake's extra trigger: the payment is recorded and the
// answer never comes (until the client gives up).
const AmountHang = 5110

// AmountAccountError answers the 403 of an API key not allowed on the
// merchant account, naming the account: the operator's set-up, which
// tenants must not read.
const AmountAccountError = 5139

// Fake is a local Checkout API v71 that replays Adyen's documented
// answers (Authorised with additionalData, Refused with refusalReason and
// refusalReasonCode, service errors) for the contract's trigger amounts, and
// checks every request the adapter sends. A request that breaks a rule is
// answered 422 like Adyen would, and fails the test.
//
// Payments: 5101 to 5103 are refused; 5121 (processortest.AmountLostAnswers)
// records the payment and answers 500; 5122 (processortest.AmountUnavailable)
// answers 503 without a payment; AmountHang records it and never answers;
// any other amount is authorised. POST /cancels (a technical cancel) marks
// the payment of its paymentReference reversed.
type Fake struct {
	// URL is the Checkout endpoint up to and including the version (the
	// adapter's APIBase).
	URL string
	t   testing.TB
	srv *httptest.Server

	mu         sync.Mutex
	seq        int
	requests   []Request
	answers    map[string]fakeAnswer // by Idempotency-Key: Adyen replays the first answer
	payments   map[string]*Payment
	violations []string
}

// Request is one request the fake received, its JSON body decoded with
// numbers as json.Number (read it with Str and Num).
type Request struct {
	Path   string
	Header http.Header
	Body   map[string]any
}

type fakeAnswer struct {
	status int
	body   []byte
}

// Payment is a payment the fake recorded, by its merchant reference.
type Payment struct {
	PSPReference, Reference, MerchantAccount string
	Amount                                   int64
	ManualCapture, Reversed                  bool
}

// NewFake starts a Fake on a loopback port until the test ends; at cleanup
// every rule a request broke fails t.
func NewFake(t testing.TB) *Fake {
	t.Helper()
	f := &Fake{t: t, answers: map[string]fakeAnswer{}, payments: map[string]*Payment{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /payments", f.handle(f.payments_))
	mux.HandleFunc("POST /payments/{psp}/captures", f.handle(f.modification("captures", true)))
	mux.HandleFunc("POST /payments/{psp}/cancels", f.handle(f.modification("cancels", false)))
	mux.HandleFunc("POST /payments/{psp}/refunds", f.handle(f.modification("refunds", true)))
	mux.HandleFunc("POST /cancels", f.handle(f.technicalCancel))
	f.srv = httptest.NewServer(mux)
	f.URL = f.srv.URL
	t.Cleanup(func() {
		f.srv.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, v := range f.violations {
			t.Errorf("fake Adyen: %s", v)
		}
	})
	return f
}

// Client returns an HTTP client for the fake's server.
func (f *Fake) Client() *http.Client { return f.srv.Client() }

// handler answers one request: status and body, or status 0 to hang.
type handler func(r *http.Request, body map[string]any) (int, any)

func (f *Fake) handle(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		dec := json.NewDecoder(r.Body)
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			f.reply(w, 400, serviceError{Status: 400, ErrorCode: "702", Message: "Empty input which would have resulted in a null result.", ErrorType: "validation"})
			return
		}
		key := r.Header.Get("Idempotency-Key")
		f.mu.Lock()
		f.requests = append(f.requests, Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		if r.Header.Get("X-API-Key") != APIKey {
			f.mu.Unlock()
			f.violate("%s: X-API-Key %q", r.URL.Path, r.Header.Get("X-API-Key"))
			f.reply(w, 401, serviceError{Status: 401, ErrorCode: "000", Message: "HTTP Status Response - Unauthorized", ErrorType: "security"})
			return
		}
		if a, ok := f.answers[key]; ok {
			f.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Idempotency-Key", key)
			w.WriteHeader(a.status)
			w.Write(a.body)
			return
		}
		f.mu.Unlock()
		if problem := checkCommon(r, body); problem != "" {
			f.violate("%s: %s", r.URL.Path, problem)
			f.reply(w, 422, serviceError{Status: 422, ErrorCode: "702", Message: problem, ErrorType: "validation"})
			return
		}
		status, answer := h(r, body)
		if status == 0 {
			<-r.Context().Done() // the answer is lost: the client gives up first
			return
		}
		b, _ := json.Marshal(answer)
		if status < 500 { // Adyen keeps the answers it gave, not its failures
			f.mu.Lock()
			f.answers[key] = fakeAnswer{status, b}
			f.mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(b)
	}
}

// serviceError is Adyen's error body on a non-2xx answer.
type serviceError struct {
	Status       int    `json:"status"`
	ErrorCode    string `json:"errorCode"`
	Message      string `json:"message"`
	ErrorType    string `json:"errorType"`
	PSPReference string `json:"pspReference"`
}

func (f *Fake) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *Fake) violate(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.violations = append(f.violations, fmt.Sprintf(format, args...))
}

func checkCommon(r *http.Request, body map[string]any) string {
	switch {
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
		return "Content-Type " + r.Header.Get("Content-Type")
	case r.Header.Get("Idempotency-Key") == "" || len(r.Header.Get("Idempotency-Key")) > 64:
		return fmt.Sprintf("Idempotency-Key %q", r.Header.Get("Idempotency-Key"))
	case Str(body, "merchantAccount") == "":
		return "Required field 'merchantAccount' is not provided."
	}
	return ""
}

func (f *Fake) nextPSP() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	return fmt.Sprintf("FK%014d", f.seq)
}

// payments_ answers POST /payments by amount, as Adyen's test platform
// answers its documented test triggers.
func (f *Fake) payments_(r *http.Request, body map[string]any) (int, any) {
	if problem := checkPayment(body); problem != "" {
		f.violate("/payments: %s", problem)
		return 422, serviceError{Status: 422, ErrorCode: "702", Message: problem, ErrorType: "validation"}
	}
	value, _ := Num(body, "amount", "value")
	ref := Str(body, "reference")
	if value == processortest.AmountUnavailable {
		return 503, serviceError{Status: 503, ErrorCode: "000", Message: "Service Unavailable", ErrorType: "internal"}
	}
	if value == AmountAccountError {
		return 403, serviceError{Status: 403, ErrorCode: "901", ErrorType: "security",
			Message: "Invalid Merchant Account: the API credential ws@Company." + Str(body, "merchantAccount") + " is not allowed on " + Str(body, "merchantAccount")}
	}
	psp := f.nextPSP()
	base := map[string]any{"pspReference": psp, "merchantReference": ref}
	ad := map[string]string{"cvcResult": "1 Matches", "cvcResultRaw": "M", "avsResult": "7 Both postal code and address match", "avsResultRaw": "Y"}
	if Str(body, "paymentMethod", "cvc") == "" {
		ad["cvcResult"], ad["cvcResultRaw"] = "6 No CVC/CVV provided", ""
	}
	refuse := func(code, reason, raw string) (int, any) {
		ad["refusalReasonRaw"] = raw
		base["resultCode"], base["refusalReason"], base["refusalReasonCode"], base["additionalData"] = "Refused", reason, code, ad
		return 200, base
	}
	switch value {
	case processortest.AmountDeclined:
		return refuse("2", "Refused", "DECLINED")
	case processortest.AmountInsufficientFunds:
		return refuse("12", "Not enough balance", "51 : Insufficient funds/over credit limit")
	case processortest.AmountDoNotHonor:
		// Adyen has no do-not-honor reason: the scheme's 05 is "Refused"
		// with the raw answer, as the holderName trigger "DECLINED : 05 : Do not honor" gives.
		return refuse("2", "Refused", "05 : Do not honor")
	}
	f.mu.Lock()
	f.payments[ref] = &Payment{PSPReference: psp, Reference: ref, MerchantAccount: Str(body, "merchantAccount"),
		Amount: value, ManualCapture: Str(body, "additionalData", "manualCapture") == "true"}
	f.mu.Unlock()
	switch value {
	case processortest.AmountLostAnswers:
		return 500, serviceError{Status: 500, ErrorCode: "905", Message: "Internal error", ErrorType: "internal"}
	case AmountHang:
		return 0, nil
	}
	ad["authCode"] = "0" + psp[len(psp)-5:]
	ad["networkTxReference"] = "58" + psp[len(psp)-13:]
	ad["refusalReasonRaw"] = "AUTHORISED"
	base["resultCode"], base["additionalData"] = "Authorised", ad
	base["amount"] = map[string]any{"currency": Str(body, "amount", "currency"), "value": value}
	return 200, base
}

// checkPayment checks a /payments body against what ivrpay must send.
func checkPayment(body map[string]any) string {
	si := Str(body, "shopperInteraction")
	switch {
	case Str(body, "reference") == "":
		return "Required field 'reference' is not provided."
	case Str(body, "returnUrl") == "":
		return "Required field 'returnUrl' is not provided."
	case Str(body, "amount", "currency") != "USD":
		return "amount.currency " + Str(body, "amount", "currency")
	case Str(body, "paymentMethod", "type") != "scheme" || Str(body, "paymentMethod", "number") == "" ||
		len(Str(body, "paymentMethod", "expiryMonth")) != 2 || len(Str(body, "paymentMethod", "expiryYear")) != 4:
		return "paymentMethod is not a scheme card with number and expiry"
	case si != "Moto" && si != "ContAuth":
		return "shopperInteraction " + si
	case si == "ContAuth" && Str(body, "paymentMethod", "cvc") != "":
		return "a ContAuth charge carries a cvc"
	case si == "ContAuth" && Str(body, "additionalData", "networkTxReference") == "":
		return "a ContAuth charge cites no networkTxReference"
	case Str(body, "recurringProcessingModel") != "UnscheduledCardOnFile":
		return "recurringProcessingModel " + Str(body, "recurringProcessingModel")
	}
	if ba, ok := body["billingAddress"].(map[string]any); ok {
		for _, k := range []string{"street", "houseNumberOrName", "city", "postalCode", "country"} {
			if s, _ := ba[k].(string); s == "" {
				return "billingAddress." + k + " is missing"
			}
		}
	}
	return ""
}

func (f *Fake) modification(what string, needsAmount bool) handler {
	return func(r *http.Request, body map[string]any) (int, any) {
		psp := r.PathValue("psp")
		f.mu.Lock()
		var found *Payment
		for _, p := range f.payments {
			if p.PSPReference == psp {
				found = p
			}
		}
		f.mu.Unlock()
		_, hasAmount := body["amount"]
		switch {
		case found == nil:
			return 422, serviceError{Status: 422, ErrorCode: "167", Message: "Original pspReference required for this operation", ErrorType: "validation"}
		case needsAmount && (!hasAmount || Str(body, "amount", "currency") != "USD"):
			f.violate("%s without an amount", what)
			return 422, serviceError{Status: 422, ErrorCode: "100", Message: "Required field 'amount' is not provided.", ErrorType: "validation"}
		case !needsAmount && hasAmount:
			f.violate("%s with an amount", what)
			return 422, serviceError{Status: 422, ErrorCode: "702", Message: "Structure PaymentCancelRequest contains the following unknown fields: [amount]", ErrorType: "validation"}
		}
		ans := map[string]any{"merchantAccount": Str(body, "merchantAccount"), "paymentPspReference": psp,
			"pspReference": f.nextPSP(), "reference": Str(body, "reference"), "status": "received"}
		if hasAmount {
			ans["amount"] = body["amount"]
		}
		return 201, ans
	}
}

// technicalCancel answers POST /cancels: Adyen accepts it whether or not a
// payment has the reference (the TECHNICAL_CANCEL webhook tells), and the
// fake marks the payment reversed.
func (f *Fake) technicalCancel(r *http.Request, body map[string]any) (int, any) {
	ref := Str(body, "paymentReference")
	if ref == "" {
		f.violate("/cancels without paymentReference")
		return 422, serviceError{Status: 422, ErrorCode: "702", Message: "Required field 'paymentReference' is not provided.", ErrorType: "validation"}
	}
	f.mu.Lock()
	if p := f.payments[ref]; p != nil {
		p.Reversed = true
	}
	f.mu.Unlock()
	return 201, map[string]any{"merchantAccount": Str(body, "merchantAccount"), "paymentReference": ref,
		"pspReference": f.nextPSP(), "reference": Str(body, "reference"), "status": "received"}
}

// Payment returns a copy of the recorded payment with reference ref.
func (f *Fake) Payment(ref string) (Payment, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.payments[ref]
	if !ok {
		return Payment{}, false
	}
	return *p, true
}

// Received returns the requests the fake received on path, in order.
func (f *Fake) Received(path string) []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Request
	for _, r := range f.requests {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// Str reads a string at a path of object keys of a request body ("" when
// absent or not a string).
func Str(m map[string]any, path ...string) string {
	var v any = m
	for _, k := range path {
		o, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = o[k]
	}
	s, _ := v.(string)
	return s
}

// Num reads an integer at a path of object keys of a request body.
func Num(m map[string]any, path ...string) (int64, bool) {
	var v any = m
	for _, k := range path {
		o, ok := v.(map[string]any)
		if !ok {
			return 0, false
		}
		v = o[k]
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}
