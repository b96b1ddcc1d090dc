package twilio

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	twilioclient "github.com/twilio/twilio-go/client"
)

// webhookRequest is one callback a handler received, with what a handler
// needs to validate it: the full URL Twilio signed, the raw body, the header.
type webhookRequest struct {
	url       string
	body      []byte
	form      url.Values
	signature string
	header    http.Header
}

// webhookRecorder is an action or status URL that records every callback.
type webhookRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []webhookRequest
}

func newWebhookRecorder(t *testing.T) *webhookRecorder {
	t.Helper()
	w := &webhookRecorder{}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		w.mu.Lock()
		w.reqs = append(w.reqs, webhookRequest{url: "http://" + r.Host + r.URL.RequestURI(), body: body, form: form,
			signature: r.Header.Get(SignatureHeader), header: r.Header.Clone()})
		w.mu.Unlock()
	}))
	t.Cleanup(w.Close)
	return w
}

func (w *webhookRecorder) received() []webhookRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]webhookRequest(nil), w.reqs...)
}

func TestSimulateConnectorCredentialsAndContentType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		userInURL           string // user:password@ put in the endpoint
		username, apiKey    string
		contentType         string
		wantUser, wantPass  string
		wantContentType     string
		wantContentTypeSent bool
		wantErr             string
	}{
		{name: "defaults: api_key and no Content-Type", apiKey: testKey, wantUser: "api_key", wantPass: testKey},
		{name: "--username", username: "foo", apiKey: "bar", wantUser: "foo", wantPass: "bar"},
		{name: "--content-type", apiKey: testKey, contentType: "application/json", wantUser: "api_key", wantPass: testKey,
			wantContentType: "application/json", wantContentTypeSent: true},
		{name: "credentials in the URL", userInURL: "foo:bar", wantUser: "foo", wantPass: "bar"},
		{name: "credentials in the URL equal to the flags", userInURL: "foo:bar", username: "foo", apiKey: "bar", wantUser: "foo", wantPass: "bar"},
		{name: "URL password differs from the API key", userInURL: "foo:bar", apiKey: "other", wantErr: "password differs"},
		{name: "URL username differs", userInURL: "foo:bar", username: "api_key", wantErr: "username differs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFakeConnector(t, answerJSON(approved))
			endpoint := fake.URL + "/charge"
			if tt.userInURL != "" {
				endpoint = strings.Replace(endpoint, "http://", "http://"+tt.userInURL+"@", 1)
			}
			o := testOptions(endpoint, payinPay(t))
			o.Username, o.APIKey, o.ContentType = tt.username, tt.apiKey, tt.contentType
			sim, err := Simulate(context.Background(), o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "bar") {
					t.Fatalf("err = %v, want %q without the password", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			reqs := fake.recorded()
			if len(reqs) != 1 || sim.Result() != ResultSuccess {
				t.Fatalf("%d requests, result %s", len(reqs), sim.Result())
			}
			r := reqs[0]
			if !r.basicOK || r.user != tt.wantUser || r.password != tt.wantPass {
				t.Errorf("basic auth %v %q:%q, want %q:%q", r.basicOK, r.user, r.password, tt.wantUser, tt.wantPass)
			}
			ct, sent := r.header["Content-Type"]
			if sent != tt.wantContentTypeSent || (sent && ct[0] != tt.wantContentType) {
				t.Errorf("Content-Type %q (sent %v), want %q (sent %v)", ct, sent, tt.wantContentType, tt.wantContentTypeSent)
			}
		})
	}
}

func TestSimulateStatusCallback(t *testing.T) {
	t.Parallel()
	noSecurityCode := func(p *Pay) { p.SecurityCode = "false" }
	fixedPostal := func(p *Pay) { p.PostalCode = "10001" }
	tests := []struct {
		name      string
		pay       func(*Pay)
		caller    func(*CallerInput)
		wantFor   []string
		errorType string // on the last event
		attempts  int    // connector requests
	}{
		{name: "a whole call", wantFor: []string{"payment-card-number", "expiration-date", "security-code", "postal-code", "payment-processing"}, attempts: 1},
		{name: "no security code asked", pay: noSecurityCode, wantFor: []string{"payment-card-number", "expiration-date", "postal-code", "payment-processing"}, attempts: 1},
		{name: "a fixed postal code is not asked", pay: fixedPostal, wantFor: []string{"payment-card-number", "expiration-date", "security-code", "payment-processing"}, attempts: 1},
		{name: "bad card number", caller: func(c *CallerInput) { c.CardNumber = "4111111111111112" },
			wantFor: []string{"payment-card-number"}, errorType: ErrorInvalidCardNumber},
		{name: "card type not accepted", caller: func(c *CallerInput) { c.CardNumber = "6200000000000005" },
			wantFor: []string{"payment-card-number"}, errorType: ErrorInvalidCardType},
		{name: "expired", caller: func(c *CallerInput) { c.Expiry = "01/20" },
			wantFor: []string{"payment-card-number", "expiration-date"}, errorType: ErrorInvalidDate},
		{name: "bad security code", caller: func(c *CallerInput) { c.CVV = "12" },
			wantFor: []string{"payment-card-number", "expiration-date", "security-code"}, errorType: ErrorInvalidSecurityCode},
		{name: "no postal code", caller: func(c *CallerInput) { c.PostalCode = "" },
			wantFor: []string{"payment-card-number", "expiration-date", "security-code", "postal-code"}, errorType: ErrorInvalidPostalCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFakeConnector(t, answerJSON(approved))
			status := newWebhookRecorder(t)
			p := payinPay(t)
			if tt.pay != nil {
				tt.pay(p)
			}
			o := testOptions(fake.URL, p)
			o.StatusCallback = status.URL + "/status"
			if tt.caller != nil {
				tt.caller(&o.Caller)
			}
			sim, err := Simulate(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			got := status.received()
			var fors []string
			for _, r := range got {
				fors = append(fors, r.form.Get("For"))
				if r.form.Get("AccountSid") != DefaultAccountSid || r.form.Get("CallSid") != sim.CallSid || !strings.HasPrefix(sim.CallSid, "CA") {
					t.Errorf("event %s: AccountSid %q CallSid %q (call %s)", r.form.Get("For"), r.form.Get("AccountSid"), r.form.Get("CallSid"), sim.CallSid)
				}
				if r.form.Get("Attempt") != "1" || r.header.Get("Content-Type") != "application/x-www-form-urlencoded" {
					t.Errorf("event %s: Attempt %q, Content-Type %q", r.form.Get("For"), r.form.Get("Attempt"), r.header.Get("Content-Type"))
				}
				if strings.Contains(string(r.body), testPAN) || r.form.Get("SecurityCode") == testCVV {
					t.Errorf("event %s shows card data: %s", r.form.Get("For"), r.body)
				}
				if r.signature != "" {
					t.Errorf("event signed without an auth token")
				}
			}
			if strings.Join(fors, ",") != strings.Join(tt.wantFor, ",") {
				t.Fatalf("events For %v, want %v", fors, tt.wantFor)
			}
			if len(sim.StatusEvents) != len(got) || sim.StatusEvents[0].Status != http.StatusOK {
				t.Errorf("StatusEvents %+v", sim.StatusEvents)
			}
			last := got[len(got)-1].form
			if last.Get("ErrorType") != tt.errorType {
				t.Errorf("last event ErrorType %q, want %q", last.Get("ErrorType"), tt.errorType)
			}
			for _, r := range got[:len(got)-1] {
				if r.form.Get("ErrorType") != "" {
					t.Errorf("event %s has ErrorType %q", r.form.Get("For"), r.form.Get("ErrorType"))
				}
			}
			if n := len(fake.recorded()); n != tt.attempts {
				t.Errorf("%d connector requests, want %d", n, tt.attempts)
			}
			if tt.errorType == "" {
				// The processing event carries every field, masked as Twilio does.
				want := map[string]string{"PaymentCardNumber": "xxxxxxxxxxxx1111", "PaymentCardType": "visa", "ExpirationDate": "0827"}
				if p.asksSecurityCode() {
					want["SecurityCode"] = "***"
				}
				for k, v := range want {
					if last.Get(k) != v {
						t.Errorf("payment-processing %s = %q, want %q", k, last.Get(k), v)
					}
				}
				if first := got[0].form; first.Get("PaymentCardNumber") != "xxxxxxxxxxxx1111" || first.Get("ExpirationDate") != "" {
					t.Errorf("first event shows %v; want the card alone", first)
				}
			}
		})
	}
}

func TestSimulateStatusCallbackFailureIsRecorded(t *testing.T) {
	t.Parallel()
	fake := newFakeConnector(t, answerJSON(approved))
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }))
	t.Cleanup(failing.Close)
	o := testOptions(fake.URL, payinPay(t))
	o.StatusCallback = failing.URL
	sim, err := Simulate(context.Background(), o)
	if err != nil || sim.Result() != ResultSuccess {
		t.Fatalf("err %v, result %s: a failing status callback must not stop the call", err, sim.Result())
	}
	if len(sim.StatusEvents) != 5 || sim.StatusEvents[0].Status != http.StatusNotFound || !strings.Contains(sim.StatusEvents[0].Error, "404") {
		t.Errorf("StatusEvents %+v", sim.StatusEvents)
	}
}

// TestSimulateSignature proves with twilio-go's own validator that the
// simulator signs callbacks as Twilio does.
func TestSimulateSignature(t *testing.T) {
	t.Parallel()
	const token = "0123456789abcdef0123456789abcdef"
	fake := newFakeConnector(t, answerJSON(approved))
	hooks := newWebhookRecorder(t)
	o := testOptions(fake.URL, payinPay(t))
	o.Action = hooks.URL + "/pay/done?call=1&step=2"
	o.StatusCallback = hooks.URL + "/pay/status"
	o.AuthToken, o.AccountSid, o.CallSid = token, "AC11111111111111111111111111111111", "CA22222222222222222222222222222222"
	if _, err := Simulate(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	got := hooks.received()
	if len(got) != 6 {
		t.Fatalf("%d callbacks, want 5 status events and the action", len(got))
	}
	right, wrong := twilioclient.NewRequestValidator(token), twilioclient.NewRequestValidator("fedcba9876543210fedcba9876543210")
	for _, r := range got {
		name := r.url + " " + r.form.Get("For")
		if r.signature == "" {
			t.Errorf("%s: no %s", name, SignatureHeader)
			continue
		}
		if !right.ValidateBody(r.url, r.body, r.signature) {
			t.Errorf("%s: twilio-go rejects the signature with the right token", name)
		}
		if wrong.ValidateBody(r.url, r.body, r.signature) {
			t.Errorf("%s: twilio-go accepts the signature with a wrong token", name)
		}
		if r.form.Get("AccountSid") != o.AccountSid || r.form.Get("CallSid") != o.CallSid {
			t.Errorf("%s: AccountSid %q CallSid %q", name, r.form.Get("AccountSid"), r.form.Get("CallSid"))
		}
	}
	if last := got[5]; !strings.HasSuffix(last.url, "/pay/done?call=1&step=2") || last.form.Get("Result") != ResultSuccess {
		t.Errorf("last callback %s %v, want the action", last.url, last.form)
	}
}

func TestSignatureKnownValue(t *testing.T) {
	t.Parallel()
	// twilio-go's own test vector (client/request_validator_test.go).
	form := url.Values{"Digits": {"1234"}, "CallSid": {"CA1234567890ABCDE"}, "To": {"+18005551212"}, "Caller": {"+14158675309"},
		"From": {"+14158675309"}, "ReasonConferenceEnded": {"test"}, "Reason": {"Participant"}}
	if got := Signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", form); got != "vOEb5UThFn24KEfnOFLQY2AE5FY=" {
		t.Errorf("Signature = %s", got)
	}
}
