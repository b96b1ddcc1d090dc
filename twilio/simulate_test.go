package twilio

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testPAN = "4111111111111111"
	testCVV = "123"
	testKey = "sbx_apikey_0123456789abcdef"
)

var testNow = time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)

// recorded is one request the fake connector received.
type recorded struct {
	method, user, password string
	basicOK                bool
	header                 http.Header
	body                   []byte
}

// fakeConnector records every request and answers with answer(n, req),
// n counting requests from 1.
type fakeConnector struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
}

func newFakeConnector(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *fakeConnector {
	t.Helper()
	f := &fakeConnector{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		user, pass, ok := r.BasicAuth()
		f.mu.Lock()
		f.requests = append(f.requests, recorded{r.Method, user, pass, ok, r.Header.Clone(), body})
		n := len(f.requests)
		f.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body)) // for connectors that echo
		answer(n, w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeConnector) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

// answerJSON returns a handler that always answers body.
func answerJSON(body string) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
}

// slowFirstAnswer answers body like answerJSON, the first request only after
// 10 s (longer than any timeout the tests set), as a charge slower than
// Twilio waits for.
func slowFirstAnswer(body string) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			select {
			case <-time.After(10 * time.Second):
			case <-r.Context().Done():
				return
			}
		}
		answerJSON(body)(n, w, r)
	}
}

const approved = `{"charge_id":"pyi_1","error_code":null,"error_message":null,` +
	`"parameters":{"payin_id":"pyi_1","payin_status":"PROCESSING","card_brand":"VISA","card_last_4":"1111"}}`

func payinPay(t *testing.T) *Pay {
	t.Helper()
	p, err := NewPay(PayOptions{Connector: "ivrpay", AmountCents: 1000, PayinConfigID: "cfg_1", Description: "bill 42"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func storePay(t *testing.T) *Pay {
	t.Helper()
	p, err := NewPay(PayOptions{Connector: "ivrpay", PaymentMethodConfigID: "pmc_1"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testOptions(endpoint string, p *Pay) SimulateOptions {
	return SimulateOptions{
		Endpoint: endpoint, APIKey: testKey, Pay: p,
		Caller:           CallerInput{CardNumber: testPAN, Expiry: "08/27", CVV: testCVV, PostalCode: "94111"},
		NewTransactionID: func() string { return "72500aba-328c-445c-a12e-da5700e10b17" },
		Now:              func() time.Time { return testNow },
	}
}

func callbackJSON(t *testing.T, sim *Simulation) string {
	t.Helper()
	b, err := json.Marshal(sim.Callback)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSimulateWireFormat(t *testing.T) {
	t.Parallel()
	fake := newFakeConnector(t, answerJSON(approved))
	sim, err := Simulate(context.Background(), testOptions(fake.URL+"/vendor/twilio/pay_generic", payinPay(t)))
	if err != nil {
		t.Fatal(err)
	}
	reqs := fake.recorded()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || !r.basicOK || r.user != "api_key" || r.password != testKey {
		t.Errorf("method %s, basic auth %v %q:%q; want POST with api_key:<key>", r.method, r.basicOK, r.user, r.password)
	}
	if v, ok := r.header["Content-Type"]; ok {
		t.Errorf("Content-Type %q was sent; Twilio sends none", v)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	// Twilio's documented charge, key for key and in its order.
	if got, want := bodyKeys(t, r.body), []string{"method", "transaction_id", "cardnumber", "cvv", "amount", "currency_code",
		"expiry_month", "expiry_year", "description", "postal_code", "parameters"}; !slices.Equal(got, want) {
		t.Errorf("body keys %v, want %v", got, want)
	}
	for k, v := range body {
		if k == "parameters" {
			for pk, pv := range v.(map[string]any) {
				if _, ok := pv.(string); !ok {
					t.Errorf("parameters.%s is %T, want a string", pk, pv)
				}
			}
			continue
		}
		if _, ok := v.(string); !ok {
			t.Errorf("%s is %T, want a string: Twilio sends every value as a string", k, v)
		}
	}
	want := map[string]any{
		"method": "charge", "transaction_id": "72500aba-328c-445c-a12e-da5700e10b17",
		"cardnumber": testPAN, "cvv": testCVV, "expiry_month": "08", "expiry_year": "27", "postal_code": "94111",
		"amount": "10.00", "currency_code": "USD", "description": "bill 42",
		"parameters": map[string]any{"payin_config_id": "cfg_1"},
	}
	if got, _ := json.Marshal(body); string(got) != mustJSON(t, want) {
		t.Errorf("body\n got %s\nwant %s", got, mustJSON(t, want))
	}
	wantCallback := `{"Result":"success","PaymentConfirmationCode":"pyi_1","PaymentCardNumber":"xxxxxxxxxxxx1111",` +
		`"PaymentCardType":"visa","ExpirationDate":"0827","PaymentCardPostalCode":"94111","PaymentMethod":"credit-card",` +
		`"PayConnector_card_brand":"VISA","PayConnector_card_last_4":"1111","PayConnector_payin_id":"pyi_1",` +
		`"PayConnector_payin_status":"PROCESSING"}`
	if got := callbackJSON(t, sim); got != wantCallback {
		t.Errorf("callback\n got %s\nwant %s", got, wantCallback)
	}
	if len(sim.Attempts) != 1 || sim.Attempts[0].StatusCode != 200 || sim.TransactionID != "72500aba-328c-445c-a12e-da5700e10b17" {
		t.Errorf("attempts %+v, transaction %q", sim.Attempts, sim.TransactionID)
	}
	if sim.Response == nil || sim.Response.ID != "pyi_1" || sim.Method != MethodCharge {
		t.Errorf("response %+v, method %q", sim.Response, sim.Method)
	}
}

// bodyKeys returns the top-level keys of a JSON object, in order.
func bodyKeys(t *testing.T, body []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", body)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSimulateRequestFromTwiML(t *testing.T) {
	t.Parallel()
	fake := newFakeConnector(t, answerJSON(approved))
	// chargeAmount goes out as written, currency upper-cased, parameters as
	// given; securityCode="false" sends a null cvv, a <Pay> without
	// description a null description, and a fixed postalCode is sent as is.
	p, err := ParsePay([]byte(`<Response><Pay paymentConnector="c" chargeAmount="10.0" currency="usd" securityCode="false" postalCode="10001">` +
		`<Parameter name="payin_config_id" value="cfg_9"/><Parameter name="order" value="A-1"/></Pay></Response>`))
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions(fake.URL, p)
	o.Caller.CVV, o.Caller.PostalCode = "", ""
	if _, err := Simulate(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.Unmarshal(fake.recorded()[0].body, &body)
	if body["amount"] != "10.0" || body["currency_code"] != "USD" || body["postal_code"] != "10001" {
		t.Errorf("amount %v currency %v postal code %v", body["amount"], body["currency_code"], body["postal_code"])
	}
	for _, k := range []string{"cvv", "description"} {
		if v, ok := body[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %t), want null: Twilio sends every field, null when the caller gave nothing", k, v, ok)
		}
	}
	if got := mustJSON(t, body["parameters"]); got != `{"order":"A-1","payin_config_id":"cfg_9"}` {
		t.Errorf("parameters = %s", got)
	}
}

func TestSimulateRetriesSlowAnswer(t *testing.T) {
	t.Parallel()
	// Like an 11-second charge against Twilio's 10 s, scaled down: the first
	// attempt answers after the timeout, the retry at once.
	fake := newFakeConnector(t, slowFirstAnswer(approved))
	o := testOptions(fake.URL, payinPay(t))
	o.Timeout = time.Second // long enough to reach the fake server on a loaded machine
	sim, err := Simulate(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	reqs := fake.recorded()
	if len(reqs) != 2 || string(reqs[0].body) != string(reqs[1].body) {
		t.Fatalf("%d requests, want 2 identical ones", len(reqs))
	}
	for i, r := range reqs {
		var body map[string]any
		_ = json.Unmarshal(r.body, &body)
		if body["transaction_id"] != "72500aba-328c-445c-a12e-da5700e10b17" {
			t.Errorf("request %d transaction_id = %v", i+1, body["transaction_id"])
		}
	}
	if len(sim.Attempts) != 2 || !strings.Contains(sim.Attempts[0].Error, "no answer within 1s") || sim.Attempts[1].Error != "" {
		t.Errorf("attempts = %+v", sim.Attempts)
	}
	if sim.Attempts[0].TransactionID != sim.Attempts[1].TransactionID {
		t.Error("the retry has another transaction_id")
	}
	if sim.Result() != ResultSuccess {
		t.Errorf("Result = %q", sim.Result())
	}
}

func TestSimulateAllAttemptsTimeOut(t *testing.T) {
	t.Parallel()
	fake := newFakeConnector(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	o := testOptions(fake.URL, payinPay(t))
	// Long enough that each attempt reaches the fake server even on a loaded
	// machine, so that the server-side count is exact.
	o.Timeout, o.Retries = 500*time.Millisecond, 2
	sim, err := Simulate(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(fake.recorded()); n != 3 || len(sim.Attempts) != 3 {
		t.Errorf("%d requests and %d attempts, want 1 + 2 retries", n, len(sim.Attempts))
	}
	if sim.Result() != ResultPaymentConnectorError || !strings.Contains(sim.Callback.Get("PaymentError"), "did not answer") {
		t.Errorf("callback = %s", callbackJSON(t, sim))
	}
}

func TestSimulateRetriesTransportErrors(t *testing.T) {
	t.Parallel()
	fake := newFakeConnector(t, answerJSON(approved))
	endpoint := fake.URL
	fake.Close() // nothing listens any more
	o := testOptions(endpoint, payinPay(t))
	o.Retries = -1 // none
	sim, err := Simulate(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(sim.Attempts) != 1 || sim.Attempts[0].Error == "" || sim.Result() != ResultPaymentConnectorError {
		t.Errorf("attempts %+v, callback %s", sim.Attempts, callbackJSON(t, sim))
	}
}

func TestSimulateAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		store  bool
		status int
		answer string
		want   string // the callback JSON
	}{
		{
			name:   "decline",
			answer: `{"charge_id":null,"error_code":"DECLINED","error_message":"The card was declined","parameters":{"payin_id":"pyi_2","payin_status":"FAILED"}}`,
			want: `{"Result":"payment-connector-error","PaymentCardNumber":"xxxxxxxxxxxx1111","PaymentCardType":"visa","ExpirationDate":"0827",` +
				`"PaymentCardPostalCode":"94111","PaymentMethod":"credit-card","ConnectorError":"DECLINED","PaymentError":"The card was declined",` +
				`"PayConnector_payin_id":"pyi_2","PayConnector_payin_status":"FAILED"}`,
		},
		{
			name:   "unauthorized, with Twilio's shape",
			status: http.StatusUnauthorized,
			answer: `{"charge_id":null,"error_code":"UNAUTHORIZED","error_message":"bad credentials","parameters":{}}`,
			want: `{"Result":"payment-connector-error","PaymentCardNumber":"xxxxxxxxxxxx1111","PaymentCardType":"visa","ExpirationDate":"0827",` +
				`"PaymentCardPostalCode":"94111","PaymentMethod":"credit-card","ConnectorError":"UNAUTHORIZED","PaymentError":"HTTP 401 from the connector: bad credentials"}`,
		},
		{
			// express-basic-auth answers a bare 401: it is a credentials problem, not a malformed body.
			name:   "unauthorized, plain text",
			status: http.StatusUnauthorized,
			answer: `Unauthorized`,
			want: `{"Result":"payment-connector-error","PaymentCardNumber":"xxxxxxxxxxxx1111","PaymentCardType":"visa","ExpirationDate":"0827",` +
				`"PaymentCardPostalCode":"94111","PaymentMethod":"credit-card","PaymentError":"HTTP 401 from the connector"}`,
		},
		{
			name:   "server error with an id is no success",
			status: http.StatusInternalServerError,
			answer: `{"charge_id":"pyi_1","error_code":null,"error_message":null}`,
			want: `{"Result":"payment-connector-error","PaymentCardNumber":"xxxxxxxxxxxx1111","PaymentCardType":"visa","ExpirationDate":"0827",` +
				`"PaymentCardPostalCode":"94111","PaymentMethod":"credit-card","PaymentError":"HTTP 500 from the connector"}`,
		},
		{
			// An id with an error_code is an error: the id goes nowhere.
			name:   "charge_id and error_code",
			answer: `{"charge_id":"pyi_3","error_code":"DECLINED","error_message":"The card was declined"}`,
			want: `{"Result":"payment-connector-error","PaymentCardNumber":"xxxxxxxxxxxx1111","PaymentCardType":"visa","ExpirationDate":"0827",` +
				`"PaymentCardPostalCode":"94111","PaymentMethod":"credit-card","ConnectorError":"DECLINED","PaymentError":"The card was declined"}`,
		},
		{
			name:   "token_id and error_code",
			store:  true,
			answer: `{"token_id":"mtd_2","error_code":"EXPIRED_CARD","error_message":"The card has expired"}`,
			want: `{"Result":"payment-connector-error","PaymentCardNumber":"xxxxxxxxxxxx1111","PaymentCardType":"visa","ExpirationDate":"0827",` +
				`"PaymentCardPostalCode":"94111","PaymentMethod":"credit-card","ConnectorError":"EXPIRED_CARD","PaymentError":"The card has expired"}`,
		},
		{
			name:   "tokenize",
			store:  true,
			answer: `{"token_id":"mtd_1","error_code":null,"error_message":null,"parameters":{"payment_method_id":"mtd_1"}}`,
			want: `{"Result":"success","PaymentToken":"mtd_1","PaymentCardNumber":"xxxxxxxxxxxx1111","PaymentCardType":"visa","ExpirationDate":"0827",` +
				`"PaymentCardPostalCode":"94111","PaymentMethod":"credit-card","PayConnector_payment_method_id":"mtd_1"}`,
		},
		{
			name:   "malformed: not JSON",
			answer: `<html>Example Domain</html>`,
			want: `{"Result":"payment-connector-error","PaymentCardNumber":"xxxxxxxxxxxx1111","PaymentCardType":"visa","ExpirationDate":"0827",` +
				`"PaymentCardPostalCode":"94111","PaymentMethod":"credit-card",` +
				`"PaymentError":"Payment Gateway rejected charge creation. Got malformed response from Payment Provider."}`,
		},
		{
			name:   "malformed: the other method's id",
			store:  true,
			answer: `{"charge_id":"x","error_code":null,"error_message":null}`,
			want: `{"Result":"payment-connector-error","PaymentCardNumber":"xxxxxxxxxxxx1111","PaymentCardType":"visa","ExpirationDate":"0827",` +
				`"PaymentCardPostalCode":"94111","PaymentMethod":"credit-card",` +
				`"PaymentError":"Payment Gateway rejected token creation. Got malformed response from Payment Provider."}`,
		},
		{
			name:   "malformed: a number for an id",
			answer: `{"charge_id":5,"error_code":null,"error_message":null}`,
			want: `{"Result":"payment-connector-error","PaymentCardNumber":"xxxxxxxxxxxx1111","PaymentCardType":"visa","ExpirationDate":"0827",` +
				`"PaymentCardPostalCode":"94111","PaymentMethod":"credit-card",` +
				`"PaymentError":"Payment Gateway rejected charge creation. Got malformed response from Payment Provider."}`,
		},
		{
			name:   "malformed: empty body",
			answer: ``,
			want: `{"Result":"payment-connector-error","PaymentCardNumber":"xxxxxxxxxxxx1111","PaymentCardType":"visa","ExpirationDate":"0827",` +
				`"PaymentCardPostalCode":"94111","PaymentMethod":"credit-card",` +
				`"PaymentError":"Payment Gateway rejected charge creation. Got malformed response from Payment Provider."}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFakeConnector(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				if tt.status != 0 {
					w.WriteHeader(tt.status)
				}
				_, _ = io.WriteString(w, tt.answer)
			})
			p := payinPay(t)
			if tt.store {
				p = storePay(t)
			}
			sim, err := Simulate(context.Background(), testOptions(fake.URL, p))
			if err != nil {
				t.Fatal(err)
			}
			if got := callbackJSON(t, sim); got != tt.want {
				t.Errorf("callback\n got %s\nwant %s", got, tt.want)
			}
			var body map[string]any
			_ = json.Unmarshal(fake.recorded()[0].body, &body)
			_, hasAmount := body["amount"]
			_, hasCurrency := body["currency_code"]
			if tt.store && (body["method"] != "tokenize" || hasAmount || hasCurrency) {
				t.Errorf("tokenize request %s carries an amount or currency", fake.recorded()[0].body)
			}
			// Twilio's documented tokenize, key for key and in its order.
			if got, want := bodyKeys(t, fake.recorded()[0].body), []string{"method", "transaction_id", "cardnumber", "cvv",
				"expiry_month", "expiry_year", "description", "postal_code", "parameters"}; tt.store && !slices.Equal(got, want) {
				t.Errorf("tokenize body keys %v, want %v", got, want)
			}
		})
	}
}

func TestSimulateCallerValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		validCardTypes string
		caller         func(c *CallerInput)
		want           string
	}{
		{name: "Luhn", caller: func(c *CallerInput) { c.CardNumber = "4111111111111112" }, want: ErrorInvalidCardNumber},
		{name: "too short", caller: func(c *CallerInput) { c.CardNumber = "4111" }, want: ErrorInvalidCardNumber},
		{name: "not digits", caller: func(c *CallerInput) { c.CardNumber = "4111-1111-1111-1111" }, want: ErrorInvalidCardNumber},
		{name: "type not in validCardTypes", validCardTypes: "visa mastercard", caller: func(c *CallerInput) { c.CardNumber, c.CVV = "378282246310005", "1234" }, want: ErrorInvalidCardType},
		{name: "Twilio's default leaves out discover", validCardTypes: "-", caller: func(c *CallerInput) { c.CardNumber = "6011111111111117" }, want: ErrorInvalidCardType},
		{name: "brand ivrpay does not know", caller: func(c *CallerInput) { c.CardNumber = "6200000000000005" }, want: ErrorInvalidCardType},
		{name: "expired", caller: func(c *CallerInput) { c.Expiry = "04/26" }, want: ErrorInvalidDate},
		{name: "month 13", caller: func(c *CallerInput) { c.Expiry = "13/27" }, want: ErrorInvalidDate},
		{name: "no slash, wrong length", caller: func(c *CallerInput) { c.Expiry = "827" }, want: ErrorInvalidDate},
		{name: "security code too short", caller: func(c *CallerInput) { c.CVV = "12" }, want: ErrorInvalidSecurityCode},
		{name: "amex needs four digits", caller: func(c *CallerInput) { c.CardNumber = "378282246310005" }, want: ErrorInvalidSecurityCode},
		{name: "postal code missing", caller: func(c *CallerInput) { c.PostalCode = " " }, want: ErrorInvalidPostalCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFakeConnector(t, answerJSON(approved))
			p := payinPay(t)
			switch tt.validCardTypes {
			case "":
			case "-":
				p.ValidCardTypes = ""
			default:
				p.ValidCardTypes = tt.validCardTypes
			}
			o := testOptions(fake.URL, p)
			tt.caller(&o.Caller)
			sim, err := Simulate(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if sim.Result() != ResultValidationError || sim.Callback.Get("PaymentError") != tt.want {
				t.Errorf("callback %s, want a validation-error with PaymentError %s", callbackJSON(t, sim), tt.want)
			}
			if got := callbackJSON(t, sim); strings.Contains(got, o.Caller.CardNumber) {
				t.Errorf("callback %s shows the card number", got)
			}
			if n := len(fake.recorded()); n != 0 || len(sim.Attempts) != 0 || sim.TransactionID != "" {
				t.Errorf("%d requests sent after a caller-side failure", n)
			}
		})
	}
}

func TestSimulateValidationKeepsWhatWasCaptured(t *testing.T) {
	t.Parallel()
	fake := newFakeConnector(t, answerJSON(approved))
	o := testOptions(fake.URL, payinPay(t))
	o.Caller.CVV = "1"
	sim, err := Simulate(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Result":"validation-error","PaymentCardNumber":"xxxxxxxxxxxx1111","PaymentCardType":"visa","ExpirationDate":"0827",` +
		`"PaymentMethod":"credit-card","PaymentError":"invalid-security-code"}`
	if got := callbackJSON(t, sim); got != want {
		t.Errorf("callback\n got %s\nwant %s", got, want)
	}
}

func TestSimulateAcceptsExpiryForms(t *testing.T) {
	t.Parallel()
	for _, exp := range []string{"08/27", "0827", "08/2027", "8/27"} {
		t.Run(exp, func(t *testing.T) {
			fake := newFakeConnector(t, answerJSON(approved))
			o := testOptions(fake.URL, payinPay(t))
			o.Caller.Expiry = exp
			sim, err := Simulate(context.Background(), o)
			if err != nil || sim.Callback.Get("ExpirationDate") != "0827" {
				t.Errorf("%s: ExpirationDate %q, err %v", exp, sim.Callback.Get("ExpirationDate"), err)
			}
		})
	}
}

func TestSimulateNeverShowsCardData(t *testing.T) {
	t.Parallel()
	// A connector that echoes the request everywhere it can.
	fake := newFakeConnector(t, func(n int, w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		echo := string(body)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"charge_id": "ch_" + testPAN, "error_code": "E" + testPAN, "error_message": echo + " cvv " + testCVV,
			"parameters": map[string]string{testPAN: testPAN, "cvv": testCVV, "echo": echo},
		})
	})
	o := testOptions(fake.URL, payinPay(t))
	sim, err := Simulate(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := json.Marshal(sim)
	printed := string(all) + fmt.Sprintf("%v %+v %#v %s %d %x", o, o, o.Caller, o.Caller, o.Caller, o.Caller)
	if strings.Contains(printed, testPAN) {
		t.Errorf("the PAN leaked:\n%s", printed)
	}
	if regexp.MustCompile(`(^|\D)` + testCVV + `(\D|$)`).MatchString(string(all)) {
		t.Errorf("the CVV leaked:\n%s", all)
	}
	if !strings.Contains(string(all), "xxxxxxxxxxxx1111") {
		t.Errorf("the masked card is missing:\n%s", all)
	}
}

func TestSimulatePostsAction(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		form url.Values
		ct   string
	)
	action := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		form, ct = r.PostForm, r.Header.Get("Content-Type")
		mu.Unlock()
		if r.URL.Query().Get("fail") != "" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(action.Close)
	fake := newFakeConnector(t, answerJSON(approved))

	o := testOptions(fake.URL, payinPay(t))
	o.Action = action.URL + "/pay/done"
	sim, err := Simulate(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if ct != "application/x-www-form-urlencoded" || form.Get("Result") != "success" ||
		form.Get("PaymentConfirmationCode") != "pyi_1" || form.Get("PayConnector_payin_id") != "pyi_1" ||
		form.Get("AccountSid") != DefaultAccountSid || form.Get("CallSid") != sim.CallSid || len(form) != len(sim.Callback)+2 {
		t.Errorf("action got %s %v", ct, form)
	}
	mu.Unlock()
	if sim.ActionStatus != http.StatusOK {
		t.Errorf("ActionStatus = %d", sim.ActionStatus)
	}

	// The <Pay>'s own action is used when no override is given; a failing
	// action URL is an error, with the simulation still returned.
	p := payinPay(t)
	p.Action = action.URL + "/pay/done?fail=1"
	o = testOptions(fake.URL, p)
	sim, err = Simulate(context.Background(), o)
	if err == nil || sim == nil || sim.ActionStatus != http.StatusInternalServerError || !strings.Contains(err.Error(), "500") {
		t.Errorf("sim %v, err %v; want the simulation and an HTTP 500 error", sim, err)
	}
}

func TestSimulateOptionErrors(t *testing.T) {
	t.Parallel()
	ach := storePay(t)
	ach.PaymentMethod = "ach-debit"
	badAmount := payinPay(t)
	badAmount.ChargeAmount = "ten"
	tests := []struct {
		name string
		o    SimulateOptions
		want string
	}{
		{"no endpoint", SimulateOptions{Pay: storePay(t)}, "endpoint"},
		{"endpoint not http", SimulateOptions{Endpoint: "ftp://x", Pay: storePay(t)}, "endpoint"},
		{"no pay", SimulateOptions{Endpoint: "http://x"}, "<Pay>"},
		{"ach", SimulateOptions{Endpoint: "http://x", Pay: ach}, "credit-card"},
		{"bad amount", SimulateOptions{Endpoint: "http://x", Pay: badAmount}, "chargeAmount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.o.Caller = CallerInput{CardNumber: testPAN, CVV: testCVV}
			_, err := Simulate(context.Background(), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testPAN) {
				t.Error("the error shows the PAN")
			}
		})
	}
}

func TestSimulateCancelled(t *testing.T) {
	t.Parallel()
	fake := newFakeConnector(t, func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Simulate(ctx, testOptions(fake.URL, payinPay(t))); err == nil {
		t.Fatal("want the context's error")
	}
}

func TestNewTransactionID(t *testing.T) {
	t.Parallel()
	uuid4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := NewTransactionID(), NewTransactionID()
	if !uuid4.MatchString(a) || a == b {
		t.Errorf("NewTransactionID() = %q, %q", a, b)
	}
}
