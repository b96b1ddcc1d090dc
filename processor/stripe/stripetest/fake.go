package stripetest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"
)

// Fake is a replaying Stripe on a loopback port: it answers the documented
// JSON bodies of the endpoints the stripe adapter calls, replays the first
// answer of an idempotency key (as Stripe does, 500s included), and is
// steered by amount like the processortest contract: 5101 to 5103 decline,
// 5121 (processortest.AmountLostAnswers) charges and answers 500, 5122
// (processortest.AmountUnavailable) answers 503 without charging, and the
// Amount* constants trigger the rest. Any other amount succeeds.
type Fake struct {
	// URL is the fake's base URL (the adapter's APIBase).
	URL string
	srv *httptest.Server

	mu        sync.Mutex
	seq       int
	intents   []*fakeIntent          // oldest first
	cards     map[string]url.Values  // pm id → the card fields it was made from
	replies   map[string]fakeReply   // path + idempotency key → first answer
	refunds   map[string]*fakeRefund // re id → the refund
	requests  []FakeRequest          // every request, in order
	searchLag bool                   // search finds nothing (Stripe's indexing lag)
	failPaths map[string]int         // path → HTTP status answered instead
	hang      chan struct{}          // closed at cleanup, releasing hung handlers
	cancelled map[string]bool        // pi ids cancelled
}

type fakeIntent struct {
	ID, Status, CaptureMethod, Ref, Account, PM string
	Amount, Capturable, Received                int64
	CVC                                         bool
}

type fakeRefund struct {
	ID, Intent, Status string
	Amount             int64
}

func (re *fakeRefund) json() map[string]any {
	var failure any // Stripe's failure_reason is set on failed refunds only
	if re.Status == "failed" {
		failure = "lost_or_stolen_card"
	}
	return map[string]any{"id": re.ID, "object": "refund", "amount": re.Amount, "currency": "usd", "status": re.Status,
		"payment_intent": re.Intent, "charge": "ch_" + re.Intent[3:], "created": 1700000000, "metadata": map[string]any{},
		"reason": nil, "balance_transaction": "txn_fake", "failure_reason": failure}
}

type fakeReply struct {
	status int
	body   []byte
}

// FakeRequest is one request the Fake received.
type FakeRequest struct {
	Method, Path, Key, Account string
	Form                       url.Values
}

// FakeAuthCode is the authorization code of every charge the Fake makes.
const FakeAuthCode = "A1B2C3"

// Amounts (cents) the Fake answers specially, beyond processortest's.
const (
	// AmountIncorrectCVC and the declines after it answer a 402 card_error
	// with Stripe's code (incorrect_cvc, expired_card, processing_error,
	// fraudulent, incorrect_zip, lost_card, transaction_not_allowed).
	AmountIncorrectCVC    = 5104
	AmountExpiredCard     = 5105
	AmountProcessingError = 5106
	AmountFraudulent      = 5107
	AmountIncorrectZip    = 5108
	AmountLostCard        = 5109
	AmountOtherDecline    = 5111
	// AmountLostPending leaves the intent requires_action and answers 500.
	AmountLostPending    = 5123
	AmountRequiresAction = 5124 // a 200 with the intent requires_action
	AmountRateLimited    = 5129 // a 429 (not replayed)
	// AmountHang records a succeeded intent and never answers (until the
	// client gives up or the test ends): a timeout after the charge.
	AmountHang           = 5130
	AmountInvalidRequest = 5131 // a 400 invalid_request_error
	AmountIdempotencyErr = 5132 // a 400 idempotency_error
	AmountBadKey         = 5133 // a 401 whose message echoes the key (a misbehaving proxy)
	AmountEchoCard       = 5134 // a 402 whose message echoes the card (a misbehaving proxy)
	AmountEchoCardHTML   = 5135 // a 502 HTML page echoing the card
	AmountBadGateway     = 5136 // a 502 HTML page
	AmountConflict       = 5137 // a 409 idempotency_key_in_use
	AmountProcessing     = 5138 // a 200 with the intent processing
	// AmountAccountError answers the 403 of a key without access to the
	// connected account, naming the account and the key's last digits: the
	// operator's set-up, which tenants must not read.
	AmountAccountError = 5139
)

// AccountErrorAccount is the account AmountAccountError's message names.
const AccountErrorAccount = "acct_1OperatorPrivate42"

// NewFake starts a Fake on a loopback port until the test ends.
func NewFake(t testing.TB) *Fake {
	t.Helper()
	return newFake(t, false)
}

// NewTLSFake is NewFake serving https, with httptest's certificate (for
// 127.0.0.1), as a production deployment needs; the client must trust it
// (Client, or SSL_CERT_FILE for a server process).
func NewTLSFake(t testing.TB) *Fake {
	t.Helper()
	return newFake(t, true)
}

// Client is an HTTP client that trusts the fake's certificate.
func (f *Fake) Client() *http.Client { return f.srv.Client() }

func newFake(t testing.TB, useTLS bool) *Fake {
	f := &Fake{cards: map[string]url.Values{}, replies: map[string]fakeReply{}, refunds: map[string]*fakeRefund{},
		failPaths: map[string]int{}, hang: make(chan struct{}), cancelled: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/payment_methods", f.idempotent(f.createPaymentMethod))
	mux.HandleFunc("POST /v1/payment_intents", f.idempotent(f.createIntent))
	mux.HandleFunc("POST /v1/payment_intents/{id}/capture", f.idempotent(f.captureIntent))
	mux.HandleFunc("POST /v1/payment_intents/{id}/cancel", f.idempotent(f.cancelIntent))
	mux.HandleFunc("GET /v1/payment_intents/search", f.searchIntents)
	mux.HandleFunc("GET /v1/payment_intents", f.listIntents)
	mux.HandleFunc("GET /v1/payment_intents/{id}", f.retrieveIntent)
	mux.HandleFunc("GET /v1/refunds/{id}", f.retrieveRefund)
	mux.HandleFunc("POST /v1/setup_intents", f.idempotent(f.createSetupIntent))
	mux.HandleFunc("POST /v1/refunds", f.idempotent(f.createRefund))
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.requests = append(f.requests, FakeRequest{r.Method, r.URL.Path, r.Header.Get("Idempotency-Key"),
			r.Header.Get("Stripe-Account"), r.Form})
		status := f.failPaths[r.URL.Path]
		f.mu.Unlock()
		if status != 0 {
			writeJSON(w, status, apiError())
			return
		}
		mux.ServeHTTP(w, r)
	}))
	startServer(f.srv, useTLS)
	f.URL = f.srv.URL
	t.Cleanup(func() { close(f.hang); f.srv.Close() })
	return f
}

// Close stops the fake before the test ends (a connection refused).
func (f *Fake) Close() { f.srv.Close() }

// FailPath makes the fake answer every later request to path with status
// and Stripe's api_error body.
func (f *Fake) FailPath(path string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failPaths[path] = status
}

// SetSearchLag makes the search endpoint find nothing (Stripe's indexing
// lag) while on.
func (f *Fake) SetSearchLag(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.searchLag = on
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_fake")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// handler answers one request; a zero status means "do not answer" (hang).
type handler func(r *http.Request) (int, any)

// idempotent replays the first answer of an idempotency key, as Stripe does,
// except for 429s (the rate limiter runs before the idempotency layer).
func (f *Fake) idempotent(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Path + "\x00" + r.Header.Get("Idempotency-Key")
		f.mu.Lock()
		rep, ok := f.replies[key]
		f.mu.Unlock()
		if ok && r.Header.Get("Idempotency-Key") != "" {
			w.Header().Set("Idempotent-Replayed", "true")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(rep.status)
			_, _ = w.Write(rep.body)
			return
		}
		status, v := h(r)
		if status == 0 {
			select {
			case <-r.Context().Done():
			case <-f.hang:
			}
			return
		}
		var body []byte
		if s, isHTML := v.(string); isHTML {
			body = []byte(s)
			w.Header().Set("Content-Type", "text/html")
		} else {
			var err error
			if body, err = json.Marshal(v); err != nil {
				panic(err) // a broken fake body would read as an unknown outcome and hide the bug
			}
			w.Header().Set("Content-Type", "application/json")
		}
		if status != http.StatusTooManyRequests {
			f.mu.Lock()
			f.replies[key] = fakeReply{status, body}
			f.mu.Unlock()
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

func (f *Fake) id(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s_3Fake%08dxYz", prefix, f.seq)
}

func (f *Fake) createPaymentMethod(r *http.Request) (int, any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.id("pm")
	f.cards[id] = r.Form
	num := r.Form.Get("card[number]")
	last4 := ""
	if len(num) >= 4 {
		last4 = num[len(num)-4:]
	}
	return 200, map[string]any{
		"id": id, "object": "payment_method", "type": "card", "livemode": false, "created": 1700000000,
		"billing_details": map[string]any{"address": map[string]any{"postal_code": nullable(r.Form.Get("billing_details[address][postal_code]"))}},
		"card": map[string]any{"brand": "visa", "last4": last4, "exp_month": atoi(r.Form.Get("card[exp_month]")),
			"exp_year": atoi(r.Form.Get("card[exp_year]")), "funding": "credit", "country": "US",
			"checks": map[string]any{"address_line1_check": nil, "address_postal_code_check": nil, "cvc_check": nil}},
	}
}

func (f *Fake) createIntent(r *http.Request) (int, any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	amount := int64(atoi(r.Form.Get("amount")))
	in := &fakeIntent{ID: f.id("pi"), Status: "succeeded", CaptureMethod: r.Form.Get("capture_method"),
		Ref: r.Form.Get("metadata[ivrpay_reference]"), Account: r.Header.Get("Stripe-Account"),
		PM: r.Form.Get("payment_method"), Amount: amount}
	in.CVC = f.cards[in.PM].Get("card[cvc]") != ""
	if in.CaptureMethod == "manual" {
		in.Status, in.Capturable = "requires_capture", amount
	} else {
		in.Received = amount
	}
	card := f.cards[in.PM]
	if d, ok := fakeDeclines[amount]; ok {
		return 402, cardError(d, in)
	}
	switch amount {
	case 5121: // processortest.AmountLostAnswers: charged, answer lost
		f.intents = append(f.intents, in)
		return 500, apiError()
	case 5122: // processortest.AmountUnavailable
		return 503, apiError()
	case AmountLostPending:
		in.Status, in.Capturable, in.Received = "requires_action", 0, 0
		f.intents = append(f.intents, in)
		return 500, apiError()
	case AmountRequiresAction:
		in.Status, in.Capturable, in.Received = "requires_action", 0, 0
		f.intents = append(f.intents, in)
		return 200, in.json(true)
	case AmountProcessing:
		in.Status, in.Capturable, in.Received = "processing", 0, 0
		f.intents = append(f.intents, in)
		return 200, in.json(true)
	case AmountRateLimited:
		return 429, map[string]any{"error": map[string]any{"code": "rate_limit", "type": "invalid_request_error",
			"message": "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
			"doc_url": "https://stripe.com/docs/error-codes/rate-limit"}}
	case AmountHang:
		f.intents = append(f.intents, in)
		return 0, nil
	case AmountInvalidRequest:
		return 400, map[string]any{"error": map[string]any{"code": "amount_too_small", "param": "amount", "type": "invalid_request_error",
			"message": "Amount must be at least $0.50 usd", "doc_url": "https://stripe.com/docs/error-codes/amount-too-small"}}
	case AmountIdempotencyErr:
		return 400, map[string]any{"error": map[string]any{"type": "idempotency_error",
			"message": "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '" + r.Header.Get("Idempotency-Key") + "' if you meant to execute a different request."}}
	case AmountBadKey:
		// Stripe masks the key; a misbehaving proxy might not.
		return 401, map[string]any{"error": map[string]any{"type": "invalid_request_error",
			"message": "Invalid API Key provided: " + bearer(r)}}
	case AmountEchoCard:
		return 402, map[string]any{"error": map[string]any{"code": "card_declined", "decline_code": "generic_decline", "type": "card_error",
			"message": fmt.Sprintf("Card %s (cvc %s) was declined.", card.Get("card[number]"), card.Get("card[cvc]"))}}
	case AmountEchoCardHTML:
		return 502, fmt.Sprintf("<html><body>Bad gateway for card=%s&cvc=%s</body></html>", card.Get("card[number]"), card.Get("card[cvc]"))
	case AmountBadGateway:
		return 502, "<html><body>502 Bad Gateway</body></html>"
	case AmountAccountError:
		key := bearer(r)
		return 403, map[string]any{"error": map[string]any{"type": "invalid_request_error",
			"message": "The provided key 'sk_test_****" + key[max(0, len(key)-4):] + "' does not have access to account '" + AccountErrorAccount +
				"' (or that account does not exist). Application access may have been revoked."}}
	case AmountConflict:
		return 409, map[string]any{"error": map[string]any{"code": "idempotency_key_in_use", "type": "invalid_request_error",
			"message": "There is currently another in-progress request using this Stripe-Account, Idempotency-Key, and endpoint. Please try again later."}}
	}
	f.intents = append(f.intents, in)
	return 200, in.json(expands(r, "latest_charge"))
}

func bearer(r *http.Request) string {
	if u, _, ok := r.BasicAuth(); ok {
		return u
	}
	h := r.Header.Get("Authorization")
	if len(h) > 7 {
		return h[7:]
	}
	return ""
}

type fakeDecline struct{ code, declineCode, param, message string }

var fakeDeclines = map[int64]fakeDecline{
	5101:                  {"card_declined", "generic_decline", "", "Your card was declined."},
	5102:                  {"card_declined", "insufficient_funds", "", "Your card has insufficient funds."},
	5103:                  {"card_declined", "do_not_honor", "", "Your card was declined."},
	AmountIncorrectCVC:    {"incorrect_cvc", "", "cvc", "Your card's security code is incorrect."},
	AmountExpiredCard:     {"expired_card", "", "exp_month", "Your card has expired."},
	AmountProcessingError: {"processing_error", "", "", "An error occurred while processing your card. Try again in a little bit."},
	AmountFraudulent:      {"card_declined", "fraudulent", "", "Your card was declined."},
	AmountIncorrectZip:    {"incorrect_zip", "", "address_zip", "Your card's zip code failed validation."},
	AmountLostCard:        {"card_declined", "lost_card", "", "Your card was declined."},
	AmountOtherDecline:    {"card_declined", "transaction_not_allowed", "", "Your card does not support this type of purchase."},
}

// cardError is Stripe's 402 body: the error with the declined PaymentIntent.
func cardError(d fakeDecline, in *fakeIntent) map[string]any {
	in.Status, in.Capturable, in.Received = "requires_payment_method", 0, 0
	e := map[string]any{"type": "card_error", "code": d.code, "message": d.message,
		"charge":          "ch_3FakeDeclined",
		"doc_url":         "https://stripe.com/docs/error-codes/" + d.code,
		"request_log_url": "https://dashboard.stripe.com/test/logs/req_fake?t=1700000000",
	}
	if d.declineCode != "" {
		e["decline_code"] = d.declineCode
	}
	if d.param != "" {
		e["param"] = d.param
	}
	pi := in.json(false)
	pi["last_payment_error"] = maps.Clone(e)
	e["payment_intent"] = pi
	return map[string]any{"error": e}
}

func apiError() map[string]any {
	return map[string]any{"error": map[string]any{"type": "api_error", "message": "An unknown error occurred"}}
}

func (in *fakeIntent) json(expandCharge bool) map[string]any {
	cvc := any(nil)
	if in.CVC {
		cvc = "pass"
	}
	var charge any = "ch_" + in.ID[3:]
	if expandCharge {
		charge = map[string]any{
			"id": "ch_" + in.ID[3:], "object": "charge", "amount": in.Amount, "amount_captured": in.Received,
			"captured": in.Status == "succeeded", "currency": "usd", "paid": true, "status": "succeeded",
			"payment_intent": in.ID, "payment_method": in.PM,
			"outcome": map[string]any{"network_status": "approved_by_network", "reason": nil, "risk_level": "normal",
				"seller_message": "Payment complete.", "type": "authorized"},
			"payment_method_details": map[string]any{"type": "card", "card": map[string]any{
				"amount_authorized": in.Amount, "authorization_code": FakeAuthCode, "brand": "visa", "country": "US",
				"exp_month": 12, "exp_year": 2030, "funding": "credit", "last4": "1111", "moto": true, "network": "visa",
				"network_transaction_id": "104557651805572",
				"checks":                 map[string]any{"address_line1_check": nil, "address_postal_code_check": "pass", "cvc_check": cvc},
			}},
		}
	}
	return map[string]any{
		"id": in.ID, "object": "payment_intent", "amount": in.Amount, "amount_capturable": in.Capturable,
		"amount_received": in.Received, "capture_method": in.CaptureMethod, "confirmation_method": "automatic",
		"created": 1700000000, "currency": "usd", "livemode": false, "status": in.Status,
		"metadata": map[string]any{"ivrpay_reference": in.Ref}, "payment_method": in.PM,
		"payment_method_types": []string{"card"}, "last_payment_error": nil, "latest_charge": charge,
		"client_secret": in.ID + "_secret_fake", "next_action": nil,
	}
}

func (f *Fake) intent(id string) *fakeIntent {
	for _, in := range f.intents {
		if in.ID == id {
			return in
		}
	}
	return nil
}

func missing(kind, id string) map[string]any {
	return map[string]any{"error": map[string]any{"code": "resource_missing", "param": "intent", "type": "invalid_request_error",
		"message": fmt.Sprintf("No such %s: '%s'", kind, id)}}
}

func (f *Fake) captureIntent(r *http.Request) (int, any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.intent(r.PathValue("id"))
	if in == nil {
		return 400, missing("payment_intent", r.PathValue("id"))
	}
	if in.Status != "requires_capture" {
		return 400, map[string]any{"error": map[string]any{"code": "payment_intent_unexpected_state", "type": "invalid_request_error",
			"message": "This PaymentIntent could not be captured because it has a status of " + in.Status + "."}}
	}
	amt := in.Capturable
	if v := r.Form.Get("amount_to_capture"); v != "" {
		amt = int64(atoi(v))
	}
	in.Status, in.Received, in.Capturable = "succeeded", amt, 0
	return 200, in.json(expands(r, "latest_charge"))
}

func (f *Fake) cancelIntent(r *http.Request) (int, any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.intent(r.PathValue("id"))
	if in == nil {
		return 400, missing("payment_intent", r.PathValue("id"))
	}
	if in.Status == "succeeded" || in.Status == "processing" {
		return 400, map[string]any{"error": map[string]any{"code": "payment_intent_unexpected_state", "type": "invalid_request_error",
			"message": "You cannot cancel this PaymentIntent because it has a status of " + in.Status + "."}}
	}
	in.Status, in.Capturable = "canceled", 0
	f.cancelled[in.ID] = true
	return 200, in.json(false)
}

var searchQuery = regexp.MustCompile(`^metadata\['ivrpay_reference'\]:'((?:[^'\\]|\\.)*)'$`)

func (f *Fake) searchIntents(w http.ResponseWriter, r *http.Request) {
	m := searchQuery.FindStringSubmatch(r.Form.Get("query"))
	if m == nil {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"type": "invalid_request_error", "message": "Invalid query"}})
		return
	}
	ref := regexp.MustCompile(`\\(.)`).ReplaceAllString(m[1], "$1")
	f.mu.Lock()
	defer f.mu.Unlock()
	data := []any{}
	if !f.searchLag {
		for _, in := range f.intents {
			if in.Ref == ref && in.Account == r.Header.Get("Stripe-Account") {
				data = append(data, in.json(expands(r, "data.latest_charge")))
			}
		}
	}
	writeJSON(w, 200, map[string]any{"object": "search_result", "url": "/v1/payment_intents/search", "has_more": false,
		"next_page": nil, "data": data})
}

func (f *Fake) listIntents(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data := []any{}
	for i := len(f.intents) - 1; i >= 0; i-- {
		if in := f.intents[i]; in.Account == r.Header.Get("Stripe-Account") {
			data = append(data, in.json(expands(r, "data.latest_charge")))
		}
	}
	writeJSON(w, 200, map[string]any{"object": "list", "url": "/v1/payment_intents", "has_more": false, "data": data})
}

func (f *Fake) createSetupIntent(r *http.Request) (int, any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.id("seti")
	pm := r.Form.Get("payment_method")
	card := f.cards[pm]
	si := map[string]any{"id": id, "object": "setup_intent", "status": "succeeded", "usage": r.Form.Get("usage"),
		"payment_method": pm, "payment_method_types": []string{"card"}, "livemode": false, "created": 1700000000,
		"last_setup_error": nil, "next_action": nil, "metadata": map[string]any{}}
	if card.Get("card[number]") == "4000000000000002" {
		e := map[string]any{"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
			"message": "Your card was declined.", "doc_url": "https://stripe.com/docs/error-codes/card-declined"}
		si["status"], si["last_setup_error"], si["payment_method"] = "requires_payment_method", maps.Clone(e), nil
		e["setup_intent"] = si
		return 402, map[string]any{"error": e}
	}
	cvc := any(nil)
	if card.Get("card[cvc]") != "" {
		cvc = "pass"
	}
	attempt := map[string]any{"id": "setatt_" + id[5:], "object": "setup_attempt", "setup_intent": id, "status": "succeeded",
		"payment_method": pm, "usage": r.Form.Get("usage"),
		"payment_method_details": map[string]any{"type": "card", "card": map[string]any{
			"brand": "visa", "country": "US", "exp_month": 12, "exp_year": 2030, "last4": "1111", "network": "visa",
			"network_transaction_id": "586214590330745",
			"checks":                 map[string]any{"address_line1_check": nil, "address_postal_code_check": "pass", "cvc_check": cvc},
		}}}
	if expands(r, "latest_attempt") {
		si["latest_attempt"] = attempt
	} else {
		si["latest_attempt"] = attempt["id"]
	}
	return 200, si
}

func (f *Fake) createRefund(r *http.Request) (int, any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.intent(r.Form.Get("payment_intent"))
	if in == nil {
		return 400, missing("payment_intent", r.Form.Get("payment_intent"))
	}
	amt := in.Received
	if v := r.Form.Get("amount"); v != "" {
		amt = int64(atoi(v))
	}
	re := &fakeRefund{ID: f.id("re"), Intent: in.ID, Status: "succeeded", Amount: amt}
	f.refunds[re.ID] = re
	return 200, re.json()
}

// retrieveIntent answers GET /v1/payment_intents/{id}: the intent as it
// stands now (404 resource_missing for one it never made).
func (f *Fake) retrieveIntent(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.intent(r.PathValue("id"))
	if in == nil || in.Account != r.Header.Get("Stripe-Account") {
		writeJSON(w, 404, missing("payment_intent", r.PathValue("id")))
		return
	}
	writeJSON(w, 200, in.json(expands(r, "latest_charge")))
}

// retrieveRefund answers GET /v1/refunds/{id}.
func (f *Fake) retrieveRefund(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	re := f.refunds[r.PathValue("id")]
	if re == nil {
		writeJSON(w, 404, missing("refund", r.PathValue("id")))
		return
	}
	writeJSON(w, 200, re.json())
}

// SetIntentStatus makes the PaymentIntent id read status from now on, as
// Stripe moves an intent after its first answer (processing → succeeded).
func (f *Fake) SetIntentStatus(id, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in := f.intent(id); in != nil {
		in.Status = status
		if status == "succeeded" && in.Received == 0 {
			in.Received, in.Capturable = in.Amount, 0
		}
	}
}

// SetRefundStatus makes the refund id read status from now on (pending,
// succeeded, failed, canceled), as a bank's answer moves a real refund.
func (f *Fake) SetRefundStatus(id, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if re := f.refunds[id]; re != nil {
		re.Status = status
	}
}

func expands(r *http.Request, field string) bool {
	for _, e := range r.Form["expand[]"] {
		if e == field {
			return true
		}
	}
	for k, v := range r.Form { // expand[0]=…
		if len(k) > 7 && k[:7] == "expand[" && len(v) > 0 && v[0] == field {
			return true
		}
	}
	return false
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// Recorded returns the requests made to path with method, in order.
func (f *Fake) Recorded(method, path string) []FakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []FakeRequest
	for _, r := range f.requests {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// Cancelled says whether the PaymentIntent id was cancelled.
func (f *Fake) Cancelled(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cancelled[id]
}

// IntentID returns the id of the i-th PaymentIntent made (oldest first).
func (f *Fake) IntentID(i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.intents[i].ID
}

// IntentStatus returns the status of the i-th PaymentIntent made.
func (f *Fake) IntentStatus(i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.intents[i].Status
}

// RefundCount returns how many refunds were made.
func (f *Fake) RefundCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.refunds)
}

// RefundIDs returns the ids of the refunds made, in no particular order.
func (f *Fake) RefundIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id := range f.refunds {
		out = append(out, id)
	}
	return out
}

// IntentRef is a PaymentIntent the Fake made: its id and current status.
type IntentRef struct{ ID, Status string }

// IntentsFor returns the PaymentIntents made with metadata ivrpay_reference
// ref, oldest first.
func (f *Fake) IntentsFor(ref string) []IntentRef {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []IntentRef
	for _, in := range f.intents {
		if in.Ref == ref {
			out = append(out, IntentRef{in.ID, in.Status})
		}
	}
	return out
}
